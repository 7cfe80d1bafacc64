"""Numba kernels (``parallel``, ``nogil``, ``cache``) and the plain-numpy references the tests use.

Each module holds the ``@njit`` kernels for one family; ``reference.py`` holds the numpy
versions. Kernels are dtype-generic: float32 in training, float64 for gradient checks.
"""

from .jit import njit, prange

__all__ = ["njit", "prange"]

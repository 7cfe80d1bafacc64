"""How many CPU threads the engine uses: Numba's kernels and the BLAS libraries together.

Numba's thread count belongs to the thread that sets it, while a GUI sets it on one thread
and trains on another. ``set_num_threads`` therefore records the wish process-wide and
applies it to BLAS at once; each thread that runs the network picks it up (``sync``, called
by ``Network.forward``).
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import ParamError

_wanted: int | None = None
_applied = threading.local()
_blas_limits: Any = None


def max_threads() -> int:
    """The most threads Numba can run here (its pool size: the CPU count by default)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def get_num_threads() -> int:
    """Threads the engine's kernels use (the setting, or Numba's count on this thread)."""
    import numba

    return _wanted if _wanted is not None else int(numba.get_num_threads())


def set_num_threads(n: int) -> int:
    """Use ``n`` threads (1 .. ``max_threads()``) in Numba kernels and BLAS, on every thread
    that runs a network from now on; returns the previous setting. BLAS covers numpy's and
    the SciPy BLAS that Numba's kernels call (they hold it to one thread per kernel slice)."""
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba calls: limit it too)
    from threadpoolctl import threadpool_limits

    most = max_threads()
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= most:
        raise ParamError(f"threads must be a whole number from 1 to {most} on this machine, "
                         f"got {n!r}")
    global _wanted, _blas_limits
    before = get_num_threads()
    _wanted = n
    numba.set_num_threads(n)
    _applied.n = n
    _blas_limits = threadpool_limits(limits=n, user_api="blas")
    return before


def sync() -> int:
    """Apply the setting to Numba on the calling thread if it is not applied there yet;
    returns the thread count the calling thread's kernels use (also ``current()``)."""
    import numba

    if _wanted is None:
        _applied.n = n = int(numba.get_num_threads())
        return n
    if getattr(_applied, "n", None) != _wanted:
        numba.set_num_threads(_wanted)
        _applied.n = _wanted
    return _wanted


def current() -> int:
    """The calling thread's kernel thread count as of its last ``sync`` (cheap: no lock)."""
    n = getattr(_applied, "n", None)
    return n if n is not None else sync()

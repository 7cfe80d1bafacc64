"""The one place kernels get their Numba decorator, so every kernel shares its options.

``njit`` is ``numba.njit(parallel=True, nogil=True, cache=True, fastmath=False)`` by default;
with ``NUMBA_DISABLE_JIT=1`` the same functions run as plain Python (the tests use both).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..cachedir import configure_numba_cache

configure_numba_cache()
# OpenMP threads that finish a parallel region first spin before they sleep; libgomp's default
# (300,000 spins) starves a thread that shares its core with another program (LeNet-5 at
# batch 64 on 2 cores with one busy: 1,500 samples/s, 6,600 with this; 29,000 either way on
# idle cores). Read when Numba loads libgomp, so set here, before any kernel runs.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

import numba  # noqa: E402  (after the cache folder is set)
from numba import prange  # noqa: E402


def njit(fn: Callable[..., Any] | None = None, *, parallel: bool = True, **kw: Any) -> Any:
    opts = {"parallel": parallel, "nogil": True, "cache": True, "fastmath": False, **kw}
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)


def jit_disabled() -> bool:
    return os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


__all__ = ["jit_disabled", "njit", "prange"]

"""Where Numba keeps compiled kernels: the user's cache folder (platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path


def numba_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("netbuilder", appauthor=False)) / "numba"


def configure_numba_cache() -> None:
    """Point NUMBA_CACHE_DIR at the user cache unless the caller chose one already.

    Must run before numba is imported anywhere for the setting to take effect."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    try:
        d = numba_cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(d)
    except OSError:
        pass

"""Where Numba keeps compiled kernels: the user's cache folder (platformdirs), one subfolder
per version of the kernel sources.

Numba checks a cached function against its own source file only, but a kernel compiled in
``fused.py`` carries the helpers it calls from ``conv.py`` inside it: after an update that
changes only ``conv.py`` it would keep running the old helper. Naming the subfolder after the
contents of every kernel module (and Numba's and Python's versions) makes any change start a
fresh cache. Subfolders of other versions unused for ``STALE_DAYS`` are removed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

STALE_DAYS = 30
KEY_LENGTH = 16


def kernels_key() -> str:
    """Hex digest of the kernel modules' contents, Numba's version and the Python build."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        numba_version = version("numba")
    except PackageNotFoundError:
        numba_version = "?"
    h = hashlib.sha256(f"{numba_version} {sys.version} {sys.implementation.cache_tag}".encode())
    for p in sorted((Path(__file__).parent / "kernels").glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:KEY_LENGTH]


def numba_cache_root() -> Path:
    """``<user cache>/netbuilder/numba``; without platformdirs (a tool that installed only the
    engine's numerical packages), the XDG location, so ``import engine`` still works."""
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        return Path(base) / "netbuilder" / "numba"
    return Path(user_cache_dir("netbuilder", appauthor=False)) / "numba"


def numba_cache_dir() -> Path:
    """The cache folder for the kernels as they are now: ``<root>/<kernels_key()>``."""
    return numba_cache_root() / kernels_key()


def _remove_stale(root: Path, keep: Path) -> None:
    cutoff = time.time() - STALE_DAYS * 86400
    for d in root.iterdir():
        if d != keep and d.is_dir() and len(d.name) == KEY_LENGTH and d.stat().st_mtime < cutoff:
            shutil.rmtree(d, ignore_errors=True)


def configure_numba_cache() -> None:
    """Point NUMBA_CACHE_DIR at the user cache unless the caller chose one already.

    Must run before numba is imported anywhere for the setting to take effect."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    try:
        d = numba_cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        os.utime(d)
        _remove_stale(d.parent, d)
        os.environ["NUMBA_CACHE_DIR"] = str(d)
    except OSError:
        pass

"""Atomic file writes: a temporary file in the same folder, fsync, then rename over.

The file gets the permissions a plain ``open(path, "w")`` would give it: those of the file it
replaces, or ``0o666`` less the umask for a new file (a temp file alone would be ``0o600``)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(fh)`` on a temp file beside ``path`` and rename it over ``path``."""
    path = Path(path)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with contextlib.suppress(OSError):  # e.g. a file system without permissions
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _remove_stale_temps(path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask (Linux reads it without changing it; elsewhere it is set and put
    back under a lock)."""
    status = Path("/proc/self/status")
    with contextlib.suppress(OSError, ValueError):
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """Permissions of the file ``path`` is about to become."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


STALE_AFTER_S = 600.0


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files of earlier saves of ``path`` that a killed process left behind
    (older than ``STALE_AFTER_S``, so a save under way elsewhere is never touched)."""
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > STALE_AFTER_S:
                tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))

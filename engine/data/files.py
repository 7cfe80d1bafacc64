"""What the file loaders share: reading a whole file with clear errors, the names a label
column goes by, and the test for a numeric cell. Both ``loaders`` and ``sequences`` import
from here (so neither imports the other's private helpers)."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError

MAX_FILE_BYTES = 4 * 2**30
LABEL_NAMES = ("label", "labels", "class", "target", "y")


def read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes, or a DataError naming it (missing, a folder, too large, empty).
    ``what`` says what was expected there, e.g. "a CSV file"."""
    try:
        if path.is_dir():
            raise DataError(f"{path} is a folder, expected {what}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataError(f"{path}: {size / 2**30:.1f} GB is too large")
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise DataError(f"{path} is empty")
    return data


def is_number(s: str) -> bool:
    """Whether a CSV cell parses as a float."""
    try:
        float(s)
    except ValueError:
        return False
    return True

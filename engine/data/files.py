"""What the file loaders share: reading a whole file with clear errors, the names a label
column goes by, class labels checked, and the test for a numeric cell. ``loaders``,
``sequences`` and ``idx`` import from here (so none imports another's private helpers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

MAX_FILE_BYTES = 4 * 2**30
LABEL_NAMES = ("label", "labels", "class", "target", "y")
MAX_CLASSES = 1_000_000


def class_labels(y: np.ndarray, where: str) -> np.ndarray:
    """Class indices as int64: whole numbers from 0 to MAX_CLASSES - 1, else DataError."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where}: class labels must be numbers, got {y.dtype}")
    flat = y.reshape(-1)
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(flat) | (flat != np.round(flat)))
        if bad.size:
            raise DataError(f"{where}: class labels must be whole numbers; "
                            f"{float(flat[bad[0]])!r} (value #{int(bad[0])}) is not")
    lo, hi = (flat.min().item(), flat.max().item()) if flat.size else (0, 0)
    if lo < 0 or hi >= MAX_CLASSES:
        raise DataError(f"{where}: class label {lo if lo < 0 else hi} is out of range: "
                        "classes are numbered "
                        f"0, 1, 2, ... (fewer than {MAX_CLASSES:,})")
    return y.astype(np.int64)


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

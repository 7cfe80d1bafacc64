"""A strict reader of ``.npz`` archives that never unpickles and never inflates more than it
may: every array's header is read first and its size checked against the bytes the archive
declares and against a budget, before any data is read.

``read_npz(raw, where, limit, error)`` returns ``{name: array}`` or raises ``error`` (a
NetBuilderError subclass) with a message naming ``where`` and the array.
"""

from __future__ import annotations

import ast
import io
import math
import struct
import zipfile
import zlib
from typing import IO

import numpy as np

from ..errors import NetBuilderError

MAGIC = b"\x93NUMPY"
MAX_HEADER = 10_000
MAX_ARRAYS = 10_000
_HEADER_KEYS = {"descr", "fortran_order", "shape"}
try:
    from lzma import LZMAError
except ImportError:  # Python built without lzma: zipfile cannot open such members either
    LZMAError = OSError  # type: ignore[assignment,misc]

ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error,
              LZMAError, NotImplementedError, RuntimeError, struct.error, OverflowError)


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise EOFError(f"ran out of data ({len(data)} of {n} bytes)")
    return data


def read_npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse one ``.npy`` header: (shape, fortran_order, dtype, header bytes). ValueError
    (plain, for the caller to wrap) when it is not a valid header of a pickle-free array."""
    head = fh.read(8)
    if len(head) != 8 or head[:6] != MAGIC:
        raise ValueError("not a NumPy array (no .npy signature)")
    major = head[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", _read_exact(fh, 2))
        used = 10
    elif major in (2, 3):
        (hlen,) = struct.unpack("<I", _read_exact(fh, 4))
        used = 12
    else:
        raise ValueError(f".npy format version {major}.{head[7]} is not supported")
    if hlen > MAX_HEADER:
        raise ValueError(f"array header of {hlen:,} bytes is too large")
    text = _read_exact(fh, hlen).decode("latin1" if major < 3 else "utf-8")
    try:
        d = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("array header cannot be parsed") from None
    if not isinstance(d, dict) or set(d) != _HEADER_KEYS:
        raise ValueError("array header does not describe an array")
    shape, fortran = d["shape"], d["fortran_order"]
    if (not isinstance(shape, tuple) or len(shape) > 32
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise ValueError(f"array header has an invalid shape {str(shape)[:60]}")
    if not isinstance(fortran, bool):
        raise ValueError("array header has an invalid order")
    try:
        dtype = np.lib.format.descr_to_dtype(d["descr"])
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError):
        raise ValueError(f"array header has an invalid type {str(d['descr'])[:60]}") from None
    return shape, fortran, dtype, used + hlen


def check_member(info: zipfile.ZipInfo, where: str, error: type[NetBuilderError]) -> None:
    """Refuse a zip member NetBuilder never writes, or whose declared size cannot be true:
    only stored and deflated members; deflate inflates at most ~1032 times."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise error(f"{where}: '{info.filename[:80]}' uses zip compression method "
                    f"{info.compress_type}; only stored or deflated members are read")
    if info.flag_bits & 0x1:
        raise error(f"{where}: '{info.filename[:80]}' is encrypted")
    most = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED else 1040)
    if info.file_size > most + 64:
        raise error(f"{where}: '{info.filename[:80]}' claims {info.file_size:,} bytes from "
                    f"{info.compress_size:,} compressed; the archive is damaged or a zip bomb")


def read_npz(raw: bytes, where: str, limit: int, error: type[NetBuilderError]
             ) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` held in ``raw``; the arrays may take at most ``limit`` bytes
    together. Object (pickled) arrays, damaged data and sizes that do not add up raise
    ``error``; nothing is decompressed beyond the sizes the headers declare."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (*ZIP_ERRORS, ValueError):
        raise error(f"{where} is not a readable .npz archive (not a zip, or damaged)") from None
    out: dict[str, np.ndarray] = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ARRAYS:
            raise error(f"{where}: {len(infos):,} arrays is too many")
        declared = sum(i.file_size for i in infos)
        if declared > limit:
            raise error(f"{where}: the arrays unpack to {declared / 2**20:,.1f} MB, more than "
                        f"the {limit / 2**20:,.1f} MB this file may hold")
        for info in infos:
            check_member(info, where, error)
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in out:
                raise error(f"{where}: the archive holds array '{key[:80]}' twice")
            out[key] = _read_member(zf, info, key, where, error)
    return out


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str,
                 error: type[NetBuilderError]) -> np.ndarray:
    name = f"{where}: array '{key[:80]}'"
    try:
        with zf.open(info) as fh:
            try:
                shape, fortran, dtype, used = read_npy_header(fh)
            except ValueError as exc:
                raise error(f"{name} is damaged ({exc})") from None
            if dtype.hasobject:
                raise error(f"{name} holds Python objects; only numeric arrays are read "
                            "(no pickles)")
            if dtype.itemsize == 0:
                raise error(f"{name} has the empty type {dtype}")
            nbytes = math.prod(shape) * dtype.itemsize
            if used + nbytes != info.file_size:
                said = f"{nbytes:,}" if nbytes <= info.file_size else "more"
                raise error(f"{name} is damaged: its header says {said} bytes of data, "
                            f"the archive holds {info.file_size - used:,}")
            data = bytearray(_read_exact(fh, nbytes))
    except NetBuilderError:
        raise
    except (*ZIP_ERRORS, ValueError) as exc:
        raise error(f"{name} is damaged ({exc})") from None
    arr = np.frombuffer(data, dtype)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)

"""Zip and .npy writers with full control over what a damaged or hostile file claims: member
names (duplicates, ``../x``), methods, CRCs and declared sizes (zip bombs), array headers."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np

STORED, DEFLATED = 0, 8


@dataclass
class Member:
    """One zip member. ``claim`` overrides the declared uncompressed size, ``raw`` says
    ``data`` is already compressed (a bomb built by ``zero_bomb``)."""

    name: str | bytes
    data: bytes
    method: int = STORED
    claim: int | None = None
    crc: int | None = None
    raw: bool = False


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def zero_bomb(size: int) -> bytes:
    """A raw deflate stream that inflates to ``size`` zero bytes, built in milliseconds: one
    compressed MB of zeros repeated (each block only refers back inside itself)."""
    mb = 2**20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * mb) + c.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(size, mb)
    c2 = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = c2.compress(b"\0" * rest) + c2.flush()
    return block * whole + tail


def zip_bytes(members: list[Member]) -> bytes:
    """A zip archive written field by field (no checks: it says what it is told to say)."""
    out = io.BytesIO()
    central = []
    for m in members:
        name = m.name.encode("utf-8") if isinstance(m.name, str) else m.name
        if m.raw:
            body, size = m.data, m.claim or 0
        else:
            body = deflate(m.data) if m.method == DEFLATED else m.data
            size = len(m.data)
        size = m.claim if m.claim is not None else size
        crc = m.crc if m.crc is not None else (0 if m.raw else zlib.crc32(m.data))
        big = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQ", 1, 8, size) if big else b""  # zip64: the size is 64-bit
        fields = struct.pack("<HHHHHIII", 45 if big else 20, 0x800, m.method, 0, 0x21,
                             crc & 0xFFFFFFFF, len(body), 0xFFFFFFFF if big else size)
        offset = out.tell()
        out.write(b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name + body)
        central.append(b"PK\x01\x02" + struct.pack("<H", 45 if big else 20) + fields
                       + struct.pack("<HHHHHII", len(name), len(extra), 0, 0, 0, 0, offset)
                       + name + extra)
    start = out.tell()
    cd = b"".join(central)
    out.write(cd)
    out.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(members), len(members),
                                          len(cd), start, 0))
    return out.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


def npy_header(descr: object, shape: object, fortran: object = False,
               version: int = 1) -> bytes:
    """A hand-made .npy header (any values, valid or not)."""
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, }}"
    body = text.encode("latin1", "replace")
    body += b" " * (-(len(body) + 11) % 64) + b"\n"
    size = struct.pack("<H", len(body) & 0xFFFF) if version == 1 else struct.pack("<I", len(body))
    return b"\x93NUMPY" + bytes([version, 0]) + size + body


def npz_bytes(arrays: dict[str, bytes | np.ndarray], method: int = STORED) -> bytes:
    """An .npz whose members are given as arrays or as raw .npy bytes."""
    return zip_bytes([Member(f"{k}.npy", v if isinstance(v, bytes) else npy_bytes(v), method)
                      for k, v in arrays.items()])

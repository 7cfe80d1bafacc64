"""Writers of small test files: PNG (any row filter), PGM/PPM, BMP, IDX."""

import gzip
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter_row(row: np.ndarray, prev: np.ndarray, ftype: int, bpp: int) -> bytes:
    r = row.astype(np.int64)
    p = prev.astype(np.int64)
    out = np.empty_like(r)
    for j in range(len(r)):
        left = r[j - bpp] if j >= bpp else 0
        up = p[j]
        ul = p[j - bpp] if j >= bpp else 0
        pred = [0, left, up, (left + up) // 2, _paeth(left, up, ul)][ftype]
        out[j] = (r[j] - pred) & 0xFF
    return bytes([ftype]) + out.astype(np.uint8).tobytes()


def png_bytes(img: np.ndarray, filters=(0,), palette: np.ndarray | None = None,
              interlace: int = 0, depth: int = 8) -> bytes:
    """uint8 (H, W) grey, (H, W, 2) grey+alpha, (H, W, 3) RGB, (H, W, 4) RGBA, or palette
    indices (H, W) with ``palette`` (K, 3); rows use the given filter types in turn."""
    img = np.asarray(img, np.uint8)
    h, w = img.shape[:2]
    ch = 1 if img.ndim == 2 else img.shape[2]
    color = 3 if palette is not None else {1: 0, 2: 4, 3: 2, 4: 6}[ch]
    flat = img.reshape(h, w * ch)
    raw = b""
    prev = np.zeros(w * ch, np.uint8)
    for i in range(h):
        raw += _filter_row(flat[i], prev, filters[i % len(filters)], ch)
        prev = flat[i]
    out = b"\x89PNG\r\n\x1a\n"
    out += _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    if palette is not None:
        out += _chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    out += _chunk(b"tEXt", b"Comment\x00test")
    out += _chunk(b"IDAT", zlib.compress(raw))
    return out + _chunk(b"IEND", b"")


def pnm_bytes(img: np.ndarray, binary: bool = True, maxval: int = 255) -> bytes:
    img = np.asarray(img)
    h, w = img.shape[:2]
    rgb = img.ndim == 3
    magic = {(False, False): "P2", (False, True): "P5", (True, False): "P3",
             (True, True): "P6"}[(rgb, binary)]
    head = f"{magic}\n# written by a test\n{w} {h}\n{maxval}\n".encode()
    if binary:
        dtype = ">u2" if maxval > 255 else np.uint8
        return head + img.astype(dtype).tobytes()
    return head + " ".join(str(int(v)) for v in img.reshape(-1)).encode() + b"\n"


def bmp_bytes(img: np.ndarray, bpp: int = 24, top_down: bool = False) -> bytes:
    """uint8 (H, W, 3) as 24/32-bit, or (H, W) grey as 8-bit with a grey palette."""
    img = np.asarray(img, np.uint8)
    h, w = img.shape[:2]
    row = ((w * bpp + 31) // 32) * 4
    pal = b""
    if bpp == 8:
        pal = b"".join(bytes([i, i, i, 0]) for i in range(256))
        px = img
    else:
        px = img[..., ::-1]
        if bpp == 32:
            px = np.concatenate([px, np.full((h, w, 1), 255, np.uint8)], axis=2)
    rows = [px[i].tobytes().ljust(row, b"\x00") for i in range(h)]
    if not top_down:
        rows = rows[::-1]
    data = b"".join(rows)
    offset = 14 + 40 + len(pal)
    info = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bpp, 0, len(data),
                       2835, 2835, 256 if bpp == 8 else 0, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + pal + data


def idx_bytes(arr: np.ndarray, compress: bool = False) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
    arr = np.asarray(arr)
    if arr.dtype.itemsize > 1:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + b"".join(
        struct.pack(">I", d) for d in arr.shape)
    data = head + arr.tobytes()
    return gzip.compress(data) if compress else data

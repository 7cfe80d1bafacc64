"""Small image readers with no dependencies: PNG (8-bit grey, grey+alpha, RGB, RGBA and
palette; non-interlaced), PGM/PPM (P2, P3, P5, P6) and BMP (uncompressed 8/24/32-bit).

``read_image(path)`` returns uint8 ``(H, W)`` for grey or ``(H, W, 3)`` for colour (alpha is
dropped; 16-bit PGM/PPM is scaled to 8 bits). Anything else raises DataError naming the file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

MAX_SIDE = 8192
MAX_FILE = 256 * 2**20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm", ".bmp")
UNSUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".webp", ".heic")


def _check_size(w: int, h: int, where: str) -> None:
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise DataError(f"{where}: image size {w}×{h} is not supported (1..{MAX_SIDE} per side)")


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, h: int, stride: int, bpp: int, where: str) -> np.ndarray:
    """Undo PNG's per-row filters; returns uint8 (h, stride)."""
    out = np.zeros((h, stride), np.uint8)
    data = np.frombuffer(raw, np.uint8).reshape(h, stride + 1)
    prev = np.zeros(stride, np.int32)
    for i in range(h):
        ftype = int(data[i, 0])
        line = data[i, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:
            cur = line.copy()
            for c in range(bpp):
                cur[c::bpp] = np.cumsum(line[c::bpp]) & 0xFF
        elif ftype == 2:
            cur = (line + prev) & 0xFF
        elif ftype in (3, 4):
            cur_l = line.tolist()
            up = prev.tolist()
            for j in range(stride):
                left = cur_l[j - bpp] if j >= bpp else 0
                if ftype == 3:
                    cur_l[j] = (cur_l[j] + ((left + up[j]) >> 1)) & 0xFF
                else:
                    ul = up[j - bpp] if j >= bpp else 0
                    cur_l[j] = (cur_l[j] + _paeth(left, up[j], ul)) & 0xFF
            cur = np.array(cur_l, np.int32)
        else:
            raise DataError(f"{where}: corrupt PNG (unknown row filter {ftype})")
        out[i] = cur
        prev = cur
    return out


def decode_png(data: bytes, where: str = "PNG") -> np.ndarray:
    if not data.startswith(PNG_SIGNATURE):
        raise DataError(f"{where} is not a PNG file")
    pos = len(PNG_SIGNATURE)
    header = None
    idat: list[bytes] = []
    palette = None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise DataError(f"{where}: PNG file is truncated")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise DataError(f"{where}: PNG file is corrupt (checksum of {ctype!r} chunk)")
        pos += 12 + length
        if ctype == b"IHDR":
            if length != 13:
                raise DataError(f"{where}: PNG header is corrupt")
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            if length == 0 or length % 3 or length > 3 * 256:
                raise DataError(f"{where}: PNG palette is corrupt ({length} bytes)")
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if header is None:
        raise DataError(f"{where}: PNG file has no header")
    w, h, depth, color, comp, filt, interlace = header
    _check_size(w, h, where)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color)
    if channels is None or comp != 0 or filt != 0:
        raise DataError(f"{where}: PNG colour type {color} is not supported")
    if depth != 8:
        raise DataError(f"{where}: PNG with {depth}-bit samples is not supported; "
                        "save it as 8-bit")
    if interlace:
        raise DataError(f"{where}: interlaced PNG is not supported; save it non-interlaced")
    if not idat:
        raise DataError(f"{where}: PNG file has no image data")
    stride = w * channels
    want = h * (stride + 1)
    dec = zlib.decompressobj()
    try:
        raw = dec.decompress(b"".join(idat), want + 1)
    except zlib.error:
        raise DataError(f"{where}: PNG image data is corrupt") from None
    if len(raw) != want:
        raise DataError(f"{where}: PNG image data has {len(raw)} bytes, expected {want}")
    px = _unfilter(raw, h, stride, channels, where).reshape(h, w, channels)
    if color == 3:
        if palette is None:
            raise DataError(f"{where}: palette PNG has no palette")
        idx = px[..., 0]
        if idx.max(initial=0) >= len(palette):
            raise DataError(f"{where}: PNG pixel refers past the end of its palette")
        return palette[idx]
    if channels == 1:
        return px[..., 0]
    if channels == 2:
        return px[..., 0].copy()
    return np.ascontiguousarray(px[..., :3])


def _pnm_tokens(data: bytes, count: int, where: str) -> tuple[list[int], int]:
    """Read ``count`` whitespace-separated integers after the magic; return them and the offset
    of the byte after the single whitespace that ends the header."""
    vals: list[int] = []
    pos = 2
    n = len(data)
    while len(vals) < count:
        while pos < n and data[pos:pos + 1].isspace():
            pos += 1
        if pos < n and data[pos:pos + 1] == b"#":
            while pos < n and data[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < n and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos or pos - start > 12:
            raise DataError(f"{where}: PGM/PPM header is corrupt")
        vals.append(int(data[start:pos]))
    return vals, pos + 1


def decode_pnm(data: bytes, where: str = "PNM") -> np.ndarray:
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise DataError(f"{where}: only PGM/PPM types P2, P3, P5 and P6 are supported")
    (w, h, maxval), pos = _pnm_tokens(data, 3, where)
    _check_size(w, h, where)
    if not 1 <= maxval <= 65535:
        raise DataError(f"{where}: PGM/PPM maximum value {maxval} is not valid")
    channels = 3 if magic in (b"P3", b"P6") else 1
    count = w * h * channels
    if magic in (b"P5", b"P6"):
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        body = data[pos:pos + count * dtype.itemsize]
        if len(body) != count * dtype.itemsize:
            raise DataError(f"{where}: PGM/PPM file is truncated")
        px = np.frombuffer(body, dtype).astype(np.int64)
    else:
        try:
            px = np.array(data[pos:].split(), np.int64)
        except (ValueError, OverflowError):
            raise DataError(f"{where}: PGM/PPM text holds a value that is not a number") from None
        if px.size and px.min() < 0:
            raise DataError(f"{where}: PGM/PPM text holds a negative value")
        if px.size < count:
            raise DataError(f"{where}: PGM/PPM file is truncated")
        px = px[:count]
    if px.size and px.max() > maxval:
        raise DataError(f"{where}: PGM/PPM value above its maximum {maxval}")
    out = px if maxval == 255 else (px * 255 + maxval // 2) // maxval
    out = out.astype(np.uint8)
    return out.reshape(h, w) if channels == 1 else out.reshape(h, w, 3)


def decode_bmp(data: bytes, where: str = "BMP") -> np.ndarray:
    if len(data) < 54 or data[:2] != b"BM":
        raise DataError(f"{where} is not a BMP file")
    (offset,) = struct.unpack("<I", data[10:14])
    (hsize,) = struct.unpack("<I", data[14:18])
    if hsize < 40:
        raise DataError(f"{where}: old OS/2 BMP headers are not supported")
    w, h, _planes, bpp, comp = struct.unpack("<iiHHI", data[18:34])
    top_down = h < 0
    h = abs(h)
    _check_size(w, h, where)
    if comp not in (0, 3) or (comp == 3 and bpp != 32):
        raise DataError(f"{where}: compressed BMP is not supported; save it uncompressed")
    if bpp not in (8, 24, 32):
        raise DataError(f"{where}: {bpp}-bit BMP is not supported (8, 24 or 32-bit)")
    row = ((w * bpp + 31) // 32) * 4
    if offset + row * h > len(data):
        raise DataError(f"{where}: BMP file is truncated")
    rows = np.frombuffer(data, np.uint8, row * h, offset).reshape(h, row)
    if not top_down:
        rows = rows[::-1]
    if bpp == 8:
        (ncolors,) = struct.unpack("<I", data[46:50])
        ncolors = ncolors or 256
        pstart = 14 + hsize
        ncolors = min(ncolors, 256)
        if pstart + ncolors * 4 > len(data):
            raise DataError(f"{where}: BMP palette is truncated")
        pal = np.frombuffer(data, np.uint8, ncolors * 4, pstart).reshape(-1, 4)
        idx = rows[:, :w]
        if idx.max(initial=0) >= len(pal):
            raise DataError(f"{where}: BMP pixel refers past the end of its palette")
        rgb = pal[idx][..., 2::-1]
    else:
        step = bpp // 8
        px = rows[:, :w * step].reshape(h, w, step)
        rgb = px[..., 2::-1]
    rgb = np.ascontiguousarray(rgb)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0].copy()
    return rgb


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file to uint8 (H, W) or (H, W, 3) by its content."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE:
            raise DataError(f"{p}: {size / 2**20:.0f} MB is too large for an image")
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror or exc}") from None
    if not data:
        raise DataError(f"{p} is empty")
    if data.startswith(PNG_SIGNATURE):
        return decode_png(data, str(p))
    if data[:2] == b"BM":
        return decode_bmp(data, str(p))
    if data[:1] == b"P" and data[1:2] in b"1234567":
        return decode_pnm(data, str(p))
    if data[:3] == b"\xff\xd8\xff":
        raise DataError(f"{p} is a JPEG, which NetBuilder does not read: convert it to PNG")
    raise DataError(f"{p} is not an image NetBuilder reads (PNG, PGM/PPM or BMP)")

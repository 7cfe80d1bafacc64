"""MNIST-style IDX files (raw or .gz): one file (``load_idx``) or a dataset of image and
label files (``load_mnist``). Read by ``loaders`` (files the user names) and ``remote`` (the
downloaded MNIST family), so it imports neither."""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..graph import available_memory_bytes
from .dataset import Dataset
from .files import MAX_FILE_BYTES, class_labels, read_bytes

IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _idx_header(head: bytes, p: Path) -> tuple[np.dtype, list[int], int]:
    """(dtype, dims, header bytes) of an IDX file from its first bytes (at least 4)."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
        raise DataError(f"{p} is not an IDX file (wrong magic number {head[:4].hex()})")
    ndim = head[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{p}: IDX file with {ndim} dimensions is not supported")
    size = 4 + 4 * ndim
    if len(head) < size:
        raise DataError(f"{p}: IDX header is truncated")
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    dtype = IDX_TYPES[head[2]]
    if math.prod(d for d in dims if d) * dtype.itemsize > MAX_FILE_BYTES:
        # even with a zero count, numpy cannot shape an array this large
        shape = "×".join(map(str, dims))
        raise DataError(f"{p}: IDX header announces a {shape} array, larger than NetBuilder "
                        f"loads")
    return dtype, dims, size


def _gunzip_idx(data: bytes, p: Path) -> bytes:
    """Unpack a gzipped IDX file, reading the header first so that no more is inflated than
    it announces (a small file that unpacks to gigabytes is refused up front)."""
    limit = min(MAX_FILE_BYTES, available_memory_bytes() // 2)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            head = fh.read(4)
            head += fh.read(4 * head[3]) if len(head) == 4 else b""
            dtype, dims, _ = _idx_header(head, p)
            want = math.prod(dims) * dtype.itemsize
            if want > limit:
                raise DataError(f"{p}: the IDX header announces {want / 2**30:,.1f} GB of data, "
                                f"more than NetBuilder loads ({limit / 2**30:.1f} GB)")
            return head + fh.read(want + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{p}: the gzip data is corrupt ({exc})") from None


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw): magic 0 0 type ndim, big-endian sizes, data."""
    p = Path(path)
    data = read_bytes(p, "an IDX file")
    if data[:2] == b"\x1f\x8b":
        data = _gunzip_idx(data, p)
    dtype, dims, head = _idx_header(data, p)
    want = math.prod(dims) * dtype.itemsize
    have = len(data) - head
    if have != want:
        shape = "×".join(map(str, dims))
        raise DataError(f"{p}: IDX header says {shape} values ({want:,} bytes) but the file "
                        f"holds {have:,} bytes of data")
    return np.frombuffer(data, dtype, offset=head).reshape(dims).astype(dtype.newbyteorder("="))


def idx_pair(folder: Path, prefix: str) -> tuple[Path, Path] | None:
    def find(kind: str) -> Path | None:
        for pat in (f"{prefix}-{kind}*", f"{prefix}_{kind}*"):
            hits = sorted(q for q in folder.glob(pat) if q.is_file())
            if hits:
                return hits[0]
        return None
    img, lab = find("images"), find("labels")
    return (img, lab) if img and lab else None


def _labels_file_for(images: Path) -> Path:
    name = images.name
    for a, b in (("images-idx3", "labels-idx1"), ("images", "labels")):
        if a in name:
            cand = images.with_name(name.replace(a, b, 1))
            if cand.exists():
                return cand
    raise DataError(f"{images}: cannot find the matching labels file (expected a name with "
                    "'labels' in place of 'images'); give it as labels=PATH")


def _mnist_part(images: Path, labels: Path, name: str) -> Dataset:
    x = load_idx(images)
    y = load_idx(labels)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 2:
        pass
    else:
        raise DataError(f"{images}: expected images (N, H, W), got an IDX of {x.ndim} dimensions")
    if y.ndim != 1:
        raise DataError(f"{labels}: expected labels (N,), got an IDX of {y.ndim} dimensions")
    if len(x) != len(y):
        raise DataError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{images} holds no images")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    with np.errstate(over="ignore"):
        xf = x.astype(np.float32) / np.float32(scale)
    return Dataset({"x": xf, "y": class_labels(y, str(labels))}, name, task="classification",
                   meta={"kind": "image" if xf.ndim == 4 else "vector", "source": str(images)})


def load_mnist(path: str | os.PathLike, labels: str | os.PathLike | None = None) -> Dataset:
    """MNIST-style IDX data: a folder holding ``train-images…``/``train-labels…`` (and
    optionally ``t10k-…`` as the test part), or an images file whose labels file sits beside
    it. uint8 pixels are scaled to [0, 1]; x is (N, 1, H, W)."""
    p = Path(path)
    if p.is_dir():
        train = idx_pair(p, "train")
        if train is None:
            raise DataError(f"{p}: no train-images / train-labels IDX files found in this folder")
        ds = _mnist_part(*train, name=p.name or "mnist")
        test = idx_pair(p, "t10k") or idx_pair(p, "test")
        if test is not None:
            ds.test = _mnist_part(*test, name=f"{ds.name} test")
            if ds.test.sample_shape != ds.sample_shape:
                raise DataError(f"{p}: test images are {ds.test.sample_shape}, training images "
                                f"{ds.sample_shape}")
        return ds
    lab = Path(labels) if labels is not None else _labels_file_for(p)
    return _mnist_part(p, lab, name=re.sub(r"[-_.]?images.*$", "", p.name) or p.stem)

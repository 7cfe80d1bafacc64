"""CIFAR-10 in its *binary* version (``cifar-10-binary.tar.gz``), read without extracting.

The archive holds ``cifar-10-batches-bin/data_batch_1.bin`` … ``data_batch_5.bin`` (the
50,000 training images), ``test_batch.bin`` (the 10,000 test images) and
``batches.meta.txt`` (the class names, one a line). A batch file is a run of 3,073-byte
records: one label byte (0-9), then 1,024 red, 1,024 green and 1,024 blue bytes, each a
32×32 plane in row-major order. x comes out as float32 ``(N, 3, 32, 32)`` in [0, 1].

The *python* version of the archive stores the same batches as pickles, which NetBuilder
never opens (a pickle can run code); it is refused with a pointer to the binary version.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..graph import available_memory_bytes, fmt_bytes
from .dataset import Dataset

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
RECORD_BYTES = 1 + 3 * 32 * 32
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
META_FILE = "batches.meta.txt"
MAX_BATCH_BYTES = 64 * 2**20  # a real batch is 30,730,000 bytes
BINARY_URL_HINT = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
PICKLE_REFUSAL = ("is the CIFAR-10 python version, whose batches are pickles; NetBuilder does "
                  "not open pickles (they can run code). Use the binary version instead: "
                  f"{BINARY_URL_HINT} (`netbuilder datasets fetch cifar10`)")


def _records(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,) uint8, images (N, 3, 32, 32) uint8) of one batch file's bytes."""
    if not data or len(data) % RECORD_BYTES:
        raise DataError(f"{where}: {len(data):,} bytes is not a whole number of CIFAR-10 "
                        f"records ({RECORD_BYTES:,} bytes each); the file is truncated or not "
                        "a CIFAR-10 binary batch")
    raw = np.frombuffer(data, np.uint8).reshape(-1, RECORD_BYTES)
    labels = raw[:, 0]
    bad = np.flatnonzero(labels >= len(CLASS_NAMES))
    if bad.size:
        raise DataError(f"{where}: record {int(bad[0])} has label {int(labels[bad[0]])}; "
                        f"CIFAR-10 labels are 0-{len(CLASS_NAMES) - 1}")
    return labels, raw[:, 1:].reshape(-1, 3, 32, 32)


def _class_names(text: bytes | None, where: str) -> list[str]:
    if text is None:
        return list(CLASS_NAMES)
    names = [s.strip() for s in text.decode("utf-8", "replace").splitlines() if s.strip()]
    if names != list(CLASS_NAMES):
        raise DataError(f"{where}: the class names {names[:12]} are not CIFAR-10's "
                        f"({', '.join(CLASS_NAMES)}); is this CIFAR-100 or another dataset?")
    return names


def _read_archive(p: Path) -> dict[str, bytes]:
    """The batch files (by base name) and the meta file of the tar.gz, in one streaming pass;
    nothing is written to disk and members that are not regular files are skipped."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META_FILE}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(p, "r|*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.name.startswith("cifar-10-batches-py/") or base in (
                        "data_batch_1", "test_batch"):
                    raise DataError(f"{p} {PICKLE_REFUSAL}")
                if base not in wanted or not member.isfile():
                    continue
                if member.size > MAX_BATCH_BYTES:
                    raise DataError(f"{p}: {member.name} is {member.size:,} bytes, larger than "
                                    "a CIFAR-10 batch")
                fh = tar.extractfile(member)
                if fh is not None:
                    found[base] = fh.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"no such file: {p}") from None
        raise DataError(f"{p}: not a readable tar.gz archive ({exc})") from None
    return found


def _read_folder(p: Path) -> dict[str, bytes]:
    if (p / "data_batch_1").is_file() or (p / "test_batch").is_file():
        raise DataError(f"{p} {PICKLE_REFUSAL}")
    found = {}
    for name in (*TRAIN_BATCHES, TEST_BATCH, META_FILE):
        f = p / name
        if f.is_file():
            size = f.stat().st_size
            if size > MAX_BATCH_BYTES:
                raise DataError(f"{f}: {size:,} bytes is larger than a CIFAR-10 batch")
            found[name] = f.read_bytes()
    return found


def is_cifar_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like CIFAR-10 (either version): an archive or an extracted
    batches folder, judged by name only."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        return any((p / n).is_file() for n in (TRAIN_BATCHES[0], "data_batch_1"))
    return name.startswith("cifar-10") and name.endswith((".tar.gz", ".tgz", ".tar"))


def load_cifar10(path: str | os.PathLike, name: str = "cifar10") -> Dataset:
    """CIFAR-10 from ``cifar-10-binary.tar.gz`` or its extracted ``cifar-10-batches-bin``
    folder: the five training batches as the dataset, ``test_batch`` as its ``test`` part
    (the published split). Every batch must be present."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file or folder: {p}")
    batches = _read_folder(p) if p.is_dir() else _read_archive(p)
    missing = [b for b in (*TRAIN_BATCHES, TEST_BATCH) if b not in batches]
    if missing:
        raise DataError(f"{p}: no {', '.join(missing)} in it; expected the CIFAR-10 binary "
                        f"version ({BINARY_URL_HINT})")
    classes = _class_names(batches.get(META_FILE), f"{p}: {META_FILE}")
    need = sum(len(b) // RECORD_BYTES for k, b in batches.items() if k != META_FILE) * 3072 * 4
    if need > available_memory_bytes() // 2:
        raise DataError(f"{p}: CIFAR-10 as float32 needs {fmt_bytes(need)}, more than half of "
                        f"this computer's memory ({fmt_bytes(available_memory_bytes())})")

    def part(files: tuple[str, ...], part_name: str) -> Dataset:
        parsed = [_records(batches.pop(f), f"{p}: {f}") for f in files]
        n = sum(len(lab) for lab, _ in parsed)
        x = np.empty((n, 3, 32, 32), np.float32)
        y = np.empty(n, np.int64)
        at = 0
        for lab, img in parsed:
            np.divide(img, np.float32(255.0), out=x[at:at + len(lab)], dtype=np.float32)
            y[at:at + len(lab)] = lab
            at += len(lab)
        return Dataset({"x": x, "y": y}, part_name, classes, "classification",
                       {"kind": "image", "source": str(p)})

    ds = part(TRAIN_BATCHES, name)
    ds.test = part((TEST_BATCH,), f"{name} test")
    return ds

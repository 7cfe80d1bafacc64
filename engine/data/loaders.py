"""File loaders: MNIST IDX (raw or .gz; read by ``idx``), NPZ, CSV with a label column, and
a folder of images with one sub-folder per class. ``load_dataset`` picks a built-in or a
loader from a spec.

Every problem with a file raises DataError naming the file (and line/column/key).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, short_repr
from ..graph import available_memory_bytes
from .builtin import BUILTINS
from .catalogue import CATALOGUE
from .dataset import Dataset, as_label_array
from .files import LABEL_NAMES, MAX_CLASSES, MAX_FILE_BYTES, class_labels, is_number, read_bytes
from .idx import idx_pair, load_mnist
from .images import IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES, read_image
from .npyfile import read_npz
from .sequences import is_sequence_csv, load_sequence_csv


# ----- NPZ ------------------------------------------------------------------------------------
def load_npz(path: str | os.PathLike) -> Dataset:
    """An ``.npz`` with ``x`` (N, …) and usually ``y``; optional ``x_test``/``y_test`` (the
    test part), ``class_names`` (strings) and further per-sample targets. No pickles."""
    p = Path(path)
    data = read_bytes(p, "an .npz file")
    arrays = read_npz(data, str(p), min(MAX_FILE_BYTES, available_memory_bytes() // 2),
                      DataError)
    if "x" not in arrays:
        keys = ", ".join(sorted(arrays)) or "none"
        raise DataError(f"{p}: no array named 'x' (the inputs); it holds: {keys}")
    class_names = None
    if "class_names" in arrays:
        cn = arrays.pop("class_names")
        if cn.dtype.kind not in "US" or cn.ndim != 1:
            raise DataError(f"{p}: 'class_names' must be a list of strings")
        class_names = [str(s.decode("utf-8", "replace") if isinstance(s, bytes) else s)
                       for s in cn.tolist()]
    main = {k: v for k, v in arrays.items() if not k.endswith("_test")}
    test = {k[:-5]: v for k, v in arrays.items() if k.endswith("_test")}

    def clean(part: dict[str, np.ndarray], suffix: str, classes: bool | None = None
              ) -> dict[str, np.ndarray]:
        out = {}
        for k, v in part.items():
            if v.dtype.kind not in "biuf":
                raise DataError(f"{p}: array '{k}{suffix}' must hold numbers, got {v.dtype}")
            if v.ndim == 0:
                raise DataError(f"{p}: array '{k}{suffix}' is a single number, not one value "
                                "per sample")
            if k == "x":
                with np.errstate(over="ignore"):  # out of float32 range: inf, refused later
                    out[k] = v.astype(np.float32)
            elif k == "y" and (classes or (classes is None and v.dtype.kind in "biu")):
                out[k] = class_labels(v, f"{p}: 'y{suffix}'")
            elif k == "y" and classes is False:
                with np.errstate(over="ignore"):
                    out[k] = v.astype(np.float32)
            else:
                out[k] = as_label_array(v, k + suffix)
        if out["x"].shape[0] == 0:
            raise DataError(f"{p}: 'x{suffix}' holds no samples")
        return out

    ds = Dataset(clean(main, ""), p.stem, class_names, meta={"source": str(p)})
    if test:
        if "x" not in test:
            raise DataError(f"{p}: has {', '.join(k + '_test' for k in test)} but no 'x_test'")
        ds.test = Dataset(clean(test, "_test", ds.task == "classification"), f"{p.stem} test",
                          class_names, task=ds.task)
        if ds.test.sample_shape != ds.sample_shape:
            raise DataError(f"{p}: 'x_test' samples are {ds.test.sample_shape}, 'x' samples "
                            f"{ds.sample_shape}")
    ds.meta["kind"] = "image" if ds.is_image else "vector"
    return ds


# ----- CSV ------------------------------------------------------------------------------------
def load_csv(path: str | os.PathLike, label_column: str | int | None = None,
             task: str | None = None, delimiter: str | None = None) -> Dataset:
    """A table with one sample per row. ``label_column``: header name or index (negative
    counts from the end); by default a column named label/class/target/y, else the last one;
    ``""`` means no labels. Labels that are not numbers become classes in sorted order.
    ``task`` forces "classification" or "regression"."""
    p = Path(path)
    data = read_bytes(p, "a CSV file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not UTF-8 text (byte {exc.start}); is it a CSV file?") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{p} holds no rows")
    if delimiter is None:
        first = lines[0]
        delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
        if delimiter == "," and "," not in first and " " in first.strip():
            delimiter = " "
    rows = list(csv.reader(lines, delimiter=delimiter, skipinitialspace=True))
    if delimiter == " ":
        rows = [[c for c in r if c] for r in rows]
    ncols = len(rows[0])
    header: list[str] | None = None
    if not all(is_number(c) for c in rows[0]):
        if len(rows) > 1 and sum(map(is_number, rows[1])) > sum(map(is_number, rows[0])):
            header = [c.strip() for c in rows[0]]
            rows = rows[1:]
        elif len(rows) == 1:
            header = [c.strip() for c in rows[0]]
            rows = []
    if not rows:
        raise DataError(f"{p} has a header but no data rows")
    first_data = 2 if header else 1
    for i, r in enumerate(rows):
        if len(r) != ncols:
            raise DataError(f"{p}, line {i + first_data}: {len(r)} values where the first row "
                            f"has {ncols}; every row needs the same number of columns")
    if label_column is None:
        lab = ncols - 1
        if header:
            low = [h.lower() for h in header]
            lab = next((low.index(n) for n in LABEL_NAMES if n in low), ncols - 1)
    elif label_column == "":
        lab = None
    elif isinstance(label_column, int) and not isinstance(label_column, bool):
        if not -ncols <= label_column < ncols:
            raise DataError(f"{p}: label column {label_column} does not exist "
                            f"({ncols} columns)")
        lab = label_column % ncols
    else:
        if not header or str(label_column) not in header:
            cols = (", ".join(short_repr(h, 30) for h in header[:20])
                    + (", …" if len(header) > 20 else "")) if header else \
                "the file has no header row"
            raise DataError(f"{p}: no column named {short_repr(label_column)} ({cols})")
        lab = header.index(str(label_column))
    feats = [j for j in range(ncols) if j != lab]
    if not feats:
        raise DataError(f"{p}: no feature columns besides the label column")
    table = np.empty((len(rows), len(feats)), np.float32)
    for i, r in enumerate(rows):
        try:
            with np.errstate(over="ignore"):
                table[i] = [float(r[j]) for j in feats]
        except ValueError:
            j = next(j for j in feats if not is_number(r[j]))
            col = f"'{header[j][:40]}'" if header else str(j + 1)
            raise DataError(f"{p}, line {i + first_data}, column {col}: {short_repr(r[j])} is "
                            "not a number") from None
    if not np.isfinite(table).all():
        i = int(np.flatnonzero(~np.isfinite(table).all(axis=1))[0])
        raise DataError(f"{p}, line {i + first_data}: holds NaN or Inf")
    arrays: dict[str, np.ndarray] = {"x": table}
    class_names = None
    if lab is not None:
        raw = [r[lab].strip() for r in rows]
        if all(is_number(v) for v in raw):
            vals = np.array([float(v) for v in raw])
            with np.errstate(over="ignore"):
                finite = np.isfinite(vals.astype(np.float32))
            if not finite.all():
                i = int(np.flatnonzero(~finite)[0])
                raise DataError(f"{p}, line {i + first_data}: label {short_repr(raw[i])} is "
                                "not a finite number (or too large)")
            classes = bool(np.all(vals == np.round(vals))) and vals.min() >= 0 \
                and vals.max() < MAX_CLASSES
            if task == "regression" or (task is None and not classes):
                arrays["y"] = vals.astype(np.float32)[:, None]
            else:
                arrays["y"] = class_labels(vals, f"{p}: the label column")
        else:
            if task == "regression":
                bad = next(v for v in raw if not is_number(v))
                raise DataError(f"{p}: label {short_repr(bad)} is not a number (regression)")
            class_names = sorted(set(raw))
            index = {c: k for k, c in enumerate(class_names)}
            arrays["y"] = np.array([index[v] for v in raw], np.int64)
    ds = Dataset(arrays, p.stem, class_names,
                 task if task in ("classification", "regression") and lab is not None else None,
                 meta={"kind": "vector", "source": str(p),
                       "columns": [header[j] for j in feats] if header else None})
    return ds


# ----- image folder ---------------------------------------------------------------------------
def load_image_folder(path: str | os.PathLike, grayscale: bool | None = None) -> Dataset:
    """One sub-folder per class (sorted names = class order), images inside: PNG, PGM/PPM
    or BMP, all the same size. x is (N, C, H, W) in [0, 1]: C = 1 when every image is grey
    (or ``grayscale``), else 3."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: expected one sub-folder per class holding its images, "
                        "found no sub-folders")
    images: list[np.ndarray] = []
    labels: list[int] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for k, cname in enumerate(classes):
        files = sorted(f for f in (root / cname).iterdir()
                       if f.is_file() and not f.name.startswith("."))
        count = 0
        for f in files:
            suffix = f.suffix.lower()
            if suffix in UNSUPPORTED_SUFFIXES:
                raise DataError(f"{f}: {suffix} images are not supported; convert them to PNG")
            if suffix not in IMAGE_SUFFIXES:
                continue
            img = read_image(f)
            hw = img.shape[:2]
            if first is None:
                first = (f, hw)
            elif hw != first[1]:
                raise DataError(f"{f} is {hw[1]}×{hw[0]} but {first[0]} is "
                                f"{first[1][1]}×{first[1][0]}: all images must be the same size")
            images.append(img)
            labels.append(k)
            count += 1
        if count == 0:
            raise DataError(f"{root / cname}: class folder holds no images "
                            f"({', '.join(IMAGE_SUFFIXES)})")
    colour = any(im.ndim == 3 for im in images) and not grayscale
    n = len(images)
    h, w = images[0].shape[:2]
    x = np.empty((n, 3 if colour else 1, h, w), np.float32)
    for i, im in enumerate(images):
        if colour:
            x[i] = (np.repeat(im[None], 3, 0) if im.ndim == 2 else im.transpose(2, 0, 1))
        else:
            x[i, 0] = im if im.ndim == 2 else im @ np.array([0.299, 0.587, 0.114])
    x /= 255.0
    return Dataset({"x": x, "y": np.array(labels, np.int64)}, root.name, classes,
                   "classification", {"kind": "image", "source": str(root)})


# ----- dispatch -------------------------------------------------------------------------------
def _parse_value(s: str) -> Any:
    low = s.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"spirals:n=800,noise=0.2"`` -> ("spirals", {"n": 800, "noise": 0.2})."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for part in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise DataError(f"dataset {short_repr(spec)}: settings go as name:key=value,key=value")
        params[key.strip()] = _parse_value(value)
    return name.strip(), params


def _load_path(p: Path, params: dict[str, Any]) -> Dataset:
    name = p.name.lower()
    from .cifar import is_cifar_path, load_cifar10
    if is_cifar_path(p):
        return load_cifar10(p, **params)
    if p.is_dir():
        if any(idx_pair(p, pre) for pre in ("train",)):
            return load_mnist(p)
        return load_image_folder(p, **params)
    if not p.exists():
        raise DataError(f"no such dataset file or folder: {p}")
    if name.endswith(".npz"):
        return load_npz(p, **params)
    if name.endswith((".csv", ".tsv", ".txt")):
        if "sequence_column" in params or "time_column" in params or is_sequence_csv(p):
            return load_sequence_csv(p, **params)
        return load_csv(p, **params)
    if "idx" in name or name.endswith((".ubyte", ".ubyte.gz")):
        return load_mnist(p, **params)
    raise DataError(f"{p}: unknown dataset file type; NetBuilder reads .npz, .csv, MNIST IDX "
                    "files, CIFAR-10 (binary version) and folders of images (one sub-folder "
                    "per class)")


def load_dataset(spec: str | os.PathLike | Mapping[str, Any],
                 base_dir: str | os.PathLike | None = None, **params: Any) -> Dataset:
    """A Dataset from a built-in name (``"digits"``, ``"spirals:n=800"``), a path to a file or
    folder, or a model file's ``training.dataset`` object (``{"name": "spirals", "n": 800}``
    or ``{"path": "data/iris.csv", "label_column": "species"}``). Relative paths are looked up
    beside ``base_dir`` (the model file's folder) first, then in the working folder."""
    if isinstance(spec, Mapping):
        conf = dict(spec)
        target = conf.pop("name", None) or conf.pop("path", None)
        if not isinstance(target, str) or not target:
            raise DataError("the dataset setting needs a 'name' (built-in) or a 'path'")
        conf.update(params)
        return load_dataset(target, base_dir, **conf)
    if isinstance(spec, str):
        name, inline = parse_spec(spec) if ":" in spec and spec.partition(":")[0] in BUILTINS \
            else (spec, {})
        if name in BUILTINS:
            return BUILTINS[name].make(**{**inline, **params})
        if spec in CATALOGUE:  # downloaded on first use, then read from the cache
            from .remote import load_remote_dataset
            return load_remote_dataset(spec, **params)
    elif not isinstance(spec, os.PathLike):
        raise DataError(f"a dataset must be named by a string or a path, got {short_repr(spec)}")
    p = Path(spec)
    if not p.is_absolute() and base_dir is not None and (Path(base_dir) / p).exists():
        p = Path(base_dir) / p
    if not p.exists() and isinstance(spec, str) and "/" not in spec and "." not in spec:
        raise DataError(f"unknown dataset {short_repr(spec)}: the built-in datasets are "
                        f"{', '.join(BUILTINS)}; downloaded on first use: "
                        f"{', '.join(CATALOGUE)}; or give the path of a .npz, .csv or IDX file "
                        "or of a folder of images")
    try:
        return _load_path(p, params)
    except TypeError as exc:
        raise DataError(f"{p}: unknown setting for this kind of dataset ({exc})") from None

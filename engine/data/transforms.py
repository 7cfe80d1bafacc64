"""Splits, normalisation, augmentation, and the check of a dataset against a model.

``split_dataset`` makes train / validation / test parts (stratified for classes);
``Normalizer`` fits on the training part only; ``Augmenter`` jitters image batches (shift,
rotation, scale) during training; ``check_dataset`` refuses data that does not fit a model
before training starts, naming the node and both shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError, short_repr
from ..registry import fmt_shape
from .dataset import Dataset, check_arrays_finite

NORMALIZE = ("none", "scale", "standardize")


@dataclass
class Splits:
    """The parts one training run uses; ``val`` and ``test`` may be None."""

    train: Dataset
    val: Dataset | None = None
    test: Dataset | None = None
    normalizer: Normalizer | None = None

    def sizes(self) -> dict[str, int]:
        return {k: len(v) if v is not None else 0
                for k, v in (("train", self.train), ("val", self.val), ("test", self.test))}


def _fraction(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
        raise DataError(f"{what} must be a fraction in [0, 1), got {v!r}")
    return float(v)


def split_dataset(ds: Dataset, val_split: float = 0.1, test_split: float = 0.0,
                  seed: int = 0, stratify: bool = True) -> Splits:
    """Shuffle (seeded) and cut ``ds`` into train / val / test; class proportions are kept in
    each part for classification. A test part shipped with the data (``ds.test``) is used
    as is, and ``test_split`` is then ignored."""
    val_split = _fraction(val_split, "the validation split")
    test_split = 0.0 if ds.test is not None else _fraction(test_split, "the test split")
    if val_split + test_split >= 1:
        raise DataError(f"validation ({val_split:g}) and test ({test_split:g}) splits leave "
                        "nothing to train on")
    n = len(ds)
    if n == 0:
        raise DataError(f"dataset '{ds.name}' holds no samples")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 11])
    if stratify and ds.task == "classification" and ds.y is not None and ds.y.ndim == 1:
        groups = [np.flatnonzero(ds.y == k) for k in np.unique(ds.y)]
    else:
        groups = [np.arange(n)]
    # a stratified order: each class shuffled and spread evenly over [0, 1)
    keys = np.empty(n)
    for g in groups:
        g = g[rng.permutation(len(g))]
        keys[g] = (np.arange(len(g)) + rng.uniform()) / len(g)
    order = np.argsort(keys, kind="stable")

    def count(frac: float) -> int:
        return 0 if frac == 0 else max(1, round(n * frac))

    n_test, n_val = count(test_split), count(val_split)
    idx = {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]),
           "train": np.sort(order[n_test + n_val:])}
    if len(idx["train"]) == 0:
        raise DataError(f"dataset '{ds.name}' ({n} samples) is too small for these splits")
    train = ds.subset(rng.permutation(idx["train"]))
    val = ds.subset(idx["val"]) if len(idx["val"]) else None
    test = ds.test if ds.test is not None else (ds.subset(idx["test"]) if len(idx["test"])
                                                else None)
    return Splits(train, val, test)


@dataclass
class Normalizer:
    """``none``; ``scale``: (x − min) / (max − min) with the training set's min and max;
    ``standardize``: (x − mean) / std per channel (images) or per feature (vectors)."""

    mode: str = "none"
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in NORMALIZE:
            raise DataError(f"unknown normalisation {short_repr(self.mode)}; choose one of "
                            f"{', '.join(NORMALIZE)}")

    @staticmethod
    def _axes(x: np.ndarray) -> tuple[int, ...]:
        if x.ndim == 4:
            return (0, 2, 3)
        return tuple(range(x.ndim - 1))

    def fit(self, x: np.ndarray) -> Normalizer:
        x = np.asarray(x, np.float64) if x.size < 2**24 else np.asarray(x)
        if self.mode == "scale":
            lo, hi = float(x.min()), float(x.max())
            self.stats = {"min": np.float32(lo), "max": np.float32(hi if hi > lo else lo + 1)}
        elif self.mode == "standardize":
            axes = self._axes(x)
            mean = x.mean(axis=axes, keepdims=True)[0]
            std = x.std(axis=axes, keepdims=True)[0]
            std = np.where(std > 1e-8, std, 1.0)
            self.stats = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.mode == "scale":
            return (x - self.stats["min"]) / (self.stats["max"] - self.stats["min"])
        if self.mode == "standardize":
            return (x - self.stats["mean"]) / self.stats["std"]
        return x

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode,
                **{k: np.asarray(v).tolist() for k, v in self.stats.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Normalizer:
        if not isinstance(d, dict):
            raise DataError("normalisation settings must be an object")
        mode = d.get("mode", "none")
        if not isinstance(mode, str):
            raise DataError(f"normalisation mode must be a name, got {short_repr(mode)}")
        keys = {"scale": ("min", "max"), "standardize": ("mean", "std")}.get(mode, ())
        try:
            stats = {k: np.asarray(d[k], np.float32) for k in keys}
        except (KeyError, ValueError, TypeError, OverflowError, RecursionError):
            raise DataError(f"normalisation '{mode}' is missing its statistics") from None
        return cls(mode, stats)


def normalize_splits(splits: Splits, mode: str) -> Splits:
    """Fit a Normalizer on ``splits.train`` and apply it to every part."""
    norm = Normalizer(mode).fit(splits.train.x)
    if mode == "none":
        return Splits(splits.train, splits.val, splits.test, norm)

    def tr(d: Dataset | None) -> Dataset | None:
        return None if d is None else d.with_arrays(x=norm.apply(d.x))
    return Splits(tr(splits.train), tr(splits.val), tr(splits.test), norm)  # type: ignore[arg-type]


class Augmenter:
    """Random affine jitter of image batches (N, C, H, W): shift up to ``shift`` × the image
    size, rotation up to ± ``rotation`` degrees, scale by 1 ± ``scale``; bilinear sampling,
    zero outside. Non-image batches pass through unchanged."""

    def __init__(self, shift: float = 0.0, rotation: float = 0.0, scale: float = 0.0) -> None:
        for name, v, hi in (("shift", shift, 0.5), ("rotation", rotation, 180.0),
                            ("scale", scale, 0.5)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= hi:
                raise DataError(f"augmentation {name} must be between 0 and {hi:g}, got {v!r}")
        self.shift, self.rotation, self.scale = float(shift), float(rotation), float(scale)

    @classmethod
    def from_config(cls, conf: dict[str, Any] | None) -> Augmenter | None:
        if not conf:
            return None
        if not isinstance(conf, dict):
            raise DataError("augment must be an object such as {\"shift\": 0.1, \"rotation\": 10}")
        unknown = set(conf) - {"shift", "rotation", "scale"}
        if unknown:
            raise DataError(f"unknown augmentation setting(s) {', '.join(sorted(unknown))} "
                            "(known: shift, rotation, scale)")
        aug = cls(**conf)
        return aug if aug.active else None

    @property
    def active(self) -> bool:
        return bool(self.shift or self.rotation or self.scale)

    def config(self) -> dict[str, float]:
        return {"shift": self.shift, "rotation": self.rotation, "scale": self.scale}

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if x.ndim != 4 or not self.active:
            return x
        n, _c, h, w = x.shape
        ang = np.deg2rad(rng.uniform(-self.rotation, self.rotation, n))
        s = 1.0 + rng.uniform(-self.scale, self.scale, n)
        tx = rng.uniform(-self.shift, self.shift, n) * w
        ty = rng.uniform(-self.shift, self.shift, n) * h
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
        cos_, sin_ = (np.cos(ang) / s)[:, None, None], (np.sin(ang) / s)[:, None, None]
        xo = xx[None] - tx[:, None, None]
        yo = yy[None] - ty[:, None, None]
        src_x = cos_ * xo + sin_ * yo + cx
        src_y = -sin_ * xo + cos_ * yo + cy
        x0 = np.floor(src_x).astype(np.int64)
        y0 = np.floor(src_y).astype(np.int64)
        fx = (src_x - x0).astype(x.dtype)[:, None]
        fy = (src_y - y0).astype(x.dtype)[:, None]
        out = np.zeros_like(x)
        bidx = np.arange(n)[:, None, None]
        for dy, dx, wgt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                            (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
            yi, xi = y0 + dy, x0 + dx
            ok = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
            vals = x[bidx, :, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
            vals = np.moveaxis(vals, -1, 1)
            out += vals * (wgt * ok[:, None])
        return out


# ----- fitting data to a model ----------------------------------------------------------------
def _net_shapes(model: Any) -> tuple[dict[str, tuple], dict[str, dict[str, Any]], list[str]]:
    """(Input shapes by id, Output info by id, input ids) from a Network or a Graph."""
    from ..graph import Graph
    if isinstance(model, Graph):
        shapes = model.infer_shapes()
        layers = {nid: model.nodes[nid].layer_class().resolve_params(model.nodes[nid].params, nid)
                  for nid in model.output_ids()}
        ins = model.input_ids()
        outs = model.output_ids()
        out_src = {o: model.in_edges(o)[0].src for o in outs}
    else:
        shapes = model.shapes
        layers = {o: model.layers[o].p for o in model.output_ids}
        ins, outs = model.input_ids, model.output_ids
        out_src = {o: model.inputs_of[o][0] for o in outs}
    out_info = {o: {**layers[o], "shape": shapes[o], "src": out_src[o]} for o in outs}
    return {i: shapes[i] for i in ins}, out_info, list(ins)


def fit_to_model(ds: Dataset, model: Any) -> Dataset:
    """``ds`` with ``x`` reshaped to the model's single Input when only the layout differs
    (a flat row of H·W values into (1, H, W), or images into a flat Input); otherwise ``ds``
    unchanged (``check_dataset`` then says what does not fit)."""
    in_shapes, _, ins = _net_shapes(model)
    if len(ins) != 1:
        return ds
    want = in_shapes[ins[0]]
    have = ds.sample_shape
    if have != want and math.prod(have) == math.prod(want) and (len(have) == 1 or len(want) == 1):
        out = ds.with_arrays(x=ds.x.reshape(len(ds), *want))
        if ds.test is not None:
            out.test = fit_to_model(ds.test, model)
        return out
    return ds


def dataset_problems(ds: Dataset, model: Any) -> list[DataError]:
    """Every reason ``ds`` cannot train ``model`` (a Network or a valid Graph), each naming
    the node concerned; empty when it fits. A layout ``fit_to_model`` fixes is no problem."""
    problems: list[DataError] = []
    ds = fit_to_model(ds, model)
    in_shapes, outs, ins = _net_shapes(model)
    if len(ds) == 0:
        return [DataError(f"dataset '{ds.name}' holds no samples")]
    for iid in ins:
        key = "x" if len(ins) == 1 else iid
        if key not in ds.arrays:
            problems.append(DataError(f"Input '{iid}' needs the data field '{key}', which "
                                      f"dataset '{ds.name}' does not have", iid))
            continue
        have, want = ds.arrays[key].shape[1:], in_shapes[iid]
        if tuple(have) != tuple(want):
            problems.append(DataError(
                f"Input '{iid}' expects samples shaped {fmt_shape(want)}, but dataset "
                f"'{ds.name}' has samples shaped {fmt_shape(have)}: change the Input's shape "
                f"to {fmt_shape(have)} or pick another dataset", iid))
    for oid, info in outs.items():
        target, loss, shape = info["target"], info["loss"], tuple(info["shape"])
        if target == "x":
            xin = in_shapes[ins[0]]
            if shape != tuple(xin) and math.prod(shape) != math.prod(xin):
                problems.append(DataError(
                    f"Output '{oid}' reconstructs the input {fmt_shape(xin)} but produces "
                    f"{fmt_shape(shape)}", oid))
            continue
        if target not in ds.arrays:
            have = ", ".join(k for k in ds.arrays if k != "x") or "no targets"
            problems.append(DataError(f"Output '{oid}' learns the field '{target}', which "
                                      f"dataset '{ds.name}' does not have (it has {have})", oid))
            continue
        t = ds.arrays[target]
        if loss in ("cross_entropy", "pixel_cross_entropy"):
            k, lead = (shape[-1], shape[:-1]) if loss == "cross_entropy" else \
                (shape[0], shape[1:])
            if t.dtype.kind == "f" and not np.array_equal(t, np.round(t)):
                problems.append(DataError(
                    f"Output '{oid}' uses cross-entropy, which needs class labels (whole "
                    f"numbers), but '{target}' holds fractional values: use the mse loss for "
                    "regression", oid))
                continue
            if tuple(t.shape[1:]) != lead:
                hint = (": it holds a label per pixel, which an Output learns with the "
                        "pixel_cross_entropy loss on (C, H, W) class scores"
                        if loss == "cross_entropy" and t.ndim == 3 else "")
                problems.append(DataError(
                    f"Output '{oid}' needs one label per "
                    f"{'pixel' if loss == 'pixel_cross_entropy' else 'sample'}"
                    f"{'' if not lead else ' ' + fmt_shape(lead)}"
                    f", but '{target}' is shaped {fmt_shape(t.shape[1:])} per sample{hint}",
                    oid))
                continue
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= k:
                n_data = ds.n_classes if target == "y" and ds.n_classes else hi + 1
                problems.append(DataError(
                    f"Output '{oid}' scores {k} classes (labels 0..{k - 1}), but '{target}' "
                    f"has labels {lo}..{hi}: give the layer before it {max(n_data, hi + 1)} "
                    f"{'filters' if loss == 'pixel_cross_entropy' else 'units'}", info["src"]))
        else:
            if t.dtype.kind not in "fiub":
                problems.append(DataError(f"Output '{oid}': '{target}' must hold numbers", oid))
            elif math.prod(t.shape[1:]) != math.prod(shape):
                problems.append(DataError(
                    f"Output '{oid}' produces {fmt_shape(shape)} per sample, but '{target}' "
                    f"is shaped {fmt_shape(t.shape[1:])} per sample", oid))
            elif loss == "bce" and (t.min() < 0 or t.max() > 1):
                problems.append(DataError(f"Output '{oid}' uses bce, which needs targets in "
                                          f"[0, 1]; '{target}' has {t.min():g}..{t.max():g}",
                                          oid))
    try:
        check_arrays_finite(ds)
    except DataError as exc:
        problems.append(exc)
    return problems


def check_dataset(ds: Dataset, model: Any) -> None:
    """Raise the first of ``dataset_problems`` (DataError naming the node), if any."""
    problems = dataset_problems(ds, model)
    if problems:
        raise problems[0]

"""Training settings: the model file's ``training`` section, validated (see
``engine.training`` for the keys), the learning-rate schedule, and data preparation."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import (
    NORMALIZE,
    Augmenter,
    Dataset,
    Splits,
    check_dataset,
    fit_to_model,
    normalize_splits,
    split_dataset,
)
from .errors import ParamError
from .network import Network
from .optim import Optimizer, make_optimizer

SETTINGS_KEYS = ("dataset", "epochs", "batch_size", "optimizer", "schedule", "seed", "val_split",
                 "test_split", "early_stopping", "restore_best", "clip_norm", "weight_decay",
                 "normalize", "augment", "shuffle", "limit")


def _int(d: dict, key: str, default: int, lo: int, hi: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or not lo <= v <= hi:
        raise ParamError(f"training.{key} must be a whole number from {lo} to {hi}, got {v!r}")
    return int(v)


def _float(d: dict, key: str, default: float, lo: float, hi: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
            or not lo <= v <= hi:
        raise ParamError(f"training.{key} must be a number from {lo:g} to {hi:g}, got {v!r}")
    return float(v)


@dataclass
class Schedule:
    """Learning-rate factor per step: none, step (×gamma every ``step_size`` epochs) or
    cosine (from 1 down to min_lr / base lr over the whole run)."""

    kind: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    min_lr: float = 0.0

    @classmethod
    def from_config(cls, conf: Any) -> Schedule:
        if conf is None or conf == "none":
            return cls()
        if isinstance(conf, str):
            conf = {"type": conf}
        if not isinstance(conf, dict):
            raise ParamError(f"training.schedule must be 'none', 'step', 'cosine' or an object, "
                             f"got {conf!r}")
        conf = dict(conf)
        kind = conf.pop("type", "none")
        if kind not in ("none", "step", "cosine"):
            raise ParamError(f"training.schedule type must be none, step or cosine, got {kind!r}")
        known = {"none": set(), "step": {"step_size", "gamma"}, "cosine": {"min_lr"}}[kind]
        unknown = set(conf) - known
        if unknown:
            raise ParamError(f"training.schedule ({kind}): unknown setting(s) "
                             f"{', '.join(sorted(unknown))}")
        return cls(kind, _int(conf, "step_size", 10, 1, 1_000_000),
                   _float(conf, "gamma", 0.1, 0.0, 1.0), _float(conf, "min_lr", 0.0, 0.0, 1e3))

    def config(self) -> dict[str, Any] | str:
        if self.kind == "step":
            return {"type": "step", "step_size": self.step_size, "gamma": self.gamma}
        if self.kind == "cosine":
            return {"type": "cosine", "min_lr": self.min_lr}
        return "none"

    def lr(self, base: float, epoch: int, step: int, total_steps: int) -> float:
        """Learning rate at 0-based ``epoch`` and global 0-based ``step``."""
        if self.kind == "step":
            return base * self.gamma ** (epoch // self.step_size)
        if self.kind == "cosine":
            t = min(1.0, step / max(1, total_steps))
            lo = min(self.min_lr, base)
            return lo + (base - lo) * 0.5 * (1.0 + math.cos(math.pi * t))
        return base


@dataclass
class TrainSettings:
    """Validated training settings (see the module docstring for each key)."""

    dataset: Any = None
    epochs: int = 10
    batch_size: int = 32
    optimizer: dict[str, Any] = field(default_factory=lambda: {"type": "sgd", "lr": 0.01})
    schedule: Schedule = field(default_factory=Schedule)
    seed: int = 0
    val_split: float = 0.1
    test_split: float = 0.1
    early_stopping: int = 0
    restore_best: bool = True
    clip_norm: float = 0.0
    weight_decay: float = 0.0
    normalize: str = "none"
    augment: dict[str, float] | None = None
    shuffle: bool = True
    limit: int = 0

    @classmethod
    def from_dict(cls, section: dict[str, Any] | None = None, **overrides: Any) -> TrainSettings:
        """From a ``training`` section; ``overrides`` that are not None win (CLI flags)."""
        d = dict(section or {})
        d.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(d) - set(SETTINGS_KEYS))
        if unknown:
            raise ParamError(f"unknown training setting(s) {', '.join(unknown)} "
                             f"(known: {', '.join(SETTINGS_KEYS)})")
        bs = d.get("batch_size", 32)
        if isinstance(bs, str) and bs.lower() in ("all", "full"):
            bs = 0
        d["batch_size"] = bs
        opt = d.get("optimizer", {"type": "sgd", "lr": 0.01})
        if isinstance(opt, str):
            opt = {"type": opt}
        if not isinstance(opt, dict):
            raise ParamError(f"training.optimizer must be an object, got {opt!r}")
        make_optimizer(opt)
        norm = d.get("normalize", "none")
        if norm not in NORMALIZE:
            raise ParamError(f"training.normalize must be one of {', '.join(NORMALIZE)}, "
                             f"got {norm!r}")
        aug = d.get("augment")
        Augmenter.from_config(aug)
        for key in ("restore_best", "shuffle"):
            if not isinstance(d.get(key, True), bool):
                raise ParamError(f"training.{key} must be true or false")
        s = cls(
            dataset=d.get("dataset"),
            epochs=_int(d, "epochs", 10, 1, 1_000_000),
            batch_size=_int(d, "batch_size", 32, 0, 10_000_000),
            optimizer=dict(opt),
            schedule=Schedule.from_config(d.get("schedule")),
            seed=_int(d, "seed", 0, 0, 2**32 - 1),
            val_split=_float(d, "val_split", 0.1, 0.0, 0.9),
            test_split=_float(d, "test_split", 0.1, 0.0, 0.9),
            early_stopping=_int(d, "early_stopping", 0, 0, 1_000_000),
            restore_best=d.get("restore_best", True),
            clip_norm=_float(d, "clip_norm", 0.0, 0.0, 1e9),
            weight_decay=_float(d, "weight_decay", 0.0, 0.0, 1e3),
            normalize=norm,
            augment=dict(aug) if aug else None,
            shuffle=d.get("shuffle", True),
            limit=_int(d, "limit", 0, 0, 1_000_000_000),
        )
        if s.val_split + s.test_split >= 1:
            raise ParamError("training.val_split + training.test_split must be below 1")
        return s

    def to_dict(self) -> dict[str, Any]:
        """The ``training`` section these settings came from (defaults included)."""
        out = {k: getattr(self, k) for k in SETTINGS_KEYS}
        out["schedule"] = self.schedule.config()
        out["optimizer"] = dict(self.optimizer)
        if out["dataset"] is None:
            del out["dataset"]
        if not out["augment"]:
            del out["augment"]
        return out

    @property
    def lr(self) -> float:
        return float(make_optimizer(self.optimizer).lr)

    def make_optimizer(self) -> Optimizer:
        return make_optimizer(self.optimizer, weight_decay=self.weight_decay or None,
                              clip_norm=self.clip_norm or None)


# Settings that train a small model of each kind of data well (README: "Training defaults").
# The engine's own defaults (SGD at 0.01 for 10 epochs) stay for files that rely on them,
# but stall a small MLP on the spirals.
SUGGESTED_TRAINING: dict[str, dict[str, Any]] = {
    "points": {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 30},
    "curve": {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 30},
    "image": {"optimizer": {"type": "adam", "lr": 0.003}, "epochs": 10},
    "sequence": {"optimizer": {"type": "adam", "lr": 0.003}, "epochs": 20},
    "": {"optimizer": {"type": "adam", "lr": 0.003}, "epochs": 10},
}
KIND_NAMES = {"points": "2-D points", "curve": "a 1-D curve", "image": "images",
              "sequence": "sequences", "vector": "vectors"}


def suggested_training(kind: str) -> dict[str, Any]:
    """``optimizer`` and ``epochs`` suited to data of ``kind`` (a dataset's
    ``meta["kind"]``: points, curve, image, sequence, vector; anything else gets the
    general choice), as a ``training`` section fragment."""
    return copy.deepcopy(SUGGESTED_TRAINING.get(kind, SUGGESTED_TRAINING[""]))


def _random_subset(ds: Dataset, limit: int, seed: int) -> Dataset:
    """At most ``limit`` samples drawn at random (files are often sorted by class)."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 44])
    out = ds.subset(np.sort(rng.permutation(len(ds))[:limit])) if len(ds) > limit else ds
    if ds.test is not None and out is not ds:
        out.test = _random_subset(ds.test, limit, seed)
    return out


def prepare_data(ds: Dataset, net: Network, settings: TrainSettings) -> Splits:
    """Fit ``ds`` to the net's Input layout, cut train / val / test, normalise with training
    statistics, and check every part against the net (DataError before any training)."""
    ds = fit_to_model(ds, net)
    if settings.limit:
        ds = _random_subset(ds, settings.limit, settings.seed)
    check_dataset(ds, net)
    if ds.test is not None:
        check_dataset(ds.test, net)
    splits = split_dataset(ds, settings.val_split, settings.test_split, settings.seed)
    return normalize_splits(splits, settings.normalize)

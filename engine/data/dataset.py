"""Dataset: named arrays sharing their first axis (samples), plus what they mean.

``x`` holds the inputs ``(N, *sample_shape)`` (float32; images channels-first ``(N, C, H, W)``),
``y`` the labels (int64 class indices) or regression targets (float32), and a multi-task
dataset any further named targets (e.g. ``size``). ``class_names[k]`` names class ``k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import DataError
from ..registry import fmt_shape
from ..text import plural

TASKS = ("classification", "regression", "unlabelled")


def as_label_array(y: np.ndarray, field: str = "y") -> np.ndarray:
    """Integer-valued labels as int64; other numbers as float32."""
    y = np.asarray(y)
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        with np.errstate(over="ignore"):  # beyond float32: inf, which training refuses
            return y.astype(np.float32)
    raise DataError(f"'{field}' must hold numbers, got {y.dtype}")


class Dataset:
    """Named arrays with the same number of samples, and their metadata.

    ``task`` is "classification" (``y`` int64 class indices), "regression" (``y`` float32)
    or "unlabelled" (no ``y``). ``test`` is a held-out part shipped with the data (e.g.
    MNIST's t10k files), used as the test split instead of carving one out.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], name: str = "data",
                 class_names: list[str] | None = None, task: str | None = None,
                 meta: dict[str, Any] | None = None, test: Dataset | None = None) -> None:
        if "x" not in arrays:
            raise DataError(f"dataset '{name}' has no inputs 'x'")
        self.arrays: dict[str, np.ndarray] = {}
        n = None
        for key, arr in arrays.items():
            a = np.asarray(arr)
            if a.ndim == 0:
                raise DataError(f"dataset '{name}': '{key}' is a single number, not one value "
                                "per sample")
            if a.dtype.kind not in "biuf":
                raise DataError(f"dataset '{name}': '{key}' must hold numbers, got {a.dtype}")
            if n is None:
                n = a.shape[0]
            elif a.shape[0] != n:
                raise DataError(f"dataset '{name}': '{key}' has {a.shape[0]} samples, "
                                f"'x' has {n}")
            self.arrays[key] = a
        self.name = name
        self.class_names = list(class_names) if class_names is not None else None
        if task is None:
            y = self.arrays.get("y")
            task = ("unlabelled" if y is None else
                    "classification" if y.dtype.kind in "iub" else "regression")
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        self.task = task
        self.meta = dict(meta or {})
        self.test = test

    # ----- access ------------------------------------------------------------------------
    @property
    def x(self) -> np.ndarray:
        return self.arrays["x"]

    @property
    def y(self) -> np.ndarray | None:
        return self.arrays.get("y")

    @property
    def fields(self) -> list[str]:
        return list(self.arrays)

    @property
    def targets(self) -> dict[str, np.ndarray]:
        """Every array but ``x``."""
        return {k: v for k, v in self.arrays.items() if k != "x"}

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} samples, x {fmt_shape(self.sample_shape)})"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        """Channels-first images ``(C, H, W)``."""
        return self.x.ndim == 4

    @property
    def n_classes(self) -> int | None:
        if self.task != "classification":
            return None
        if self.class_names is not None:
            return len(self.class_names)
        y = self.y
        return int(y.max()) + 1 if y is not None and y.size else 0

    def class_counts(self) -> np.ndarray:
        """Samples per class (length ``n_classes``); empty when not a classification set."""
        if self.task != "classification" or self.y is None:
            return np.zeros(0, np.int64)
        return np.bincount(self.y.reshape(-1), minlength=self.n_classes or 0)

    def class_name(self, k: int) -> str:
        if self.class_names is not None and 0 <= k < len(self.class_names):
            return self.class_names[k]
        return str(k)

    # ----- derived datasets --------------------------------------------------------------
    def _like(self, arrays: dict[str, np.ndarray], name: str | None = None) -> Dataset:
        return Dataset(arrays, name or self.name, self.class_names, self.task, self.meta)

    def subset(self, index: np.ndarray | slice | list[int]) -> Dataset:
        """The samples at ``index`` (arrays copied when fancy-indexed)."""
        return self._like({k: v[index] for k, v in self.arrays.items()})

    def take(self, n: int) -> Dataset:
        """The first ``n`` samples (and the first ``n`` of ``test``)."""
        out = self.subset(slice(0, max(0, int(n))))
        if self.test is not None:
            out.test = self.test.take(n)
        return out

    def with_arrays(self, **arrays: np.ndarray) -> Dataset:
        """The same dataset with some arrays replaced or added."""
        out = self._like({**self.arrays, **arrays})
        out.test = self.test
        return out

    def describe(self) -> str:
        """One line: samples, input shape, task and classes."""
        parts = [f"{self.name}: {plural(len(self), 'sample')}",
                 f"x {fmt_shape(self.sample_shape)}"]
        if self.task == "classification":
            parts.append(plural(self.n_classes or 0, "class"))
        elif self.task == "regression" and self.y is not None:
            parts.append(f"regression y {fmt_shape(self.y.shape[1:])}")
        extra = [k for k in self.arrays if k not in ("x", "y")]
        if extra:
            parts.append("targets " + ", ".join(extra))
        if self.test is not None:
            parts.append(f"+ {plural(len(self.test), 'test sample')}")
        return ", ".join(parts)


def check_arrays_finite(ds: Dataset) -> None:
    """Raise DataError when any float array holds NaN or Inf (naming the first sample)."""
    for key, a in ds.arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))
            raise DataError(f"dataset '{ds.name}': '{key}' holds NaN or Inf values "
                            f"(first at sample {int(bad[0])}); clean the data first")

"""Weight initialisers: he, xavier, normal, uniform, zeros. Seeded generators, float32 out."""

from __future__ import annotations

import math

import numpy as np

INITS = ("he", "xavier", "normal", "uniform", "zeros")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) for a PyTorch-layout weight: (out, in) or (out, in, kh, kw)."""
    if len(shape) < 2:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def initialize(kind: str, shape: tuple[int, ...], rng: np.random.Generator,
               fan: tuple[int, int] | None = None) -> np.ndarray:
    """A fresh float32 array of ``shape``.

    he: N(0, 2/fan_in); xavier: U(±sqrt(6/(fan_in+fan_out))); normal: N(0, 0.05²);
    uniform: U(±0.05); zeros.
    """
    fan_in, fan_out = fan if fan is not None else fans(shape)
    if kind == "he":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / max(1, fan_in))
    elif kind == "xavier":
        a = math.sqrt(6.0 / max(1, fan_in + fan_out))
        w = rng.uniform(-a, a, shape)
    elif kind == "normal":
        w = rng.standard_normal(shape) * 0.05
    elif kind == "uniform":
        w = rng.uniform(-0.05, 0.05, shape)
    elif kind == "zeros":
        w = np.zeros(shape)
    else:
        raise ValueError(f"unknown init {kind!r}; choose one of {', '.join(INITS)}")
    return np.ascontiguousarray(w, dtype=np.float32)

"""Weight initialisers: he, xavier, normal, uniform, zeros, identity. Seeded generators,
float32 out."""

from __future__ import annotations

import math

import numpy as np

INITS = ("he", "xavier", "normal", "uniform", "zeros", "identity")


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
    uniform: U(±0.05); zeros; identity: the layer passes its input through unchanged, a
    square (n, n) matrix is the unit matrix and an (n, n, kh, kw) kernel (odd kh, kw) a 1 at
    the centre of channel i's own filter (the layer checks the shape fits: ``identity_problem``).
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
    elif kind == "identity":
        problem = identity_problem(shape)
        if problem:
            raise ValueError(f"init 'identity' {problem}")
        w = np.zeros(shape)
        centre = tuple(k // 2 for k in shape[2:])
        for i in range(shape[0]):
            w[(i, i, *centre)] = 1.0
    else:
        raise ValueError(f"unknown init {kind!r}; choose one of {', '.join(INITS)}")
    return np.ascontiguousarray(w, dtype=np.float32)


def identity_problem(shape: tuple[int, ...]) -> str:
    """Why a weight of ``shape`` (PyTorch layout) cannot start as the identity, or ""."""
    if len(shape) < 2 or shape[0] != shape[1]:
        outs, ins = (shape[0], shape[1]) if len(shape) >= 2 else (shape[0], "?")
        return f"needs as many outputs as inputs (has {outs} outputs for {ins} inputs)"
    if any(k % 2 == 0 for k in shape[2:]):
        return "needs an odd kernel size (the centre tap passes the input through)"
    return ""

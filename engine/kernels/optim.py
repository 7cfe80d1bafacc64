"""Optimizer updates over one flat parameter vector (M,), each in one parallel pass.

The network keeps all its trainable parameters in one flat array and their gradients in
another (``Network.flat_params`` / ``flat_grads``), so an optimizer step is one kernel call
instead of a few numpy passes per parameter. Scalars are passed in the arrays' dtype: every
operation then rounds as the per-parameter numpy code in ``engine.optim`` does.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit, prange


@njit(fastmath={"reassoc"})
def sum_squares(g: np.ndarray) -> float:
    """Σ g² over a flat array (M,), accumulated in float64 (reassociated, so vectorised; NaN
    and Inf propagate)."""
    s = 0.0
    for i in prange(g.shape[0]):
        v = np.float64(g[i])
        s += v * v
    return s


@njit
def sgd_momentum_update(p: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float,
                        momentum: float, nesterov: bool) -> None:
    """v = momentum·v + g, then p -= lr·v (Nesterov: p -= lr·(g + momentum·v)); flat (M,)."""
    for i in prange(p.shape[0]):
        vi = v[i] * momentum
        vi = vi + g[i]
        v[i] = vi
        if nesterov:
            p[i] = p[i] - lr * (g[i] + momentum * vi)
        else:
            p[i] = p[i] - lr * vi


@njit
def sgd_update(p: np.ndarray, g: np.ndarray, lr: float) -> None:
    """p -= lr·g; flat (M,)."""
    for i in prange(p.shape[0]):
        p[i] = p[i] - lr * g[i]


@njit
def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, beta1: float,
                one_minus_beta1: float, beta2: float, one_minus_beta2: float, step: float,
                bc2: float, eps: float, decay: float) -> None:
    """Adam on flat (M,) arrays: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², then
    p = p·decay − step·m / (√(v / bc2) + eps) with step = lr / bc1 (``decay`` = 1 − lr·wd for
    AdamW, else 1)."""
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = m[i] * beta1
        mi = mi + one_minus_beta1 * gi
        m[i] = mi
        vi = v[i] * beta2
        vi = vi + one_minus_beta2 * (gi * gi)
        v[i] = vi
        pi = p[i]
        if decay != 1:
            pi = pi * decay
        p[i] = pi - step * mi / (math.sqrt(vi / bc2) + eps)

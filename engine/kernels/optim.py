"""Optimizer updates over one flat parameter vector (M,), each in one parallel pass.

The network keeps all its trainable parameters in one flat array and their gradients in
another (``Network.flat_params`` / ``flat_grads``), so an optimizer step is one kernel call
instead of a few numpy passes per parameter. Scalars are passed in the arrays' dtype: every
operation then rounds as the per-parameter numpy code in ``engine.optim`` does.

The update kernels can also return Σ g² (``with_norm``), summed block by block
(``NORM_BLOCK`` numbers, in float64) while each block of the gradient is in cache and the
blocks' sums added in order: the optimizer then needs no pass (and no parallel region) of
its own for the gradient norm, and the sum does not depend on the thread count.
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


NORM_BLOCK = 8192  # numbers per block of the update kernels (and of their Σ g²)


@njit(parallel=False, fastmath={"reassoc"})
def _block_squares(g: np.ndarray, a: int, b: int) -> float:
    """Σ g[a:b]² in float64 (reassociated, so vectorised)."""
    s = 0.0
    for i in range(a, b):
        v = np.float64(g[i])
        s += v * v
    return s


@njit(parallel=False)
def _add_in_order(parts: np.ndarray) -> float:
    s = 0.0
    for k in range(parts.shape[0]):
        s += parts[k]
    return s


@njit
def sgd_momentum_update(p: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float,
                        momentum: float, nesterov: bool, with_norm: bool) -> float:
    """v = momentum·v + g, then p -= lr·v (Nesterov: p -= lr·(g + momentum·v)); flat (M,).
    Returns Σ g² when ``with_norm`` (see the module note), else 0."""
    m_n = p.shape[0]
    nb = (m_n + NORM_BLOCK - 1) // NORM_BLOCK
    parts = np.zeros(nb, np.float64)
    for blk in prange(nb):
        a = blk * NORM_BLOCK
        b = min(m_n, a + NORM_BLOCK)
        if with_norm:
            parts[blk] = _block_squares(g, a, b)
        for i in range(a, b):
            vi = v[i] * momentum
            vi = vi + g[i]
            v[i] = vi
            if nesterov:
                p[i] = p[i] - lr * (g[i] + momentum * vi)
            else:
                p[i] = p[i] - lr * vi
    return _add_in_order(parts)


@njit
def sgd_update(p: np.ndarray, g: np.ndarray, lr: float, with_norm: bool) -> float:
    """p -= lr·g; flat (M,). Returns Σ g² when ``with_norm``, else 0."""
    m_n = p.shape[0]
    nb = (m_n + NORM_BLOCK - 1) // NORM_BLOCK
    parts = np.zeros(nb, np.float64)
    for blk in prange(nb):
        a = blk * NORM_BLOCK
        b = min(m_n, a + NORM_BLOCK)
        if with_norm:
            parts[blk] = _block_squares(g, a, b)
        for i in range(a, b):
            p[i] = p[i] - lr * g[i]
    return _add_in_order(parts)


@njit
def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, beta1: float,
                one_minus_beta1: float, beta2: float, one_minus_beta2: float, step: float,
                bc2: float, eps: float, decay: float, with_norm: bool) -> float:
    """Adam on flat (M,) arrays: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², then
    p = p·decay − step·m / (√(v / bc2) + eps) with step = lr / bc1 (``decay`` = 1 − lr·wd for
    AdamW, else 1). Returns Σ g² when ``with_norm``, else 0."""
    m_n = p.shape[0]
    nb = (m_n + NORM_BLOCK - 1) // NORM_BLOCK
    parts = np.zeros(nb, np.float64)
    for blk in prange(nb):
        a = blk * NORM_BLOCK
        b = min(m_n, a + NORM_BLOCK)
        if with_norm:
            parts[blk] = _block_squares(g, a, b)
        for i in range(a, b):
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
    return _add_in_order(parts)

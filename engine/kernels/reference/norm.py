"""Plain-numpy references for ``engine.kernels.norm`` and ``engine.kernels.normact``; arrays
are channel views (M, C, S)."""

from __future__ import annotations

import numpy as np


def batchnorm_train_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, batch mean (C,), biased batch variance (C,))."""
    mean = x.mean(axis=(0, 2))
    var = x.var(axis=(0, 2))
    xhat = (x - mean[None, :, None]) / np.sqrt(var[None, :, None] + eps)
    return xhat * weight[None, :, None] + bias[None, :, None], mean, var


def batchnorm_train_backward(x: np.ndarray, dy: np.ndarray, weight: np.ndarray, eps: float
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) through the batch statistics, by the chain rule step by step."""
    n = x.shape[0] * x.shape[2]
    mean = x.mean(axis=(0, 2), keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=(0, 2), keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    xhat = xc * inv
    dweight = (dy * xhat).sum(axis=(0, 2))
    dbias = dy.sum(axis=(0, 2))
    dxhat = dy * weight[None, :, None]
    dvar = (dxhat * xc).sum(axis=(0, 2), keepdims=True) * -0.5 * inv ** 3
    dmean = -(dxhat * inv).sum(axis=(0, 2), keepdims=True) \
        - 2 * dvar * xc.sum(axis=(0, 2), keepdims=True) / n
    dx = dxhat * inv + dvar * 2 * xc / n + dmean / n
    return dx, dweight, dbias


def batchnorm_eval_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray,
                           weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    c = (None, slice(None), None)
    return (x - mean[c]) / np.sqrt(var[c] + eps) * weight[c] + bias[c]


def batchnorm_eval_backward(x: np.ndarray, dy: np.ndarray, mean: np.ndarray, var: np.ndarray,
                            weight: np.ndarray, eps: float
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) with fixed statistics."""
    c = (None, slice(None), None)
    inv = 1 / np.sqrt(var[c] + eps)
    return dy * weight[c] * inv, (dy * (x - mean[c]) * inv).sum(axis=(0, 2)), dy.sum(axis=(0, 2))


def dropout_apply(x: np.ndarray, u: np.ndarray, rate: float) -> np.ndarray:
    """Inverted dropout: keep where u >= rate, scaled by 1 / (1 - rate)."""
    return np.where(u >= rate, x / (1 - rate), 0)

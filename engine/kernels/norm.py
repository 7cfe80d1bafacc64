"""Batch normalisation and dropout kernels.

Batch norm works on a channel view (M, C, S): M samples (or samples × time steps), C channels
(or features), S spatial positions (1 for vectors); statistics are per channel over M and S.
Per-channel statistics are float64; data arrays are float32 or float64.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit, prange


@njit
def batchnorm_train_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float,
                            y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> None:
    """y = (x - mean) / sqrt(var + eps) * weight + bias with the batch's mean and biased
    variance per channel, which are written to ``mean`` and ``var`` (C,)."""
    m, c, s = x.shape
    count = m * s
    for j in prange(c):
        acc = np.float64(0.0)
        for i in range(m):
            for k in range(s):
                acc += x[i, j, k]
        mu = acc / count
        acc2 = np.float64(0.0)
        for i in range(m):
            for k in range(s):
                d = x[i, j, k] - mu
                acc2 += d * d
        v = acc2 / count
        mean[j] = mu
        var[j] = v
        scale = weight[j] / math.sqrt(v + eps)
        b = bias[j]
        for i in range(m):
            for k in range(s):
                y[i, j, k] = (x[i, j, k] - mu) * scale + b


@njit
def batchnorm_train_backward(x: np.ndarray, dy: np.ndarray, mean: np.ndarray,
                             invstd: np.ndarray, weight: np.ndarray, dx: np.ndarray,
                             dweight: np.ndarray, dbias: np.ndarray) -> None:
    """Backward through the batch statistics: fills dx (M, C, S), dweight and dbias (C,)."""
    m, c, s = x.shape
    count = m * s
    for j in prange(c):
        mu = mean[j]
        inv = invstd[j]
        sg = np.float64(0.0)
        sgx = np.float64(0.0)
        for i in range(m):
            for k in range(s):
                g = dy[i, j, k]
                sg += g
                sgx += g * (x[i, j, k] - mu) * inv
        dbias[j] = sg
        dweight[j] = sgx
        scale = weight[j] * inv / count
        for i in range(m):
            for k in range(s):
                xh = (x[i, j, k] - mu) * inv
                dx[i, j, k] = scale * (count * dy[i, j, k] - sg - xh * sgx)


@njit
def batchnorm_eval_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray,
                           weight: np.ndarray, bias: np.ndarray, eps: float,
                           y: np.ndarray) -> None:
    """y = (x - mean) / sqrt(var + eps) * weight + bias with fixed (running) statistics."""
    m, c, s = x.shape
    for q in prange(m * c):
        i = q // c
        j = q % c
        mu = mean[j]
        scale = weight[j] / math.sqrt(var[j] + eps)
        b = bias[j]
        for k in range(s):
            y[i, j, k] = (x[i, j, k] - mu) * scale + b


@njit
def batchnorm_eval_backward(x: np.ndarray, dy: np.ndarray, mean: np.ndarray, var: np.ndarray,
                            weight: np.ndarray, eps: float, dx: np.ndarray,
                            dweight: np.ndarray, dbias: np.ndarray) -> None:
    """Backward with fixed statistics: fills dx (M, C, S), dweight and dbias (C,)."""
    m, c, s = x.shape
    for j in prange(c):
        mu = mean[j]
        inv = 1.0 / math.sqrt(var[j] + eps)
        scale = weight[j] * inv
        sg = np.float64(0.0)
        sgx = np.float64(0.0)
        for i in range(m):
            for k in range(s):
                g = dy[i, j, k]
                sg += g
                sgx += g * (x[i, j, k] - mu) * inv
                dx[i, j, k] = g * scale
        dbias[j] = sg
        dweight[j] = sgx


@njit
def dropout_apply(x: np.ndarray, u: np.ndarray, rate: float, y: np.ndarray) -> None:
    """Inverted dropout on flat arrays: y = x / (1 - rate) where u >= rate, else 0.

    ``u`` holds the uniform [0, 1) draws; the same call with the gradient is the backward."""
    scale = 1.0 / (1.0 - rate)
    for i in prange(x.shape[0]):
        y[i] = x[i] * scale if u[i] >= rate else 0.0

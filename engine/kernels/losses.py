"""Fused loss kernels: softmax + cross-entropy and sigmoid + binary cross-entropy.

Both return the *summed* loss and write the per-element gradient of that sum into ``grad``;
the caller divides by the count for a mean.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit, prange


@njit
def softmax_xent(logits: np.ndarray, labels: np.ndarray, grad: np.ndarray) -> float:
    """logits (N, K), labels (N,) int -> sum_i -log softmax(logits_i)[labels_i]; grad (N, K)."""
    n, k = logits.shape
    losses = np.empty(n, dtype=np.float64)
    for i in prange(n):
        row = logits[i]
        m = row[0]
        for j in range(1, k):
            if row[j] > m:
                m = row[j]
        s = 0.0
        for j in range(k):
            e = math.exp(row[j] - m)
            grad[i, j] = e
            s += e
        inv = 1.0 / s
        for j in range(k):
            grad[i, j] *= inv
        lab = labels[i]
        grad[i, lab] -= 1.0
        losses[i] = math.log(s) + m - row[lab]
    return losses.sum()


@njit
def sigmoid_bce(logits: np.ndarray, targets: np.ndarray, grad: np.ndarray) -> float:
    """Elementwise BCE on logits (stable form); logits, targets, grad flat (M,)."""
    m = logits.shape[0]
    losses = np.empty(m, dtype=np.float64)
    for i in prange(m):
        z = logits[i]
        t = targets[i]
        if z >= 0:
            e = math.exp(-z)
            p = 1.0 / (1.0 + e)
            losses[i] = z - z * t + math.log1p(e)
        else:
            e = math.exp(z)
            p = e / (1.0 + e)
            losses[i] = -z * t + math.log1p(e)
        grad[i] = p - t
    return losses.sum()

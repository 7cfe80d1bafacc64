"""Fused loss kernels: softmax + cross-entropy and sigmoid + binary cross-entropy.

Both return the *summed* loss and the number of correct predictions, and write the gradient of
``scale`` × that sum into ``grad`` (``scale`` = 1 / count gives the gradient of the mean).
Each has a serial twin for small batches, where starting Numba's threads costs more than the
work (``SERIAL_BELOW`` elements).
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit, prange

SERIAL_BELOW = 16_384  # elements (N·K): below this one thread is faster than waking the pool


def _softmax_xent(logits: np.ndarray, labels: np.ndarray, grad: np.ndarray,
                  scale: float) -> tuple[float, int]:
    """logits (N, K), labels (N,) int -> (Σ_i −log softmax(logits_i)[labels_i], number of rows
    whose largest logit is the label); grad (N, K) = scale · d(sum)/d(logits)."""
    n, k = logits.shape
    losses = np.empty(n, dtype=np.float64)
    hits = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        row = logits[i]
        g = grad[i]
        m = row[0]
        best = 0
        for j in range(1, k):
            if row[j] > m:
                m = row[j]
                best = j
        s = 0.0
        for j in range(k):
            e = math.exp(row[j] - m)
            g[j] = e
            s += e
        inv = scale / s
        for j in range(k):
            g[j] *= inv
        lab = labels[i]
        g[lab] -= scale
        losses[i] = math.log(s) + m - row[lab]
        hits[i] = 1 if best == lab else 0
    return losses.sum(), hits.sum()


def _sigmoid_bce(logits: np.ndarray, targets: np.ndarray, grad: np.ndarray,
                 scale: float) -> tuple[float, int]:
    """Elementwise BCE on logits (stable form), all flat (M,) -> (summed loss, elements on the
    right side of 0.5); grad = scale · (sigmoid(logits) − targets)."""
    m = logits.shape[0]
    losses = np.empty(m, dtype=np.float64)
    hits = np.zeros(m, dtype=np.int64)
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
        grad[i] = scale * (p - t)
        hits[i] = 1 if (z > 0) == (t > 0.5) else 0
    return losses.sum(), hits.sum()


softmax_xent_parallel = njit(_softmax_xent)
softmax_xent_serial = njit(parallel=False)(_softmax_xent)
sigmoid_bce_parallel = njit(_sigmoid_bce)
sigmoid_bce_serial = njit(parallel=False)(_sigmoid_bce)


def softmax_xent(logits: np.ndarray, labels: np.ndarray, grad: np.ndarray,
                 scale: float = 1.0) -> tuple[float, int]:
    """See ``_softmax_xent``; picks the serial kernel for small inputs."""
    kern = softmax_xent_serial if logits.size < SERIAL_BELOW else softmax_xent_parallel
    return kern(logits, labels, grad, scale)


def sigmoid_bce(logits: np.ndarray, targets: np.ndarray, grad: np.ndarray,
                scale: float = 1.0) -> tuple[float, int]:
    """See ``_sigmoid_bce``; picks the serial kernel for small inputs."""
    kern = sigmoid_bce_serial if logits.size < SERIAL_BELOW else sigmoid_bce_parallel
    return kern(logits, targets, grad, scale)

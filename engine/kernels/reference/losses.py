"""Plain-numpy reference kernels: slow, obvious, and what the tests hold the Numba kernels to."""

from __future__ import annotations

import numpy as np


def softmax_xent(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed softmax cross-entropy and its gradient, as ``kernels.losses.softmax_xent``."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = logits.shape[0]
    loss = -np.log(p[np.arange(n), labels]).sum()
    g = p.copy()
    g[np.arange(n), labels] -= 1
    return float(loss), g


def sigmoid_bce(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    p = 1 / (1 + np.exp(-logits))
    loss = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum()
    return float(loss), p - targets

"""The dropout kernel (batch normalisation: ``kernels.normact``)."""

from __future__ import annotations

import numpy as np

from .jit import njit, prange


@njit
def dropout_apply(x: np.ndarray, u: np.ndarray, rate: float, y: np.ndarray) -> None:
    """Inverted dropout on flat arrays: y = x / (1 - rate) where u >= rate, else 0.

    ``u`` holds the uniform [0, 1) draws; the same call with the gradient is the backward."""
    scale = 1.0 / (1.0 - rate)
    for i in prange(x.shape[0]):
        y[i] = x[i] * scale if u[i] >= rate else 0.0

"""Plain-numpy references for ``engine.kernels.activation``: each returns what the kernel
writes (outputs instead of out-arguments). Any shape for the elementwise ones."""

from __future__ import annotations

import math

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def relu_forward(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def relu_backward(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return np.where(x > 0, dy, 0)


def leaky_relu_forward(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x > 0, x, alpha * x)


def leaky_relu_backward(x: np.ndarray, alpha: float, dy: np.ndarray) -> np.ndarray:
    return np.where(x > 0, dy, alpha * dy)


def prelu_forward(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """x (M, C, S), alpha (C,)."""
    a = alpha[None, :, None]
    return np.where(x > 0, x, a * x)


def prelu_backward(x: np.ndarray, alpha: np.ndarray, dy: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(dx (M, C, S), d alpha (C,))."""
    a = alpha[None, :, None]
    dx = np.where(x > 0, dy, a * dy)
    dalpha = np.where(x > 0, 0, x * dy).sum(axis=(0, 2))
    return dx, dalpha


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    return _sigmoid(x)


def sigmoid_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * y * (1 - y)


def tanh_forward(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * (1 - y * y)


def hard_sigmoid_forward(x: np.ndarray, alpha: float = 0.25, beta: float = 0.5) -> np.ndarray:
    return np.clip(alpha * x + beta, 0, 1)


def hard_sigmoid_backward(x: np.ndarray, alpha: float, beta: float,
                          dy: np.ndarray) -> np.ndarray:
    v = alpha * x + beta
    return np.where((v > 0) & (v < 1), alpha * dy, 0)


def hard_swish_forward(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x / 6 + 0.5, 0, 1)


def hard_swish_backward(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return np.where(x <= -3, 0, np.where(x >= 3, dy, dy * (2 * x + 3) / 6))


def hard_tanh_forward(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(x, lo, hi)


def hard_tanh_backward(x: np.ndarray, lo: float, hi: float, dy: np.ndarray) -> np.ndarray:
    return np.where((x > lo) & (x < hi), dy, 0)


def swish_forward(x: np.ndarray, beta: float) -> np.ndarray:
    return x * _sigmoid(beta * x)


def swish_backward(x: np.ndarray, beta: float, dy: np.ndarray) -> np.ndarray:
    s = _sigmoid(beta * x)
    return dy * (s + beta * x * s * (1 - s))


def _erf(z: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(z)


def gelu_forward(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x · Φ(x)."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_backward(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return dy * (0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * pdf)


def softmax_forward(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

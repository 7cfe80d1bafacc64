"""Plain-numpy references for ``engine.kernels.fused``: the unfused chain, step by step, from
the conv, activation and pool references. The tests' oracle.

Shapes as the kernels: x (N, C, H, W), weight (O, C, KH, KW), ``pads`` (top, bottom, left,
right). Returns outputs instead of writing out-arguments; ``None`` for a step not taken.
"""

from __future__ import annotations

import numpy as np

from . import activation as ra
from . import conv as rc
from . import pool as rp

POOL = ((2, 2), (2, 2), (0, 0, 0, 0))


def conv_block_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                       stride: tuple[int, int], pads: tuple[int, int, int, int], relu: bool,
                       pool: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(conv output, ReLU output or None, 2×2 max-pooled output or None)."""
    yconv = rc.conv2d_forward(x, weight, bias, stride, pads)
    yrelu = ra.relu_forward(yconv) if relu else None
    ypool = rp.maxpool2d_forward(yrelu if relu else yconv, *POOL) if pool else None
    return yconv, yrelu, ypool


def conv_block_backward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                        dout: np.ndarray, stride: tuple[int, int],
                        pads: tuple[int, int, int, int], relu: bool, pool: bool
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) of sum(last output * dout) through conv, ReLU and pool."""
    yconv, yrelu, _ = conv_block_forward(x, weight, bias, stride, pads, relu, pool)
    d = dout
    if pool:
        d = rp.maxpool2d_backward(yrelu if relu else yconv, d, *POOL)
    if relu:
        d = ra.relu_backward(yconv, d)
    return rc.conv2d_backward(x, weight, d, stride, pads)


def relu_pool2_forward(x: np.ndarray, relu: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """(ReLU output or None, 2×2 max-pooled output)."""
    r = ra.relu_forward(x) if relu else None
    return r, rp.maxpool2d_forward(r if relu else x, *POOL)


def relu_pool2_backward(x: np.ndarray, dpool: np.ndarray, relu: bool) -> np.ndarray:
    """dx of sum(pooled * dpool)."""
    r = ra.relu_forward(x) if relu else x
    d = rp.maxpool2d_backward(r, dpool, *POOL)
    return ra.relu_backward(x, d) if relu else d


def dense_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, relu: bool
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """(y = x @ weight.T + bias, ReLU output or None); x (N, I), weight (O, I)."""
    y = x @ weight.T
    if bias is not None:
        y = y + bias
    return y, (ra.relu_forward(y) if relu else None)


def dense_backward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, dy: np.ndarray,
                   relu: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dweight, dbias) of sum(last output * dy)."""
    y, _ = dense_forward(x, weight, bias, relu)
    dz = ra.relu_backward(y, dy) if relu else dy
    return dz @ weight, dz.T @ x, dz.sum(axis=0)

"""Plain-numpy Conv2D: explicit zero padding, one strided slice per kernel tap. The tests' oracle.

Shapes: x (N, C, H, W), weight (O, C, KH, KW), y (N, O, OH, OW). ``pads`` = (top, bottom, left,
right) zeros added around the image; OH = (H + top + bottom - KH) // stride_h + 1.
"""

from __future__ import annotations

import numpy as np


def _taps(h: int, w: int, kh: int, kw: int, stride: tuple[int, int]):
    """(i, j, row slice, column slice) of the padded image each kernel tap (i, j) reads."""
    sh, sw = stride
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def _pad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   stride: tuple[int, int], pads: tuple[int, int, int, int]) -> np.ndarray:
    """y[n, o] = bias[o] + sum over c, i, j of weight[o, c, i, j] * xpad[n, c, sh*oh+i, sw*ow+j]."""
    xp = _pad(x, pads)
    o, _, kh, kw = weight.shape
    y = None
    for i, j, rs, cs in _taps(xp.shape[2], xp.shape[3], kh, kw, stride):
        term = np.einsum("oc,nchw->nohw", weight[:, :, i, j], xp[:, :, rs, cs])
        y = term if y is None else y + term
    if bias is not None:
        y = y + bias.reshape(1, o, 1, 1)
    return y


def conv2d_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, stride: tuple[int, int],
                    pads: tuple[int, int, int, int]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dweight, dbias) of sum(y * dy) for ``conv2d_forward``."""
    xp = _pad(x, pads)
    _, _, kh, kw = weight.shape
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(weight)
    for i, j, rs, cs in _taps(xp.shape[2], xp.shape[3], kh, kw, stride):
        dw[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, xp[:, :, rs, cs])
        dxp[:, :, rs, cs] += np.einsum("oc,nohw->nchw", weight[:, :, i, j], dy)
    t, _, l, _ = pads
    dx = dxp[:, :, t:t + x.shape[2], l:l + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))

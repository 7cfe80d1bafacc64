"""Plain-numpy Conv2D: explicit zero padding, one strided slice per kernel tap. The tests' oracle.

Shapes: x (N, C, H, W), weight (O, C / groups, KH, KW), y (N, O, OH, OW). ``pads`` = (top,
bottom, left, right) zeros added around the image; with dilation d the taps are d apart:
OH = (H + top + bottom - d·(KH - 1) - 1) // stride_h + 1. Filter block g (O / groups
filters) reads channel block g only.
"""

from __future__ import annotations

import numpy as np


def _taps(h: int, w: int, kh: int, kw: int, stride: tuple[int, int],
          dilation: tuple[int, int] = (1, 1)):
    """(i, j, row slice, column slice) of the padded image each kernel tap (i, j) reads."""
    sh, sw = stride
    dh, dw = dilation
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield (i, j, slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                   slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _pad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))


def _grouped(w: np.ndarray, x: np.ndarray, groups: int) -> np.ndarray:
    """sum over c of w[o, c] · x[n, c', h, w] with c' the channel c of o's group."""
    o, cg = w.shape
    og = o // groups
    return np.concatenate([np.einsum("oc,nchw->nohw", w[g * og:(g + 1) * og],
                                     x[:, g * cg:(g + 1) * cg]) for g in range(groups)], axis=1)


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   stride: tuple[int, int], pads: tuple[int, int, int, int],
                   dilation: tuple[int, int] = (1, 1), groups: int = 1) -> np.ndarray:
    """y[n, o] = bias[o] + sum over c, i, j of weight[o, c, i, j] ·
    xpad[n, g·C/G + c, sh·oh + dh·i, sw·ow + dw·j] (g: the group of filter o)."""
    xp = _pad(x, pads)
    o, _, kh, kw = weight.shape
    y = None
    for i, j, rs, cs in _taps(xp.shape[2], xp.shape[3], kh, kw, stride, dilation):
        term = _grouped(weight[:, :, i, j], xp[:, :, rs, cs], groups)
        y = term if y is None else y + term
    if bias is not None:
        y = y + bias.reshape(1, o, 1, 1)
    return y


def conv2d_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, stride: tuple[int, int],
                    pads: tuple[int, int, int, int], dilation: tuple[int, int] = (1, 1),
                    groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dweight, dbias) of sum(y * dy) for ``conv2d_forward``."""
    xp = _pad(x, pads)
    o, cg, kh, kw = weight.shape
    og = o // groups
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(weight)
    for i, j, rs, cs in _taps(xp.shape[2], xp.shape[3], kh, kw, stride, dilation):
        for g in range(groups):
            fo, fc = slice(g * og, (g + 1) * og), slice(g * cg, (g + 1) * cg)
            dw[fo, :, i, j] = np.einsum("nohw,nchw->oc", dy[:, fo], xp[:, fc, rs, cs])
            dxp[:, fc, rs, cs] += np.einsum("oc,nohw->nchw", weight[fo, :, i, j], dy[:, fo])
    t, _, l, _ = pads
    dx = dxp[:, :, t:t + x.shape[2], l:l + x.shape[3]]
    return dx, dw, dy.sum(axis=(0, 2, 3))

"""Plain-numpy transposed convolution and resampling, the oracles of ``kernels.upsample``.

conv_transpose2d: x (N, C, H, W), weight (C, O, KH, KW) -> (N, O, OH, OW), each kernel tap
(i, j) adding weight[:, :, i, j]ᵀ·x to a strided slice of the uncropped output.
resize2d: PyTorch's ``F.interpolate`` with an integer ``scale_factor``, written from its
source-coordinate formulas (one interpolation matrix per axis).
"""

from __future__ import annotations

import math

import numpy as np


def conv_transpose2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                             stride: tuple[int, int], padding: tuple[int, int],
                             output_padding: tuple[int, int]) -> np.ndarray:
    """y = the canvas sum over taps, cropped by ``padding`` and extended by
    ``output_padding`` at the bottom/right, plus bias."""
    n, _, h, w = x.shape
    _, o, kh, kw = weight.shape
    (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
    oh, ow = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    canvas = np.zeros((n, o, max((h - 1) * sh + kh, oh + ph), max((w - 1) * sw + kw, ow + pw)))
    for i in range(kh):
        for j in range(kw):
            canvas[:, :, i:i + sh * (h - 1) + 1:sh, j:j + sw * (w - 1) + 1:sw] += np.einsum(
                "co,nchw->nohw", weight[:, :, i, j], x)
    y = canvas[:, :, ph:ph + oh, pw:pw + ow]
    return y if bias is None else y + bias.reshape(1, o, 1, 1)


def axis_matrix(size: int, scale: int, mode: str, align_corners: bool) -> np.ndarray:
    """(size·scale, size): row i holds the weights output index i gives the input indices."""
    out = size * scale
    m = np.zeros((out, size))
    for i in range(out):
        if mode == "nearest":
            m[i, min(math.floor(i / scale), size - 1)] = 1.0
            continue
        if align_corners:
            src = i * (size - 1) / (out - 1) if out > 1 else 0.0
        else:
            src = max((i + 0.5) / scale - 0.5, 0.0)
        i0 = min(math.floor(src), size - 1)
        i1 = min(i0 + 1, size - 1)
        lam = src - i0
        m[i, i0] += 1.0 - lam
        m[i, i1] += lam
    return m


def resize2d(x: np.ndarray, scale: tuple[int, int], mode: str,
             align_corners: bool) -> np.ndarray:
    """x (N, C, H, W) -> (N, C, H·sh, W·sw), nearest or bilinear."""
    mh = axis_matrix(x.shape[2], scale[0], mode, align_corners)
    mw = axis_matrix(x.shape[3], scale[1], mode, align_corners)
    return np.einsum("ih,nchw,jw->ncij", mh, x, mw)

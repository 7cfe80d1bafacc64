"""Kernels that make images larger: transposed convolution (ConvTranspose2D) and separable
resampling (Upsample2D, nearest or bilinear).

Transposed convolution, PyTorch's ``conv_transpose2d`` without groups or dilation:
x (N, C, H, W), weight (C, O, KH, KW), y (N, O, OH, OW) with OH = (H - 1)·sh - 2·ph + KH + oph.
Input pixel (h, w) adds weight[c, :, i, j]·x to the uncropped output at (h·sh + i, w·sw + j);
the output is that canvas from (ph, pw) on (output padding extends it at the bottom/right, with
zeros where no tap reaches). It is the adjoint of a Conv2D with the same weight, so the forward
is Wᵀ·x and a col2im, the backward an im2col of the output gradient and two products
(``kernels.conv``'s unfolding); the batch is split into ``nchunks`` slices run in parallel.

Resampling: each output row reads input rows ``r0``, ``r1`` with weights 1 - ``rl``, ``rl``
(and columns likewise, ``c0``, ``c1``, ``cl``): nearest is r0 = r1 and rl = 0. The index
tables are made by the layer (``layers.upsample``); the kernels run over (sample, channel)
planes in parallel, so the backward's scatter needs no atomics.
"""

from __future__ import annotations

import numpy as np

from .conv import _col2im, _crop_from, _im2col, _pad_into
from .jit import njit, prange


@njit
def conv_transpose_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, sh: int, sw: int,
                           ph: int, pw: int, nchunks: int, y: np.ndarray) -> None:
    """y (N, O, OH, OW) of a transposed conv (see the module note); bias (O,) or empty."""
    n_n, c_n, h_n, w_n = x.shape
    _, o_n, kh, kw = weight.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    k_n = o_n * kh * kw
    hb = max((h_n - 1) * sh + kh, oh_n + ph)
    wb = max((w_n - 1) * sw + kw, ow_n + pw)
    w2 = weight.reshape(c_n, k_n)
    has_bias = bias.shape[0] > 0
    nch = max(1, min(nchunks, n_n))
    for ch in prange(nch):
        cols = np.empty((k_n, h_n * w_n), dtype=x.dtype)
        canvas = np.empty((o_n, hb, wb), dtype=x.dtype)
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            np.dot(w2.T, x[n].reshape(c_n, h_n * w_n), cols)
            _col2im(cols, canvas, kh, kw, sh, sw, h_n, w_n)
            _crop_from(y[n], canvas, ph, pw)
            if has_bias:
                for o in range(o_n):
                    b = bias[o]
                    for r in range(oh_n):
                        yrow = y[n, o, r]
                        for q in range(ow_n):
                            yrow[q] += b


@njit
def conv_transpose_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, sh: int, sw: int,
                            ph: int, pw: int, nchunks: int, gweight: np.ndarray,
                            gbias: np.ndarray) -> np.ndarray:
    """Backward of ``conv_transpose_forward``: returns dx (N, C, H, W); overwrites gweight
    (C, O, KH, KW) and gbias ((O,) or empty). Per sample: cols = im2col of the zero-padded
    output gradient (O·KH·KW, H·W), dx = W @ cols, gweight += x @ colsᵀ."""
    n_n, c_n, h_n, w_n = x.shape
    _, o_n, kh, kw = weight.shape
    oh_n, ow_n = dy.shape[2], dy.shape[3]
    k_n = o_n * kh * kw
    hb = max((h_n - 1) * sh + kh, oh_n + ph)
    wb = max((w_n - 1) * sw + kw, ow_n + pw)
    w2 = weight.reshape(c_n, k_n)
    nch = max(1, min(nchunks, n_n))
    dx = np.empty_like(x)
    gparts = np.zeros((nch, c_n, k_n), dtype=x.dtype)
    bparts = np.zeros((nch, o_n), dtype=np.float64)
    for ch in prange(nch):
        cols = np.empty((k_n, h_n * w_n), dtype=x.dtype)
        canvas = np.zeros((o_n, hb, wb), dtype=x.dtype)
        tmp = np.empty((c_n, k_n), dtype=x.dtype)
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            _pad_into(canvas, dy[n], ph, pw)
            _im2col(canvas, cols, kh, kw, sh, sw, h_n, w_n)
            xn = x[n].reshape(c_n, h_n * w_n)
            np.dot(w2, cols, dx[n].reshape(c_n, h_n * w_n))
            np.dot(xn, cols.T, tmp)
            gparts[ch] += tmp
            for o in range(o_n):
                s = 0.0
                for r in range(oh_n):
                    drow = dy[n, o, r]
                    for q in range(ow_n):
                        s += drow[q]
                bparts[ch, o] += s
    g2 = gweight.reshape(c_n, k_n)
    g2[:] = gparts[0]
    for ch in range(1, nch):
        g2 += gparts[ch]
    if gbias.shape[0] > 0:
        for o in range(o_n):
            t = 0.0
            for ch in range(nch):
                t += bparts[ch, o]
            gbias[o] = t
    return dx


@njit
def resample_forward(x: np.ndarray, r0: np.ndarray, r1: np.ndarray, rl: np.ndarray,
                     c0: np.ndarray, c1: np.ndarray, cl: np.ndarray, y: np.ndarray) -> None:
    """y[n, c, i, j] = the bilinear mix of x[n, c] at rows (r0[i], r1[i]) with weights
    (1 - rl[i], rl[i]) and columns (c0[j], c1[j]) with (1 - cl[j], cl[j])."""
    n_n, c_n = x.shape[0], x.shape[1]
    oh_n, ow_n = y.shape[2], y.shape[3]
    for q in prange(n_n * c_n):
        n = q // c_n
        c = q % c_n
        xp = x[n, c]
        yp = y[n, c]
        for i in range(oh_n):
            a = xp[r0[i]]
            b = xp[r1[i]]
            lb = rl[i]
            la = 1.0 - lb
            yrow = yp[i]
            for j in range(ow_n):
                p0 = c0[j]
                p1 = c1[j]
                m = cl[j]
                top = a[p0] * (1.0 - m) + a[p1] * m
                bot = b[p0] * (1.0 - m) + b[p1] * m
                yrow[j] = top * la + bot * lb


@njit
def resample_backward(dy: np.ndarray, r0: np.ndarray, r1: np.ndarray, rl: np.ndarray,
                      c0: np.ndarray, c1: np.ndarray, cl: np.ndarray, h_n: int,
                      w_n: int) -> np.ndarray:
    """dx (N, C, H, W) of ``resample_forward``: each output gradient goes back to the (up
    to) four input pixels it mixed, with the same weights."""
    n_n, c_n = dy.shape[0], dy.shape[1]
    oh_n, ow_n = dy.shape[2], dy.shape[3]
    dx = np.zeros((n_n, c_n, h_n, w_n), dtype=dy.dtype)
    for q in prange(n_n * c_n):
        n = q // c_n
        c = q % c_n
        dp = dy[n, c]
        xp = dx[n, c]
        for i in range(oh_n):
            a = xp[r0[i]]
            b = xp[r1[i]]
            lb = rl[i]
            la = 1.0 - lb
            drow = dp[i]
            for j in range(ow_n):
                p0 = c0[j]
                p1 = c1[j]
                m = cl[j]
                g = drow[j]
                a[p0] += g * la * (1.0 - m)
                a[p1] += g * la * m
                b[p0] += g * lb * (1.0 - m)
                b[p1] += g * lb * m
    return dx

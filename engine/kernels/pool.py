"""Max and average pooling kernels, forward and backward, any window, stride and padding.

x (N, C, H, W) -> y (N, C, OH, OW); every (sample, channel) plane runs in parallel. Window
(oh, ow) covers rows oh·sh - pad_top … + KH and columns ow·sw - pad_left … + KW; positions
outside the image are padding. Max pooling never picks padding (as -inf padding) and records
the winner's flat index h·W + w for the backward pass. Average pooling divides by the window's
size within the padded image (rows up to ``hl`` = H + bottom pad, columns up to ``wl``) when
``count_pad`` is true (PyTorch's count_include_pad: KH·KW, less where a ceil_mode window
overhangs the padded image) and by the number of real pixels in the window when it is false
(TensorFlow's "same").
"""

from __future__ import annotations

import numpy as np

from .jit import njit, prange


@njit
def maxpool2d_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                      oh_n: int, ow_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns y (N, C, OH, OW) and the argmax (N, C, OH, OW) int32 flat indices into (H, W).

    Ties go to the first maximum in row-major order; a NaN in a window wins (as PyTorch).
    The inner loop is branch-free (selects) on flat unsigned offsets, which Numba need not
    check for negative indices; NaNs are looked for only in windows holding one."""
    n_n, c_n, h_n, w_n = x.shape
    y = np.empty((n_n, c_n, oh_n, ow_n), dtype=x.dtype)
    arg = np.empty((n_n, c_n, oh_n, ow_n), dtype=np.int32)
    x2 = x.reshape(n_n * c_n, h_n * w_n)
    y3 = y.reshape(n_n * c_n, oh_n, ow_n)
    a3 = arg.reshape(n_n * c_n, oh_n, ow_n)
    for q in prange(n_n * c_n):
        img = x2[q]
        for oh in range(oh_n):
            r0 = oh * sh - pt
            r1 = min(r0 + kh, h_n)
            r0 = max(r0, 0)
            yrow = y3[q, oh]
            arow = a3[q, oh]
            for ow in range(ow_n):
                c0 = ow * sw - pl
                c1 = min(c0 + kw, w_n)
                c0 = max(c0, 0)
                bi = np.uint64(r0 * w_n + c0)
                best = img[bi]
                nan = False
                for r in range(r0, r1):
                    rb = np.uint64(r * w_n)
                    for c in range(c0, c1):
                        i = rb + np.uint64(c)
                        v = img[i]
                        gt = v > best
                        best = v if gt else best
                        bi = i if gt else bi
                        nan = nan | (v != v)
                if nan:
                    for r in range(r0, r1):
                        for c in range(c0, c1):
                            i = np.uint64(r * w_n + c)
                            if img[i] != img[i]:
                                best = img[i]
                                bi = i
                yrow[ow] = best
                arow[ow] = bi
    return y, arg


@njit
def maxpool2d_backward(dy: np.ndarray, arg: np.ndarray, h_n: int, w_n: int) -> np.ndarray:
    """dx (N, C, H, W): each window's gradient added at its recorded argmax."""
    n_n, c_n, oh_n, ow_n = dy.shape
    dx = np.empty((n_n, c_n, h_n, w_n), dtype=dy.dtype)
    dx2 = dx.reshape(n_n * c_n, h_n * w_n)
    dy2 = dy.reshape(n_n * c_n, oh_n * ow_n)
    a2 = arg.reshape(n_n * c_n, oh_n * ow_n)
    for q in prange(n_n * c_n):
        d = dx2[q]
        for i in range(h_n * w_n):
            d[i] = 0
        g = dy2[q]
        a = a2[q]
        for p in range(oh_n * ow_n):
            d[a[p]] += g[p]
    return dx


@njit
def avgpool2d_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                      hl: int, wl: int, oh_n: int, ow_n: int, count_pad: bool) -> np.ndarray:
    """y (N, C, OH, OW): the mean of each window (see the module note on ``count_pad``)."""
    n_n, c_n, h_n, w_n = x.shape
    y = np.empty((n_n, c_n, oh_n, ow_n), dtype=x.dtype)
    x2 = x.reshape(n_n * c_n, h_n * w_n)
    y3 = y.reshape(n_n * c_n, oh_n, ow_n)
    for q in prange(n_n * c_n):
        img = x2[q]
        for oh in range(oh_n):
            ru = oh * sh - pt
            r1 = min(ru + kh, h_n)
            r0 = max(ru, 0)
            rp = min(ru + kh, hl) - ru
            yrow = y3[q, oh]
            for ow in range(ow_n):
                cu = ow * sw - pl
                c1 = min(cu + kw, w_n)
                c0 = max(cu, 0)
                s = 0.0
                for r in range(r0, r1):
                    rb = np.uint64(r * w_n)
                    for c in range(c0, c1):
                        s += img[rb + np.uint64(c)]
                count = rp * (min(cu + kw, wl) - cu) if count_pad else (r1 - r0) * (c1 - c0)
                yrow[ow] = s / count
    return y


@njit
def avgpool2d_backward(dy: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                       hl: int, wl: int, h_n: int, w_n: int, count_pad: bool) -> np.ndarray:
    """dx (N, C, H, W) of ``avgpool2d_forward``: each window's gradient / count, spread over it."""
    n_n, c_n, oh_n, ow_n = dy.shape
    dx = np.empty((n_n, c_n, h_n, w_n), dtype=dy.dtype)
    dx2 = dx.reshape(n_n * c_n, h_n * w_n)
    dy3 = dy.reshape(n_n * c_n, oh_n, ow_n)
    for q in prange(n_n * c_n):
        d = dx2[q]
        for i in range(h_n * w_n):
            d[i] = 0
        for oh in range(oh_n):
            ru = oh * sh - pt
            r1 = min(ru + kh, h_n)
            r0 = max(ru, 0)
            rp = min(ru + kh, hl) - ru
            grow = dy3[q, oh]
            for ow in range(ow_n):
                cu = ow * sw - pl
                c1 = min(cu + kw, w_n)
                c0 = max(cu, 0)
                count = rp * (min(cu + kw, wl) - cu) if count_pad else (r1 - r0) * (c1 - c0)
                g = grow[ow] / count
                for r in range(r0, r1):
                    rb = np.uint64(r * w_n)
                    for c in range(c0, c1):
                        d[rb + np.uint64(c)] += g
    return dx

"""Conv2D kernels for what the conv blocks of ``kernels.fused`` do not cover: depthwise,
grouped and dilated convolution (PyTorch's ``groups`` and ``dilation``).

Layouts follow PyTorch: x (N, C, H, W), weight (O, C / groups, KH, KW), y (N, O, OH, OW);
input channels and filters are split into ``groups`` consecutive blocks, block g of the
filters reading block g of the channels only. Tap (i, j) of output pixel (oh, ow) reads the
input at (oh·sh - pt + i·dh, ow·sw - pl + j·dw); outside the image it reads zeros (the
bottom/right padding follows from the output size, as in ``kernels.conv``).

- depthwise (groups = C; filter o reads channel o // (O / C)): ``depthwise_forward`` /
  ``depthwise_backward`` work tap by tap, no unfolding: 3×3 filters (any stride, dilation,
  padding) with ``kernels.depthwise``'s direct kernels, other sizes on whole rows. A
  depthwise 3×3 does 9 multiply-adds per value it reads, so it is bound by memory traffic:
  an im2col would write and read nine copies of the input for one tiny product per channel.
- grouped or dilated: ``grouped_forward`` / ``grouped_backward`` unfold each sample once with
  the dilation (``_im2col_dil``) and run one BLAS product per group; the batch is split into
  ``nchunks`` slices run in parallel, as in ``kernels.fused``.
"""

from __future__ import annotations

import numpy as np

from .blas import gemm
from .conv import _crop_from, _pad_into
from .depthwise import _depthwise3_backward, _depthwise3_forward
from .depthwise_s2 import _s2_backward, _s2_forward
from .depthwise_s2 import applies as _s2_applies
from .depthwise_same import _same_backward, _same_forward
from .depthwise_same import applies as _same_applies
from .jit import njit, prange


@njit(parallel=False)
def _padded_size(oh_n: int, ow_n: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
                 pt: int, pl: int, h_n: int, w_n: int) -> tuple[int, int]:
    """(rows, columns) of the zero-padded image every window of the output reads."""
    return (max((oh_n - 1) * sh + (kh - 1) * dh + 1, pt + h_n),
            max((ow_n - 1) * sw + (kw - 1) * dw + 1, pl + w_n))


@njit(parallel=False)
def depthwise_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, sh: int, sw: int,
                      dh: int, dw: int, pt: int, pl: int, y: np.ndarray) -> None:
    """y (N, O, OH, OW) of a depthwise conv: filter o reads channel o // (O / C) only.

    weight (O, 1, KH, KW), bias (O,) or empty. 3×3 filters: ``kernels.depthwise``; others
    ``_depthwise_forward_rows``."""
    if weight.shape[2] == 3 and weight.shape[3] == 3:
        if _same_applies(x.shape[1], weight.shape[0], x.shape[2], x.shape[3], y.shape[2],
                         y.shape[3], sh, sw, dh, dw, pt, pl):
            _same_forward(x, weight, bias, dh, dw, y)
        elif _s2_applies(x.shape[1], weight.shape[0], x.shape[2], x.shape[3], y.shape[2],
                         y.shape[3], sh, sw, dh, dw, pt, pl):
            _s2_forward(x, weight, bias, pt, pl, y)
        else:
            _depthwise3_forward(x, weight, bias, sh, sw, dh, dw, pt, pl, y)
    else:
        _depthwise_forward_rows(x, weight, bias, sh, sw, dh, dw, pt, pl, y)


@njit(parallel=False)
def depthwise_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, sh: int, sw: int,
                       dh: int, dw: int, pt: int, pl: int, gweight: np.ndarray,
                       gbias: np.ndarray) -> np.ndarray:
    """Backward of ``depthwise_forward``: returns dx (N, C, H, W); overwrites gweight
    (O, 1, KH, KW) and gbias ((O,) or empty). 3×3 filters: ``kernels.depthwise``; others
    ``_depthwise_backward_rows``."""
    if weight.shape[2] == 3 and weight.shape[3] == 3:
        if _same_applies(x.shape[1], weight.shape[0], x.shape[2], x.shape[3], dy.shape[2],
                         dy.shape[3], sh, sw, dh, dw, pt, pl):
            return _same_backward(x, weight, dy, dh, dw, gweight, gbias)
        if _s2_applies(x.shape[1], weight.shape[0], x.shape[2], x.shape[3], dy.shape[2],
                       dy.shape[3], sh, sw, dh, dw, pt, pl):
            return _s2_backward(x, weight, dy, pt, pl, gweight, gbias)
        return _depthwise3_backward(x, weight, dy, sh, sw, dh, dw, pt, pl, gweight, gbias)
    return _depthwise_backward_rows(x, weight, dy, sh, sw, dh, dw, pt, pl, gweight, gbias)


@njit
def _depthwise_forward_rows(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, sh: int,
                           sw: int, dh: int, dw: int, pt: int, pl: int, y: np.ndarray) -> None:
    """``depthwise_forward`` on whole rows, any stride. Parallel over (sample, filter) planes; each
    plane is copied into a zero-padded scratch, then every output row adds its KH·KW taps as
    whole rows (unsigned flat offsets: no bounds or negative-index handling, so the
    unit-stride rows vectorise)."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    mult = o_n // c_n
    has_bias = bias.shape[0] > 0
    hb, wb = _padded_size(oh_n, ow_n, kh, kw, sh, sw, dh, dw, pt, pl, h_n, w_n)
    u = np.uint64
    for q in prange(n_n * o_n):
        n = q // o_n
        o = q % o_n
        pad = np.zeros((hb, wb), x.dtype)
        pad[pt:pt + h_n, pl:pl + w_n] = x[n, o // mult]
        xf = pad.reshape(hb * wb)
        yf = y[n, o].reshape(oh_n * ow_n)
        wf = weight[o, 0].reshape(kh * kw)
        b = bias[o] if has_bias else x.dtype.type(0)
        for oh in range(oh_n):
            yb = u(oh * ow_n)
            for ow in range(ow_n):
                yf[yb + u(ow)] = b
            for i in range(kh):
                rb = (oh * sh + i * dh) * wb
                for j in range(kw):
                    wv = wf[i * kw + j]
                    s0 = u(rb + j * dw)
                    if sw == 1:
                        for ow in range(ow_n):
                            yf[yb + u(ow)] += wv * xf[s0 + u(ow)]
                    else:
                        for ow in range(ow_n):
                            yf[yb + u(ow)] += wv * xf[s0 + u(ow * sw)]


@njit
def _depthwise_backward_rows(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, sh: int,
                            sw: int, dh: int, dw: int, pt: int, pl: int, gweight: np.ndarray,
                            gbias: np.ndarray) -> np.ndarray:
    """``depthwise_backward`` on whole rows, any stride and padding.

    Parallel over input channels: each owns its dx planes and its filters' gradients (no
    shared writes) and reads each sample's input and output-gradient planes once for both,
    on zero-padded scratch planes. The weight gradient gathers per tap a row of partial sums
    (element-wise, so it vectorises; a scalar sum would not without fast-math), summed in
    float64 at the end, as is the bias gradient."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = dy.shape[2], dy.shape[3]
    mult = o_n // c_n
    has_bias = gbias.shape[0] > 0
    hb, wb = _padded_size(oh_n, ow_n, kh, kw, sh, sw, dh, dw, pt, pl, h_n, w_n)
    k_n = kh * kw
    u = np.uint64
    dx = np.empty_like(x)
    for c in prange(c_n):
        rows = np.zeros((mult * k_n, ow_n), np.float64)
        part = np.empty((mult * k_n, ow_n), x.dtype)
        pf = part.reshape(mult * k_n * ow_n)
        bacc = np.zeros(mult, np.float64)
        pad = np.zeros((hb, wb), x.dtype)
        dpad = np.zeros((hb, wb), x.dtype)
        xf = pad.reshape(hb * wb)
        dxf = dpad.reshape(hb * wb)
        for n in range(n_n):
            pad[pt:pt + h_n, pl:pl + w_n] = x[n, c]
            dxf[:] = 0
            part[:] = 0
            for m in range(mult):
                o = c * mult + m
                df = dy[n, o].reshape(oh_n * ow_n)
                wf = weight[o, 0].reshape(k_n)
                if has_bias:
                    s = 0.0
                    for p in range(oh_n * ow_n):
                        s += df[p]
                    bacc[m] += s
                for oh in range(oh_n):
                    yb = u(oh * ow_n)
                    for i in range(kh):
                        rb = (oh * sh + i * dh) * wb
                        for j in range(kw):
                            wv = wf[i * kw + j]
                            ab = u((m * k_n + i * kw + j) * ow_n)
                            s0 = u(rb + j * dw)
                            if sw == 1:  # two loops of one store each: both vectorise
                                for ow in range(ow_n):
                                    pf[ab + u(ow)] += df[yb + u(ow)] * xf[s0 + u(ow)]
                                for ow in range(ow_n):
                                    dxf[s0 + u(ow)] += wv * df[yb + u(ow)]
                            else:
                                for ow in range(ow_n):
                                    g = df[yb + u(ow)]
                                    pf[ab + u(ow)] += g * xf[s0 + u(ow * sw)]
                                    dxf[s0 + u(ow * sw)] += wv * g
            dx[n, c] = dpad[pt:pt + h_n, pl:pl + w_n]
            rows += part  # one sample's partial sums, in float64
        for m in range(mult):
            o = c * mult + m
            for k in range(k_n):
                t = 0.0
                for ow in range(ow_n):
                    t += rows[m * k_n + k, ow]
                gweight[o, 0, k // kw, k % kw] = t
            if has_bias:
                gbias[o] = bacc[m]
    return dx


@njit(parallel=False)
def _im2col_dil(src: np.ndarray, cols: np.ndarray, kh: int, kw: int, sh: int, sw: int,
                dh: int, dw: int, oh_n: int, ow_n: int) -> None:
    """cols[(c·KH + i)·KW + j, oh·OW + ow] = src[c, oh·sh + i·dh, ow·sw + j·dw]."""
    c_n = src.shape[0]
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                for oh in range(oh_n):
                    srow = src[c, oh * sh + i * dh]
                    base = oh * ow_n
                    if sw == 1:
                        for ow in range(ow_n):
                            row[base + ow] = srow[ow + j * dw]
                    else:
                        for ow in range(ow_n):
                            row[base + ow] = srow[ow * sw + j * dw]


@njit(parallel=False)
def _col2im_dil(cols: np.ndarray, dst: np.ndarray, kh: int, kw: int, sh: int, sw: int,
                dh: int, dw: int, oh_n: int, ow_n: int) -> None:
    """The adjoint of ``_im2col_dil``: dst (zeroed here) gets every column entry added back."""
    c_n = dst.shape[0]
    dst[:] = 0
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                for oh in range(oh_n):
                    drow = dst[c, oh * sh + i * dh]
                    base = oh * ow_n
                    for ow in range(ow_n):
                        drow[ow * sw + j * dw] += row[base + ow]


@njit
def grouped_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, groups: int, sh: int,
                    sw: int, dh: int, dw: int, pt: int, pl: int, nchunks: int,
                    y: np.ndarray) -> None:
    """y (N, O, OH, OW) of a grouped and/or dilated conv: per sample one dilated im2col
    (C·KH·KW, OH·OW), then per group g y[g] = weight[g] (O/G, C/G·KH·KW) @ cols[g]."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, cg, kh, kw = weight.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    og = o_n // groups
    kg = cg * kh * kw
    p_n = oh_n * ow_n
    hb, wb = _padded_size(oh_n, ow_n, kh, kw, sh, sw, dh, dw, pt, pl, h_n, w_n)
    w2 = weight.reshape(o_n, kg)
    has_bias = bias.shape[0] > 0
    nch = max(1, min(nchunks, n_n))
    for ch in prange(nch):
        buf = np.zeros((c_n, hb, wb), dtype=x.dtype)
        cols = np.empty((c_n * kh * kw, p_n), dtype=x.dtype)
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            _pad_into(buf, x[n], pt, pl)
            _im2col_dil(buf, cols, kh, kw, sh, sw, dh, dw, oh_n, ow_n)
            yn = y[n].reshape(o_n, p_n)
            for g in range(groups):
                np.dot(w2[g * og:(g + 1) * og], cols[g * kg:(g + 1) * kg],
                       yn[g * og:(g + 1) * og])
            if has_bias:
                for o in range(o_n):
                    b = bias[o]
                    yrow = yn[o]
                    for p in range(p_n):
                        yrow[p] += b


@njit
def grouped_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, groups: int, sh: int,
                     sw: int, dh: int, dw: int, pt: int, pl: int, nchunks: int,
                     gweight: np.ndarray, gbias: np.ndarray) -> np.ndarray:
    """Backward of ``grouped_forward``: returns dx (N, C, H, W); overwrites gweight
    (O, C/G, KH, KW) and gbias ((O,) or empty). Each slice of the batch accumulates its own
    weight gradient (BLAS, beta = 1); the slices are added in order at the end."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, cg, kh, kw = weight.shape
    oh_n, ow_n = dy.shape[2], dy.shape[3]
    og = o_n // groups
    kg = cg * kh * kw
    p_n = oh_n * ow_n
    hb, wb = _padded_size(oh_n, ow_n, kh, kw, sh, sw, dh, dw, pt, pl, h_n, w_n)
    w2 = weight.reshape(o_n, kg)
    nch = max(1, min(nchunks, n_n))
    dx = np.empty_like(x)
    gparts = np.zeros((nch, o_n * kg), dtype=x.dtype)
    bparts = np.zeros((nch, o_n), dtype=np.float64)
    for ch in prange(nch):
        buf = np.zeros((c_n, hb, wb), dtype=x.dtype)
        dbuf = np.zeros((c_n, hb, wb), dtype=x.dtype)
        cols = np.empty((c_n * kh * kw, p_n), dtype=x.dtype)
        dcols = np.empty((c_n * kh * kw, p_n), dtype=x.dtype)
        gacc = gparts[ch]
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            _pad_into(buf, x[n], pt, pl)
            _im2col_dil(buf, cols, kh, kw, sh, sw, dh, dw, oh_n, ow_n)
            dn = dy[n].reshape(o_n, p_n)
            dflat = dn.reshape(o_n * p_n)
            cflat = cols.reshape(c_n * kh * kw * p_n)
            for g in range(groups):
                gemm(False, True, og, kg, p_n, 1.0, dflat[g * og * p_n:], p_n,
                     cflat[g * kg * p_n:], p_n, 1.0, gacc[g * og * kg:], kg)
                np.dot(w2[g * og:(g + 1) * og].T, dn[g * og:(g + 1) * og],
                       dcols[g * kg:(g + 1) * kg])
            for o in range(o_n):
                s = 0.0
                drow = dn[o]
                for p in range(p_n):
                    s += drow[p]
                bparts[ch, o] += s
            _col2im_dil(dcols, dbuf, kh, kw, sh, sw, dh, dw, oh_n, ow_n)
            _crop_from(dx[n], dbuf, pt, pl)
    gw = gweight.reshape(o_n * kg)
    for k in range(o_n * kg):
        t = gparts[0, k]
        for ch in range(1, nch):
            t += gparts[ch, k]
        gw[k] = t
    if gbias.shape[0] > 0:
        for o in range(o_n):
            t = 0.0
            for ch in range(nch):
                t += bparts[ch, o]
            gbias[o] = t
    return dx

"""Stride-1 Conv2D (+ bias) (+ ReLU) (+ 2×2 max-pool) blocks computed on a padded grid.

The same block as ``fused.conv_block_forward`` / ``conv_block_backward`` (same arguments,
outputs and ``arg`` convention), for stride 1 only, laid out so that unfolding needs no short
copies. Each sample is copied into a zero-padded buffer (C, Hb, Wb), kept flat with KW
elements of zero slack after it. The convolution is computed on a grid of OH rows of Wb
columns: grid column q < OW of row r is output (r, q); the Wb - OW columns after it are
computed too and thrown away. Row (c, i, j) of the grid's unfolded input is then one
contiguous slice: ``flat[c·Hb·Wb + i·Wb + j:][:OH·Wb]``.

Two ways to multiply (``shift``):

- unfold (contiguous copies) then one product (O, K) @ (K, OH·Wb), K = C·KH·KW;
- no unfolding: KH·KW products (O, C) @ (C, OH·Wb), each reading the buffer at the tap's shift
  with row stride Hb·Wb, accumulated. Pays when C is large enough to make each product deep.

The backward lays the conv output gradient on the grid with zeros in the thrown-away
columns, so that they add nothing: weight gradient = unfolded input (or the forward's, kept)
times the gradient, or (``shift`` on grids of at least ``SHIFT_DW_MIN_COLUMNS`` columns) one
product per tap, gradient (O, OH·Wb) @ shifted buffer (OH·Wb, C), into (KH·KW, O, C) partials:
no unfolding, and BLAS runs the deep (O, C) products of long grids at several times the rate
of the (C·KH·KW, O) one after an unfolding (measured: a CIFAR ResNet's 16->16 conv on 32×32
and 32->32 on 16×16; on 8×8 grids the unfolded product stays faster); input gradient = Wᵀ
times the gradient folded back by contiguous row additions, or (``shift``) KH·KW products
added at their shifts into a padded gradient buffer.
A window that runs past a row's end wraps into the next row (or the next channel, or the
slack) only in thrown-away columns.

Each of ``nchunks`` parallel slices of the batch works sample by sample on its own buffers and
calls BLAS (single-threaded, see ``conv.OneThreadBlas``) on them.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from .blas import gemm
from .conv import _crop_from, _pad_into, _sum_parts
from .fused import _pool2
from .jit import njit, prange
from .serial_first import serial_first

SHIFT_DW_MIN_COLUMNS = 256


@register_jitable
def grid_shape(oh: int, ow: int, kh: int, kw: int, h: int, w: int, pt: int, pl: int
               ) -> tuple[int, int]:
    """(Hb, Wb): the padded buffer holding the image at (pt, pl) and every window."""
    return max(oh + kh - 1, pt + h), max(ow + kw - 1, pl + w)


@njit(parallel=False)
def _unfold(flat: np.ndarray, cols: np.ndarray, c_n: int, kh: int, kw: int, wb: int,
            hbwb: int) -> None:
    """cols (C·KH·KW, G)[(c·KH + i)·KW + j] = flat[c·Hb·Wb + i·Wb + j:][:G]."""
    g_n = cols.shape[1]
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                src = flat[c * hbwb + i * wb + j:]
                dst = cols[(c * kh + i) * kw + j]
                for q in range(g_n):
                    dst[q] = src[q]


@njit(parallel=False)
def _fold(dcols: np.ndarray, dflat: np.ndarray, c_n: int, kh: int, kw: int, wb: int,
          hbwb: int) -> None:
    """The adjoint of ``_unfold``: dflat (zeroed here) gets every row added at its shift."""
    g_n = dcols.shape[1]
    dflat[:] = 0
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                dst = dflat[c * hbwb + i * wb + j:]
                src = dcols[(c * kh + i) * kw + j]
                for q in range(g_n):
                    dst[q] += src[q]


@njit(parallel=False)
def _taps(weight: np.ndarray) -> np.ndarray:
    """weight (O, C, KH, KW) rearranged as (KH·KW, O, C): one (O, C) matrix per tap."""
    o_n, c_n, kh, kw = weight.shape
    wt = np.empty((kh * kw, o_n, c_n), weight.dtype)
    for o in range(o_n):
        for c in range(c_n):
            for i in range(kh):
                for j in range(kw):
                    wt[i * kw + j, o, c] = weight[o, c, i, j]
    return wt


@njit(parallel=False)
def _epilogue(yg: np.ndarray, wb: int, bvec: np.ndarray, relu: bool, yc: np.ndarray,
              yr: np.ndarray) -> None:
    """yc (O, OH, OW) = the grid yg (O, OH·Wb) without its extra columns, plus the bias;
    yr = max(yc, 0) when ``relu`` (NaN -> 0)."""
    o_n, oh_n, ow_n = yc.shape
    for o in range(o_n):
        b = bvec[o]
        for r in range(oh_n):
            base = np.uint64(r * wb)
            if relu:
                for q in range(ow_n):
                    v = yg[o, base + np.uint64(q)] + b
                    yc[o, r, q] = v
                    yr[o, r, q] = v if v > 0 else 0.0
            else:
                for q in range(ow_n):
                    yc[o, r, q] = yg[o, base + np.uint64(q)] + b


@njit(parallel=False)
def _unpool_grid(dpool: np.ndarray, pooled: np.ndarray, arg: np.ndarray, relu: bool, wb: int,
                 dg: np.ndarray, bacc: np.ndarray) -> None:
    """dg (O, OH·Wb), zeroed here, gets each 2×2 window's gradient (one sample's dpool) at its
    winner on the grid; with ``relu`` only where the pooled value is > 0. bacc (O,) gets
    the sum of each channel's gradient added (unless it is empty: no bias)."""
    zero = np.zeros(1, dg.dtype)[0]
    dg[:] = 0
    o_n, ph_n, pw_n = dpool.shape
    for o in range(o_n):
        g = dg[o]
        s = zero
        for ph in range(ph_n):
            grow = dpool[o, ph]
            prow = pooled[o, ph]
            arow = arg[o, ph]
            base = 2 * ph * wb
            for pw in range(pw_n):
                v = grow[np.uint64(pw)]
                if relu:
                    v = v if prow[np.uint64(pw)] > 0 else zero
                s += v
                k = np.intp(arow[np.uint64(pw)])
                g[np.uint64(base + (k >> 1) * wb + 2 * pw + (k & 1))] = v
        if bacc.shape[0] > 0:
            bacc[o] += s


@njit(parallel=False)
def _mask_grid(dy: np.ndarray, yconv: np.ndarray, relu: bool, wb: int, dg: np.ndarray) -> None:
    """dg (O, OH·Wb) = one sample's dy (O, OH, OW) on the grid, where yconv > 0 when
    ``relu``; dg's extra columns are left as they are (zero)."""
    zero = np.zeros(1, dg.dtype)[0]
    o_n, oh_n, ow_n = dy.shape
    for o in range(o_n):
        for r in range(oh_n):
            drow = dy[o, r]
            mrow = yconv[o, r]
            grow = dg[o, r * wb:]
            if relu:
                for q in range(ow_n):
                    grow[q] = drow[q] if mrow[q] > 0 else zero
            else:
                for q in range(ow_n):
                    grow[q] = drow[q]


@njit
def conv_grid_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, pt: int, pl: int,
                      relu: bool, pool: bool, shift: bool, nchunks: int, yconv: np.ndarray,
                      yrelu: np.ndarray, ypool: np.ndarray, arg: np.ndarray,
                      keep: np.ndarray) -> None:
    """``fused.conv_block_forward`` for stride 1 (see the module note; ``shift`` picks the
    product). ``keep``: (N, C·KH·KW, OH·Wb) to keep each sample's unfolded grid for the
    backward pass, or empty (0, ·, ·). yconv or yrelu with 0 samples: not written (as there)."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = yconv.shape[2], yconv.shape[3]
    k_n = c_n * kh * kw
    hb, wb = grid_shape(oh_n, ow_n, kh, kw, h_n, w_n, pt, pl)
    hbwb = hb * wb
    g_n = oh_n * wb
    w2 = weight.reshape(o_n * k_n)
    wt = _taps(weight) if shift else np.empty((0, o_n, c_n), x.dtype)
    bvec = bias if bias.shape[0] > 0 else np.zeros(o_n, dtype=x.dtype)
    keeping = keep.shape[0] == n_n and n_n > 0
    conv_out = yconv.shape[0] == n_n
    relu_out = relu and yrelu.shape[0] == n_n
    nch = max(1, min(nchunks, n_n))
    for ch in prange(nch):
        flat = np.zeros(c_n * hbwb + kw, x.dtype)
        buf = flat[:c_n * hbwb].reshape(c_n, hb, wb)
        sconv = np.empty((0 if conv_out else o_n, oh_n, ow_n), dtype=x.dtype)
        srelu = np.empty((0 if relu_out or not relu else o_n, oh_n, ow_n), dtype=x.dtype)
        yg = np.empty((o_n, g_n), x.dtype)
        ygf = yg.reshape(o_n * g_n)
        own = np.empty((0 if keeping or shift else k_n, g_n), x.dtype)
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            _pad_into(buf, x[n], pt, pl)
            cols = keep[n] if keeping else own
            if keeping or not shift:
                _unfold(flat, cols, c_n, kh, kw, wb, hbwb)
            if shift:
                for t in range(kh * kw):
                    i = t // kw
                    gemm(False, False, o_n, g_n, c_n, 1.0, wt[t].reshape(o_n * c_n), c_n,
                         flat[i * wb + t - i * kw:], hbwb, 0.0 if t == 0 else 1.0, ygf, g_n)
            else:
                gemm(False, False, o_n, g_n, k_n, 1.0, w2, k_n, cols.reshape(k_n * g_n), g_n,
                     0.0, ygf, g_n)
            yc = yconv[n] if conv_out else sconv
            yr = (yrelu[n] if relu_out else srelu) if relu else yc
            _epilogue(yg, wb, bvec, relu, yc, yr)
            if pool:
                _pool2(yr, ypool[n], arg[n])


@njit
def conv_grid_backward(x: np.ndarray, weight: np.ndarray, dout: np.ndarray, mask: np.ndarray,
                       arg: np.ndarray, pt: int, pl: int, oh_n: int, ow_n: int, relu: bool,
                       pool: bool, need_dx: bool, shift: bool, nchunks: int,
                       gweight: np.ndarray, gbias: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``fused.conv_block_backward`` for stride 1 (``keep``: the forward's, or empty; an
    empty gweight skips the weight gradient)."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    k_n = c_n * kh * kw
    hb, wb = grid_shape(oh_n, ow_n, kh, kw, h_n, w_n, pt, pl)
    hbwb = hb * wb
    g_n = oh_n * wb
    w2 = weight.reshape(o_n * k_n)
    wt = _taps(weight) if shift and need_dx else np.empty((0, o_n, c_n), x.dtype)
    keeping = keep.shape[0] == n_n and n_n > 0
    nch = max(1, min(nchunks, n_n))
    need_dw = gweight.shape[0] > 0
    dx = np.empty((n_n if need_dx else 0, c_n, h_n, w_n), dtype=x.dtype)
    taps = shift and need_dw and not keeping and g_n >= SHIFT_DW_MIN_COLUMNS
    gparts = np.empty((nch, k_n if need_dw else 0, o_n), dtype=x.dtype)  # (KH·KW, O, C) if taps
    bparts = np.empty((nch, o_n if need_dw and gbias.shape[0] > 0 else 0), dtype=np.float64)
    for ch in prange(nch):
        gparts[ch] = 0  # zeroed by the thread that adds to it: the lines stay in its cache
        bparts[ch] = 0
        flat = np.zeros(c_n * hbwb + kw, x.dtype)
        buf = flat[:c_n * hbwb].reshape(c_n, hb, wb)
        dflat = np.zeros(c_n * hbwb + kw if need_dx else 0, x.dtype)
        own = np.empty((0 if keeping or taps else k_n, g_n), x.dtype)
        dcols = np.empty((k_n if need_dx and not shift else 0, g_n), x.dtype)
        dg = np.zeros((o_n, g_n), x.dtype)
        dgf = dg.reshape(o_n * g_n)
        ones = np.ones(g_n, x.dtype)
        tmpb = np.empty(o_n, x.dtype)
        gacc = gparts[ch].reshape(gparts.shape[1] * o_n)
        bacc = bparts[ch]
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            if pool:
                _unpool_grid(dout[n], mask[n], arg[n], relu, wb, dg, bacc)
            else:
                _mask_grid(dout[n], mask[n], relu, wb, dg)
                if bacc.shape[0] > 0:
                    np.dot(dg, ones, tmpb)
                    for o in range(o_n):
                        bacc[o] += tmpb[o]
            if taps:
                _pad_into(buf, x[n], pt, pl)
                for t in range(kh * kw):
                    i = t // kw
                    gemm(False, True, o_n, c_n, g_n, 1.0, dgf, g_n, flat[i * wb + t - i * kw:],
                         hbwb, 1.0, gacc[t * o_n * c_n:], c_n)
            elif need_dw:
                if keeping:
                    cols = keep[n]
                else:
                    cols = own
                    _pad_into(buf, x[n], pt, pl)
                    _unfold(flat, cols, c_n, kh, kw, wb, hbwb)
                gemm(False, True, k_n, o_n, g_n, 1.0, cols.reshape(k_n * g_n), g_n, dgf, g_n,
                     1.0, gacc, o_n)
            if not need_dx:
                continue
            if shift:
                dflat[:] = 0
                for t in range(kh * kw):
                    i = t // kw
                    gemm(True, False, c_n, g_n, o_n, 1.0, wt[t].reshape(o_n * c_n), c_n, dgf,
                         g_n, 1.0, dflat[i * wb + t - i * kw:], hbwb)
            else:
                gemm(True, False, k_n, g_n, o_n, 1.0, w2, k_n, dgf, g_n, 0.0,
                     dcols.reshape(k_n * g_n), g_n)
                _fold(dcols, dflat, c_n, kh, kw, wb, hbwb)
            _crop_from(dx[n], dflat[:c_n * hbwb].reshape(c_n, hb, wb), pt, pl)
    if taps:
        _sum_tap_parts(gparts.reshape(nch, kh * kw, o_n, c_n), bparts, gweight, gbias)
    elif need_dw:
        _sum_parts(gparts, bparts, gweight, gbias)
    return dx


@njit(parallel=False)
def _sum_tap_parts(gparts: np.ndarray, bparts: np.ndarray, gweight: np.ndarray,
                   gbias: np.ndarray) -> None:
    """gweight (O, C, KH, KW)[o, c, i, j] = the sum over slices of gparts (slices ≥ 1, KH·KW,
    O, C)[·, i·KW + j, o, c]; gbias = the sum of bparts (slices, O) when gbias is not empty."""
    nch, t_n, o_n, c_n = gparts.shape
    kw = gweight.shape[3]
    for t in range(t_n):
        i = t // kw
        j = t - i * kw
        for o in range(o_n):
            for c in range(c_n):
                v = gparts[0, t, o, c]
                for ch in range(1, nch):
                    v += gparts[ch, t, o, c]
                gweight[o, c, i, j] = v
    if gbias.shape[0] > 0:
        for o in range(o_n):
            acc = 0.0
            for ch in range(nch):
                acc += bparts[ch, o]
            gbias[o] = acc


# run serially (same chunks, same bits) while the parallel kernels compile in the background
serial_first(conv_grid_forward)
serial_first(conv_grid_backward)

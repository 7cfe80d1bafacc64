"""Fused kernels for the chains the compiler joins: Conv2D (+ bias) (+ ReLU) (+ 2×2 max-pool),
and ReLU / nothing + 2×2 max-pool on any image batch.

Layouts as PyTorch: x (N, C, H, W), weight (O, C, KH, KW), conv output (N, O, OH, OW),
pooled (N, O, OH // 2, OW // 2). The pool is 2×2 with stride 2 and no padding (a last odd
row or column is left out, as MaxPool2D does). Every intermediate a node of the chain would
have produced is written out (pre-activation, ReLU output, pooled output), so the network can
show it, unless the caller passes it with 0 samples; ``arg`` (int8, 0..3 = the window
position in row-major order) records each window's winner for the backward pass. Ties go to
the first maximum and a NaN in a window wins, as in ``pool.maxpool2d_forward``; ReLU maps
NaN to 0, as ``activation.relu_forward``.

The conv kernels split the batch into ``nchunks`` slices run in parallel (see
``conv.batch_chunks``); each slice works sample by sample on per-slice buffers: im2col, one
BLAS product, then the epilogue (bias, ReLU, pool) while the sample is still in cache (a
1×1 conv of stride 1 without padding skips the unfolding: ``is_plain_gemm``). The
backward rebuilds the conv output gradient per sample from the pooled gradient and the
winners (adding up the bias gradient on the way), accumulates the weight gradient per slice
in BLAS (``blas.gemm`` with beta = 1) and computes the input gradient only when asked
(``need_dx``). ``convgrid`` runs the same blocks for stride 1 on a padded grid.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numba.extending import register_jitable

from .blas import gemm
from .blas import gemm_arrays as _gemm
from .conv import _col2im, _crop_from, _im2col, _pad_into, _sum_parts
from .jit import njit, prange

TRANSPOSED_MAX_PIXELS = 256
FLIPPED_MAX_GROWTH = 1.2
FLIPPED_MIN_CHANNELS = 16
# dx of a feature-split Dense backward, and the weight gradient of a sample-split one, with at
# least this many numbers is summed from the threads' shares in parallel
DENSE_PARALLEL_SUM = 1 << 17


@njit(parallel=False)
def _pool2(src: np.ndarray, dst: np.ndarray, arg: np.ndarray) -> None:
    """dst (C, PH, PW) = 2×2 / stride 2 max of src (C, H, W); arg = winner 0..3.

    Branch-free selects on unsigned offsets (vectorised); a row holding a NaN is redone."""
    c_n, ph_n, pw_n = dst.shape
    for c in range(c_n):
        for ph in range(ph_n):
            r0 = src[c, 2 * ph]
            r1 = src[c, 2 * ph + 1]
            drow = dst[c, ph]
            arow = arg[c, ph]
            nan = False
            for pw in range(pw_n):
                q = np.uint64(2 * pw)
                a = r0[q]
                b = r0[q + np.uint64(1)]
                c2 = r1[q]
                d = r1[q + np.uint64(1)]
                best = a
                k = np.int8(0)
                gt = b > best
                best = b if gt else best
                k = np.int8(1) if gt else k
                gt = c2 > best
                best = c2 if gt else best
                k = np.int8(2) if gt else k
                gt = d > best
                best = d if gt else best
                k = np.int8(3) if gt else k
                nan |= (a != a) | (b != b) | (c2 != c2) | (d != d)
                drow[np.uint64(pw)] = best
                arow[np.uint64(pw)] = k
            if nan:
                for pw in range(pw_n):
                    q = np.uint64(2 * pw)
                    win = (r0[q], r0[q + np.uint64(1)], r1[q], r1[q + np.uint64(1)])
                    for i in range(4):
                        if win[i] != win[i]:
                            drow[pw] = win[i]
                            arow[pw] = i
                            break


@njit(parallel=False)
def _unpool2(dpool: np.ndarray, pooled: np.ndarray, arg: np.ndarray, relu: bool,
             dst: np.ndarray) -> None:
    """dst (C, H, W), zeroed here, gets each window's gradient at its winner; with ``relu``
    only where the pooled value is > 0 (where the ReLU let the winner through)."""
    c_n, ph_n, pw_n = dpool.shape
    h_n, w_n = dst.shape[1], dst.shape[2]
    df = dst.reshape(dst.size)
    df[:] = 0
    zero = np.zeros(1, dst.dtype)[0]
    for c in range(c_n):
        for ph in range(ph_n):
            grow = dpool[c, ph]
            prow = pooled[c, ph]
            arow = arg[c, ph]
            base = (c * h_n + 2 * ph) * w_n
            for pw in range(pw_n):
                g = grow[np.uint64(pw)]
                if relu:
                    g = g if prow[np.uint64(pw)] > 0 else zero
                k = np.intp(arow[np.uint64(pw)])
                df[np.uint64(base + (k >> 1) * w_n + 2 * pw + (k & 1))] = g


@njit(parallel=False)
def _unpool2_conv(dpool: np.ndarray, pooled: np.ndarray, arg: np.ndarray, relu: bool,
                  dst: np.ndarray, dstt: np.ndarray, bacc: np.ndarray) -> None:
    """``_unpool2`` into dst (C, H, W), and into its transpose dstt (H·W, C) unless dstt is
    empty; bacc (C,) gets the sum of each channel's gradient added (unless it is empty)."""
    c_n, ph_n, pw_n = dpool.shape
    h_n, w_n = dst.shape[1], dst.shape[2]
    trans = dstt.shape[0] > 0
    df = dst.reshape(dst.size)
    tf = dstt.reshape(dstt.size)
    df[:] = 0
    tf[:] = 0
    zero = np.zeros(1, dst.dtype)[0]
    for c in range(c_n):
        s = zero
        for ph in range(ph_n):
            grow = dpool[c, ph]
            prow = pooled[c, ph]
            arow = arg[c, ph]
            for pw in range(pw_n):
                g = grow[np.uint64(pw)]
                if relu:
                    g = g if prow[np.uint64(pw)] > 0 else zero
                s += g
                k = np.intp(arow[np.uint64(pw)])
                p = np.uint64((2 * ph + (k >> 1)) * w_n + 2 * pw + (k & 1))
                df[np.uint64(c * h_n * w_n) + p] = g
                if trans:
                    tf[p * np.uint64(c_n) + np.uint64(c)] = g
        if bacc.shape[0] > 0:
            bacc[c] += s


@register_jitable
def is_plain_gemm(kh: int, kw: int, sh: int, sw: int, pt: int, pl: int, h: int, w: int,
                  oh: int, ow: int) -> bool:
    """Whether a conv is a plain product on the image: 1×1 kernel, stride 1, no padding, so
    the (C, H·W) image is its own im2col (forward, weight gradient) and Wᵀ @ gradient is the
    input gradient (no col2im)."""
    return kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0 \
        and oh == h and ow == w


@njit(parallel=False)
def _forward_slice(x: np.ndarray, w2: np.ndarray, bvec: np.ndarray, has_bias: bool, sh: int,
                   sw: int, pt: int, pl: int, kh: int, kw: int, relu: bool, pool: bool,
                   direct: bool, plain: bool, hb: int, wb: int, keeping: bool,
                   conv_out: bool, relu_out: bool, lo: int, hi: int, yconv: np.ndarray, yrelu: np.ndarray,
                   ypool: np.ndarray, arg: np.ndarray, keep: np.ndarray) -> None:
    """Samples lo..hi of ``conv_block_forward`` on one thread with its own buffers (a plain
    function: Numba's parallel passes over the whole body cost most of the compile)."""
    c_n = x.shape[1]
    o_n, k_n = w2.shape
    oh_n, ow_n = yconv.shape[2], yconv.shape[3]
    p_n = oh_n * ow_n
    buf = np.zeros((c_n, 1 if direct else hb, 1 if direct else wb), dtype=x.dtype)
    own = np.empty((0 if plain else k_n, p_n), dtype=x.dtype)
    sconv = np.empty((0 if conv_out else o_n, oh_n, ow_n), dtype=x.dtype)
    srelu = np.empty((0 if relu_out or not relu else o_n, oh_n, ow_n), dtype=x.dtype)
    for n in range(lo, hi):
        if plain:  # the image is its own im2col
            cols = x[n].reshape(c_n, p_n)
        else:
            cols = keep[n] if keeping else own
            if direct:
                src = x[n]
            else:
                _pad_into(buf, x[n], pt, pl)
                src = buf
            _im2col(src, cols, kh, kw, sh, sw, oh_n, ow_n)
        yc = yconv[n] if conv_out else sconv
        yr = (yrelu[n] if relu_out else srelu) if relu else yc
        yn = yc.reshape(o_n, p_n)
        np.dot(w2, cols, yn)
        if relu:
            rn = yr.reshape(o_n, p_n)
            for o in range(o_n):
                yrow = yn[o]
                rrow = rn[o]
                b = bvec[o]
                for p in range(p_n):
                    v = yrow[p] + b
                    yrow[p] = v
                    rrow[p] = v if v > 0 else 0.0
        elif has_bias:
            for o in range(o_n):
                yrow = yn[o]
                b = bvec[o]
                for p in range(p_n):
                    yrow[p] += b
        if pool:
            _pool2(yr, ypool[n], arg[n])


@njit
def conv_block_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, sh: int, sw: int,
                       pt: int, pl: int, relu: bool, pool: bool, nchunks: int,
                       yconv: np.ndarray, yrelu: np.ndarray, ypool: np.ndarray,
                       arg: np.ndarray, keep: np.ndarray) -> None:
    """Conv2D + bias, then ReLU when ``relu``, then 2×2 max-pool when ``pool``.

    Writes yconv (N, O, OH, OW) (with bias), yrelu (same shape; ignored unless ``relu``),
    ypool and arg (N, O, OH // 2, OW // 2; ignored unless ``pool``). ``bias`` is (O,) or empty.
    ``keep``: (N, C·KH·KW, OH·OW) to keep every sample's im2col for the backward pass, or
    empty (0, ·, ·). A yconv or yrelu given with 0 samples (0, O, OH, OW) is not written:
    the values pass through a per-slice scratch (saves the memory traffic of intermediates
    nobody reads; the chain's last output must be given).
    """
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = yconv.shape[2], yconv.shape[3]
    k_n = c_n * kh * kw
    hp = (oh_n - 1) * sh + kh
    wp = (ow_n - 1) * sw + kw
    direct = pt == 0 and pl == 0 and hp <= h_n and wp <= w_n
    plain = is_plain_gemm(kh, kw, sh, sw, pt, pl, h_n, w_n, oh_n, ow_n)
    hb = max(hp, pt + h_n)
    wb = max(wp, pl + w_n)
    w2 = weight.reshape(o_n, k_n)
    has_bias = bias.shape[0] > 0
    bvec = bias if has_bias else np.zeros(o_n, dtype=x.dtype)
    keeping = keep.shape[0] == n_n and n_n > 0
    conv_out = yconv.shape[0] == n_n
    relu_out = relu and yrelu.shape[0] == n_n
    nch = max(1, min(nchunks, n_n))
    for ch in prange(nch):
        _forward_slice(x, w2, bvec, has_bias, sh, sw, pt, pl, kh, kw, relu, pool, direct, plain,
                       hb, wb, keeping, conv_out, relu_out, ch * n_n // nch, (ch + 1) * n_n // nch,
                       yconv, yrelu, ypool, arg, keep)


def flipped_dx_pays(stride: tuple[int, int], pads: tuple[int, int, int, int],
                    kernel: tuple[int, int], in_chw: tuple[int, int, int],
                    out_hw: tuple[int, int]) -> bool:
    """Whether ``conv_block_backward`` should compute the input gradient ``flipped``: it
    must be stride 1 with each padding below the kernel size. It pays when the padded
    gradient is not much larger than the output (as for "same" padding; a "valid" 5×5 conv
    would multiply by up to twice as many zeros) and the input has enough channels to give
    the product rows (``FLIPPED_MIN_CHANNELS``). Measured on 2 cores, batch 64
    (``conv_block_backward`` alone): digits_cnn's 16->32 3×3 "same" conv on 8×8 took 4-9 %
    less (e.g. 626 -> 574 µs, 506 -> 461 µs); a 6->16 5×5 "same" conv on 14×14 took up to
    35 % more."""
    kh, kw = kernel
    pt, pb, pl, pr = pads
    c, h, w = in_chw
    return (stride == (1, 1) and max(pt, pb) < kh and max(pl, pr) < kw
            and c >= FLIPPED_MIN_CHANNELS
            and h * w <= FLIPPED_MAX_GROWTH * out_hw[0] * out_hw[1])


@njit(parallel=False)
def _flip_kernel(weight: np.ndarray) -> np.ndarray:
    """weight (O, C, KH, KW) as (C, O·KH·KW): [c, (o·KH + i)·KW + j] = weight[o, c, -1-i, -1-j]."""
    o_n, c_n, kh, kw = weight.shape
    out = np.empty((c_n, o_n * kh * kw), weight.dtype)
    for c in range(c_n):
        for o in range(o_n):
            for i in range(kh):
                for j in range(kw):
                    out[c, (o * kh + i) * kw + j] = weight[o, c, kh - 1 - i, kw - 1 - j]
    return out


@njit(parallel=False)
def _backward_slice(x: np.ndarray, weight: np.ndarray, w2: np.ndarray, dout: np.ndarray,
                    mask: np.ndarray, arg: np.ndarray, sh: int, sw: int, pt: int, pl: int,
                    oh_n: int, ow_n: int, relu: bool, pool: bool, need_dx: bool, flip: bool,
                    need_dw: bool, keeping: bool, trans: bool, direct: bool, plain: bool,
                    hb: int, wb: int,
                    lo: int, hi: int, dx: np.ndarray, gacc: np.ndarray, bacc: np.ndarray,
                    keep: np.ndarray) -> None:
    """Samples lo..hi of ``conv_block_backward`` on one thread with its own buffers, adding
    its weight gradient (C·KH·KW, O) to gacc and its bias gradient to bacc (unless bacc is
    empty: no bias) (a plain function: Numba's parallel passes over the whole body cost most
    of the compile)."""
    c_n, h_n, w_n = x.shape[1], x.shape[2], x.shape[3]
    o_n, _, kh, kw = weight.shape
    k_n = c_n * kh * kw
    p_n = oh_n * ow_n
    fk = o_n * kh * kw
    wflip = _flip_kernel(weight) if flip else np.empty((0, fk), x.dtype)  # one per core
    buf = np.zeros((c_n, 1 if direct else hb, 1 if direct else wb), dtype=x.dtype)
    unflipped = need_dx and not flip and not plain
    dbuf = np.zeros((c_n, hb if unflipped and not direct else 1,
                     wb if unflipped and not direct else 1), dtype=x.dtype)
    own = np.empty((0 if keeping or plain else k_n, p_n), dtype=x.dtype)
    dcols = np.empty((k_n if unflipped else 0, p_n), dtype=x.dtype)
    dpad = np.zeros((o_n if flip else 0, h_n + kh - 1, w_n + kw - 1), dtype=x.dtype)
    fcols = np.empty((fk if flip else 0, h_n * w_n), dtype=x.dtype)
    own_grad = np.empty((o_n if relu or pool else 0, p_n), dtype=x.dtype)
    dconvt = np.empty((p_n if trans else 0, o_n), dtype=x.dtype)
    ones = np.ones(p_n, dtype=x.dtype)
    tmpb = np.empty(o_n, dtype=x.dtype)
    for n in range(lo, hi):
        # the conv output's gradient (O, OH·OW): formed in own_grad behind a ReLU or pool,
        # else the given gradient itself (no copy)
        dconv = own_grad if relu or pool else dout[n].reshape(o_n, p_n)
        d3 = dconv.reshape(o_n, oh_n, ow_n)
        if pool:
            _unpool2_conv(dout[n], mask[n], arg[n], relu, d3, dconvt, bacc)
        elif relu:
            dn = dout[n].reshape(o_n, p_n)
            mn = mask[n].reshape(o_n, p_n)
            for o in range(o_n):
                drow = dn[o]
                mrow = mn[o]
                crow = dconv[o]
                for p in range(p_n):
                    crow[p] = drow[p] if mrow[p] > 0 else 0.0
        if not pool and bacc.shape[0] > 0:
            np.dot(dconv, ones, tmpb)
            for o in range(o_n):
                bacc[o] += tmpb[o]
        if need_dw:
            if plain:
                cols = x[n].reshape(c_n, p_n)
            elif keeping:
                cols = keep[n]
            else:
                cols = own
                if direct:
                    src = x[n]
                else:
                    _pad_into(buf, x[n], pt, pl)
                    src = buf
                _im2col(src, cols, kh, kw, sh, sw, oh_n, ow_n)
            if trans:
                gemm(False, False, k_n, o_n, p_n, 1.0, cols.reshape(k_n * p_n), p_n,
                     dconvt.reshape(p_n * o_n), o_n, 1.0, gacc, o_n)
            else:
                gemm(False, True, k_n, o_n, p_n, 1.0, cols.reshape(k_n * p_n), p_n,
                     dconv.reshape(o_n * p_n), p_n, 1.0, gacc, o_n)
        if plain and need_dx:  # dx = Wᵀ @ gradient, written in place: no col2im
            np.dot(w2.T, dconv, dx[n].reshape(c_n, p_n))
        elif flip:
            _pad_into(dpad, d3, kh - 1 - pt, kw - 1 - pl)
            one = np.intp(1)  # not a literal 1: the call reuses _im2col's one compiled variant
            _im2col(dpad, fcols, kh, kw, one, one, h_n, w_n)
            np.dot(wflip, fcols, dx[n].reshape(c_n, h_n * w_n))
        elif need_dx:
            np.dot(w2.T, dconv, dcols)
            if direct:
                _col2im(dcols, dx[n], kh, kw, sh, sw, oh_n, ow_n)
            else:
                _col2im(dcols, dbuf, kh, kw, sh, sw, oh_n, ow_n)
                _crop_from(dx[n], dbuf, pt, pl)


@njit
def conv_block_backward(x: np.ndarray, weight: np.ndarray, dout: np.ndarray,
                        mask: np.ndarray, arg: np.ndarray, sh: int, sw: int, pt: int, pl: int,
                        oh_n: int, ow_n: int, relu: bool, pool: bool, need_dx: bool,
                        flipped: bool, nchunks: int, gweight: np.ndarray, gbias: np.ndarray,
                        keep: np.ndarray) -> np.ndarray:
    """Backward of ``conv_block_forward``.

    ``dout``: gradient of the chain's last output: pooled (N, O, OH // 2, OW // 2) when
    ``pool``, else (N, O, OH, OW). ``mask``: what the ReLU's gradient reads: the pooled output
    when ``pool``, else the conv (or ReLU) output (ignored without ``relu``). Overwrites gweight
    (O, C, KH, KW) and gbias ((O,) or empty); returns dx (N, C, H, W), or an empty
    (0, C, H, W) array when ``need_dx`` is false. ``keep``: the forward's im2col, or empty.
    An empty (0, C, KH, KW) gweight skips the weight (and bias) gradient: a frozen node.

    ``flipped`` (stride 1, padding < kernel size; see ``flipped_dx_pays``): the input gradient
    as the convolution of the zero-padded output gradient with the flipped, transposed kernel,
    one product (C, O·KH·KW) @ (O·KH·KW, H·W) per sample written straight into dx, instead
    of Wᵀ @ gradient (K = O, shallow) and a col2im scatter.

    Small outputs with a pool (OH·OW ≤ ``TRANSPOSED_MAX_PIXELS``) also unpool into the transposed
    gradient (OH·OW, O): the weight gradient is then a product BLAS does ~30% faster there
    (measured: 8×8 and 10×10 outputs).
    """
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    k_n = c_n * kh * kw
    p_n = oh_n * ow_n
    hp = (oh_n - 1) * sh + kh
    wp = (ow_n - 1) * sw + kw
    direct = pt == 0 and pl == 0 and hp <= h_n and wp <= w_n
    hb = max(hp, pt + h_n)
    wb = max(wp, pl + w_n)
    w2 = weight.reshape(o_n, k_n)
    plain = is_plain_gemm(kh, kw, sh, sw, pt, pl, h_n, w_n, oh_n, ow_n)
    keeping = keep.shape[0] == n_n and n_n > 0 and not plain
    trans = pool and p_n <= TRANSPOSED_MAX_PIXELS
    nch = max(1, min(nchunks, n_n))
    flip = need_dx and flipped and not plain
    need_dw = gweight.shape[0] > 0
    dx = np.empty((n_n if need_dx else 0, c_n, h_n, w_n), dtype=x.dtype)
    gparts = np.empty((nch, k_n if need_dw else 0, o_n), dtype=x.dtype)
    bparts = np.empty((nch, o_n if need_dw and gbias.shape[0] > 0 else 0), dtype=np.float64)
    for ch in prange(nch):
        gparts[ch] = 0  # zeroed by the thread that adds to it: the lines stay in its cache
        bparts[ch] = 0
        _backward_slice(x, weight, w2, dout, mask, arg, sh, sw, pt, pl, oh_n, ow_n, relu, pool,
                        need_dx, flip, need_dw, keeping, trans, direct, plain, hb, wb,
                        ch * n_n // nch, (ch + 1) * n_n // nch, dx,
                        gparts[ch].reshape(gparts.shape[1] * o_n), bparts[ch], keep)
    if need_dw:
        _sum_parts(gparts, bparts, gweight, gbias)
    return dx


@njit
def relu_pool2_forward(x: np.ndarray, relu: bool, yrelu: np.ndarray, ypool: np.ndarray,
                       arg: np.ndarray) -> None:
    """ReLU (when ``relu``) then 2×2 / stride 2 max-pool of x (N, C, H, W).

    Writes yrelu (N, C, H, W; ignored unless ``relu``), ypool and arg (N, C, H // 2, W // 2)."""
    n_n, c_n, h_n, w_n = x.shape
    for n in prange(n_n):
        if relu:
            xf = x[n].reshape(c_n * h_n * w_n)
            rf = yrelu[n].reshape(c_n * h_n * w_n)
            for i in range(c_n * h_n * w_n):
                v = xf[i]
                rf[i] = v if v > 0 else 0.0
            _pool2(yrelu[n], ypool[n], arg[n])
        else:
            _pool2(x[n], ypool[n], arg[n])


@njit
def relu_pool2_backward(dpool: np.ndarray, ypool: np.ndarray, arg: np.ndarray, relu: bool,
                        h_n: int, w_n: int) -> np.ndarray:
    """dx (N, C, H, W) of ``relu_pool2_forward`` from the pooled gradient dpool."""
    n_n, c_n = dpool.shape[0], dpool.shape[1]
    dx = np.empty((n_n, c_n, h_n, w_n), dtype=dpool.dtype)
    for n in prange(n_n):
        _unpool2(dpool[n], ypool[n], arg[n], relu, dx[n])
    return dx


@njit(parallel=False)
def _relu_row(src: np.ndarray, dst: np.ndarray) -> None:
    """dst = max(src, 0) for one row (NaN -> 0, as ``activation.relu_forward``)."""
    for o in range(src.shape[0]):
        v = src[o]
        dst[o] = v if v > 0 else 0.0


@njit(parallel=False)
def _dense_grad_row(drow: np.ndarray, mrow: np.ndarray, relu: bool, crow: np.ndarray,
                    acc: np.ndarray) -> None:
    """crow = drow, zero where ``relu`` and the pre-activation mrow is not > 0; acc += crow."""
    zero = np.zeros(1, dtype=crow.dtype)[0]
    for o in range(drow.shape[0]):
        g = drow[o]
        if relu:
            g = g if mrow[o] > 0 else zero
        crow[o] = g
        acc[o] += g


@njit(parallel=False)
def _sum_parts_rows(parts: np.ndarray, dx: np.ndarray, r0: int, r1: int) -> None:
    """dx[r] = parts[0, r] + parts[1, r] + … for rows r0 <= r < r1, in part order."""
    i_n = dx.shape[1]
    for i in range(r0, r1):
        drow = dx[i]
        first = parts[0, i]
        for j in range(i_n):
            drow[j] = first[j]
        for c in range(1, parts.shape[0]):
            prow = parts[c, i]
            for j in range(i_n):
                drow[j] += prow[j]


@njit(parallel=False)
def dense_small_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, relu: bool,
                        nchunks: int, y: np.ndarray, yrelu: np.ndarray) -> None:
    """``dense_forward`` on the calling thread, for products given one slice
    (``layers.dense.dense_chunks``; ``nchunks`` is ignored): a parallel kernel wakes every
    thread of the pool even for one slice, and waits for all of them at its end. Same
    arguments and same arithmetic as ``dense_forward`` with one slice."""
    n_n = x.shape[0]
    o_n = weight.shape[0]
    has_bias = bias.shape[0] > 0
    if n_n > 0:
        np.dot(x, weight.T, y)
    for i in range(n_n):
        yrow = y[i]
        if has_bias:
            for o in range(o_n):
                yrow[o] += bias[o]
        if relu:
            _relu_row(yrow, yrelu[i])


@njit(parallel=False)
def dense_small_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, ypre: np.ndarray,
                         relu: bool, need_dx: bool, nchunks: int, gweight: np.ndarray,
                         gbias: np.ndarray, blas: int) -> np.ndarray:
    """``dense_backward`` on the calling thread (see ``dense_small_forward``): the output
    gradient dz (N, O), gweight = dzᵀ @ x, gbias = Σ dz (summed in float64) and dx = dz @
    weight (an empty (0, I) array unless ``need_dx``); an empty (0, I) gweight skips the
    weight gradient. Same arguments and same arithmetic as ``dense_backward`` with one
    slice."""
    n_n, i_n = x.shape
    o_n = weight.shape[0]
    has_bias = gbias.shape[0] > 0
    need_dw = gweight.shape[0] > 0
    dx = np.empty((n_n if need_dx else 0, i_n), dtype=x.dtype)
    dz = np.empty((n_n, o_n), dtype=x.dtype)
    acc = np.zeros(o_n, dtype=np.float64)
    for n in range(n_n):
        _dense_grad_row(dy[n], ypre[n], relu, dz[n], acc)
    if has_bias:
        for o in range(o_n):
            gbias[o] = acc[o]
    if need_dw:
        if n_n > 0:
            _gemm(blas, dz.T, x, gweight)
        else:
            gf = gweight.reshape(gweight.size)
            for i in range(gf.shape[0]):  # a loop, not an array fill (compile time)
                gf[i] = 0
    if need_dx and n_n > 0:
        _gemm(blas, dz, weight, dx)
    return dx


def dense_kernels(chunks: int, by_rows: bool = False) -> tuple[Any, Any]:
    """The (forward, backward) Dense kernels for a product cut into ``chunks`` slices: the
    serial pair for one slice, else the pair split by samples (``by_rows``) or by output
    features. All three pairs take the same arguments."""
    if chunks <= 1:
        return dense_small_forward, dense_small_backward
    if by_rows:
        return dense_rows_forward, dense_rows_backward
    return dense_forward, dense_backward


@njit
def dense_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, relu: bool,
                  nchunks: int, y: np.ndarray, yrelu: np.ndarray) -> None:
    """y (N, O) = x (N, I) @ weight (O, I).T + bias, and yrelu = max(y, 0) when ``relu``
    (else ignored). ``bias`` is (O,) or empty.

    The output features are split over the threads: each multiplies the whole batch by its
    block of weight rows (BLAS packs each weight block once; splitting the batch instead,
    ``dense_rows_forward``, packs the whole weight matrix on every thread)."""
    n_n = x.shape[0]
    o_n = weight.shape[0]
    has_bias = bias.shape[0] > 0
    och = max(1, min(nchunks, o_n))
    for ch in prange(och):
        a = ch * o_n // och
        b = (ch + 1) * o_n // och
        tmp = np.empty((n_n, b - a), dtype=x.dtype)
        if n_n > 0:
            np.dot(x, weight[a:b].T, tmp)  # SciPy's BLAS: numpy's is slower on this NT form
        for i in range(n_n):
            trow = tmp[i]
            yrow = y[i, a:b]
            for o in range(b - a):
                v = trow[o] + bias[a + o] if has_bias else trow[o]
                yrow[o] = v
            if relu:
                _relu_row(yrow, yrelu[i, a:b])


@njit
def dense_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, ypre: np.ndarray,
                   relu: bool, need_dx: bool, nchunks: int, gweight: np.ndarray,
                   gbias: np.ndarray, blas: int) -> np.ndarray:
    """Backward of ``dense_forward``: dy (N, O) is the gradient of the last output (of the
    ReLU when ``relu``; ``ypre`` is then the pre-activation y). Overwrites gweight (O, I) and
    gbias ((O,) or empty); returns dx (N, I), or an empty (0, I) array unless ``need_dx``.
    An empty (0, I) gweight skips the weight gradient (a frozen node). ``blas``: the address
    of numpy's CBLAS for the dtype (``blas.blas_address``; 0: ``np.dot``), faster than
    SciPy's on these TN and NN products (not on the forward's NT one); x and weight
    C-contiguous.

    One parallel region, split over output features: each thread forms its block of the
    output gradient, its rows of the weight gradient and its share of dx (its block of dz
    times its rows of the weight); the shares are then added in block order (on one thread
    for small dx: a second parallel region costs more than the sum), so the result does not
    depend on which thread ran a block."""
    n_n, i_n = x.shape
    o_n = weight.shape[0]
    has_bias = gbias.shape[0] > 0
    need_dw = gweight.shape[0] > 0
    och = max(1, min(nchunks, o_n))
    dx = np.empty((n_n if need_dx else 0, i_n), dtype=x.dtype)
    split_dx = need_dx and och > 1 and n_n > 0
    parts = np.empty((och if split_dx else 0, n_n, i_n), dtype=x.dtype)
    for ch in prange(och):
        a = ch * o_n // och
        b = (ch + 1) * o_n // och
        dzc = np.empty((n_n, b - a), dtype=x.dtype)
        acc = np.zeros(b - a, dtype=np.float64)
        for n in range(n_n):
            _dense_grad_row(dy[n, a:b], ypre[n, a:b], relu, dzc[n], acc)
        if has_bias:
            for o in range(b - a):
                gbias[a + o] = acc[o]
        if need_dw:
            if n_n > 0:
                _gemm(blas, dzc.T, x, gweight[a:b])
            else:
                gweight[a:b] = 0
        if need_dx and n_n > 0:
            if split_dx:
                _gemm(blas, dzc, weight[a:b], parts[ch])
            else:
                _gemm(blas, dzc, weight, dx)
    if split_dx:
        if n_n * i_n >= DENSE_PARALLEL_SUM:
            rch = max(1, min(nchunks, n_n))
            for ch in prange(rch):
                _sum_parts_rows(parts, dx, ch * n_n // rch, (ch + 1) * n_n // rch)
        else:
            _sum_parts_rows(parts, dx, 0, n_n)
    return dx


@njit
def dense_rows_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, relu: bool,
                       nchunks: int, y: np.ndarray, yrelu: np.ndarray) -> None:
    """``dense_forward`` with the batch split over the threads instead: each slice multiplies
    its own rows of x (N, I) by the whole weight (O, I) and writes its rows of y and yrelu.

    A thread then reads only the samples it produced in a batch-split kernel before (a conv
    block): reading the other core's samples makes that core's next write to them wait for
    the copies to be invalidated, which costs much more when the cores share no cache
    (``DenseBlock``)."""
    n_n = x.shape[0]
    o_n = weight.shape[0]
    has_bias = bias.shape[0] > 0
    nch = max(1, min(nchunks, n_n))
    for ch in prange(nch):
        a = ch * n_n // nch
        b = (ch + 1) * n_n // nch
        if b > a:
            np.dot(x[a:b], weight.T, y[a:b])
        for i in range(a, b):
            yrow = y[i]
            if has_bias:
                for o in range(o_n):
                    yrow[o] += bias[o]
            if relu:
                _relu_row(yrow, yrelu[i])


@njit
def dense_rows_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, ypre: np.ndarray,
                        relu: bool, need_dx: bool, nchunks: int, gweight: np.ndarray,
                        gbias: np.ndarray, blas: int) -> np.ndarray:
    """``dense_backward`` with the batch split over the threads, as ``dense_rows_forward``.

    Each slice forms its rows' output gradient, their input gradient (rows of dx) and a
    partial weight and bias gradient; the partials are then added in slice order (split over
    output features in a second parallel region when the weight holds at least
    ``DENSE_PARALLEL_SUM`` numbers, else on the calling thread), so the result does not
    depend on which thread ran a slice. An empty
    (0, I) gweight skips the weight gradient. The
    weight-gradient product reads a copy of the slice's rows of x: BLAS reads past the end of
    an operand, into the next slice's rows."""
    n_n, i_n = x.shape
    o_n = weight.shape[0]
    has_bias = gbias.shape[0] > 0
    need_dw = gweight.shape[0] > 0
    nch = max(1, min(nchunks, n_n))
    gparts = np.empty((nch, o_n if need_dw else 0, i_n), dtype=x.dtype)
    bparts = np.empty((nch, o_n), dtype=np.float64)
    dx = np.empty((n_n if need_dx else 0, i_n), dtype=x.dtype)
    for ch in prange(nch):
        a = ch * n_n // nch
        b = (ch + 1) * n_n // nch
        dz = np.empty((b - a, o_n), dtype=x.dtype)
        acc = bparts[ch]
        acc[:] = 0.0
        for n in range(a, b):
            _dense_grad_row(dy[n], ypre[n], relu, dz[n - a], acc)
        if b > a:
            if need_dw:
                _gemm(blas, dz.T, x[a:b].copy(), gparts[ch])
            if need_dx:
                _gemm(blas, dz, weight, dx[a:b])
        else:
            gparts[ch][:] = 0
    if need_dw and o_n * i_n >= DENSE_PARALLEL_SUM:
        och = max(1, min(nchunks, o_n))
        for ch in prange(och):
            _sum_slices(gparts, bparts, need_dw, has_bias, gweight, gbias,
                        ch * o_n // och, (ch + 1) * o_n // och)
    else:  # small: a second parallel region costs more than the sum
        _sum_slices(gparts, bparts, need_dw, has_bias, gweight, gbias, 0, o_n)
    return dx


@njit(parallel=False)
def _sum_slices(gparts: np.ndarray, bparts: np.ndarray, need_dw: bool, has_bias: bool,
                gweight: np.ndarray, gbias: np.ndarray, o0: int, o1: int) -> None:
    """Rows o0 <= o < o1 of gweight (O, I) and gbias (O,) as the sums of the slices' parts
    gparts (slices, O, I) and bparts (slices, O), in slice order."""
    nch, i_n = gparts.shape[0], gweight.shape[1]
    for o in range(o0, o1):
        if need_dw:
            grow = gweight[o]
            first = gparts[0, o]
            for i in range(i_n):  # a loop, not an array copy (compile time, see _sum_parts)
                grow[i] = first[i]
            for s in range(1, nch):
                prow = gparts[s, o]
                for i in range(i_n):
                    grow[i] += prow[i]
        if has_bias:
            t = 0.0
            for s in range(nch):
                t += bparts[s, o]
            gbias[o] = t


from . import fused_serial  # noqa: E402  (the serial stand-ins; see that module)

fused_serial.install(sys.modules[__name__])

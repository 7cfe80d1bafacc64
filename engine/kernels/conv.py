"""Conv2D kernels: forward, and one fused backward giving the input, weight and bias gradients.

Layouts follow PyTorch: x (N, C, H, W), weight (O, C, KH, KW), y (N, O, OH, OW).
The batch is split into ``nchunks`` contiguous slices run in parallel (pass the number of
threads, see ``batch_chunks``). Each slice allocates its buffers once, then per sample copies
the image into a zero-padded buffer, unfolds it (im2col, (C·KH·KW, OH·OW)) and multiplies the
small per-sample matrices with BLAS (``np.dot``).

Padding is given as ``pad_top`` / ``pad_left`` zeros before the image; the bottom and right
padding follow from the output size (windows that reach past the image read zeros), so
TensorFlow's asymmetric "same" padding needs nothing special.
"""

from __future__ import annotations

import numba
import numpy as np

from .jit import njit, prange


def batch_chunks(n: int) -> int:
    """How many parallel slices to cut a batch of ``n`` samples into: one per Numba thread."""
    return max(1, min(int(n), numba.get_num_threads()))


@njit(parallel=False)
def _pad_into(buf: np.ndarray, img: np.ndarray, pt: int, pl: int) -> None:
    """Copy img (C, H, W) into buf (C, Hb, Wb) at (pt, pl); the border of buf stays as it is."""
    c_n, h_n, w_n = img.shape
    for c in range(c_n):
        for h in range(h_n):
            src = img[c, h]
            dst = buf[c, pt + h, pl:]
            for w in range(w_n):
                dst[w] = src[w]


@njit(parallel=False)
def _crop_from(dst: np.ndarray, buf: np.ndarray, pt: int, pl: int) -> None:
    """dst (C, H, W) = buf[:, pt:pt+H, pl:pl+W]."""
    c_n, h_n, w_n = dst.shape
    for c in range(c_n):
        for h in range(h_n):
            src = buf[c, pt + h, pl:]
            row = dst[c, h]
            for w in range(w_n):
                row[w] = src[w]


@njit(parallel=False)
def _im2col(src: np.ndarray, cols: np.ndarray, kh: int, kw: int, sh: int, sw: int,
            oh_n: int, ow_n: int) -> None:
    """cols[(c·KH + i)·KW + j, oh·OW + ow] = src[c, oh·sh + i, ow·sw + j]."""
    c_n = src.shape[0]
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                for oh in range(oh_n):
                    srow = src[c, oh * sh + i, j:]
                    drow = row[oh * ow_n:]
                    if sw == 1:
                        for ow in range(ow_n):
                            drow[ow] = srow[ow]
                    else:
                        for ow in range(ow_n):
                            drow[ow] = srow[ow * sw]


@njit(parallel=False)
def _col2im(cols: np.ndarray, dst: np.ndarray, kh: int, kw: int, sh: int, sw: int,
            oh_n: int, ow_n: int) -> None:
    """The adjoint of ``_im2col``: dst (zeroed here) gets every column entry added back."""
    dst[...] = 0
    c_n = dst.shape[0]
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = cols[(c * kh + i) * kw + j]
                for oh in range(oh_n):
                    drow = dst[c, oh * sh + i, j:]
                    srow = row[oh * ow_n:]
                    if sw == 1:
                        for ow in range(ow_n):
                            drow[ow] += srow[ow]
                    else:
                        for ow in range(ow_n):
                            drow[ow * sw] += srow[ow]


@njit
def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, sh: int, sw: int,
                   pt: int, pl: int, oh_n: int, ow_n: int, nchunks: int) -> np.ndarray:
    """y (N, O, OH, OW) = conv(x (N, C, H, W), weight (O, C, KH, KW)) + bias.

    ``bias`` is (O,) or empty (no bias). Arrays must be C-contiguous and of one dtype.
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
    has_bias = bias.shape[0] > 0
    y = np.empty((n_n, o_n, oh_n, ow_n), dtype=x.dtype)
    nch = max(1, min(nchunks, n_n))
    for ch in prange(nch):
        buf = np.zeros((c_n, 1 if direct else hb, 1 if direct else wb), dtype=x.dtype)
        cols = np.empty((k_n, p_n), dtype=x.dtype)
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            if direct:
                src = x[n]
            else:
                _pad_into(buf, x[n], pt, pl)
                src = buf
            _im2col(src, cols, kh, kw, sh, sw, oh_n, ow_n)
            yn = y[n].reshape(o_n, p_n)
            np.dot(w2, cols, yn)
            if has_bias:
                for o in range(o_n):
                    yrow = yn[o]
                    b = bias[o]
                    for p in range(p_n):
                        yrow[p] += b
    return y


@njit
def conv2d_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, sh: int, sw: int,
                    pt: int, pl: int, nchunks: int, gweight: np.ndarray,
                    gbias: np.ndarray) -> np.ndarray:
    """Gradients of sum(y * dy) for ``conv2d_forward``: returns dx (N, C, H, W) and overwrites
    gweight (O, C, KH, KW) and gbias ((O,), or empty when the layer has no bias)."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = dy.shape[2], dy.shape[3]
    k_n = c_n * kh * kw
    p_n = oh_n * ow_n
    hp = (oh_n - 1) * sh + kh
    wp = (ow_n - 1) * sw + kw
    direct = pt == 0 and pl == 0 and hp <= h_n and wp <= w_n
    hb = max(hp, pt + h_n)
    wb = max(wp, pl + w_n)
    w2 = weight.reshape(o_n, k_n)
    nch = max(1, min(nchunks, n_n))
    dx = np.empty_like(x)
    gparts = np.zeros((nch, o_n, k_n), dtype=x.dtype)
    bparts = np.zeros((nch, o_n), dtype=np.float64)
    for ch in prange(nch):
        buf = np.zeros((c_n, 1 if direct else hb, 1 if direct else wb), dtype=x.dtype)
        dbuf = np.zeros((c_n, 1 if direct else hb, 1 if direct else wb), dtype=x.dtype)
        cols = np.empty((k_n, p_n), dtype=x.dtype)
        dcols = np.empty((k_n, p_n), dtype=x.dtype)
        tmp = np.empty((o_n, k_n), dtype=x.dtype)
        gacc = gparts[ch]
        bacc = bparts[ch]
        for n in range(ch * n_n // nch, (ch + 1) * n_n // nch):
            if direct:
                src = x[n]
                dst = dx[n]
            else:
                _pad_into(buf, x[n], pt, pl)
                src = buf
                dst = dbuf
            _im2col(src, cols, kh, kw, sh, sw, oh_n, ow_n)
            dyn = dy[n].reshape(o_n, p_n)
            np.dot(dyn, cols.T, tmp)
            for o in range(o_n):
                grow = gacc[o]
                trow = tmp[o]
                for k in range(k_n):
                    grow[k] += trow[k]
                drow = dyn[o]
                s = 0.0
                for p in range(p_n):
                    s += drow[p]
                bacc[o] += s
            np.dot(w2.T, dyn, dcols)
            _col2im(dcols, dst, kh, kw, sh, sw, oh_n, ow_n)
            if not direct:
                _crop_from(dx[n], dbuf, pt, pl)
    gw2 = gweight.reshape(o_n, k_n)
    gw2[...] = 0
    for ch in range(nch):
        gw2 += gparts[ch]
    if gbias.shape[0] > 0:
        for o in range(o_n):
            s = 0.0
            for ch in range(nch):
                s += bparts[ch, o]
            gbias[o] = s
    return dx

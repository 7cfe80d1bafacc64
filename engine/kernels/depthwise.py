"""Stride-1 depthwise Conv2D kernels on flat padded planes (``kernels.groupconv`` calls them
for stride 1; other strides keep its row kernels).

A (sample, channel) plane is copied into a zero-bordered scratch plane of row length L; each
tap (i, j) of the filter is then one offset ``i·dh·L + j·dw`` into it, and a whole output
plane is one long unit-stride loop per tap over OH·L positions (the L - OW positions at the
end of each row are computed and dropped). Long loops vectorise; rows of 28 values mostly do
not (a vector loop of 4 × 16 floats leaves them to its scalar remainder).

The backward reads the output gradient from one such plane D, bordered so that the input
gradient is the forward of D with the flipped filter (a gather: no zeroing of dx, no
scattered adds) and the weight gradient per tap the dot of D with the input plane shifted
by the tap: its products are added element-wise over the samples (float32, long loops that
vectorise) and summed once at the end in float64. Work is split over channels and, when
there are few channels, slices of the batch (a split that depends on the shapes only, so
the result does not depend on the number of threads); a task's scratch planes are zeroed
once, only their interiors are rewritten per sample, so their borders stay zero.
"""

from __future__ import annotations

import numpy as np

from .jit import njit, prange

SLICES = 64  # parallel slices of the planes at most (each allocates its scratch once)


@njit(parallel=False)
def _flat_fits(kh: int, kw: int, dh: int, dw: int, pt: int, pb: int, pl: int, pr: int) -> bool:
    """Whether the backward's gather form applies: no padding wider than the filter's reach
    ((k - 1)·d on each side)."""
    return max(pt, pb) <= (kh - 1) * dh and max(pl, pr) <= (kw - 1) * dw


@njit(parallel=False)
def _put(dst: np.ndarray, src: np.ndarray, r0: int, c0: int, row: int) -> None:
    """Copy plane ``src`` (H, W) into flat ``dst`` (rows of ``row``) at (r0, c0)."""
    h_n, w_n = src.shape
    u = np.uint64
    for h in range(h_n):
        base = u((r0 + h) * row + c0)
        s = src[h]
        for w in range(w_n):
            dst[base + u(w)] = s[w]


@njit
def _depthwise_forward_s1(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, dh: int, dw: int,
                         pt: int, pl: int, y: np.ndarray) -> None:
    """y (N, O, OH, OW) of a stride-1 depthwise conv (filter o reads channel o // (O / C))."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    mult = o_n // c_n
    k_n = kh * kw
    row = max(ow_n + (kw - 1) * dw, pl + w_n)
    rows = max(oh_n + (kh - 1) * dh, pt + h_n) + 1  # + 1: the last row's overrun
    p_n = oh_n * row
    has_bias = bias.shape[0] > 0
    tasks = n_n * o_n
    nch = max(1, min(tasks, SLICES))
    u = np.uint64
    for ch in prange(nch):
        xb = np.zeros(rows * row, x.dtype)
        yb = np.empty(p_n, x.dtype)
        for t in range(ch * tasks // nch, (ch + 1) * tasks // nch):
            n = t // o_n
            o = t % o_n
            _put(xb, x[n, o // mult], pt, pl, row)
            b = bias[o] if has_bias else x.dtype.type(0)
            for p in range(p_n):
                yb[p] = b
            for k in range(k_n):
                wv = weight[o, 0, k // kw, k % kw]
                off = u((k // kw) * dh * row + (k % kw) * dw)
                for p in range(p_n):
                    yb[p] += wv * xb[off + u(p)]
            yo = y[n, o]
            for oh in range(oh_n):
                base = u(oh * row)
                for ow in range(ow_n):
                    yo[oh, ow] = yb[base + u(ow)]


@njit
def _depthwise_backward_s1(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, dh: int, dw: int,
                          pt: int, pl: int, gweight: np.ndarray, gbias: np.ndarray
                          ) -> np.ndarray:
    """Backward of a stride-1 depthwise conv whose padding ``_flat_fits``: returns dx
    (N, C, H, W); overwrites gweight (O, 1, KH, KW) and gbias ((O,) or empty)."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = dy.shape[2], dy.shape[3]
    mult = o_n // c_n
    k_n = kh * kw
    a = (kh - 1) * dh - pt  # where dy sits in D: D[a + oh, b + ow] = dy[oh, ow]
    b = (kw - 1) * dw - pl
    row = w_n + max(ow_n + (kw - 1) * dw - w_n, (kw - 1) * dw)  # W + max(pl + pr, reach)
    rows_x = oh_n + (kh - 1) * dh + 1
    rows_d = h_n + (kh - 1) * dh + 1
    p_n = oh_n * row  # positions of the weight-gradient sums
    q_n = h_n * row  # positions of the input-gradient gather
    has_bias = gbias.shape[0] > 0
    # tasks: channel c over the batch slice s (samples s·N/S … (s+1)·N/S - 1)
    n_s = max(1, min(n_n, SLICES // c_n))
    gparts = np.zeros((n_s, o_n * k_n), np.float64)
    bparts = np.zeros((n_n, o_n), np.float64)
    dx = np.empty_like(x)
    u = np.uint64
    for t in prange(c_n * n_s):
        c = t // n_s
        sl = t % n_s
        xb = np.zeros(rows_x * row, x.dtype)
        db = np.zeros(rows_d * row, x.dtype)
        gb = np.empty(q_n, x.dtype)
        rk = np.zeros(mult * k_n * p_n, x.dtype)  # per tap, its products summed over samples
        offs = np.empty(k_n, np.uint64)
        flip = np.empty(k_n, np.uint64)
        for k in range(k_n):
            i, j = k // kw, k % kw
            offs[k] = u(i * dh * row + j * dw)
            flip[k] = u((kh - 1 - i) * dh * row + (kw - 1 - j) * dw)
        od = u(a * row + b)
        for n in range(sl * n_n // n_s, (sl + 1) * n_n // n_s):
            _put(xb, x[n, c], pt, pl, row)
            for m in range(mult):
                o = c * mult + m
                _put(db, dy[n, o], a, b, row)
                if has_bias:
                    s = 0.0
                    d2 = dy[n, o]
                    for oh in range(oh_n):
                        for ow in range(ow_n):
                            s += d2[oh, ow]
                    bparts[n, o] = s
                # weight gradient: per tap, D × (x shifted by the tap), element-wise
                for k in range(k_n):
                    rb = u((m * k_n + k) * p_n)
                    xo = offs[k]
                    for p in range(p_n):
                        rk[rb + u(p)] += db[od + u(p)] * xb[xo + u(p)]
                # input gradient: D through the flipped filter (gather)
                for k in range(k_n):
                    wv = weight[o, 0, k // kw, k % kw]
                    fo = flip[k]
                    if k == 0 and m == 0:
                        for q in range(q_n):
                            gb[q] = wv * db[fo + u(q)]
                    else:
                        for q in range(q_n):
                            gb[q] += wv * db[fo + u(q)]
            dxo = dx[n, c]
            for h in range(h_n):
                base = u(h * row)
                for w in range(w_n):
                    dxo[h, w] = gb[base + u(w)]
        for mk in range(mult * k_n):
            tot = 0.0
            for p in range(p_n):
                tot += rk[mk * p_n + p]
            gparts[sl, c * mult * k_n + mk] = tot
    for k in range(o_n * k_n):
        tot = 0.0
        for sl in range(n_s):
            tot += gparts[sl, k]
        gweight[k // k_n, 0, (k % k_n) // kw, k % kw] = tot
    if has_bias:
        for o in range(o_n):
            tot = 0.0
            for n in range(n_n):
                tot += bparts[n, o]
            gbias[o] = tot
    return dx

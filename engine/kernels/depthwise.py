"""Direct depthwise 3×3 Conv2D kernels (any stride, dilation and padding; ``kernels.groupconv``
calls them for every 3×3 depthwise conv, its row kernels for other filter sizes).

A depthwise 3×3 does 9 multiply-adds per value it reads: it is bound by memory traffic, so
these kernels read each (sample, channel) plane once, straight from the caller's arrays (no
padded copies, no unfolding). An output row is one loop over its columns with all 9 taps in
its body (three source rows, three shifted reads each), which vectorises over the columns
and keeps the sum in registers. Rows above or below the image read a shared zero row; the
few columns whose taps cross the left or right edge run a bounds-checked loop.

The backward reads each pair of planes (input, output gradient) once for both gradients:
stride 1 gathers dx as the correlation of dy with the flipped filter (no zeroing, no
scattered adds), other strides scatter it; the weight gradient is 9 dot products per row
(``_wgrad3``, the only code here compiled with reassociation, so its sums vectorise), added
per row in float64. Work is split over channels and, when there are few, slices of the batch
(a split that depends on the shapes only: results do not depend on the number of threads);
each slice keeps its own float64 partial sums, added in order at the end.
"""

from __future__ import annotations

import numpy as np

from .jit import njit, prange

SLICES = 64  # parallel slices of the backward at most (channels × batch slices)


@njit(parallel=False)
def _inside(n_out: int, n_in: int, s: int, p: int, reach: int) -> tuple[int, int]:
    """(lo, hi): the outputs o in lo … hi-1 whose taps o·s - p + 0 … reach all fall inside
    0 … n_in - 1 (the others, at the edges, need bounds checks); ``p`` may be negative."""
    lo = min(max(0, -((-p) // s)), n_out)  # ceil(p / s): the first o with o·s - p ≥ 0
    top = n_in - 1 - reach + p
    hi = top // s + 1 if top >= 0 else 0
    return lo, min(max(hi, lo), n_out)


@njit(parallel=False)
def _edge(xf: np.ndarray, w9: np.ndarray, v: float, w_n: int, ih: int, dh: int, i_lo: int,
          i_hi: int, c: int, dw: int) -> float:
    """v + Σ w9[3i + j]·xf[(ih + i·dh)·W + c + j·dw] over the rows i_lo … i_hi-1 and the
    columns c + j·dw inside 0 … W - 1: one output column at an edge."""
    j_lo, j_hi = _span(c, dw, w_n)
    for i in range(i_lo, i_hi):
        rb = (ih + i * dh) * w_n + c
        for j in range(j_lo, j_hi):
            v += w9[3 * i + j] * xf[rb + j * dw]
    return v


@njit(parallel=False)
def _span(c: int, d: int, w_n: int) -> tuple[int, int]:
    """(j_lo, j_hi): the taps j in j_lo … j_hi-1 whose positions c + j·d are inside
    0 … n-1 (``w_n`` = n): columns of a row, or rows (``c`` the first row, ``d`` the
    dilation, ``w_n`` the height) of a plane."""
    j_lo = 0
    while j_lo < 3 and c + j_lo * d < 0:
        j_lo += 1
    j_hi = j_lo
    while j_hi < 3 and c + j_hi * d < w_n:
        j_hi += 1
    return j_lo, j_hi


@njit(parallel=False)
def _edge_col(xf: np.ndarray, w9: np.ndarray, b: float, w_n: int, dh: int, dw: int, ih0: int,
              c: int, r_lo: int, r_hi: int, yf: np.ndarray, y0: int, ys: int) -> None:
    """yf[y0 + r·ys] = b + its taps for the rows r_lo … r_hi-1 of one edge column of a
    stride-1 plane: source rows ih0 + r + i·dh (all inside), columns c + j·dw (only those
    inside: their range found once for the whole column)."""
    j_lo, j_hi = _span(c, dw, w_n)
    s1 = dh * w_n
    if j_hi - j_lo == 2:  # padding 1: two taps of each row, written out
        a0, b0 = w9[j_lo], w9[j_lo + 1]
        a1, b1 = w9[3 + j_lo], w9[4 + j_lo]
        a2, b2 = w9[6 + j_lo], w9[7 + j_lo]
        for r in range(r_lo, r_hi):
            rb = (ih0 + r) * w_n + c + j_lo * dw
            yf[y0 + r * ys] = (b + a0 * xf[rb] + b0 * xf[rb + dw] + a1 * xf[rb + s1]
                               + b1 * xf[rb + s1 + dw] + a2 * xf[rb + 2 * s1]
                               + b2 * xf[rb + 2 * s1 + dw])
        return
    for r in range(r_lo, r_hi):
        rb = (ih0 + r) * w_n + c
        v = b
        for i in range(3):
            ri = rb + i * s1
            for j in range(j_lo, j_hi):
                v += w9[3 * i + j] * xf[ri + j * dw]
        yf[y0 + r * ys] = v


@njit(parallel=False)
def _row(xf: np.ndarray, w9: np.ndarray, b: float, h_n: int, w_n: int, ih: int, dh: int,
         sw: int, dw: int, pl: int, lo: int, hi: int, add: bool, yf: np.ndarray, yb: int,
         ow_n: int) -> None:
    """Output row yf[yb … yb + OW - 1] of ``_corr3`` from source rows ih, ih + dh, ih + 2·dh of
    the flat plane xf (H·W): columns lo … hi-1 in one loop (all 9 taps in its body when the
    three rows are inside), the others bounds checked."""
    u = np.uint64  # unsigned offsets: no negative-index handling, so the loops vectorise
    i_lo, i_hi = _span(ih, dh, h_n)
    if i_lo == 0 and i_hi == 3:
        a1, a2 = u(dw), u(2 * dw)
        a3, a6 = u(dh * w_n), u(2 * dh * w_n)
        a4, a5, a7, a8 = a3 + a1, a3 + a2, a6 + a1, a6 + a2
        w00, w01, w02, w10, w11, w12, w20, w21, w22 = (w9[0], w9[1], w9[2], w9[3], w9[4],
                                                       w9[5], w9[6], w9[7], w9[8])
        for ow in range(lo, hi):
            c = u(ih * w_n + ow * sw - pl)
            v = (b + w00 * xf[c] + w01 * xf[c + a1] + w02 * xf[c + a2]
                 + w10 * xf[c + a3] + w11 * xf[c + a4] + w12 * xf[c + a5]
                 + w20 * xf[c + a6] + w21 * xf[c + a7] + w22 * xf[c + a8])
            o = u(yb + ow)
            yf[o] = yf[o] + v if add else v
    else:  # rows missing above or below: one vector loop per row inside
        a1, a2 = u(dw), u(2 * dw)
        for i in range(i_lo, i_hi):
            w0, w1, w2 = w9[3 * i], w9[3 * i + 1], w9[3 * i + 2]
            first = i == i_lo and not add
            for ow in range(lo, hi):
                c = u((ih + i * dh) * w_n + ow * sw - pl)
                v = w0 * xf[c] + w1 * xf[c + a1] + w2 * xf[c + a2]
                if i == i_lo:
                    v += b
                o = u(yb + ow)
                yf[o] = v if first else yf[o] + v
        if i_hi == i_lo:
            for ow in range(lo, hi):
                yf[yb + ow] = yf[yb + ow] + b if add else b
    for ow in range(lo):
        v = _edge(xf, w9, b, w_n, ih, dh, i_lo, i_hi, ow * sw - pl, dw)
        yf[yb + ow] = yf[yb + ow] + v if add else v
    for ow in range(hi, ow_n):
        v = _edge(xf, w9, b, w_n, ih, dh, i_lo, i_hi, ow * sw - pl, dw)
        yf[yb + ow] = yf[yb + ow] + v if add else v


@njit(parallel=False)
def _flat3(xf: np.ndarray, w9: np.ndarray, b: float, w_n: int, dh: int, dw: int, pt: int,
           pl: int, p0: int, p1: int, yf: np.ndarray) -> None:
    """yf[p] = b + Σ_ij w9[3i + j]·xf[p + (i·dh - pt)·W + j·dw - pl] for p0 ≤ p < p1: a
    stride-1 plane whose output rows are as wide as its input rows, as one long loop (rows
    of a few dozen values leave a 16-wide vector loop to its scalar remainder). Columns
    whose taps cross an edge get wrapped reads: the caller redoes them."""
    u = np.uint64
    a1, a2 = u(dw), u(2 * dw)
    a3, a6 = u(dh * w_n), u(2 * dh * w_n)
    a4, a5, a7, a8 = a3 + a1, a3 + a2, a6 + a1, a6 + a2
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = (w9[0], w9[1], w9[2], w9[3], w9[4], w9[5],
                                                   w9[6], w9[7], w9[8])
    xs = u(p0 - pt * w_n - pl)  # ≥ 0: p0 is the first interior position
    ys = u(p0)
    for q in range(p1 - p0):
        c = xs + u(q)
        yf[ys + u(q)] = (b + w00 * xf[c] + w01 * xf[c + a1] + w02 * xf[c + a2]
                         + w10 * xf[c + a3] + w11 * xf[c + a4] + w12 * xf[c + a5]
                         + w20 * xf[c + a6] + w21 * xf[c + a7] + w22 * xf[c + a8])


@njit(parallel=False)
def _flat_rows(oh_n: int, ow_n: int, h_n: int, w_n: int, sh: int, sw: int, dh: int, pt: int,
               lo: int, hi: int) -> tuple[int, int]:
    """The output rows r_lo … r_hi-1 a stride-1 plane takes as one flat loop (all three source
    rows inside, output rows as wide as input rows), or (0, 0)."""
    if sh != 1 or sw != 1 or ow_n != w_n or hi <= lo:
        return 0, 0
    r_lo, r_hi = _inside(oh_n, h_n, 1, pt, 2 * dh)
    return (r_lo, r_hi) if r_hi > r_lo else (0, 0)


@njit(parallel=False)
def _corr3(src: np.ndarray, w9: np.ndarray, b: float, sh: int, sw: int, dh: int, dw: int,
           pt: int, pl: int, add: bool, dst: np.ndarray) -> None:
    """dst (OH, OW) = (dst if ``add`` else 0) + b + Σ_ij w9[3i + j]·src[oh·sh - pt + i·dh,
    ow·sw - pl + j·dw], zeros outside src (H, W); ``pt``, ``pl`` may be negative. ``b`` has
    the arrays' dtype (a float64 would widen the sums). Stride 1 with OW = W (not ``add``):
    the interior rows as one flat loop (``_flat3``), then their edge columns."""
    h_n, w_n = src.shape
    oh_n, ow_n = dst.shape
    xf, yf = src.reshape(h_n * w_n), dst.reshape(oh_n * ow_n)
    lo, hi = _inside(ow_n, w_n, sw, pl, 2 * dw)
    r_lo, r_hi = (0, 0) if add else _flat_rows(oh_n, ow_n, h_n, w_n, sh, sw, dh, pt, lo, hi)
    if r_hi > r_lo:
        _flat3(xf, w9, b, w_n, dh, dw, pt, pl, r_lo * w_n + lo, (r_hi - 1) * w_n + hi, yf)
        for ow in range(lo):  # the edge columns of those rows, column by column
            _edge_col(xf, w9, b, w_n, dh, dw, -pt, ow - pl, r_lo, r_hi, yf, ow, ow_n)
        for ow in range(hi, ow_n):
            _edge_col(xf, w9, b, w_n, dh, dw, -pt, ow - pl, r_lo, r_hi, yf, ow, ow_n)
    for oh in range(oh_n):
        if not r_lo <= oh < r_hi:
            _row(xf, w9, b, h_n, w_n, oh * sh - pt, dh, sw, dw, pl, lo, hi, add, yf,
                 oh * ow_n, ow_n)


@njit(parallel=False)
def _scatter3(dy: np.ndarray, w9: np.ndarray, sh: int, sw: int, dh: int, dw: int, pt: int,
              pl: int, add: bool, dst: np.ndarray) -> None:
    """The adjoint of ``_corr3`` (any stride): dst (H, W) = (dst if ``add`` else 0) + each
    dy[oh, ow]·w9[3i + j] at (oh·sh - pt + i·dh, ow·sw - pl + j·dw), where inside dst."""
    h_n, w_n = dst.shape
    oh_n, ow_n = dy.shape
    df, xf = dy.reshape(oh_n * ow_n), dst.reshape(h_n * w_n)
    if not add:
        xf[:] = 0
    lo, hi = _inside(ow_n, w_n, sw, pl, 2 * dw)
    u = np.uint64
    for oh in range(oh_n):
        i_lo, i_hi = _span(oh * sh - pt, dh, h_n)
        for i in range(i_lo, i_hi):
            rb = (oh * sh - pt + i * dh) * w_n
            for j in range(3):
                wv = w9[3 * i + j]
                for ow in range(lo, hi):
                    xf[u(rb + ow * sw - pl + j * dw)] += wv * df[u(oh * ow_n + ow)]
                for ow in range(ow_n):
                    c = ow * sw - pl + j * dw
                    if (ow < lo or ow >= hi) and 0 <= c < w_n:
                        xf[rb + c] += wv * df[oh * ow_n + ow]


@njit(parallel=False, fastmath={"reassoc"})
def _wgrad3(dy: np.ndarray, x: np.ndarray, sh: int, sw: int, dh: int, dw: int, pt: int,
            pl: int, g: np.ndarray) -> None:
    """g[3i + j] += Σ dy[oh, ow]·x[oh·sh - pt + i·dh, ow·sw - pl + j·dw] (zeros outside x) and
    g[9] += Σ dy, g float64. Reassociated (its sums vectorise): stride 1 with OW = W sums the
    interior rows as one flat loop, then takes back the edge columns' wrapped reads; other
    rows sum row by row in the arrays' dtype, added in float64."""
    h_n, w_n = x.shape
    oh_n, ow_n = dy.shape
    df, xf = dy.reshape(oh_n * ow_n), x.reshape(h_n * w_n)
    lo, hi = _inside(ow_n, w_n, sw, pl, 2 * dw)
    r_lo, r_hi = _flat_rows(oh_n, ow_n, h_n, w_n, sh, sw, dh, pt, lo, hi)
    u = np.uint64
    a1, a2 = u(dw), u(2 * dw)
    a3, a6 = u(dh * w_n), u(2 * dh * w_n)
    a4, a5, a7, a8 = a3 + a1, a3 + a2, a6 + a1, a6 + a2
    z = x.dtype.type(0)  # the arrays' dtype: a float64 zero would widen every sum
    if r_hi > r_lo:
        p0, p1 = r_lo * w_n + lo, (r_hi - 1) * w_n + hi
        s0, s1, s2, s3, s4, s5, s6, s7, s8, sb = z, z, z, z, z, z, z, z, z, z
        xs = u(p0 - pt * w_n - pl)
        for q in range(p1 - p0):
            c = xs + u(q)
            e = df[u(p0) + u(q)]
            s0 += e * xf[c]
            s1 += e * xf[c + a1]
            s2 += e * xf[c + a2]
            s3 += e * xf[c + a3]
            s4 += e * xf[c + a4]
            s5 += e * xf[c + a5]
            s6 += e * xf[c + a6]
            s7 += e * xf[c + a7]
            s8 += e * xf[c + a8]
            sb += e
        g[0] += s0
        g[1] += s1
        g[2] += s2
        g[3] += s3
        g[4] += s4
        g[5] += s5
        g[6] += s6
        g[7] += s7
        g[8] += s8
        g[9] += sb
    p0, p1 = (r_lo * w_n + lo, (r_hi - 1) * w_n + hi) if r_hi > r_lo else (0, 0)
    for oh in range(oh_n):  # the rows the flat loop did not take, row by row
        if r_lo <= oh < r_hi:
            continue
        ih = oh * sh - pt
        i_lo, i_hi = _span(ih, dh, h_n)
        for i in range(i_lo, i_hi):
            t0, t1, t2 = z, z, z
            for ow in range(lo, hi):
                c = u((ih + i * dh) * w_n + ow * sw - pl)
                e = df[u(oh * ow_n + ow)]
                t0 += e * xf[c]
                t1 += e * xf[c + a1]
                t2 += e * xf[c + a2]
            g[3 * i] += t0
            g[3 * i + 1] += t1
            g[3 * i + 2] += t2
        tb = z
        for ow in range(lo, hi):
            tb += df[u(oh * ow_n + ow)]
        g[9] += tb
    for ow in range(ow_n):  # the edge columns
        if lo <= ow < hi:
            continue
        c = ow * sw - pl
        j_lo, j_hi = _span(c, dw, w_n)
        if r_hi > r_lo:  # the flat loop read wrapped values for the taps outside: take back
            for j in range(3):
                if j_lo <= j < j_hi:
                    continue
                t0, t1, t2 = 0.0, 0.0, 0.0
                for oh in range(r_lo, r_hi):
                    p = oh * ow_n + ow
                    if p0 <= p < p1:
                        e = np.float64(df[p])
                        rb = (oh - pt) * w_n + c + j * dw
                        t0 += e * xf[rb]
                        t1 += e * xf[rb + dh * w_n]
                        t2 += e * xf[rb + 2 * dh * w_n]
                g[j] -= t0
                g[3 + j] -= t1
                g[6 + j] -= t2
        for oh in range(oh_n):  # the positions the flat loop did not take
            p = oh * ow_n + ow
            if r_lo <= oh < r_hi and p0 <= p < p1:
                continue
            e = df[p]
            g[9] += e
            ih = oh * sh - pt
            i_lo, i_hi = _span(ih, dh, h_n)
            for i in range(i_lo, i_hi):
                rb = (ih + i * dh) * w_n + c
                for j in range(j_lo, j_hi):
                    g[3 * i + j] += e * xf[rb + j * dw]


@njit
def _depthwise3_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, sh: int, sw: int,
                        dh: int, dw: int, pt: int, pl: int, y: np.ndarray) -> None:
    """y (N, O, OH, OW) of a 3×3 depthwise conv (filter o reads channel o // (O / C)),
    parallel over the (sample, filter) planes."""
    n_n, c_n = x.shape[0], x.shape[1]
    o_n = weight.shape[0]
    mult = o_n // c_n
    w9 = weight.reshape(o_n, 9)
    has_bias = bias.shape[0] > 0
    zero = x.dtype.type(0)
    for t in prange(n_n * o_n):
        n = t // o_n
        o = t % o_n
        b = bias[o] if has_bias else zero
        _corr3(x[n, o // mult], w9[o], b, sh, sw, dh, dw, pt, pl, False, y[n, o])


@njit
def _depthwise3_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, sh: int, sw: int,
                         dh: int, dw: int, pt: int, pl: int, gweight: np.ndarray,
                         gbias: np.ndarray) -> np.ndarray:
    """Backward of ``_depthwise3_forward``: returns dx (N, C, H, W); overwrites gweight
    (O, 1, 3, 3) and gbias ((O,) or empty)."""
    n_n, c_n = x.shape[0], x.shape[1]
    o_n = weight.shape[0]
    mult = o_n // c_n
    w9 = weight.reshape(o_n, 9)
    flip = np.empty((o_n, 9), x.dtype)  # the filters turned by 180°: dx gathers through them
    for o in range(o_n):
        for k in range(9):
            flip[o, k] = w9[o, 8 - k]
    zero = x.dtype.type(0)
    n_s = max(1, min(n_n, SLICES // c_n))
    parts = np.zeros((n_s, o_n, 10), np.float64)
    dx = np.empty_like(x)
    for t in prange(c_n * n_s):
        c = t // n_s
        sl = t % n_s
        for n in range(sl * n_n // n_s, (sl + 1) * n_n // n_s):
            for m in range(mult):
                o = c * mult + m
                if sh == 1 and sw == 1:
                    _corr3(dy[n, o], flip[o], zero, 1, 1, dh, dw, 2 * dh - pt, 2 * dw - pl,
                           m > 0, dx[n, c])
                else:
                    _scatter3(dy[n, o], w9[o], sh, sw, dh, dw, pt, pl, m > 0, dx[n, c])
                _wgrad3(dy[n, o], x[n, c], sh, sw, dh, dw, pt, pl, parts[sl, o])
    for o in range(o_n):
        for k in range(10):
            tot = 0.0
            for sl in range(n_s):
                tot += parts[sl, o, k]
            if k < 9:
                gweight[o, 0, k // 3, k % 3] = tot
            elif gbias.shape[0] > 0:
                gbias[o] = tot
    return dx

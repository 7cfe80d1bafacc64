"""Depthwise 3×3 Conv2D kernels for stride 2 (MobileNet's downsampling depthwise convs):
dilation 1, one filter per channel, padding 0 or 1 before (PyTorch's ``padding=1`` or
TensorFlow's 'same'), and an output that reaches every input row and column (2·OH ≥ H,
2·OW ≥ W). ``kernels.depthwise`` calls them for those shapes.

Each (sample, channel) plane is split into its four phases P_ab[r, c] = x[2r + a, 2c + b]
(zero past the image), each stored flat with the output's row length OW and OW + 1 zeros
before and after, plus one copy per row phase with the column a wrapped read would reach
zeroed. Tap (i, j) of output position p then reads one of those six rows at p + k·OW + l
(k, l in -1 … 1): the whole output plane is one vectorised loop over its OH·OW positions, as
in ``kernels.depthwise_same``. The weight gradient is 9 dot products of the output gradient
with the same reads; the input gradient, per phase of the input, is a correlation of the
output gradient (three flat copies, ``depthwise_same._load3``) with the 1, 2 or 4 taps that
reach that phase, then interleaved back into the plane.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from .depthwise_same import TASKS, _load3
from .jit import njit, prange


@register_jitable
def applies(c_n: int, o_n: int, h_n: int, w_n: int, oh_n: int, ow_n: int, sh: int, sw: int,
            dh: int, dw: int, pt: int, pl: int) -> bool:
    """Whether these kernels compute this depthwise 3×3 conv (see the module's docstring)."""
    return (o_n == c_n and sh == 2 and sw == 2 and dh == 1 and dw == 1 and 0 <= pt <= 1
            and 0 <= pl <= 1 and 2 * oh_n >= h_n and 2 * ow_n >= w_n and oh_n > 0
            and ow_n > 0)


@njit(parallel=False)
def _taps_map(pt: int, pl: int, ow_n: int, rows: np.ndarray, offs: np.ndarray) -> None:
    """rows[t], offs[t] for tap t = 3i + j: which of the six phase rows it reads and at what
    offset from p + (OW + 1): row phase a = (i - pt) mod 2 shifted k rows, column phase b
    = (j - pl) mod 2 shifted l columns; a shifted column reads the copy with the wrapped
    column zeroed (rows 4 + a)."""
    for i in range(3):
        a = (i - pt) % 2
        k = (i - pt - a) // 2
        for j in range(3):
            b = (j - pl) % 2
            m = (j - pl - b) // 2
            rows[3 * i + j] = 2 * a + b if m == 0 else 4 + a
            offs[3 * i + j] = ow_n + 1 + k * ow_n + m


@njit(parallel=False)
def _phases(src: np.ndarray, h_n: int, w_n: int, oh_n: int, ow_n: int, pl: int,
            buf: np.ndarray) -> None:
    """buf[2a + b, M + r·OW + c] = src[(2r + a)·W + 2c + b] (zero past the image) for
    r < OH, c < OW, M = OW + 1; buf[4 + a]: the phase (a, b) the shifted taps read, its first
    column zeroed (padding 0: taps read c + 1) or its last (padding 1: c - 1)."""
    m = ow_n + 1
    z = src.dtype.type(0)
    u = np.uint64
    half = w_n // 2  # columns both phases have; an odd W gives phase 0 one more
    bw = 0 if pl == 0 else 1
    col = 0 if pl == 0 else ow_n - 1
    for xr in range(2 * oh_n):
        a, r = xr % 2, xr // 2
        base = u(m + r * ow_n)
        even, odd, shifted = buf[2 * a], buf[2 * a + 1], buf[4 + a]
        if xr < h_n:
            sb = u(xr * w_n)
            for c in range(half):
                v0 = src[sb + u(2 * c)]
                v1 = src[sb + u(2 * c + 1)]
                even[base + u(c)] = v0
                odd[base + u(c)] = v1
            for c in range(half, ow_n):  # past the image's last column (or its odd one)
                even[base + u(c)] = src[sb + u(2 * c)] if 2 * c < w_n else z
                odd[base + u(c)] = z
        else:
            for c in range(ow_n):
                even[base + u(c)] = z
                odd[base + u(c)] = z
        src_row = even if bw == 0 else odd
        for c in range(ow_n):
            shifted[base + u(c)] = src_row[base + u(c)]
        shifted[base + u(col)] = z


@njit(parallel=False, fastmath={"contract"})
def _taps9(buf: np.ndarray, rows: np.ndarray, offs: np.ndarray, w9: np.ndarray, b: float,
           dst: np.ndarray) -> None:
    """dst[p] = b + Σ_t w9[t]·buf[rows[t], p + offs[t]] over the flat plane dst."""
    u = np.uint64
    s0, s1, s2 = buf[rows[0]], buf[rows[1]], buf[rows[2]]
    s3, s4, s5 = buf[rows[3]], buf[rows[4]], buf[rows[5]]
    s6, s7, s8 = buf[rows[6]], buf[rows[7]], buf[rows[8]]
    o0, o1, o2, o3, o4 = u(offs[0]), u(offs[1]), u(offs[2]), u(offs[3]), u(offs[4])
    o5, o6, o7, o8 = u(offs[5]), u(offs[6]), u(offs[7]), u(offs[8])
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = (w9[0], w9[1], w9[2], w9[3], w9[4], w9[5], w9[6],
                                          w9[7], w9[8])
    for p in range(dst.shape[0]):
        q = u(p)
        dst[q] = (b + w0 * s0[q + o0] + w1 * s1[q + o1] + w2 * s2[q + o2] + w3 * s3[q + o3]
                  + w4 * s4[q + o4] + w5 * s5[q + o5] + w6 * s6[q + o6] + w7 * s7[q + o7]
                  + w8 * s8[q + o8])


@njit(parallel=False, fastmath={"reassoc", "contract"})
def _wgrad9(buf: np.ndarray, rows: np.ndarray, offs: np.ndarray, dy: np.ndarray,
            g: np.ndarray) -> None:
    """g[t] += Σ_p dy[p]·buf[rows[t], p + offs[t]], g[9] += Σ_p dy[p]; g float64, the sums
    in the arrays' dtype (reassociated: they vectorise)."""
    u = np.uint64
    x0, x1, x2 = buf[rows[0]], buf[rows[1]], buf[rows[2]]
    x3, x4, x5 = buf[rows[3]], buf[rows[4]], buf[rows[5]]
    x6, x7, x8 = buf[rows[6]], buf[rows[7]], buf[rows[8]]
    o0, o1, o2, o3, o4 = u(offs[0]), u(offs[1]), u(offs[2]), u(offs[3]), u(offs[4])
    o5, o6, o7, o8 = u(offs[5]), u(offs[6]), u(offs[7]), u(offs[8])
    z = dy.dtype.type(0)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, sb = z, z, z, z, z, z, z, z, z, z
    for p in range(dy.shape[0]):
        q = u(p)
        e = dy[q]
        s0 += e * x0[q + o0]
        s1 += e * x1[q + o1]
        s2 += e * x2[q + o2]
        s3 += e * x3[q + o3]
        s4 += e * x4[q + o4]
        s5 += e * x5[q + o5]
        s6 += e * x6[q + o6]
        s7 += e * x7[q + o7]
        s8 += e * x8[q + o8]
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


@njit(parallel=False, fastmath={"contract"})
def _taps4(bd: np.ndarray, rows: np.ndarray, offs: np.ndarray, w4: np.ndarray,
           dst: np.ndarray) -> None:
    """dst[p] = Σ_t w4[t]·bd[rows[t], p + offs[t]], t < 4 (unused taps: weight 0)."""
    u = np.uint64
    s0, s1, s2, s3 = bd[rows[0]], bd[rows[1]], bd[rows[2]], bd[rows[3]]
    o0, o1, o2, o3 = u(offs[0]), u(offs[1]), u(offs[2]), u(offs[3])
    w0, w1, w2, w3 = w4[0], w4[1], w4[2], w4[3]
    for p in range(dst.shape[0]):
        q = u(p)
        dst[q] = w0 * s0[q + o0] + w1 * s1[q + o1] + w2 * s2[q + o2] + w3 * s3[q + o3]


@njit
def _s2_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, pt: int, pl: int,
               y: np.ndarray) -> None:
    """y (N, C, OH, OW) of a stride-2 depthwise 3×3 conv of x (N, C, H, W), weight
    (C, 1, 3, 3), bias (C,) or empty; parallel over slices of the N·C planes."""
    n_n, c_n, h_n, w_n = x.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    w9 = weight.reshape(c_n, 9)
    has_bias = bias.shape[0] > 0
    zero = x.dtype.type(0)
    rows, offs = np.empty(9, np.int64), np.empty(9, np.int64)
    _taps_map(pt, pl, ow_n, rows, offs)
    planes = n_n * c_n
    t_n = max(1, min(planes, TASKS))
    length = oh_n * ow_n + 2 * (ow_n + 1)
    xf = x.reshape(planes, h_n * w_n)
    yf = y.reshape(planes, oh_n * ow_n)
    for t in prange(t_n):
        buf = np.zeros((6, length), x.dtype)
        for q in range(t * planes // t_n, (t + 1) * planes // t_n):
            c = q % c_n
            _phases(xf[q], h_n, w_n, oh_n, ow_n, pl, buf)
            _taps9(buf, rows, offs, w9[c], bias[c] if has_bias else zero, yf[q])


@njit(parallel=False)
def _dx_map(pt: int, pl: int, ow_n: int, dr: np.ndarray, do: np.ndarray,
            dt: np.ndarray) -> None:
    """For input phase f = 2a + b, its taps s < 4 (the 1, 2 or 4 that reach it; dt[f, s] =
    tap index 3i + j, or -1 for none): input (r, c) of the phase gets w·dy[r - k, c - l],
    read from ``_load3``'s copy dr[f, s] (0 reads column c - 1, 1 column c, 2 column c + 1)
    at p + do[f, s]."""
    m = ow_n + 1
    dt[:] = -1
    dr[:] = 1
    do[:] = m
    fill = np.zeros(4, np.int64)
    for i in range(3):
        a = (i - pt) % 2
        k = (i - pt - a) // 2
        for j in range(3):
            b = (j - pl) % 2
            l_ = (j - pl - b) // 2
            f = 2 * a + b
            s = fill[f]
            dt[f, s], dr[f, s], do[f, s] = 3 * i + j, 1 - l_, m - k * ow_n - l_
            fill[f] += 1


@njit(parallel=False)
def _interleave(ph: np.ndarray, h_n: int, w_n: int, ow_n: int, dst: np.ndarray) -> None:
    """dst[xr·W + xc] = ph[2·(xr mod 2) + xc mod 2, (xr // 2)·OW + xc // 2]: the four phase
    planes back into the flat plane dst (H·W)."""
    for xr in range(h_n):
        a, base = xr % 2, (xr // 2) * ow_n
        even, odd = ph[2 * a], ph[2 * a + 1]
        for xc in range(0, w_n - 1, 2):
            dst[xr * w_n + xc] = even[base + xc // 2]
            dst[xr * w_n + xc + 1] = odd[base + xc // 2]
        if w_n % 2:
            dst[xr * w_n + w_n - 1] = even[base + w_n // 2]


@njit
def _s2_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, pt: int, pl: int,
                gweight: np.ndarray, gbias: np.ndarray) -> np.ndarray:
    """Backward of ``_s2_forward``: returns dx (N, C, H, W); overwrites gweight (C, 1, 3, 3)
    and gbias ((C,) or empty). Each slice of the planes keeps its own float64 sums, added in
    slice order at the end (the split depends on the shapes only)."""
    n_n, c_n, h_n, w_n = x.shape
    oh_n, ow_n = dy.shape[2], dy.shape[3]
    n_o = oh_n * ow_n
    w9 = weight.reshape(c_n, 9)
    rows, offs = np.empty(9, np.int64), np.empty(9, np.int64)
    _taps_map(pt, pl, ow_n, rows, offs)
    dr, do, dt = (np.empty((4, 4), np.int64), np.empty((4, 4), np.int64),
                  np.empty((4, 4), np.int64))
    _dx_map(pt, pl, ow_n, dr, do, dt)
    w4 = np.zeros((c_n, 4, 4), x.dtype)  # per input phase, the weights of its taps
    for c in range(c_n):
        for f in range(4):
            for s in range(4):
                if dt[f, s] >= 0:
                    w4[c, f, s] = w9[c, dt[f, s]]
    planes = n_n * c_n
    t_n = max(1, min(planes, TASKS))
    length = n_o + 2 * (ow_n + 1)
    parts = np.zeros((t_n, c_n, 10), np.float64)
    dx = np.empty_like(x)
    xf = x.reshape(planes, h_n * w_n)
    df = dy.reshape(planes, n_o)
    dxf = dx.reshape(planes, h_n * w_n)
    for t in prange(t_n):
        bx = np.zeros((6, length), x.dtype)
        bd = np.zeros((3, length), x.dtype)
        ph = np.empty((4, n_o), x.dtype)
        for q in range(t * planes // t_n, (t + 1) * planes // t_n):
            c = q % c_n
            _phases(xf[q], h_n, w_n, oh_n, ow_n, pl, bx)
            _wgrad9(bx, rows, offs, df[q], parts[t, c])
            _load3(df[q], ow_n, 1, ow_n + 1, bd)
            for f in range(4):
                _taps4(bd, dr[f], do[f], w4[c, f], ph[f])
            _interleave(ph, h_n, w_n, ow_n, dxf[q])
    for c in range(c_n):
        for k in range(10):
            tot = 0.0
            for t in range(t_n):
                tot += parts[t, c, k]
            if k < 9:
                gweight[c, 0, k // 3, k % 3] = tot
            elif gbias.shape[0] > 0:
                gbias[c] = tot
    return dx

"""Depthwise 3×3 Conv2D kernels for the commonest shape: stride 1, one filter per channel and
'same' padding (padding = dilation on each side, so the output is as large as the input),
MobileNet's stride-1 depthwise conv. ``kernels.depthwise`` calls them for those shapes.

Each (sample, channel) plane is copied three times into a per-thread scratch, flat (H·W
values), with dilation·(W + 1) zeros before and after: copy 0 with its last ``dw`` columns
zeroed (what the left taps read), copy 1 as is (the middle taps), copy 2 with its first ``dw``
columns zeroed (the right taps). Tap (i, j) of output position p is then copy j at
p + i·dh·W + j·dw for every p: a read above or below the image lands in the zeros around the
plane, one left or right of it lands in a zeroed column of the next or previous row. So a
whole plane is one loop over its H·W positions with the 9 taps in its body and no edge code:
it vectorises over positions (rows of a few dozen columns do not leave most of it to the
scalar remainder), and the copies are sequential, in L1.

The backward's input gradient is the same loop on the output gradient with the filter turned
by 180°; the weight gradient is 9 dot products of the output gradient with the three copies
of the input at the same offsets (compiled with reassociation, so its sums vectorise), plus
the bias's sum, added per plane in float64.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from .jit import njit, prange

TASKS = 16  # parallel slices of the (sample, channel) planes; shapes alone fix the split


@register_jitable
def applies(c_n: int, o_n: int, h_n: int, w_n: int, oh_n: int, ow_n: int, sh: int, sw: int,
            dh: int, dw: int, pt: int, pl: int) -> bool:
    """Whether these kernels compute this depthwise 3×3 conv: stride 1, one filter per
    channel, output as large as the input and padding = dilation (top, left)."""
    return (o_n == c_n and sh == 1 and sw == 1 and oh_n == h_n and ow_n == w_n
            and pt == dh and pl == dw)


@njit(parallel=False)
def _margin(w_n: int, dh: int, dw: int) -> int:
    """Zeros before and after each flat copy: one tap's furthest reach, dh·W + dw."""
    return dh * w_n + dw


@njit(parallel=False)
def _load3(src: np.ndarray, w_n: int, dw: int, m: int, buf: np.ndarray) -> None:
    """Copy the flat plane src (H·W) into buf[k, m … m + H·W - 1] for k = 0, 1, 2, then zero
    the last ``dw`` columns of copy 0 and the first ``dw`` of copy 2. The margins of ``buf``
    stay as they are (zeros, written once)."""
    hw = src.shape[0]
    u = np.uint64
    um = u(m)
    for k in range(3):
        row = buf[k]
        for p in range(hw):
            row[um + u(p)] = src[u(p)]
    z = src.dtype.type(0)
    left, right = buf[0], buf[2]
    for r in range(hw // w_n):
        for c in range(min(dw, w_n)):
            left[m + r * w_n + w_n - 1 - c] = z
            right[m + r * w_n + c] = z


@njit(parallel=False, fastmath={"contract"})
def _taps(buf: np.ndarray, w9: np.ndarray, b: float, w_n: int, dh: int, dw: int,
          dst: np.ndarray) -> None:
    """dst[p] = b + Σ_ij w9[3i + j]·buf[j, p + i·dh·W + j·dw] over the flat plane dst (H·W)."""
    u = np.uint64
    left, mid, right = buf[0], buf[1], buf[2]
    a1, a2 = u(dw), u(2 * dw)
    r1, r2 = u(dh * w_n), u(2 * dh * w_n)
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = (w9[0], w9[1], w9[2], w9[3], w9[4], w9[5],
                                                   w9[6], w9[7], w9[8])
    for p in range(dst.shape[0]):
        q = u(p)
        dst[q] = (b + w00 * left[q] + w01 * mid[q + a1] + w02 * right[q + a2]
                  + w10 * left[q + r1] + w11 * mid[q + r1 + a1] + w12 * right[q + r1 + a2]
                  + w20 * left[q + r2] + w21 * mid[q + r2 + a1] + w22 * right[q + r2 + a2])


@njit(parallel=False, fastmath={"reassoc", "contract"})
def _grads(buf: np.ndarray, x: np.ndarray, w9: np.ndarray, w_n: int, dh: int, dw: int,
           dx: np.ndarray, g: np.ndarray) -> None:
    """One plane's backward from ``buf``, the three copies of its output gradient dy: with
    T_k = buf[j, p + i·dh·W + j·dw] (k = 3i + j; dy at (r + (i - 1)·dh, c + (j - 1)·dw),
    zero outside), dx[p] = Σ_k w9[8 - k]·T_k (the filter turned by 180°), g[8 - k] +=
    Σ_p x[p]·T_k and g[9] += Σ_p dy[p]. One loop: both gradients share the 9 reads; g is
    float64, the sums run in the arrays' dtype (reassociated: they vectorise)."""
    u = np.uint64
    left, mid, right = buf[0], buf[1], buf[2]
    a1, a2 = u(dw), u(2 * dw)
    r1, r2 = u(dh * w_n), u(2 * dh * w_n)
    f0, f1, f2, f3, f4, f5, f6, f7, f8 = (w9[8], w9[7], w9[6], w9[5], w9[4], w9[3], w9[2],
                                          w9[1], w9[0])
    z = x.dtype.type(0)  # a float64 zero would widen every sum
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = z, z, z, z, z, z, z, z, z
    for p in range(x.shape[0]):
        q = u(p)
        e = x[q]
        t0, t1, t2 = left[q], mid[q + a1], right[q + a2]
        t3, t4, t5 = left[q + r1], mid[q + r1 + a1], right[q + r1 + a2]
        t6, t7, t8 = left[q + r2], mid[q + r2 + a1], right[q + r2 + a2]
        dx[q] = (f0 * t0 + f1 * t1 + f2 * t2 + f3 * t3 + f4 * t4 + f5 * t5 + f6 * t6
                 + f7 * t7 + f8 * t8)
        s0 += e * t0
        s1 += e * t1
        s2 += e * t2
        s3 += e * t3
        s4 += e * t4
        s5 += e * t5
        s6 += e * t6
        s7 += e * t7
        s8 += e * t8
    sb = z
    for p in range(x.shape[0]):
        sb += mid[u(p) + r1 + a1]
    g[8] += s0
    g[7] += s1
    g[6] += s2
    g[5] += s3
    g[4] += s4
    g[3] += s5
    g[2] += s6
    g[1] += s7
    g[0] += s8
    g[9] += sb


@njit(parallel=False)
def _scratch(n_planes: int, h_n: int, w_n: int, dh: int, dw: int) -> tuple[int, int]:
    """(tasks, scratch length): the planes' split and the flat copies' length."""
    return max(1, min(n_planes, TASKS)), h_n * w_n + 2 * _margin(w_n, dh, dw)


@njit
def _same_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, dh: int, dw: int,
                 y: np.ndarray) -> None:
    """y (N, C, H, W) of a stride-1 'same' depthwise 3×3 conv of x (N, C, H, W), weight
    (C, 1, 3, 3), bias (C,) or empty; parallel over slices of the N·C planes."""
    n_n, c_n, h_n, w_n = x.shape
    hw = h_n * w_n
    w9 = weight.reshape(c_n, 9)
    has_bias = bias.shape[0] > 0
    zero = x.dtype.type(0)
    m = _margin(w_n, dh, dw)
    planes = n_n * c_n
    t_n, length = _scratch(planes, h_n, w_n, dh, dw)
    xf = x.reshape(planes, hw)
    yf = y.reshape(planes, hw)
    for t in prange(t_n):
        buf = np.zeros((3, length), x.dtype)
        for q in range(t * planes // t_n, (t + 1) * planes // t_n):
            c = q % c_n
            _load3(xf[q], w_n, dw, m, buf)
            _taps(buf, w9[c], bias[c] if has_bias else zero, w_n, dh, dw, yf[q])


@njit
def _same_backward(x: np.ndarray, weight: np.ndarray, dy: np.ndarray, dh: int, dw: int,
                  gweight: np.ndarray, gbias: np.ndarray) -> np.ndarray:
    """Backward of ``_same_forward``: returns dx (N, C, H, W); overwrites gweight (C, 1, 3, 3)
    and gbias ((C,) or empty). Each slice of the planes keeps its own float64 sums, added in
    slice order at the end (the split depends on the shapes only)."""
    n_n, c_n, h_n, w_n = x.shape
    hw = h_n * w_n
    w9 = weight.reshape(c_n, 9)
    m = _margin(w_n, dh, dw)
    planes = n_n * c_n
    t_n, length = _scratch(planes, h_n, w_n, dh, dw)
    parts = np.zeros((t_n, c_n, 10), np.float64)
    dx = np.empty_like(x)
    xf = x.reshape(planes, hw)
    df = dy.reshape(planes, hw)
    dxf = dx.reshape(planes, hw)
    for t in prange(t_n):
        buf = np.zeros((3, length), x.dtype)
        for q in range(t * planes // t_n, (t + 1) * planes // t_n):
            c = q % c_n
            _load3(df[q], w_n, dw, m, buf)
            _grads(buf, xf[q], w9[c], w_n, dh, dw, dxf[q], parts[t, c])
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

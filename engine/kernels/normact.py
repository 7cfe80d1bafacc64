"""Batch normalisation (+ ReLU) and addition (+ ReLU): the kernels of the BatchNorm and Add
layers and of their fused blocks with a following ReLU (``engine.fusion``: ``NormBlock``,
``AddBlock``).

Batch norm works on a channel view (M, C, S) as ``kernels.norm``: M samples, C channels,
S spatial positions; statistics per channel over M and S, in float64. Each direction is one
parallel loop over the channels: a thread takes its channels through the statistics and then
the output, with no barrier in between. Each parallel loop costs a wake-up of every thread;
on cores shared with other work a woken thread may wait a whole time slice for its core,
so the fused block runs one loop each way where BatchNorm then ReLU ran two.

The training statistics take one pass over x: sums of (x - K) and (x - K)² with K the
channel's first value (a shift that keeps the float64 difference of sums exact to rounding
of the variance itself), mean = K + Σ(x - K) / n, var = Σ(x - K)² / n - (Σ(x - K) / n)².
Normalised values are (x - mean) · scale + bias with scale = weight / sqrt(var + eps), as the
reference; with ``relu`` the ReLU output max(y, 0) is written too (NaN -> 0, as
``activation.relu_forward``), and the backward zeroes the gradient where it is not > 0.
The additions split the flat arrays into ``nchunks`` slices (``conv.batch_chunks``).
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit, prange

# Reassociation only, for the float64 sums: lets them run in vector lanes (each lane a
# partial sum); no other fast-math (NaN and signed zeros behave as without it).
SUMS = {"reassoc"}


@njit(parallel=False, fastmath=SUMS)
def _row_sums(row: np.ndarray, k: float) -> tuple[float, float]:
    """Σ(x - k) and Σ(x - k)² (float64) over one row (S,) of a channel."""
    t1 = 0.0
    t2 = 0.0
    for s in range(row.shape[0]):
        d = np.float64(row[s]) - k
        t1 += d
        t2 += d * d
    return t1, t2


@njit(parallel=False)
def _channel_stats(x: np.ndarray, c: int) -> tuple[float, float]:
    """Mean and biased variance (float64) of channel ``c`` of x (M, C, S), in one pass over
    values shifted by the channel's first one (the module note)."""
    m_n, _, s_n = x.shape
    k = np.float64(x[0, c, 0])
    t1 = 0.0
    t2 = 0.0
    for i in range(m_n):
        a, b = _row_sums(x[i, c], k)
        t1 += a
        t2 += b
    count = m_n * s_n
    d = t1 / count
    return k + d, max(t2 / count - d * d, 0.0)


@njit(parallel=False, fastmath=SUMS)
def _row_grad_sums(row: np.ndarray, grow: np.ndarray, mu: float, sc: float, b: float,
                   relu: bool) -> tuple[float, float]:
    """Σg and Σg·(x - mu) over one row, g = dy, or with ``relu`` dy where the forward's
    normalised value (x - mu)·sc + b is > 0 (else 0)."""
    t1 = 0.0
    t2 = 0.0
    if relu:
        for s in range(row.shape[0]):
            d = row[s] - mu
            g = np.float64(grow[s]) if d * sc + b > 0 else 0.0
            t1 += g
            t2 += g * d
    else:
        for s in range(row.shape[0]):
            g = np.float64(grow[s])
            t1 += g
            t2 += g * (row[s] - mu)
    return t1, t2


@njit(parallel=False, fastmath=SUMS)
def _row_mask_sums(row: np.ndarray, grow: np.ndarray, mrow: np.ndarray, mu: float,
                   drow: np.ndarray) -> tuple[float, float]:
    """drow = dy where mask > 0 (else 0); returns Σdrow and Σdrow·(x - mu) over one row."""
    t1 = 0.0
    t2 = 0.0
    for s in range(row.shape[0]):
        g = grow[s] if mrow[s] > 0 else 0.0
        drow[s] = g
        t1 += g
        t2 += g * (row[s] - mu)
    return t1, t2


@njit
def bn_train_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float,
                     relu: bool, y: np.ndarray, yrelu: np.ndarray, mean: np.ndarray,
                     var: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
    """y (M, C, S) = (x - mean) · scale + shift with the batch's mean and biased variance
    per channel, scale = weight / sqrt(var + eps), shift = bias (all (C,) float64, written
    for the backward); with ``relu`` also yrelu = max(y, 0) (else ignored)."""
    m_n, c_n, s_n = x.shape
    for c in prange(c_n):
        mu, v = _channel_stats(x, c)
        mean[c] = mu
        var[c] = v
        sc = weight[c] / math.sqrt(v + eps)
        b = np.float64(bias[c])
        scale[c] = sc
        shift[c] = b
        for i in range(m_n):
            row = x[i, c]
            out = y[i, c]
            if relu:
                rrow = yrelu[i, c]
                for s in range(s_n):
                    val = (row[s] - mu) * sc + b
                    out[s] = val
                    rrow[s] = val if val > 0 else 0.0
            else:
                for s in range(s_n):
                    out[s] = (row[s] - mu) * sc + b


@njit
def bn_train_backward(x: np.ndarray, dy: np.ndarray, relu: bool, mean: np.ndarray,
                      invstd: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                      weight: np.ndarray, dx: np.ndarray, dweight: np.ndarray,
                      dbias: np.ndarray) -> None:
    """Backward of ``bn_train_forward`` through the batch statistics, in two passes over
    x and dy per channel (the sums, then dx). ``dy``: gradient of the last output; with
    ``relu`` that of the ReLU, passed where the normalised value recomputed from x with the
    forward's ``scale`` / ``shift`` is > 0 (no mask read). Fills dx (M, C, S), dweight and
    dbias (C,)."""
    m_n, c_n, s_n = x.shape
    count = m_n * s_n
    for c in prange(c_n):
        mu = mean[c]
        inv = invstd[c]
        sc = scale[c]
        b = shift[c]
        t1 = 0.0
        t2 = 0.0
        for i in range(m_n):
            a1, a2 = _row_grad_sums(x[i, c], dy[i, c], mu, sc, b, relu)
            t1 += a1
            t2 += a2
        t2 *= inv
        dbias[c] = t1
        dweight[c] = t2
        f = weight[c] * inv / count
        fg = f * count
        f1 = f * t1
        f2 = f * inv * t2
        for i in range(m_n):
            row = x[i, c]
            grow = dy[i, c]
            out = dx[i, c]
            if relu:
                for s in range(s_n):
                    d = row[s] - mu
                    g = grow[s] if d * sc + b > 0 else 0.0
                    out[s] = fg * g - f1 - d * f2
            else:
                for s in range(s_n):
                    out[s] = fg * grow[s] - f1 - (row[s] - mu) * f2


@njit
def bn_eval_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray,
                    bias: np.ndarray, eps: float, relu: bool, y: np.ndarray,
                    yrelu: np.ndarray) -> None:
    """y = (x - mean) / sqrt(var + eps) · weight + bias with fixed (running) statistics;
    with ``relu`` also yrelu = max(y, 0)."""
    m_n, c_n, s_n = x.shape
    for c in prange(c_n):
        mu = np.float64(mean[c])
        sc = weight[c] / math.sqrt(var[c] + eps)
        b = np.float64(bias[c])
        for i in range(m_n):
            row = x[i, c]
            out = y[i, c]
            if relu:
                rrow = yrelu[i, c]
                for s in range(s_n):
                    val = (row[s] - mu) * sc + b
                    out[s] = val
                    rrow[s] = val if val > 0 else 0.0
            else:
                for s in range(s_n):
                    out[s] = (row[s] - mu) * sc + b


@njit
def bn_eval_backward(x: np.ndarray, dy: np.ndarray, mask: np.ndarray, relu: bool,
                     mean: np.ndarray, var: np.ndarray, weight: np.ndarray, eps: float,
                     dx: np.ndarray, dweight: np.ndarray, dbias: np.ndarray) -> None:
    """Backward with fixed statistics: ``dy`` the gradient of the last output (with
    ``relu``, of the ReLU: passed where ``mask`` (M, C, S), the ReLU output, is > 0). Fills
    dx (M, C, S), dweight and dbias (C,)."""
    m_n, c_n, s_n = x.shape
    for c in prange(c_n):
        mu = np.float64(mean[c])
        inv = 1.0 / math.sqrt(var[c] + eps)
        scale = weight[c] * inv
        t1 = 0.0
        t2 = 0.0
        for i in range(m_n):
            out = dx[i, c]
            if relu:
                a1, a2 = _row_mask_sums(x[i, c], dy[i, c], mask[i, c], mu, out)
            else:
                a1, a2 = _row_grad_sums(x[i, c], dy[i, c], mu, 1.0, 0.0, False)
                out[:] = dy[i, c]
            t1 += a1
            t2 += a2
            for s in range(s_n):
                out[s] = out[s] * scale
        dbias[c] = t1
        dweight[c] = t2 * inv


@njit
def add_forward(a: np.ndarray, b: np.ndarray, relu: bool, nchunks: int, y: np.ndarray,
                yrelu: np.ndarray) -> None:
    """y = a + b on flat arrays (N·…,), cut into ``nchunks`` slices; with ``relu`` also
    yrelu = max(y, 0) (else ignored)."""
    n = a.shape[0]
    nch = max(1, min(nchunks, n))
    for ch in prange(nch):
        lo = ch * n // nch
        hi = (ch + 1) * n // nch
        if relu:
            for i in range(lo, hi):
                v = a[i] + b[i]
                y[i] = v
                yrelu[i] = v if v > 0 else 0.0
        else:
            for i in range(lo, hi):
                y[i] = a[i] + b[i]


@njit
def relu_mask_backward(dy: np.ndarray, mask: np.ndarray, nchunks: int, dx: np.ndarray
                       ) -> None:
    """dx = dy where mask > 0, else 0, on flat arrays cut into ``nchunks`` slices."""
    n = dy.shape[0]
    nch = max(1, min(nchunks, n))
    for ch in prange(nch):
        for i in range((ch * n) // nch, ((ch + 1) * n) // nch):
            dx[i] = dy[i] if mask[i] > 0 else 0.0


@njit
def bn_add_relu_train_forward(x: np.ndarray, skip: np.ndarray, weight: np.ndarray,
                              bias: np.ndarray, eps: float, y: np.ndarray, yadd: np.ndarray,
                              yrelu: np.ndarray, mean: np.ndarray, var: np.ndarray) -> None:
    """The end of a residual block: y = BatchNorm(x) with the batch's statistics (as
    ``bn_train_forward``), yadd = y + skip, yrelu = max(yadd, 0); all (M, C, S)."""
    m_n, c_n, s_n = x.shape
    for c in prange(c_n):
        mu, v = _channel_stats(x, c)
        mean[c] = mu
        var[c] = v
        sc = weight[c] / math.sqrt(v + eps)
        b = np.float64(bias[c])
        for i in range(m_n):
            row = x[i, c]
            srow = skip[i, c]
            out = y[i, c]
            arow = yadd[i, c]
            rrow = yrelu[i, c]
            for s in range(s_n):
                val = (row[s] - mu) * sc + b
                out[s] = val
                a = val + srow[s]
                arow[s] = a
                rrow[s] = a if a > 0 else 0.0


@njit
def bn_add_relu_train_backward(x: np.ndarray, dy: np.ndarray, mask: np.ndarray,
                               mean: np.ndarray, invstd: np.ndarray, weight: np.ndarray,
                               dx: np.ndarray, dskip: np.ndarray, dweight: np.ndarray,
                               dbias: np.ndarray) -> None:
    """Backward of ``bn_add_relu_train_forward``: ``dy`` the gradient of the ReLU output,
    ``mask`` that output. Fills dskip (the masked gradient, the skip input's), dx (through
    the batch statistics), dweight and dbias; two passes per channel."""
    m_n, c_n, s_n = x.shape
    count = m_n * s_n
    for c in prange(c_n):
        mu = mean[c]
        inv = invstd[c]
        t1 = 0.0
        t2 = 0.0
        for i in range(m_n):
            a1, a2 = _row_mask_sums(x[i, c], dy[i, c], mask[i, c], mu, dskip[i, c])
            t1 += a1
            t2 += a2
        t2 *= inv
        dbias[c] = t1
        dweight[c] = t2
        f = weight[c] * inv / count
        fg = f * count
        f1 = f * t1
        f2 = f * inv * t2
        for i in range(m_n):
            row = x[i, c]
            grow = dskip[i, c]
            out = dx[i, c]
            for s in range(s_n):
                out[s] = fg * grow[s] - f1 - (row[s] - mu) * f2

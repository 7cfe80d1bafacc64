"""Batch normalisation (+ ReLU) and addition (+ ReLU): the kernels of the BatchNorm and Add
layers and of their fused blocks with a following ReLU (``engine.fusion``: ``NormBlock``,
``AddBlock``, ``NormAddBlock``).

Batch norm works on a channel view (M, C, S) as ``kernels.norm``: M samples, C channels,
S spatial positions; statistics per channel over M and S, in float64. A training kernel
cuts the channels into ``nchunks`` blocks, one parallel loop each way: a thread takes its
block through the statistics and then the output (or the gradient's sums and then dx),
with no barrier in between, walking sample by sample over the block's rows, which lie
next to each other in memory (a run of B·S values per sample). Taking one channel at a
time through every sample instead (runs of S values, the whole tensor's range walked once
per channel) ran the same arithmetic 1.5-2× slower on 1 M values; cutting the batch
instead needs a barrier between the statistics and their use (two parallel loops each way:
on cores shared with other work each loop costs a wake-up that may wait a time slice).
The per-row sums run in vector lanes (``SUMS``: reassociation only, each lane a partial
sum); one serial float64 chain of additions made them several times slower.

The training statistics take one pass over x: sums of (x - K) and (x - K)² with K the
channel's first value (a shift that keeps the float64 difference of sums exact to rounding
of the variance itself), mean = K + Σ(x - K) / n, var = Σ(x - K)² / n - (Σ(x - K) / n)².
Normalised values are (x - mean) · scale + bias with scale = weight / sqrt(var + eps), as
the reference; with ``relu`` the ReLU output max(y, 0) is written too (NaN -> 0, as
``activation.relu_forward``). The backward takes two passes over x and dy: Σg and
Σg·(x - mean) per channel, then dx (``_block_backward``, shared by the two training
kernels); the ReLU's mask is recomputed from x with the forward's scale and the bias (the
same float64 expression, so the same decisions) instead of being read. The additions split
the flat arrays into ``nchunks`` slices (``conv.batch_chunks``).
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


@njit(parallel=False)
def _norm_row(row: np.ndarray, mu: float, sc: float, b: float, relu: bool, out: np.ndarray,
              rrow: np.ndarray) -> None:
    """out = (x - mu)·sc + b over one row; with ``relu`` also rrow = max(out, 0)."""
    if relu:
        for s in range(row.shape[0]):
            val = (row[s] - mu) * sc + b
            out[s] = val
            rrow[s] = val if val > 0 else 0.0
    else:
        for s in range(row.shape[0]):
            out[s] = (row[s] - mu) * sc + b


@njit(parallel=False)
def _dx_row(row: np.ndarray, grow: np.ndarray, mu: float, sc: float, b: float, relu: bool,
            fg: float, f1: float, f2: float, out: np.ndarray) -> None:
    """out = fg·g - f1 - (x - mu)·f2 over one row, g as ``_row_grad_sums``."""
    if relu:
        for s in range(row.shape[0]):
            d = row[s] - mu
            g = grow[s] if d * sc + b > 0 else 0.0
            out[s] = fg * g - f1 - d * f2
    else:
        for s in range(row.shape[0]):
            out[s] = fg * grow[s] - f1 - (row[s] - mu) * f2


@njit(parallel=False)
def _block_stats(x: np.ndarray, lo: int, hi: int, weight: np.ndarray, eps: float,
                 mean: np.ndarray, var: np.ndarray, scale: np.ndarray) -> None:
    """Mean, biased variance and scale of channels lo..hi in one pass over their rows,
    sample by sample (the arrays hold the sums, and ``scale`` the shift K, until the
    end)."""
    m_n, _, s_n = x.shape
    for c in range(lo, hi):
        scale[c] = x[0, c, 0]
        mean[c] = 0.0
        var[c] = 0.0
    for i in range(m_n):
        for c in range(lo, hi):
            a, b = _row_sums(x[i, c], scale[c])
            mean[c] += a
            var[c] += b
    count = m_n * s_n
    for c in range(lo, hi):
        d = mean[c] / count
        v = max(var[c] / count - d * d, 0.0)
        mean[c] = scale[c] + d
        var[c] = v
        scale[c] = weight[c] / math.sqrt(v + eps)


@njit
def bn_train_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float,
                     relu: bool, nchunks: int, y: np.ndarray, yrelu: np.ndarray,
                     mean: np.ndarray, var: np.ndarray, scale: np.ndarray) -> None:
    """y (M, C, S) = (x - mean) · scale + bias with the batch's mean and biased variance
    per channel, scale = weight / sqrt(var + eps) (mean, var, scale: (C,) float64, written
    for the backward); with ``relu`` also yrelu = max(y, 0) (else ignored). ``nchunks``
    blocks of channels in parallel (the module note)."""
    m_n, c_n = x.shape[0], x.shape[1]
    nch = max(1, min(nchunks, c_n))
    for ch in prange(nch):
        lo = ch * c_n // nch
        hi = (ch + 1) * c_n // nch
        _block_stats(x, lo, hi, weight, eps, mean, var, scale)
        for i in range(m_n):
            for c in range(lo, hi):
                b = np.float64(bias[c])
                if relu:
                    _norm_row(x[i, c], mean[c], scale[c], b, True, y[i, c], yrelu[i, c])
                else:
                    _norm_row(x[i, c], mean[c], scale[c], b, False, y[i, c], y[i, c])


@njit(parallel=False)
def _grad_coefficients(t: np.ndarray, lo: int, invstd: np.ndarray, weight: np.ndarray,
                       count: int, dweight: np.ndarray, dbias: np.ndarray) -> None:
    """From t (3, B), whose rows 0 and 1 hold Σg and Σg·(x - mean) of channels
    lo..lo + B: dbias = Σg, dweight = Σg·(x - mean)·invstd, and t's rows become the
    coefficients of dx = fg·g - f1 - (x - mean)·f2 (fg = weight·invstd, f1 = fg·Σg / n,
    f2 = fg·invstd·dweight / n)."""
    for j in range(t.shape[1]):
        c = lo + j
        inv = invstd[c]
        t1 = t[0, j]
        t2 = t[1, j] * inv
        dbias[c] = t1
        dweight[c] = t2
        f = weight[c] * inv / count
        t[0, j] = f * count
        t[1, j] = f * t1
        t[2, j] = f * inv * t2


@njit(parallel=False)
def _block_backward(x: np.ndarray, dy: np.ndarray, mask: np.ndarray, lo: int, hi: int,
                    relu: bool, mean: np.ndarray, invstd: np.ndarray, scale: np.ndarray,
                    bias: np.ndarray, weight: np.ndarray, dx: np.ndarray, dskip: np.ndarray,
                    dweight: np.ndarray, dbias: np.ndarray) -> None:
    """Channels lo..hi of a training backward, the part both training kernels share: the
    gradient's sums over the block's rows (Σg, Σg·(x - mean)), the coefficients
    (``_grad_coefficients``), then dx. The gradient g is dy, or with ``relu`` dy where the
    normalised value recomputed from x with ``scale`` and ``bias`` is > 0; with a non-empty
    ``dskip`` (the residual end) dy where ``mask`` is > 0, written to dskip on the way and
    read back for dx."""
    m_n, _, s_n = x.shape
    skip = dskip.shape[0] > 0
    t = np.zeros((3, hi - lo))
    for i in range(m_n):
        for c in range(lo, hi):
            if skip:
                a1, a2 = _row_mask_sums(x[i, c], dy[i, c], mask[i, c], mean[c], dskip[i, c])
            else:
                a1, a2 = _row_grad_sums(x[i, c], dy[i, c], mean[c], scale[c],
                                        np.float64(bias[c]), relu)
            t[0, c - lo] += a1
            t[1, c - lo] += a2
    _grad_coefficients(t, lo, invstd, weight, m_n * s_n, dweight, dbias)
    for i in range(m_n):
        for c in range(lo, hi):
            j = c - lo
            if skip:
                _dx_row(x[i, c], dskip[i, c], mean[c], 1.0, 0.0, False, t[0, j], t[1, j],
                        t[2, j], dx[i, c])
            else:
                _dx_row(x[i, c], dy[i, c], mean[c], scale[c], np.float64(bias[c]), relu,
                        t[0, j], t[1, j], t[2, j], dx[i, c])


@njit
def bn_train_backward(x: np.ndarray, dy: np.ndarray, relu: bool, nchunks: int,
                      mean: np.ndarray, invstd: np.ndarray, scale: np.ndarray,
                      bias: np.ndarray, weight: np.ndarray, dx: np.ndarray,
                      dweight: np.ndarray, dbias: np.ndarray) -> None:
    """Backward of ``bn_train_forward`` through the batch statistics, in two passes over
    x and dy (the sums, then dx). ``dy``: gradient of the last output; with ``relu`` that
    of the ReLU, passed where the normalised value recomputed from x with the forward's
    ``scale`` and ``bias`` is > 0 (no mask read). Fills dx (M, C, S), dweight and dbias
    (C,)."""
    c_n = x.shape[1]
    nch = max(1, min(nchunks, c_n))
    for ch in prange(nch):
        _block_backward(x, dy, dy[:0], ch * c_n // nch, (ch + 1) * c_n // nch, relu, mean,
                        invstd, scale, bias, weight, dx, dx[:0], dweight, dbias)


@njit
def bn_eval_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray,
                    bias: np.ndarray, eps: float, relu: bool, nchunks: int, y: np.ndarray,
                    yrelu: np.ndarray) -> None:
    """y = (x - mean) / sqrt(var + eps) · weight + bias with fixed (running) statistics;
    with ``relu`` also yrelu = max(y, 0). ``nchunks`` runs of the M·C rows in parallel."""
    m_n, c_n = x.shape[0], x.shape[1]
    rows = m_n * c_n
    nch = max(1, min(nchunks, rows))
    for ch in prange(nch):
        for r in range(ch * rows // nch, (ch + 1) * rows // nch):
            i, c = r // c_n, r % c_n
            sc = weight[c] / math.sqrt(var[c] + eps)
            mu = np.float64(mean[c])
            b = np.float64(bias[c])
            if relu:
                _norm_row(x[i, c], mu, sc, b, True, y[i, c], yrelu[i, c])
            else:
                _norm_row(x[i, c], mu, sc, b, False, y[i, c], y[i, c])


@njit
def bn_eval_backward(x: np.ndarray, dy: np.ndarray, mask: np.ndarray, relu: bool,
                     mean: np.ndarray, var: np.ndarray, weight: np.ndarray, eps: float,
                     dx: np.ndarray, dskip: np.ndarray, dweight: np.ndarray,
                     dbias: np.ndarray) -> None:
    """Backward with fixed statistics: ``dy`` the gradient of the last output (with
    ``relu``, of the ReLU: passed where ``mask`` (M, C, S), the ReLU output, is > 0). Fills
    dx (M, C, S), dweight and dbias (C,); a non-empty ``dskip`` (M, C, S; with ``relu``:
    the end of a residual block, BatchNorm -> Add <- skip -> ReLU) gets the masked gradient
    too, the skip input's, in the same pass."""
    m_n, c_n, s_n = x.shape
    skip = dskip.shape[0] > 0
    for c in prange(c_n):
        mu = np.float64(mean[c])
        inv = 1.0 / math.sqrt(var[c] + eps)
        scale = weight[c] * inv
        t1 = 0.0
        t2 = 0.0
        for i in range(m_n):
            out = dx[i, c]
            if relu:
                g = dskip[i, c] if skip else out
                a1, a2 = _row_mask_sums(x[i, c], dy[i, c], mask[i, c], mu, g)
                for s in range(s_n):
                    out[s] = g[s] * scale
            else:
                a1, a2 = _row_grad_sums(x[i, c], dy[i, c], mu, 1.0, 0.0, False)
                grow = dy[i, c]
                for s in range(s_n):  # a loop, not an array copy (compile time, see _sum_parts)
                    out[s] = grow[s] * scale
            t1 += a1
            t2 += a2
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
                              bias: np.ndarray, eps: float, nchunks: int, y: np.ndarray,
                              yadd: np.ndarray, yrelu: np.ndarray, mean: np.ndarray,
                              var: np.ndarray, scale: np.ndarray) -> None:
    """The end of a residual block: y = BatchNorm(x) with the batch's statistics (as
    ``bn_train_forward``), yadd = y + skip, yrelu = max(yadd, 0); all (M, C, S)."""
    m_n, c_n, s_n = x.shape
    nch = max(1, min(nchunks, c_n))
    for ch in prange(nch):
        lo = ch * c_n // nch
        hi = (ch + 1) * c_n // nch
        _block_stats(x, lo, hi, weight, eps, mean, var, scale)
        for i in range(m_n):
            for c in range(lo, hi):
                row = x[i, c]
                srow = skip[i, c]
                out = y[i, c]
                arow = yadd[i, c]
                rrow = yrelu[i, c]
                mu = mean[c]
                sc = scale[c]
                b = np.float64(bias[c])
                for s in range(s_n):
                    val = (row[s] - mu) * sc + b
                    out[s] = val
                    a = val + srow[s]
                    arow[s] = a
                    rrow[s] = a if a > 0 else 0.0


@njit
def bn_add_relu_train_backward(x: np.ndarray, dy: np.ndarray, mask: np.ndarray,
                               nchunks: int, mean: np.ndarray, invstd: np.ndarray,
                               weight: np.ndarray, dx: np.ndarray, dskip: np.ndarray,
                               dweight: np.ndarray, dbias: np.ndarray) -> None:
    """Backward of ``bn_add_relu_train_forward``: ``dy`` the gradient of the ReLU output,
    ``mask`` that output. Fills dskip (the masked gradient, the skip input's), dx (through
    the batch statistics), dweight and dbias; two passes (``_block_backward``)."""
    c_n = x.shape[1]
    nch = max(1, min(nchunks, c_n))
    for ch in prange(nch):
        # scale and bias are not read with a dskip: invstd and weight stand in (same types,
        # so both kernels share one compiled _block_backward)
        _block_backward(x, dy, mask, ch * c_n // nch, (ch + 1) * c_n // nch, False, mean,
                        invstd, invstd, weight, weight, dx, dskip, dweight, dbias)

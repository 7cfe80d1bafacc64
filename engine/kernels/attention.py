"""Scaled dot-product attention kernels for MultiHeadAttention, forward and backward.

The projections around them are Dense products (``kernels.fused.dense_forward``); these
kernels take the projected ``qkv`` (N, T, 3E) laid out as PyTorch's ``in_proj``: columns
0 … E-1 are the queries, E … 2E-1 the keys, 2E … 3E-1 the values, head h owning columns
h·D … (h+1)·D - 1 of each (D = E / heads). Each (sample, head) pair is one task (the pairs
split into at most ``SLICES`` parallel slices), whose products BLAS runs on the (T, D)
column blocks in place (``gemm`` with leading dimensions: no copies, no transposes).
float32 or float64; softmax sums accumulate in float64. The softmax's exponentials are
``_exp_row``'s (float64 arithmetic in one branch-free loop that vectorises, where a call of
the scalar ``math.exp`` per weight took half of the forward).
"""

from __future__ import annotations

import numpy as np

from .blas import gemm
from .jit import njit, prange

SLICES = 64  # parallel slices of the (sample, head) pairs at most (each has its own scratch)

LN2_HI = 0.693145751953125  # ln 2 split in two (Cody–Waite): k·LN2_HI is exact for |k| < 2¹¹
LN2_LO = 1.42860682030941723212e-6
LOG2E = 1.4426950408889634
# 1/k! for k = 11 … 2: Taylor on |r| ≤ ln2 / 2 leaves a relative error below 1e-14
EXP_POLY = (1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0,
            1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5)


@njit(parallel=False)
def _exp_row(row: np.ndarray, hi: int, mx: float, scale: float, bits: np.ndarray) -> float:
    """row[j] = exp((row[j] - mx) · scale) for j < ``hi`` (all ≤ 0: ``mx`` is the row's
    largest value, ``scale`` > 0), in float64 arithmetic; returns their sum (float64).
    ``bits`` (int64, ≥ ``hi``) is scratch for the powers of two."""
    c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = EXP_POLY
    two = bits.view(np.float64)
    for j in range(hi):
        z = max((np.float64(row[j]) - mx) * scale, -700.0)
        k = np.floor(z * LOG2E + 0.5)
        r = (z - k * LN2_HI) - k * LN2_LO
        p = c11
        p = p * r + c10
        p = p * r + c9
        p = p * r + c8
        p = p * r + c7
        p = p * r + c6
        p = p * r + c5
        p = p * r + c4
        p = p * r + c3
        p = p * r + c2
        p = p * r + 1.0
        p = p * r + 1.0
        bits[j] = (np.int64(k) + 1023) << 52
        row[j] = p * two[j]
    tot = np.float64(0.0)
    for j in range(hi):
        tot += row[j]
    return tot


@njit(parallel=False)
def _dot64(a: np.ndarray, b: np.ndarray, n: int) -> float:
    """Σ a[j]·b[j] for j < n in float64, in four interleaved partial sums (one chain of
    dependent adds would wait on each add's latency)."""
    s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
    m = n - n % 4
    for j in range(0, m, 4):
        s0 += np.float64(a[j]) * b[j]
        s1 += np.float64(a[j + 1]) * b[j + 1]
        s2 += np.float64(a[j + 2]) * b[j + 2]
        s3 += np.float64(a[j + 3]) * b[j + 3]
    for j in range(m, n):
        s0 += np.float64(a[j]) * b[j]
    return (s0 + s1) + (s2 + s3)


@njit(parallel=False)
def _softmax_rows(p: np.ndarray, causal: bool, bits: np.ndarray) -> None:
    """Each row of p (T, T) (already scaled) replaced by its softmax in place; with
    ``causal`` row i over its first i + 1 weights, the rest set to 0."""
    t_n = p.shape[0]
    for i in range(t_n):
        hi = i + 1 if causal else t_n
        row = p[i]
        mx = row[0]
        for j in range(1, hi):
            if row[j] > mx:
                mx = row[j]
        inv = 1.0 / _exp_row(row, hi, np.float64(mx), 1.0, bits)
        for j in range(hi):
            row[j] = row[j] * inv
        for j in range(hi, t_n):
            row[j] = 0.0


@njit(parallel=False)
def _dropped(p: np.ndarray, u: np.ndarray, rate: float, out: np.ndarray) -> None:
    """out = p kept where u ≥ rate (scaled by 1 / (1 - rate)), else 0 (all flat, same size)."""
    keep = 1.0 / (1.0 - rate)
    for j in range(p.shape[0]):
        out[j] = p[j] * keep if u[j] >= rate else 0.0


@njit
def attention_forward(qkv: np.ndarray, heads: int, scale: float, causal: bool, rate: float,
                      u: np.ndarray, probs: np.ndarray, ctx: np.ndarray) -> None:
    """ctx (N, T, E) = softmax(q kᵀ · scale [+ causal mask]) (dropped out) @ v per head.

    ``probs`` (N, heads, T, T) receives the softmax (before dropout), kept for the backward.
    With ``rate`` > 0, ``u`` (N, heads, T, T) holds uniform draws: a weight is kept (scaled by
    1 / (1 - rate)) where u ≥ rate; otherwise ``u`` may be empty. A causal mask lets step i
    attend to steps j ≤ i only. Per (sample, head): q kᵀ · scale by BLAS straight into
    ``probs`` (the scale as its alpha; q, k, v read in place from ``qkv`` with row stride
    3E), the softmax in place, then the weights @ v straight into the head's columns of
    ``ctx``: no copies of q, k, v, no transposes."""
    n_n, t_n, e3 = qkv.shape
    e = e3 // 3
    d = e // heads
    tasks = n_n * heads
    nch = max(1, min(tasks, SLICES))
    qf = qkv.reshape(n_n * t_n * e3)
    cf = ctx.reshape(n_n * t_n * e)
    tt = t_n * t_n
    for ch in prange(nch):
        bits = np.empty(t_n, np.int64)
        pm = np.empty(tt if rate > 0 else 0, qkv.dtype)
        for task in range(ch * tasks // nch, (ch + 1) * tasks // nch):
            n = task // heads
            h = task % heads
            base = n * t_n * e3 + h * d
            pf = probs[n, h].reshape(tt)
            gemm(False, True, t_n, t_n, d, scale, qf[base:], e3, qf[base + e:], e3, 0.0, pf,
                 t_n)
            _softmax_rows(probs[n, h], causal, bits)
            src = pf
            if rate > 0:
                _dropped(pf, u[n, h].reshape(tt), rate, pm)
                src = pm
            gemm(False, False, t_n, d, t_n, 1.0, src, t_n, qf[base + 2 * e:], e3, 0.0,
                 cf[n * t_n * e + h * d:], e)


@njit
def attention_backward(qkv: np.ndarray, probs: np.ndarray, heads: int, scale: float,
                       rate: float, u: np.ndarray, dctx: np.ndarray, dqkv: np.ndarray) -> None:
    """dqkv (N, T, 3E) from dctx (N, T, E), the forward's ``qkv``, ``probs`` and ``u``.

    With P the softmax, M the dropout factor (0 or 1 / (1 - rate)) and dO the context's
    gradient: dV = (P·M)ᵀ dO, dP = (dO Vᵀ)·M, dS = P·(dP - Σ_j dP·P), dQ = dS K · scale,
    dK = dSᵀ Q · scale. Masked (causal) weights have P = 0 and so no gradient. BLAS reads
    and writes the heads' columns of ``qkv``, ``dctx`` and ``dqkv`` in place (row strides 3E,
    E); transposed operands are BLAS flags, not copies."""
    n_n, t_n, e3 = qkv.shape
    e = e3 // 3
    d = e // heads
    tasks = n_n * heads
    nch = max(1, min(tasks, SLICES))
    qf = qkv.reshape(n_n * t_n * e3)
    df = dctx.reshape(n_n * t_n * e)
    gf = dqkv.reshape(n_n * t_n * e3)
    tt = t_n * t_n
    for ch in prange(nch):
        ds = np.empty((t_n, t_n), qkv.dtype)
        dsf = ds.reshape(tt)
        pm = np.empty(tt if rate > 0 else 0, qkv.dtype)
        for task in range(ch * tasks // nch, (ch + 1) * tasks // nch):
            n = task // heads
            h = task % heads
            base = n * t_n * e3 + h * d
            dbase = n * t_n * e + h * d
            p = probs[n, h]
            src = p.reshape(tt)
            if rate > 0:
                _dropped(src, u[n, h].reshape(tt), rate, pm)
                src = pm
            gemm(True, False, t_n, d, t_n, 1.0, src, t_n, df[dbase:], e, 0.0,
                 gf[base + 2 * e:], e3)
            gemm(False, True, t_n, t_n, d, 1.0, df[dbase:], e, qf[base + 2 * e:], e3, 0.0,
                 dsf, t_n)
            if rate > 0:
                keep = 1.0 / (1.0 - rate)
                uf = u[n, h].reshape(tt)
                for j in range(tt):
                    dsf[j] = dsf[j] * keep if uf[j] >= rate else 0.0
            for i in range(t_n):
                pr = p[i]
                sr = ds[i]
                dot = _dot64(sr, pr, t_n)
                for j in range(t_n):
                    sr[j] = pr[j] * (sr[j] - dot)
            gemm(False, False, t_n, d, t_n, scale, dsf, t_n, qf[base + e:], e3, 0.0, gf[base:],
                 e3)
            gemm(True, False, t_n, d, t_n, scale, dsf, t_n, qf[base:], e3, 0.0, gf[base + e:],
                 e3)

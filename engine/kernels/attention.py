"""Scaled dot-product attention kernels for MultiHeadAttention, forward and backward.

The projections around them are Dense products (``kernels.fused.dense_forward``); these
kernels take the projected ``qkv`` (N, T, 3E) laid out as PyTorch's ``in_proj``: columns
0 … E-1 are the queries, E … 2E-1 the keys, 2E … 3E-1 the values, head h owning columns
h·D … (h+1)·D - 1 of each (D = E / heads). Each (sample, head) pair is one parallel task
whose (T, D) slices are copied to contiguous buffers and multiplied by BLAS (``np.dot``).
float32 or float64; softmax sums accumulate in float64. The softmax's exponentials are
``_exp_row``'s (float64 arithmetic in one branch-free loop that vectorises, where a call of
the scalar ``math.exp`` per weight took half of the forward).
"""

from __future__ import annotations

import numpy as np

from .jit import njit, prange

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


@njit
def attention_forward(qkv: np.ndarray, heads: int, scale: float, causal: bool, rate: float,
                      u: np.ndarray, probs: np.ndarray, ctx: np.ndarray) -> None:
    """ctx (N, T, E) = softmax(q kᵀ · scale [+ causal mask]) (dropped out) @ v per head.

    ``probs`` (N, heads, T, T) receives the softmax (before dropout), kept for the backward.
    With ``rate`` > 0, ``u`` (N, heads, T, T) holds uniform draws: a weight is kept (scaled by
    1 / (1 - rate)) where u ≥ rate; otherwise ``u`` may be empty. A causal mask lets step i
    attend to steps j ≤ i only."""
    n_n, t_n, e3 = qkv.shape
    e = e3 // 3
    d = e // heads
    keep = 1.0 / (1.0 - rate) if rate > 0 else 1.0
    for task in prange(n_n * heads):
        n = task // heads
        h = task % heads
        q = np.ascontiguousarray(qkv[n, :, h * d:(h + 1) * d])
        k = np.ascontiguousarray(qkv[n, :, e + h * d:e + (h + 1) * d])
        v = np.ascontiguousarray(qkv[n, :, 2 * e + h * d:2 * e + (h + 1) * d])
        s = np.dot(q, k.T)
        p = probs[n, h]
        bits = np.empty(t_n, np.int64)
        for i in range(t_n):
            hi = i + 1 if causal else t_n
            row = s[i]
            mx = row[0]
            for j in range(1, hi):
                if row[j] > mx:
                    mx = row[j]
            tot = _exp_row(row, hi, np.float64(mx), scale, bits)
            inv = 1.0 / tot
            for j in range(hi):
                p[i, j] = s[i, j] * inv
                s[i, j] = p[i, j]
                if rate > 0:
                    s[i, j] = s[i, j] * keep if u[n, h, i, j] >= rate else 0.0
            for j in range(hi, t_n):
                p[i, j] = 0.0
                s[i, j] = 0.0
        ctx[n, :, h * d:(h + 1) * d] = np.dot(s, v)


@njit
def attention_backward(qkv: np.ndarray, probs: np.ndarray, heads: int, scale: float,
                       rate: float, u: np.ndarray, dctx: np.ndarray, dqkv: np.ndarray) -> None:
    """dqkv (N, T, 3E) from dctx (N, T, E), the forward's ``qkv``, ``probs`` and ``u``.

    With P the softmax, M the dropout factor (0 or 1 / (1 - rate)) and dO the context's
    gradient: dV = (P·M)ᵀ dO, dP = (dO Vᵀ)·M, dS = P·(dP - Σ_j dP·P) · scale, dQ = dS K,
    dK = dSᵀ Q. Masked (causal) weights have P = 0 and so no gradient."""
    n_n, t_n, e3 = qkv.shape
    e = e3 // 3
    d = e // heads
    keep = 1.0 / (1.0 - rate) if rate > 0 else 1.0
    for task in prange(n_n * heads):
        n = task // heads
        h = task % heads
        q = np.ascontiguousarray(qkv[n, :, h * d:(h + 1) * d])
        k = np.ascontiguousarray(qkv[n, :, e + h * d:e + (h + 1) * d])
        v = np.ascontiguousarray(qkv[n, :, 2 * e + h * d:2 * e + (h + 1) * d])
        do = np.ascontiguousarray(dctx[n, :, h * d:(h + 1) * d])
        p = probs[n, h]
        pm = np.empty((t_n, t_n), qkv.dtype)
        for i in range(t_n):
            for j in range(t_n):
                if rate > 0:
                    pm[i, j] = p[i, j] * keep if u[n, h, i, j] >= rate else 0.0
                else:
                    pm[i, j] = p[i, j]
        dqkv[n, :, 2 * e + h * d:2 * e + (h + 1) * d] = np.dot(pm.T, do)
        ds = np.dot(do, v.T)
        for i in range(t_n):
            if rate > 0:
                for j in range(t_n):
                    ds[i, j] = ds[i, j] * keep if u[n, h, i, j] >= rate else 0.0
            dot = np.float64(0.0)
            for j in range(t_n):
                dot += ds[i, j] * p[i, j]
            for j in range(t_n):
                ds[i, j] = p[i, j] * (ds[i, j] - dot) * scale
        dqkv[n, :, h * d:(h + 1) * d] = np.dot(ds, k)
        dqkv[n, :, e + h * d:e + (h + 1) * d] = np.dot(ds.T, q)

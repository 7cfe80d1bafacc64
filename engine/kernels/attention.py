"""Scaled dot-product attention kernels for MultiHeadAttention, forward and backward.

The projections around them are Dense products (``kernels.fused.dense_forward``); these
kernels take the projected ``qkv`` (N, T, 3E) laid out as PyTorch's ``in_proj``: columns
0 … E-1 are the queries, E … 2E-1 the keys, 2E … 3E-1 the values, head h owning columns
h·D … (h+1)·D - 1 of each (D = E / heads). Each (sample, head) pair is one parallel task
whose (T, D) slices are copied to contiguous buffers and multiplied by BLAS (``np.dot``).
float32 or float64; softmax sums accumulate in float64.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit, prange


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
        for i in range(t_n):
            hi = i + 1 if causal else t_n
            mx = s[i, 0] * scale
            for j in range(1, hi):
                if s[i, j] * scale > mx:
                    mx = s[i, j] * scale
            tot = np.float64(0.0)
            for j in range(hi):
                w = math.exp(s[i, j] * scale - mx)
                s[i, j] = w
                tot += w
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

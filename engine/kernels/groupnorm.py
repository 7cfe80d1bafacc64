"""Group normalisation kernels; LayerNorm is their one-group case.

Arrays are views (R, C, S): R independent rows (samples; for LayerNorm every position of a
sample), C channels in ``groups`` groups of C / groups consecutive channels, S values per
channel (an image's pixels; 1 for features). Each (row, group) is normalised by the mean and
biased variance of its (C / groups)·S values, then every channel is scaled by ``weight`` and
shifted by ``bias`` (C,). Statistics and parameter-gradient sums are float64; data arrays are
float32 or float64.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import njit, prange


@njit
def group_norm_forward(x: np.ndarray, groups: int, weight: np.ndarray, bias: np.ndarray,
                       eps: float, y: np.ndarray, mean: np.ndarray, invstd: np.ndarray) -> None:
    """y = (x - mean) / sqrt(var + eps) · weight + bias per (row, group); writes the group
    statistics ``mean`` and ``invstd`` = 1 / sqrt(var + eps), both (R, groups) float64."""
    r_n, c_n, s_n = x.shape
    cg = c_n // groups
    count = cg * s_n
    for q in prange(r_n * groups):
        r = q // groups
        c0 = (q % groups) * cg
        acc = np.float64(0.0)
        for c in range(c0, c0 + cg):
            for k in range(s_n):
                acc += x[r, c, k]
        mu = acc / count
        acc2 = np.float64(0.0)
        for c in range(c0, c0 + cg):
            for k in range(s_n):
                d = x[r, c, k] - mu
                acc2 += d * d
        inv = 1.0 / math.sqrt(acc2 / count + eps)
        mean[r, q % groups] = mu
        invstd[r, q % groups] = inv
        for c in range(c0, c0 + cg):
            scale = weight[c] * inv
            b = bias[c]
            for k in range(s_n):
                y[r, c, k] = (x[r, c, k] - mu) * scale + b


@njit
def group_norm_backward(x: np.ndarray, dy: np.ndarray, groups: int, mean: np.ndarray,
                        invstd: np.ndarray, weight: np.ndarray, nchunks: int, dx: np.ndarray,
                        dweight: np.ndarray, dbias: np.ndarray) -> None:
    """Backward of ``group_norm_forward`` through the group statistics: fills dx (R, C, S)
    and overwrites dweight and dbias (C,).

    The rows are split into ``nchunks`` slices run in parallel; each sums its rows' parameter
    gradients apart and the slices are added in order (no shared writes)."""
    r_n, c_n, s_n = x.shape
    cg = c_n // groups
    count = cg * s_n
    nch = max(1, min(nchunks, r_n))
    wparts = np.zeros((nch, c_n))
    bparts = np.zeros((nch, c_n))
    for ch in prange(nch):
        wacc = wparts[ch]
        bacc = bparts[ch]
        for r in range(ch * r_n // nch, (ch + 1) * r_n // nch):
            for g in range(groups):
                mu = mean[r, g]
                inv = invstd[r, g]
                s1 = np.float64(0.0)
                s2 = np.float64(0.0)
                for c in range(g * cg, (g + 1) * cg):
                    w = weight[c]
                    for k in range(s_n):
                        xh = (x[r, c, k] - mu) * inv
                        d = dy[r, c, k]
                        wacc[c] += d * xh
                        bacc[c] += d
                        s1 += d * w
                        s2 += d * w * xh
                m1 = s1 / count
                m2 = s2 / count
                for c in range(g * cg, (g + 1) * cg):
                    w = weight[c]
                    for k in range(s_n):
                        xh = (x[r, c, k] - mu) * inv
                        dx[r, c, k] = inv * (dy[r, c, k] * w - m1 - xh * m2)
    for c in range(c_n):
        tw = np.float64(0.0)
        tb = np.float64(0.0)
        for ch in range(nch):
            tw += wparts[ch, c]
            tb += bparts[ch, c]
        dweight[c] = tw
        dbias[c] = tb

"""Spatial transformer kernels: affine grid generator + bilinear sampler, forward and backward.

Same result as PyTorch's ``F.grid_sample(img, F.affine_grid(A, size, align_corners=False),
mode="bilinear", padding_mode="zeros", align_corners=False)``: output pixel (i, j) of an
(Ho, Wo) map sits at normalised coordinates x = (2j + 1) / Wo - 1, y = (2i + 1) / Ho - 1; the
affine matrix A (2, 3) maps it to (xs, ys) = A · (x, y, 1) in the input's normalised
coordinates, which are read at pixel position ((xs + 1) W - 1) / 2, ((ys + 1) H - 1) / 2
with bilinear weights; pixels outside the input count as 0.

Arrays: img (N, C, H, W), A (N, 2, 3), out (N, C, Ho, Wo). ``prange`` over the batch, so the
scatter of the image gradient needs no atomics.
"""

from __future__ import annotations

import numpy as np

from .jit import njit, prange


@njit(parallel=False, error_model="numpy")
def _source(a, xo, yo, w, h):
    """Where output point (xo, yo) reads the input: (x0, y0, wx1, wy1) = top-left pixel and
    bilinear weights of its right / lower neighbours. Far-away points are clamped just
    outside the image (their value and gradient are 0 either way); NaN stays NaN."""
    dt = a.dtype.type
    ix = (a[0, 0] * xo + a[0, 1] * yo + a[0, 2] + dt(1)) * dt(w * 0.5) - dt(0.5)
    iy = (a[1, 0] * xo + a[1, 1] * yo + a[1, 2] + dt(1)) * dt(h * 0.5) - dt(0.5)
    if ix != ix or iy != iy:
        return 0, 0, ix + iy, ix + iy
    ix = min(max(ix, dt(-2)), dt(w + 1))
    iy = min(max(iy, dt(-2)), dt(h + 1))
    fx = np.floor(ix)
    fy = np.floor(iy)
    return int(fx), int(fy), ix - fx, iy - fy


@njit(error_model="numpy")
def affine_sample_forward(img, theta, out):
    """out[n] = img[n] sampled on the grid of theta[n] (2, 3); see the module doc."""
    n_batch, n_ch, h, w = img.shape
    ho, wo = out.shape[2], out.shape[3]
    dt = img.dtype.type
    one = dt(1)
    for n in prange(n_batch):
        a = theta[n]
        for i in range(ho):
            yo = dt((2 * i + 1) / ho - 1)
            for j in range(wo):
                xo = dt((2 * j + 1) / wo - 1)
                x0, y0, wx1, wy1 = _source(a, xo, yo, w, h)
                wx0 = one - wx1
                wy0 = one - wy1
                inx0 = 0 <= x0 < w
                inx1 = 0 <= x0 + 1 < w
                iny0 = 0 <= y0 < h
                iny1 = 0 <= y0 + 1 < h
                for c in range(n_ch):
                    v = dt(0)
                    if iny0:
                        if inx0:
                            v += wy0 * wx0 * img[n, c, y0, x0]
                        if inx1:
                            v += wy0 * wx1 * img[n, c, y0, x0 + 1]
                    if iny1:
                        if inx0:
                            v += wy1 * wx0 * img[n, c, y0 + 1, x0]
                        if inx1:
                            v += wy1 * wx1 * img[n, c, y0 + 1, x0 + 1]
                    out[n, c, i, j] = v


@njit(error_model="numpy")
def affine_sample_backward(img, theta, dout, dimg, dtheta):
    """Gradients of ``affine_sample_forward``: fills dimg (N, C, H, W) and dtheta (N, 2, 3)
    from dout (N, C, Ho, Wo)."""
    n_batch, n_ch, h, w = img.shape
    ho, wo = dout.shape[2], dout.shape[3]
    dt = img.dtype.type
    one = dt(1)
    zero = dt(0)
    half_w = dt(w / 2)
    half_h = dt(h / 2)
    for n in prange(n_batch):
        a = theta[n]
        dimg[n] = 0
        da = dtheta[n]
        da[:, :] = 0
        for i in range(ho):
            yo = dt((2 * i + 1) / ho - 1)
            for j in range(wo):
                xo = dt((2 * j + 1) / wo - 1)
                x0, y0, wx1, wy1 = _source(a, xo, yo, w, h)
                wx0 = one - wx1
                wy0 = one - wy1
                inx0 = 0 <= x0 < w
                inx1 = 0 <= x0 + 1 < w
                iny0 = 0 <= y0 < h
                iny1 = 0 <= y0 + 1 < h
                gx = zero
                gy = zero
                for c in range(n_ch):
                    g = dout[n, c, i, j]
                    v00 = img[n, c, y0, x0] if iny0 and inx0 else zero
                    v01 = img[n, c, y0, x0 + 1] if iny0 and inx1 else zero
                    v10 = img[n, c, y0 + 1, x0] if iny1 and inx0 else zero
                    v11 = img[n, c, y0 + 1, x0 + 1] if iny1 and inx1 else zero
                    gx += g * (wy0 * (v01 - v00) + wy1 * (v11 - v10))
                    gy += g * (wx0 * (v10 - v00) + wx1 * (v11 - v01))
                    if iny0:
                        if inx0:
                            dimg[n, c, y0, x0] += wy0 * wx0 * g
                        if inx1:
                            dimg[n, c, y0, x0 + 1] += wy0 * wx1 * g
                    if iny1:
                        if inx0:
                            dimg[n, c, y0 + 1, x0] += wy1 * wx0 * g
                        if inx1:
                            dimg[n, c, y0 + 1, x0 + 1] += wy1 * wx1 * g
                gx *= half_w
                gy *= half_h
                da[0, 0] += gx * xo
                da[0, 1] += gx * yo
                da[0, 2] += gx
                da[1, 0] += gy * xo
                da[1, 1] += gy * yo
                da[1, 2] += gy

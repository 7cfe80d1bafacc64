"""Plain-numpy affine grid + bilinear sampler (PyTorch's ``affine_grid`` / ``grid_sample`` with
align_corners=False, zero padding): the oracle for ``kernels.spatial``.

img (N, C, H, W), theta (N, 2, 3), grid (N, Ho, Wo, 2) holding (x, y) in [-1, 1] coordinates.
"""

from __future__ import annotations

import numpy as np


def affine_grid(theta: np.ndarray, ho: int, wo: int) -> np.ndarray:
    """Normalised source coordinates (x, y) of every output pixel: (N, Ho, Wo, 2)."""
    xs = (2 * np.arange(wo) + 1) / wo - 1
    ys = (2 * np.arange(ho) + 1) / ho - 1
    base = np.stack([np.broadcast_to(xs, (ho, wo)), np.broadcast_to(ys[:, None], (ho, wo)),
                     np.ones((ho, wo))], axis=-1)
    return np.einsum("hwk,njk->nhwj", base, theta)


def affine_grid_backward(dgrid: np.ndarray, ho: int, wo: int) -> np.ndarray:
    """Gradient wrt theta (N, 2, 3) from the gradient wrt the grid (N, Ho, Wo, 2)."""
    xs = (2 * np.arange(wo) + 1) / wo - 1
    ys = (2 * np.arange(ho) + 1) / ho - 1
    base = np.stack([np.broadcast_to(xs, (ho, wo)), np.broadcast_to(ys[:, None], (ho, wo)),
                     np.ones((ho, wo))], axis=-1)
    return np.einsum("hwk,nhwj->njk", base, dgrid)


def _corners(img: np.ndarray, grid: np.ndarray):
    """For each of the four neighbours: (y, x) pixel indices, bilinear weight, inside mask,
    and the derivatives of the weight wrt the pixel coordinates (ix, iy)."""
    _, _, h, w = img.shape
    ix = ((grid[..., 0] + 1) * w - 1) / 2
    iy = ((grid[..., 1] + 1) * h - 1) / 2
    x0 = np.floor(ix)
    y0 = np.floor(iy)
    wx1, wy1 = ix - x0, iy - y0
    out = []
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        x = (x0 + dx).astype(np.int64)
        y = (y0 + dy).astype(np.int64)
        wx = wx1 if dx else 1 - wx1
        wy = wy1 if dy else 1 - wy1
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        dwx = wy * (1 if dx else -1)
        dwy = wx * (1 if dy else -1)
        out.append((np.clip(y, 0, h - 1), np.clip(x, 0, w - 1), wx * wy, inside, dwx, dwy))
    return out


def grid_sample(img: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Bilinear sampling of img at grid: (N, C, Ho, Wo)."""
    n = np.arange(img.shape[0])[:, None, None]
    out = 0
    for y, x, wgt, inside, _, _ in _corners(img, grid):
        vals = img[n, :, y, x]
        out = out + np.where(inside[..., None], vals * wgt[..., None], 0)
    return np.moveaxis(out, -1, 1)


def grid_sample_backward(img: np.ndarray, grid: np.ndarray, dout: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Gradients wrt img (N, C, H, W) and grid (N, Ho, Wo, 2) from dout (N, C, Ho, Wo)."""
    nb, nc, h, w = img.shape
    n = np.arange(nb)[:, None, None]
    g = np.moveaxis(dout, 1, -1)
    dimg = np.zeros_like(img)
    dgrid = np.zeros(grid.shape, dtype=np.result_type(img, grid))
    for y, x, wgt, inside, dwx, dwy in _corners(img, grid):
        vals = np.where(inside[..., None], img[n, :, y, x], 0)
        dgrid[..., 0] += (g * vals).sum(-1) * dwx * w / 2
        dgrid[..., 1] += (g * vals).sum(-1) * dwy * h / 2
        contrib = np.where(inside[..., None], g * wgt[..., None], 0)
        nn = np.broadcast_to(n, y.shape)
        for c in range(nc):
            np.add.at(dimg, (nn, c, y, x), contrib[..., c])
    return dimg, dgrid


def affine_sample(img: np.ndarray, theta: np.ndarray, ho: int, wo: int) -> np.ndarray:
    """grid_sample(img, affine_grid(theta)): the forward of a spatial transformer."""
    return grid_sample(img, affine_grid(theta, ho, wo))


def affine_sample_backward(img: np.ndarray, theta: np.ndarray, dout: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``affine_sample`` wrt img and theta."""
    ho, wo = dout.shape[2:]
    dimg, dgrid = grid_sample_backward(img, affine_grid(theta, ho, wo), dout)
    return dimg, affine_grid_backward(dgrid, ho, wo)

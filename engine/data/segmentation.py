"""A generated segmentation dataset: images of a few shapes and a class label per pixel.

Name         x shape         y
seg_shapes   (1, 32, 32)     (32, 32) int64 per pixel: 0 background, 1 circle, 2 square,
                             3 triangle

The shapes are drawn as ``shapes`` draws them (engine.data.builtin), but several per image,
and each pixel's label says which shape covers it (shapes do not overlap).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .builtin import MAX_PIXELS, _shape_distance, register_dataset
from .dataset import Dataset

SEG_CLASSES = ("background", "circle", "square", "triangle")


@register_dataset("seg_shapes", "generated 1×32×32 images of 1–3 circles, squares and "
                                "triangles, with a class label per pixel (segmentation)",
                  kind="image")
def seg_shapes(n: int = 3000, noise: float = 0.05, size: int = 32, max_shapes: int = 3,
               min_scale: float = 0.25, max_scale: float = 0.5, seed: int = 0) -> Dataset:
    """Per image 1 .. ``max_shapes`` shapes (circle, square, triangle), each of radius
    ``min_scale`` .. ``max_scale`` of half the image, rotated at random, anywhere it fits,
    brightness 0.6..1, none overlapping another (a shape with no room left after 50 tries
    is left out); then Gaussian pixel noise (std ``noise``), clipped to [0, 1].

    x is (N, 1, size, size) float32 in [0, 1]; y is (N, size, size) int64, the class of
    each pixel (0 = background; a pixel belongs to a shape where the shape covers at least
    half of it). The same parameters give the same arrays."""
    if not 8 <= size <= 256:
        raise DataError(f"dataset 'seg_shapes': size must be between 8 and 256, got {size}")
    if not 1 <= max_shapes <= 8:
        raise DataError(f"dataset 'seg_shapes': max_shapes must be between 1 and 8, "
                        f"got {max_shapes}")
    if not 0.05 <= min_scale <= max_scale <= 0.9:
        raise DataError(f"dataset 'seg_shapes': need 0.05 ≤ min_scale ≤ max_scale ≤ 0.9, "
                        f"got {min_scale:g} and {max_scale:g}")
    if n * size * size > MAX_PIXELS:
        raise DataError(f"dataset 'seg_shapes': {n:,} images of {size}×{size} is more than "
                        f"{MAX_PIXELS:,} pixels; lower n or size")
    rng = np.random.default_rng(seed)
    count = rng.integers(1, max_shapes + 1, n)
    kinds = rng.integers(0, 3, (n, max_shapes))  # 0 circle, 1 square, 2 triangle
    scale = rng.uniform(min_scale, max_scale, (n, max_shapes))
    angle = rng.uniform(-np.pi, np.pi, (n, max_shapes))
    bright = rng.uniform(0.6, 1.0, (n, max_shapes))
    room = np.maximum(0.0, 0.95 - scale)
    shift = np.zeros((n, max_shapes, 2))
    placed = np.zeros((n, max_shapes), bool)
    for j in range(max_shapes):  # shapes do not overlap: redraw a place up to 50 times
        todo = count > j
        for _ in range(50):
            if not todo.any():
                break
            idx = np.flatnonzero(todo)
            shift[idx, j] = rng.uniform(-1.0, 1.0, (idx.size, 2)) * room[idx, j, None]
            gap = np.hypot(*(shift[idx, :j] - shift[idx, j, None]).transpose(2, 0, 1))
            ok = np.all((gap > scale[idx, :j] + scale[idx, j, None]) | ~placed[idx, :j], axis=1)
            placed[idx[ok], j] = True
            todo[idx[ok]] = False
    half = size / 2.0
    c = (np.arange(size) + 0.5 - half) / half
    gy, gx = np.meshgrid(c, c, indexing="ij")
    x = np.zeros((n, size, size), np.float64)
    y = np.zeros((n, size, size), np.int64)
    for j in range(max_shapes):
        live = placed[:, j]
        for kind in range(3):
            m = live & (kinds[:, j] == kind)
            if not m.any():
                continue
            th = angle[m, j][:, None, None]
            s = scale[m, j][:, None, None]
            px = gx[None] - shift[m, j, 0][:, None, None]
            py = gy[None] - shift[m, j, 1][:, None, None]
            u = (np.cos(th) * px + np.sin(th) * py) / s
            v = (-np.sin(th) * px + np.cos(th) * py) / s
            cover = np.clip(0.5 - _shape_distance(kind, u, -v) * (s * half), 0.0, 1.0)
            ink = cover * bright[m, j][:, None, None]
            x[m] = x[m] * (1.0 - cover) + ink
            y[m] = np.where(cover >= 0.5, kind + 1, y[m])
    xs = x[:, None].astype(np.float32)
    if noise:
        xs += rng.normal(0.0, noise, xs.shape).astype(np.float32)
        np.clip(xs, 0.0, 1.0, out=xs)
    return Dataset({"x": xs, "y": y}, "seg_shapes",
                   list(SEG_CLASSES), "classification",
                   {"kind": "image", "noise": noise, "segmentation": True})

"""Plain-numpy max and average pooling, window by window. The tests' oracle.

Shapes: x (N, C, H, W) -> y (N, C, OH, OW). ``pads`` = (top, bottom, left, right);
OH = (H + top + bottom - KH) // stride_h + 1. Max pooling never picks a padded position;
average pooling divides by KH*KW when ``count_pad`` is true (PyTorch's count_include_pad) and by
the number of real pixels in the window otherwise (TensorFlow's "same").
"""

from __future__ import annotations

import numpy as np


def _windows(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
              pads: tuple[int, int, int, int]):
    """Yield (oh, ow, rows, cols) with the window's real (unpadded) row and column ranges."""
    kh, kw = size
    sh, sw = stride
    t, b, l, r = pads
    h, w = x.shape[2], x.shape[3]
    for oh in range((h + t + b - kh) // sh + 1):
        for ow in range((w + l + r - kw) // sw + 1):
            r0, c0 = oh * sh - t, ow * sw - l
            yield oh, ow, range(max(r0, 0), min(r0 + kh, h)), range(max(c0, 0), min(c0 + kw, w))


def _out_shape(x, size, stride, pads):
    t, b, l, r = pads
    return (x.shape[0], x.shape[1], (x.shape[2] + t + b - size[0]) // stride[0] + 1,
            (x.shape[3] + l + r - size[1]) // stride[1] + 1)


def maxpool2d_forward(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
                      pads: tuple[int, int, int, int]) -> np.ndarray:
    y = np.empty(_out_shape(x, size, stride, pads), x.dtype)
    for oh, ow, rows, cols in _windows(x, size, stride, pads):
        y[:, :, oh, ow] = x[:, :, rows.start:rows.stop, cols.start:cols.stop].max(axis=(2, 3))
    return y


def maxpool2d_backward(x: np.ndarray, dy: np.ndarray, size: tuple[int, int],
                       stride: tuple[int, int], pads: tuple[int, int, int, int]) -> np.ndarray:
    """Each window's gradient goes to its maximum (the first one in row-major order on ties)."""
    dx = np.zeros_like(x)
    for oh, ow, rows, cols in _windows(x, size, stride, pads):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                win = x[n, c, rows.start:rows.stop, cols.start:cols.stop]
                i, j = np.unravel_index(np.argmax(win), win.shape)
                dx[n, c, rows.start + i, cols.start + j] += dy[n, c, oh, ow]
    return dx


def avgpool2d_forward(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
                      pads: tuple[int, int, int, int], count_pad: bool) -> np.ndarray:
    y = np.empty(_out_shape(x, size, stride, pads), x.dtype)
    for oh, ow, rows, cols in _windows(x, size, stride, pads):
        total = x[:, :, rows.start:rows.stop, cols.start:cols.stop].sum(axis=(2, 3))
        y[:, :, oh, ow] = total / (size[0] * size[1] if count_pad else len(rows) * len(cols))
    return y


def avgpool2d_backward(x: np.ndarray, dy: np.ndarray, size: tuple[int, int],
                       stride: tuple[int, int], pads: tuple[int, int, int, int],
                       count_pad: bool) -> np.ndarray:
    dx = np.zeros_like(x)
    for oh, ow, rows, cols in _windows(x, size, stride, pads):
        count = size[0] * size[1] if count_pad else len(rows) * len(cols)
        dx[:, :, rows.start:rows.stop, cols.start:cols.stop] += (
            dy[:, :, oh, ow][:, :, None, None] / count)
    return dx

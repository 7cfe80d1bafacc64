"""Plain-numpy max and average pooling, window by window. The tests' oracle.

Shapes: x (N, C, H, W) -> y (N, C, OH, OW). ``pads`` = (top, bottom, left, right);
OH = (H + top + bottom - KH) // stride_h + 1, or with ``ceil_mode`` (PyTorch's rule)
ceil((H + top + bottom - KH) / stride_h) + 1, less one if the last window would start in the
bottom padding. Max pooling never picks a padded position; average pooling divides by the
window's size within the padded image when ``count_pad`` is true (PyTorch's
count_include_pad: KH*KW except where a ceil_mode window overhangs) and by the number of real
pixels in the window otherwise (TensorFlow's "same").
"""

from __future__ import annotations

import numpy as np


def out_size(size: int, k: int, stride: int, before: int, after: int, ceil_mode: bool) -> int:
    """Output length along one axis (PyTorch's and ONNX's rule)."""
    span = size + before + after - k
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - 1 if (out - 1) * stride >= size + before else out


def _windows(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
              pads: tuple[int, int, int, int], ceil_mode: bool = False):
    """Yield (oh, ow, rows, cols, count) with the window's real (unpadded) row and column
    ranges and its size within the padded image."""
    kh, kw = size
    sh, sw = stride
    t, b, l, r = pads
    h, w = x.shape[2], x.shape[3]
    for oh in range(out_size(h, kh, sh, t, b, ceil_mode)):
        for ow in range(out_size(w, kw, sw, l, r, ceil_mode)):
            r0, c0 = oh * sh - t, ow * sw - l
            count = (min(r0 + kh, h + b) - r0) * (min(c0 + kw, w + r) - c0)
            yield (oh, ow, range(max(r0, 0), min(r0 + kh, h)),
                   range(max(c0, 0), min(c0 + kw, w)), count)


def _out_shape(x, size, stride, pads, ceil_mode):
    t, b, l, r = pads
    return (x.shape[0], x.shape[1], out_size(x.shape[2], size[0], stride[0], t, b, ceil_mode),
            out_size(x.shape[3], size[1], stride[1], l, r, ceil_mode))


def maxpool2d_forward(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
                      pads: tuple[int, int, int, int], ceil_mode: bool = False) -> np.ndarray:
    y = np.empty(_out_shape(x, size, stride, pads, ceil_mode), x.dtype)
    for oh, ow, rows, cols, _ in _windows(x, size, stride, pads, ceil_mode):
        y[:, :, oh, ow] = x[:, :, rows.start:rows.stop, cols.start:cols.stop].max(axis=(2, 3))
    return y


def maxpool2d_backward(x: np.ndarray, dy: np.ndarray, size: tuple[int, int],
                       stride: tuple[int, int], pads: tuple[int, int, int, int],
                       ceil_mode: bool = False) -> np.ndarray:
    """Each window's gradient goes to its maximum (the first one in row-major order on ties)."""
    dx = np.zeros_like(x)
    for oh, ow, rows, cols, _ in _windows(x, size, stride, pads, ceil_mode):
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                win = x[n, c, rows.start:rows.stop, cols.start:cols.stop]
                i, j = np.unravel_index(np.argmax(win), win.shape)
                dx[n, c, rows.start + i, cols.start + j] += dy[n, c, oh, ow]
    return dx


def avgpool2d_forward(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
                      pads: tuple[int, int, int, int], count_pad: bool,
                      ceil_mode: bool = False) -> np.ndarray:
    y = np.empty(_out_shape(x, size, stride, pads, ceil_mode), x.dtype)
    for oh, ow, rows, cols, count in _windows(x, size, stride, pads, ceil_mode):
        total = x[:, :, rows.start:rows.stop, cols.start:cols.stop].sum(axis=(2, 3))
        y[:, :, oh, ow] = total / (count if count_pad else len(rows) * len(cols))
    return y


def avgpool2d_backward(x: np.ndarray, dy: np.ndarray, size: tuple[int, int],
                       stride: tuple[int, int], pads: tuple[int, int, int, int],
                       count_pad: bool, ceil_mode: bool = False) -> np.ndarray:
    dx = np.zeros_like(x)
    for oh, ow, rows, cols, padded in _windows(x, size, stride, pads, ceil_mode):
        count = padded if count_pad else len(rows) * len(cols)
        dx[:, :, rows.start:rows.stop, cols.start:cols.stop] += (
            dy[:, :, oh, ow][:, :, None, None] / count)
    return dx

"""MaxPool2D, AvgPool2D and GlobalAvgPool2D on images (C, H, W).

Padding: "valid" (none), "same" (output = ceil(input / stride), TensorFlow's split with the
odd pixel at the bottom/right) or an int p per side (PyTorch; at most half the pool size, so
that no window is only padding). Max pooling never picks padding. Average pooling counts the
padded zeros for an int padding (PyTorch's default count_include_pad=True) and counts only
the real pixels for "same" (TensorFlow's rule), so border outputs are true averages.

MACs: max pooling does no multiply-adds (0); average pooling counts one per window element
(C·OH·OW·KH·KW), as the depthwise convolution it is.
"""

from __future__ import annotations

import numpy as np

from ..kernels import pool as kpool
from ..registry import Layer, ParamSpec, Shape, register
from .conv import MAX_SIZE, image_shape, plan_windows, size_text


class _Pool2D(Layer):
    """Shared params and window arithmetic of MaxPool2D and AvgPool2D.

    ``self.stride`` is the resolved stride (pool_size when unset); ``self.pads`` =
    (top, bottom, left, right); ``self.count_pad`` is AvgPool's divisor rule."""

    category = "Pooling"
    param_specs = (
        ParamSpec("pool_size", "size", 2, low=1, high=MAX_SIZE, unit="px",
                  help="window height and width"),
        ParamSpec("stride", "size", None, low=1, high=MAX_SIZE, unit="px", optional=True,
                  help="step between windows (empty: the pool size)"),
        ParamSpec("padding", "padding", "valid", low=0, high=MAX_SIZE,
                  help="'valid' (none), 'same' (output = ceil(input / stride)) or pixels per side"),
    )

    def infer_shape(self) -> Shape:
        c, h, w = image_shape(self)
        k = self.p["pool_size"]
        self.stride = self.p["stride"] or k
        pad = self.p["padding"]
        if isinstance(pad, int) and (2 * pad > k[0] or 2 * pad > k[1]):
            raise self.shape_error(
                f"padding {pad} is more than half the pool size {k[0]}×{k[1]}: windows would "
                f"see only padding; use padding ≤ {min(k) // 2} or 'same'")
        (oh, ow), self.pads = plan_windows(self, (h, w), k, self.stride, pad, "pool_size")
        self.count_pad = pad != "same"
        return (c, oh, ow)

    def summary(self) -> str:
        kh, kw = self.p["pool_size"]
        parts = [f"{kh}×{kw}"]
        if self.stride != self.p["pool_size"]:
            parts.append(f"stride {size_text(self.stride)}")
        if self.p["padding"] != "valid":
            parts.append(f"pad {self.p['padding']}")
        return ", ".join(parts)

    def _window_args(self) -> tuple[int, ...]:
        kh, kw = self.p["pool_size"]
        sh, sw = self.stride
        return kh, kw, sh, sw, self.pads[0], self.pads[2]


@register
class MaxPool2D(_Pool2D):
    type_name = "MaxPool2D"
    help = "Keeps the largest value of each window: shrinks the image, keeps strong features."

    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                train: bool) -> np.ndarray:
        x = np.ascontiguousarray(xs[0])
        _, oh, ow = self.out_shape
        y, self._arg = kpool.maxpool2d_forward(x, *self._window_args(), oh, ow)
        return y

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        _, h, w = self.in_shapes[0]
        return [kpool.maxpool2d_backward(np.ascontiguousarray(dy), self._arg, h, w)]


@register
class AvgPool2D(_Pool2D):
    type_name = "AvgPool2D"
    help = "Averages each window: shrinks the image smoothly."

    def macs(self) -> int:
        c, oh, ow = self.out_shape
        kh, kw = self.p["pool_size"]
        return c * oh * ow * kh * kw

    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                train: bool) -> np.ndarray:
        x = np.ascontiguousarray(xs[0])
        _, oh, ow = self.out_shape
        return kpool.avgpool2d_forward(x, *self._window_args(), oh, ow, self.count_pad)

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        _, h, w = self.in_shapes[0]
        return [kpool.avgpool2d_backward(np.ascontiguousarray(dy), *self._window_args(), h, w,
                                         self.count_pad)]


@register
class GlobalAvgPool2D(Layer):
    """The mean of each channel over the whole image: (C, H, W) -> (C,)."""

    type_name = "GlobalAvgPool2D"
    category = "Pooling"
    help = "Averages each channel over the whole image: (C, H, W) -> (C,)."

    def infer_shape(self) -> Shape:
        return (image_shape(self)[0],)

    def macs(self) -> int:
        c, h, w = self.in_shapes[0]
        return c * h * w

    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                train: bool) -> np.ndarray:
        return xs[0].mean(axis=(2, 3), dtype=xs[0].dtype)

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        _, h, w = self.in_shapes[0]
        n, c = dy.shape
        g = (dy / (h * w)).astype(dy.dtype, copy=False)
        return [np.broadcast_to(g[:, :, None, None], (n, c, h, w)).copy()]

    def summary(self) -> str:
        return ""

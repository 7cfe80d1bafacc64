"""HardSwish: y = x · clip(x / 6 + 1/2, 0, 1), PyTorch's nn.Hardswish (MobileNetV3)."""

from __future__ import annotations

import numpy as np

from ..kernels import activation as ak
from ..kernels.reference import activation as ra
from ..registry import register
from .activation import _Elementwise


@register
class HardSwish(_Elementwise):
    """y = x · clip(x / 6 + 1/2, 0, 1): 0 up to x = -3, x from x = 3, x (x + 3) / 6 between;
    a piecewise-polynomial Swish. ONNX HardSwish, PyTorch's nn.Hardswish."""

    type_name = "HardSwish"
    help = "x · hard sigmoid(x): a cheap Swish (PyTorch's Hardswish, in MobileNetV3)."
    icon_curve = staticmethod(lambda x: x * np.clip(x / 6 + 0.5, 0.0, 1.0))
    onnx_ops = ("HardSwish",)
    kernels = (ak.hard_swish_forward, ak.hard_swish_backward)

    def _forward(self, x, y):
        ak.hard_swish_forward(x, y)

    def _backward(self, dy, dx):
        ak.hard_swish_backward(self._x, dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.hard_swish_forward(np.asarray(xs[0], np.float64))

    def to_onnx(self, b, xs, out, params):
        b.op("HardSwish", xs, out)

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = F.hardswish({xs[0]})"]

"""Conv2D, and the window arithmetic (output size, padding) that the pooling layers share."""

from __future__ import annotations

import math

import numpy as np

from ..init import INITS, initialize
from ..kernels import conv as kconv
from ..registry import Layer, ParamSpec, Shape, fmt_shape, register

MAX_SIZE = 1024


def window_geometry(size: int, k: int, stride: int, padding: str | int) -> tuple[int, int, int]:
    """Along one axis: (output size, padding before, padding after).

    "valid": no padding, out = (size - k) // stride + 1. int p: p on both sides,
    out = (size + 2p - k) // stride + 1. "same": out = ceil(size / stride), with the
    TensorFlow padding: total = max((out - 1)·stride + k - size, 0), the odd one extra
    after (bottom/right). An output size below 1 means the window does not fit.
    """
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        return out, total // 2, total - total // 2
    p = 0 if padding == "valid" else int(padding)
    return (size + 2 * p - k) // stride + 1, p, p


def image_shape(layer: Layer) -> tuple[int, int, int]:
    """The layer's input as (C, H, W), or a ShapeError telling the user how to get there."""
    s = layer.in_shapes[0]
    if len(s) == 3:
        return s
    hint = "add a Reshape"
    if len(s) == 2:
        hint = f"add a Reshape to (1, {s[0]}, {s[1]})"
    elif len(s) == 1 and math.isqrt(s[0]) ** 2 == s[0]:
        r = math.isqrt(s[0])
        hint = f"add a Reshape to (1, {r}, {r})"
    raise layer.shape_error(f"expects an image (C, H, W), got {fmt_shape(s)}: {hint}")


def plan_windows(layer: Layer, hw: tuple[int, int], k: tuple[int, int], stride: tuple[int, int],
                 padding: str | int, what: str) -> tuple[tuple[int, int], tuple[int, ...]]:
    """((OH, OW), (top, bottom, left, right)) for sliding ``k`` over ``hw``, or a ShapeError."""
    (oh, t, b), (ow, l, r) = (window_geometry(hw[i], k[i], stride[i], padding) for i in (0, 1))
    if oh < 1 or ow < 1:
        pad = ("" if padding == "valid" else
               f" with padding {padding} (padded {hw[0] + t + b}×{hw[1] + l + r})")
        raise layer.shape_error(
            f"{what} {k[0]}×{k[1]} is larger than the {hw[0]}×{hw[1]} input{pad}: use a smaller "
            f"{what}, more padding or padding 'same'")
    return (oh, ow), (t, b, l, r)


def size_text(v: tuple[int, int]) -> str:
    return str(v[0]) if v[0] == v[1] else f"{v[0]}×{v[1]}"


@register
class Conv2D(Layer):
    """2-D convolution (PyTorch's cross-correlation): (C, H, W) -> (filters, OH, OW).

    weight (filters, C, KH, KW), bias (filters,). ``self.pads`` = (top, bottom, left, right).
    """

    type_name = "Conv2D"
    category = "Convolution"
    help = "Slides learnable filters over an image; each filter makes one output channel."
    param_specs = (
        ParamSpec("filters", "int", 16, low=1, high=65536, help="number of output channels"),
        ParamSpec("kernel_size", "size", 3, low=1, high=MAX_SIZE, unit="px",
                  help="filter height and width"),
        ParamSpec("stride", "size", 1, low=1, high=MAX_SIZE, unit="px",
                  help="step between filter positions"),
        ParamSpec("padding", "padding", "valid", low=0, high=MAX_SIZE,
                  help="'valid' (none), 'same' (output = ceil(input / stride)) or zeros per side"),
        ParamSpec("bias", "bool", True, help="add a learnable bias per filter"),
        ParamSpec("init", "choice", "he", choices=INITS, help="weight initialisation"),
    )

    def infer_shape(self) -> Shape:
        c, h, w = image_shape(self)
        self.in_channels = c
        (oh, ow), self.pads = plan_windows(self, (h, w), self.p["kernel_size"],
                                           self.p["stride"], self.p["padding"], "kernel_size")
        return (self.p["filters"], oh, ow)

    def param_shapes(self) -> dict[str, Shape]:
        out = {"weight": (self.p["filters"], self.in_channels, *self.p["kernel_size"])}
        if self.p["bias"]:
            out["bias"] = (self.p["filters"],)
        return out

    def macs(self) -> int:
        _, oh, ow = self.out_shape
        kh, kw = self.p["kernel_size"]
        return oh * ow * self.p["filters"] * self.in_channels * kh * kw

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shapes = self.param_shapes()
        out = {"weight": initialize(self.p["init"], shapes["weight"], rng)}
        if self.p["bias"]:
            out["bias"] = np.zeros(shapes["bias"], np.float32)
        return out

    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                train: bool) -> np.ndarray:
        x = np.ascontiguousarray(xs[0])
        w = np.ascontiguousarray(params["weight"], dtype=x.dtype)
        b = params.get("bias")
        b = np.zeros(0, x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
        self._x = x
        sh, sw = self.p["stride"]
        _, oh, ow = self.out_shape
        chunks = kconv.batch_chunks(x.shape[0])
        with kconv.OneThreadBlas(chunks > 1):
            return kconv.conv2d_forward(x, w, b, sh, sw, self.pads[0], self.pads[2], oh, ow,
                                        chunks)

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = self._x
        dy = np.ascontiguousarray(dy, dtype=x.dtype)
        w = np.ascontiguousarray(params["weight"], dtype=x.dtype)
        gb = grads.get("bias")
        sh, sw = self.p["stride"]
        chunks = kconv.batch_chunks(x.shape[0])
        with kconv.OneThreadBlas(chunks > 1):
            dx = kconv.conv2d_backward(x, w, dy, sh, sw, self.pads[0], self.pads[2], chunks,
                                       grads["weight"], np.zeros(0, x.dtype) if gb is None else gb)
        return [dx]

    def summary(self) -> str:
        kh, kw = self.p["kernel_size"]
        parts = [f"{self.p['filters']} × {kh}×{kw}"]
        if self.p["stride"] != (1, 1):
            parts.append(f"stride {size_text(self.p['stride'])}")
        if self.p["padding"] != "valid":
            parts.append(f"pad {self.p['padding']}")
        if not self.p["bias"]:
            parts.append("no bias")
        return ", ".join(parts)


"""Conv2D, and the window arithmetic (output size, padding) that the pooling layers share."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..init import INITS, initialize
from ..kernels import conv as kconv
from ..kernels import fused as kfused
from ..kernels.reference import conv as rconv
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, get_layer_class, register

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


EMPTY4 = (0, 0, 0, 0)


def onnx_window(imp: Any, node: Any, a: dict[str, Any], k: list[int]) -> list[int]:
    """The strides of an ONNX Conv / pool node, refusing dilation (pooling checks its
    ceil_mode itself: ``pool.onnx_check_ceil_mode``)."""
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise imp.fail(node, "is dilated; NetBuilder has no dilated windows")
    return list(a.get("strides", [1] * len(k)))


def onnx_padding(imp: Any, node: Any, a: dict[str, Any], x: Any, k: list[int],
                 stride: list[int], prefer_same: bool = False) -> str | int:
    """The ``padding`` param of an ONNX node's ``auto_pad`` / ``pads``, or imp.fail."""
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER",):
        return "same"
    if auto == "VALID":
        return "valid"
    if auto != "NOTSET":
        raise imp.fail(node, f"uses auto_pad {auto}; NetBuilder pads like SAME_UPPER")
    t, l, b, r = (list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4]
    if (t, l, b, r) == (0, 0, 0, 0) and not prefer_same:
        return "valid"
    _, h, w = x.shape
    same = [window_geometry(h, k[0], stride[0], "same")[1:],
            window_geometry(w, k[1], stride[1], "same")[1:]]
    if [(t, b), (l, r)] == same and (prefer_same or not t == b == l == r):
        return "same"
    if t == b == l == r and not prefer_same:
        return int(t)
    raise imp.fail(node, f"pads (top, left, bottom, right) = {(t, l, b, r)}; NetBuilder "
                         "pads equally on all sides, or 'same' (extra at the bottom/right)")


@register
class Conv2D(Layer):
    """2-D convolution (PyTorch's cross-correlation): (C, H, W) -> (filters, OH, OW).

    weight (filters, C, KH, KW), bias (filters,). ``self.pads`` = (top, bottom, left, right).
    Runs the fused conv-block kernels (``kernels.fused.conv_block_forward`` / ``_backward``)
    without their ReLU and pool: the same code a fused Conv2D block runs (``engine.fusion``).
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
    glyph = "C2"
    id_prefix = "conv"
    fusion_role = "conv"
    onnx_ops = ("Conv",)
    kernels = (kfused.conv_block_forward, kfused.conv_block_backward)
    examples = (
        example((2, 6, 6), filters=2, kernel_size=3, padding=1),
        example((2, 7, 7), filters=3, kernel_size=3, stride=2, padding="same", label="stride2"),
        example((1, 6, 8), filters=2, kernel_size=(2, 3), stride=(1, 2), bias=False,
                label="rect-nobias"),
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
        n = x.shape[0]
        y = np.empty((n, *self.out_shape), x.dtype)
        none = np.empty(EMPTY4, x.dtype)
        keep = np.empty((0, w[0].size, y[0, 0].size), x.dtype)
        chunks = kconv.batch_chunks(n)
        with kconv.OneThreadBlas(chunks > 1):
            kfused.conv_block_forward(x, w, b, *self.p["stride"], self.pads[0], self.pads[2],
                                      False, False, chunks, y, none, none,
                                      np.empty(EMPTY4, np.int8), keep)
        return y

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = self._x
        dy = np.ascontiguousarray(dy, dtype=x.dtype)
        w = np.ascontiguousarray(params["weight"], dtype=x.dtype)
        gb = grads.get("bias")
        _, oh, ow = self.out_shape
        chunks = kconv.batch_chunks(x.shape[0])
        keep = np.empty((0, w[0].size, oh * ow), x.dtype)
        with kconv.OneThreadBlas(chunks > 1):
            dx = kfused.conv_block_backward(
                x, w, dy, np.empty(EMPTY4, x.dtype), np.empty(EMPTY4, np.int8),
                *self.p["stride"], self.pads[0], self.pads[2], oh, ow, False, False, True,
                self.flipped_dx(), chunks, grads["weight"],
                np.zeros(0, x.dtype) if gb is None else gb, keep)
        return [dx]

    def flipped_dx(self) -> bool:
        """Whether the backward computes the input gradient by the flipped kernel
        (``kernels.fused.flipped_dx_pays``)."""
        _, oh, ow = self.out_shape
        return kfused.flipped_dx_pays(tuple(self.p["stride"]), tuple(self.pads),
                                      tuple(self.p["kernel_size"]), self.in_shapes[0], (oh, ow))

    def reference_forward(self, xs, params, train):
        return rconv.conv2d_forward(np.asarray(xs[0], np.float64), params["weight"],
                                    params.get("bias"), self.p["stride"], self.pads)

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

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        nid = self.id
        ins = [xs[0], b.const(f"{nid}.weight", params["weight"])]
        if "bias" in params:
            ins.append(b.const(f"{nid}.bias", params["bias"]))
        b.op("Conv", ins, out, kernel_shape=list(self.p["kernel_size"]),
             strides=list(self.p["stride"]), pads=b.pads(self), dilations=[1, 1], group=1)

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        x = imp.materialize(imp.value(node), node)
        if len(x.shape) == 2:  # a (C, T) sequence: Conv1D's (through the registry)
            return get_layer_class("Conv1D").from_onnx_1d(imp, node, x)
        w = imp.need_const(node, 1, "weight").astype(np.float32)
        if int(a.get("group", 1)) != 1:
            raise imp.fail(node, "is a grouped convolution; NetBuilder's Conv2D has group 1")
        if w.ndim != 4 or len(x.shape) != 3:
            raise imp.fail(node, "is not a 2-D convolution on (C, H, W) images")
        k = list(w.shape[2:])
        stride = onnx_window(imp, node, a, k)
        state = {"weight": w}
        if len(node.input) > 2 and node.input[2]:
            state["bias"] = imp.need_const(node, 2, "bias").astype(np.float32)
        params = {"filters": int(w.shape[0]), "kernel_size": k, "stride": stride,
                  "padding": onnx_padding(imp, node, a, x, k, stride), "bias": "bias" in state}
        imp.vals[node.output[0]] = imp.add(node, "Conv2D", params, [x], state)

    def to_pytorch(self, ctx, xs, out):
        sym, padding, pad4 = ctx.padding(self)
        p = self.p
        ctor = (f"nn.Conv2d({self.in_channels}, {p['filters']}, kernel_size="
                f"{ctx.pair(p['kernel_size'])}, stride={ctx.pair(p['stride'])}, "
                f"padding={padding if sym else '0'}, bias={p['bias']})")
        init, ref = ctx.register(self.id, ctor)
        x = xs[0] if sym else f"F.pad({xs[0]}, {pad4})"
        line = f"{out} = {ref}({x})"
        if not sym:
            line += "  # 'same' padding: the odd pixel goes to the bottom/right"
        return init, [line]

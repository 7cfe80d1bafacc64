"""Conv2D, and the window arithmetic (output size, padding) that the pooling layers share."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..init import INITS, identity_problem, initialize
from ..kernels import conv as kconv
from ..kernels import fused as kfused
from ..kernels import groupconv as kgroup
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
    """The strides of an ONNX Conv / pool node, refusing dilation (pooling reads its
    ceil_mode itself)."""
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


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def nearest_multiples(n: int, k: int) -> str:
    """The multiples of k next to n, in words ("8 or 12", or "4" below k)."""
    lo, hi = (n // k) * k, (n // k + 1) * k
    return f"{hi}" if lo == 0 else f"{lo} or {hi}"


@register
class Conv2D(Layer):
    """2-D convolution (PyTorch's cross-correlation): (C, H, W) -> (filters, OH, OW).

    weight (filters, C / groups, KH, KW), bias (filters,). ``self.pads`` = (top, bottom, left,
    right). With groups 1 and dilation 1 it runs the fused conv-block kernels
    (``kernels.fused.conv_block_forward`` / ``_backward``) without their ReLU and pool: the
    same code a fused Conv2D block runs (``engine.fusion``). Depthwise convs (groups = C) run
    ``kernels.groupconv.depthwise_*``, other grouped or dilated ones ``grouped_*``; neither
    joins a fused block.
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
        ParamSpec("dilation", "size", 1, low=1, high=MAX_SIZE, unit="px",
                  help="spacing between the filter's taps (1: adjacent pixels)"),
        ParamSpec("groups", "int", 1, low=1, high=65536,
                  help="split channels and filters into this many independent groups; "
                       "groups = input channels is a depthwise conv"),
        ParamSpec("bias", "bool", True, help="add a learnable bias per filter"),
        ParamSpec("init", "choice", "he", choices=INITS,
                  help="weight initialisation; identity: starts passing its input through"),
    )
    glyph = "C2"
    id_prefix = "conv"
    fusion_role = "conv"
    onnx_ops = ("Conv",)
    kernels = (kfused.conv_block_forward, kfused.conv_block_backward, kgroup.depthwise_forward,
               kgroup.depthwise_backward, kgroup.grouped_forward, kgroup.grouped_backward)
    examples = (
        example((2, 6, 6), filters=2, kernel_size=3, padding=1),
        example((2, 7, 7), filters=3, kernel_size=3, stride=2, padding="same", label="stride2"),
        example((1, 6, 8), filters=2, kernel_size=(2, 3), stride=(1, 2), bias=False,
                label="rect-nobias"),
        example((3, 6, 6), filters=3, kernel_size=3, padding=1, groups=3, label="depthwise"),
        example((2, 7, 6), filters=2, kernel_size=3, padding=2, dilation=2, groups=2,
                label="depthwise-same-dilated"),
        example((2, 7, 8), filters=2, kernel_size=3, stride=2, padding=1, groups=2,
                label="depthwise-stride2"),
        example((2, 7, 8), filters=4, kernel_size=3, stride=2, padding="same", dilation=(2, 1),
                groups=2, bias=False, label="depthwise-mult-dilated"),
        example((4, 6, 7), filters=6, kernel_size=(3, 2), padding=1, groups=2, label="grouped"),
        example((2, 8, 7), filters=3, kernel_size=3, stride=(1, 2), dilation=2, label="dilated"),
    )

    def infer_shape(self) -> Shape:
        c, h, w = image_shape(self)
        self.in_channels = c
        g, f = self.p["groups"], self.p["filters"]
        if c % g:
            raise self.shape_error(
                f"has {c} input channels, which groups = {g} does not divide: set groups to a "
                f"divisor of {c} ({', '.join(map(str, divisors(c)))}; {c} is depthwise)")
        if f % g:
            raise self.shape_error(
                f"has filters = {f}, not a multiple of groups = {g}: each group needs the same "
                f"number of filters; use filters {nearest_multiples(f, g)}")
        (oh, ow), self.pads = plan_windows(self, (h, w), self.effective_kernel(),
                                           self.p["stride"], self.p["padding"],
                                           "kernel_size" if self.p["dilation"] == (1, 1)
                                           else "dilated kernel")
        if self.p["init"] == "identity":
            self._check_identity(c, (h, w), (oh, ow))
        return (f, oh, ow)

    def effective_kernel(self) -> tuple[int, int]:
        """The window the taps span: dilation·(kernel_size - 1) + 1 along each axis."""
        (kh, kw), (dh, dw) = self.p["kernel_size"], self.p["dilation"]
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    @property
    def plain(self) -> bool:
        """groups 1 and dilation 1: the fused conv-block kernels run it."""
        return self.p["groups"] == 1 and self.p["dilation"] == (1, 1)

    @property
    def depthwise(self) -> bool:
        return self.p["groups"] == self.in_channels and self.p["groups"] > 1

    def fusion_stage(self) -> str:
        return self.fusion_role if self.plain else ""

    def _check_identity(self, c: int, hw: tuple[int, int], ohw: tuple[int, int]) -> None:
        """init 'identity' needs filters = channels, an odd kernel, stride 1 and the padding
        that keeps the size, centred ('same')."""
        kh, kw = self.p["kernel_size"]
        problem = identity_problem((self.p["filters"], c, kh, kw))
        if not problem and not self.plain:
            problem = "needs groups 1 and dilation 1"
        if not problem and (tuple(self.p["stride"]) != (1, 1) or ohw != hw
                            or self.pads != (kh // 2, kh // 2, kw // 2, kw // 2)):
            problem = "needs stride 1 and padding 'same' (the output keeps the input's size)"
        if problem:
            raise self.shape_error(f"init 'identity' {problem}: choose another init")

    def param_shapes(self) -> dict[str, Shape]:
        out = {"weight": (self.p["filters"], self.in_channels // self.p["groups"],
                          *self.p["kernel_size"])}
        if self.p["bias"]:
            out["bias"] = (self.p["filters"],)
        return out

    def macs(self) -> int:
        _, oh, ow = self.out_shape
        kh, kw = self.p["kernel_size"]
        return oh * ow * self.p["filters"] * (self.in_channels // self.p["groups"]) * kh * kw

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
        if not self.plain:
            args = (*self.p["stride"], *self.p["dilation"], self.pads[0], self.pads[2])
            if self.depthwise:
                kgroup.depthwise_forward(x, w, b, *args, y)
            else:
                chunks = kconv.batch_chunks(n)
                with kconv.OneThreadBlas(chunks > 1):
                    kgroup.grouped_forward(x, w, b, self.p["groups"], *args, chunks, y)
            return y
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
        gb = np.zeros(0, x.dtype) if gb is None else gb
        _, oh, ow = self.out_shape
        chunks = kconv.batch_chunks(x.shape[0])
        if not self.plain:
            args = (*self.p["stride"], *self.p["dilation"], self.pads[0], self.pads[2])
            if self.depthwise:
                return [kgroup.depthwise_backward(x, w, dy, *args, grads["weight"], gb)]
            with kconv.OneThreadBlas(chunks > 1):
                return [kgroup.grouped_backward(x, w, dy, self.p["groups"], *args, chunks,
                                                grads["weight"], gb)]
        keep = np.empty((0, w[0].size, oh * ow), x.dtype)
        with kconv.OneThreadBlas(chunks > 1):
            dx = kfused.conv_block_backward(
                x, w, dy, np.empty(EMPTY4, x.dtype), np.empty(EMPTY4, np.int8),
                *self.p["stride"], self.pads[0], self.pads[2], oh, ow, False, False, True,
                self.flipped_dx(), chunks, grads["weight"], gb, keep)
        return [dx]

    def frozen_grads(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Empty weight-gradient arrays: the kernels then skip the weight gradient (and no
        bias gradient is summed). The grouped and depthwise kernels always write theirs:
        scratch arrays for them."""
        if not self.plain:
            return super().frozen_grads(grads)
        g = grads["weight"]
        return {"weight": np.empty((0, *g.shape[1:]), g.dtype)}

    def flipped_dx(self) -> bool:
        """Whether the backward computes the input gradient by the flipped kernel
        (``kernels.fused.flipped_dx_pays``)."""
        _, oh, ow = self.out_shape
        return kfused.flipped_dx_pays(tuple(self.p["stride"]), tuple(self.pads),
                                      tuple(self.p["kernel_size"]), self.in_shapes[0], (oh, ow))

    def reference_forward(self, xs, params, train):
        return rconv.conv2d_forward(np.asarray(xs[0], np.float64), params["weight"],
                                    params.get("bias"), self.p["stride"], self.pads,
                                    self.p["dilation"], self.p["groups"])

    def summary(self) -> str:
        kh, kw = self.p["kernel_size"]
        parts = [f"{self.p['filters']} × {kh}×{kw}"]
        if self.p["stride"] != (1, 1):
            parts.append(f"stride {size_text(self.p['stride'])}")
        if self.p["padding"] != "valid":
            parts.append(f"pad {self.p['padding']}")
        if self.p["dilation"] != (1, 1):
            parts.append(f"dilation {size_text(self.p['dilation'])}")
        if self.depthwise:
            parts.append("depthwise")
        elif self.p["groups"] > 1:
            parts.append(f"{self.p['groups']} groups")
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
             strides=list(self.p["stride"]), pads=b.pads(self),
             dilations=list(self.p["dilation"]), group=self.p["groups"])

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        x = imp.materialize(imp.value(node), node)
        if len(x.shape) == 2:  # a (C, T) sequence: Conv1D's (through the registry)
            return get_layer_class("Conv1D").from_onnx_1d(imp, node, x)
        w = imp.need_const(node, 1, "weight").astype(np.float32)
        if w.ndim != 4 or len(x.shape) != 3:
            raise imp.fail(node, "is not a 2-D convolution on (C, H, W) images")
        groups = int(a.get("group", 1))
        if groups < 1 or x.shape[0] % groups or w.shape[0] % groups \
                or w.shape[1] * groups != x.shape[0]:
            raise imp.fail(node, f"has group {groups}, which does not fit its {x.shape[0]} "
                                 f"input channels and weight {tuple(w.shape)}")
        k = list(w.shape[2:])
        dilation = [int(d) for d in a.get("dilations", [1, 1])]
        if len(dilation) != 2 or min(dilation) < 1:
            raise imp.fail(node, f"has dilations {dilation}; expected two values ≥ 1")
        stride = onnx_window(imp, node, {**a, "dilations": [1, 1]}, k)
        keff = [dilation[i] * (k[i] - 1) + 1 for i in (0, 1)]
        state = {"weight": w}
        if len(node.input) > 2 and node.input[2]:
            state["bias"] = imp.need_const(node, 2, "bias").astype(np.float32)
        params = {"filters": int(w.shape[0]), "kernel_size": k, "stride": stride,
                  "padding": onnx_padding(imp, node, a, x, keff, stride), "bias": "bias" in state,
                  "dilation": dilation, "groups": groups}
        imp.vals[node.output[0]] = imp.add(node, "Conv2D", params, [x], state)

    def to_pytorch(self, ctx, xs, out):
        sym, padding, pad4 = ctx.padding(self)
        p = self.p
        ctor = (f"nn.Conv2d({self.in_channels}, {p['filters']}, kernel_size="
                f"{ctx.pair(p['kernel_size'])}, stride={ctx.pair(p['stride'])}, "
                f"padding={padding if sym else '0'}, "
                + ("" if p["dilation"] == (1, 1) else f"dilation={ctx.pair(p['dilation'])}, ")
                + ("" if p["groups"] == 1 else f"groups={p['groups']}, ")
                + f"bias={p['bias']})")
        init, ref = ctx.register(self.id, ctor)
        x = xs[0] if sym else f"F.pad({xs[0]}, {pad4})"
        line = f"{out} = {ref}({x})"
        if not sym:
            line += "  # 'same' padding: the odd pixel goes to the bottom/right"
        return init, [line]

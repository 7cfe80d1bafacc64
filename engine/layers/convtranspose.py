"""ConvTranspose2D: the learnable upsampling of decoders and U-Nets, as PyTorch's
``nn.ConvTranspose2d`` (no groups, no dilation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParamError
from ..init import INITS, initialize
from ..kernels import conv as kconv
from ..kernels import upsample as ku
from ..kernels.reference import upsample as rup
from ..registry import Layer, ParamSpec, Shape, example, register
from .conv import MAX_SIZE, image_shape, size_text


@register
class ConvTranspose2D(Layer):
    """Transposed 2-D convolution: (C, H, W) -> (filters, OH, OW) with
    OH = (H - 1)·stride - 2·padding + kernel_size + output_padding (likewise OW).

    Each input pixel adds its filters' kernels, scaled by its value, to the output at stride
    steps; ``padding`` crops that many pixels from every side of the result and
    ``output_padding`` adds rows/columns at the bottom/right (to reach an even size: with
    stride 2, kernel 3, padding 1 and output_padding 1 the output is exactly 2H × 2W).
    weight (C, filters, KH, KW) and bias (filters,), PyTorch's layout and names; the adjoint
    of a Conv2D with the same weight. Kernels: ``kernels.upsample.conv_transpose_*``.
    """

    type_name = "ConvTranspose2D"
    category = "Convolution"
    help = ("Upsamples with learnable filters (a 'deconvolution'): each input pixel paints "
            "its kernel into a larger output; the decoder half of autoencoders and U-Nets.")
    param_specs = (
        ParamSpec("filters", "int", 16, low=1, high=65536, help="number of output channels"),
        ParamSpec("kernel_size", "size", 2, low=1, high=MAX_SIZE, unit="px",
                  help="filter height and width"),
        ParamSpec("stride", "size", 2, low=1, high=MAX_SIZE, unit="px",
                  help="output step between input pixels (2 doubles the size)"),
        ParamSpec("padding", "size", 0, low=0, high=MAX_SIZE, unit="px",
                  help="pixels cropped from every side of the output"),
        ParamSpec("output_padding", "size", 0, low=0, high=MAX_SIZE, unit="px",
                  help="extra rows/columns at the bottom/right; smaller than the stride"),
        ParamSpec("bias", "bool", True, help="add a learnable bias per filter"),
        ParamSpec("init", "choice", "he", choices=INITS, help="weight initialisation"),
    )
    glyph = "CT"
    id_prefix = "deconv"
    onnx_ops = ("ConvTranspose",)
    kernels = (ku.conv_transpose_forward, ku.conv_transpose_backward)
    examples = (
        example((2, 3, 4), filters=3, kernel_size=2, stride=2),
        example((3, 4, 3), filters=2, kernel_size=3, stride=2, padding=1, output_padding=1,
                label="stride2-outpad"),
        example((2, 3, 3), filters=2, kernel_size=(3, 2), stride=(1, 3), padding=(1, 0),
                output_padding=(0, 2), bias=False, label="rect-nobias"),
    )

    @classmethod
    def resolve_params(cls, params: dict[str, Any], node_id: str | None = None) -> dict[str, Any]:
        p = super().resolve_params(params, node_id)
        if any(op >= s for op, s in zip(p["output_padding"], p["stride"])):
            where = f"{cls.type_name} '{node_id}'" if node_id else cls.type_name
            raise ParamError(
                f"{where}: output_padding {size_text(p['output_padding'])} must be smaller than "
                f"the stride {size_text(p['stride'])} (it picks one of the stride's possible "
                "output sizes); lower it or raise the stride", node_id)
        return p

    def infer_shape(self) -> Shape:
        c, h, w = image_shape(self)
        self.in_channels = c
        (kh, kw), (sh, sw) = self.p["kernel_size"], self.p["stride"]
        (ph, pw), (oph, opw) = self.p["padding"], self.p["output_padding"]
        oh, ow = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
        if oh < 1 or ow < 1:
            raise self.shape_error(
                f"crops more than it makes: padding {size_text(self.p['padding'])} on a "
                f"{(h - 1) * sh + kh}×{(w - 1) * sw + kw} output leaves {oh}×{ow}; use less "
                "padding or a larger kernel_size")
        return (self.p["filters"], oh, ow)

    def param_shapes(self) -> dict[str, Shape]:
        out = {"weight": (self.in_channels, self.p["filters"], *self.p["kernel_size"])}
        if self.p["bias"]:
            out["bias"] = (self.p["filters"],)
        return out

    def macs(self) -> int:
        _, h, w = self.in_shapes[0]
        kh, kw = self.p["kernel_size"]
        return h * w * self.in_channels * self.p["filters"] * kh * kw

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
        y = np.empty((x.shape[0], *self.out_shape), x.dtype)
        chunks = kconv.batch_chunks(x.shape[0])
        with kconv.OneThreadBlas(chunks > 1):
            ku.conv_transpose_forward(x, w, b, *self.p["stride"], *self.p["padding"], chunks, y)
        return y

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = self._x
        dy = np.ascontiguousarray(dy, dtype=x.dtype)
        w = np.ascontiguousarray(params["weight"], dtype=x.dtype)
        gb = grads.get("bias")
        chunks = kconv.batch_chunks(x.shape[0])
        with kconv.OneThreadBlas(chunks > 1):
            dx = ku.conv_transpose_backward(x, w, dy, *self.p["stride"], *self.p["padding"],
                                            chunks, grads["weight"],
                                            np.zeros(0, x.dtype) if gb is None else gb)
        return [dx]

    def reference_forward(self, xs, params, train):
        return rup.conv_transpose2d_forward(np.asarray(xs[0], np.float64), params["weight"],
                                            params.get("bias"), self.p["stride"],
                                            self.p["padding"], self.p["output_padding"])

    def summary(self) -> str:
        kh, kw = self.p["kernel_size"]
        parts = [f"{self.p['filters']} × {kh}×{kw}", f"stride {size_text(self.p['stride'])}"]
        if self.p["padding"] != (0, 0):
            parts.append(f"pad {size_text(self.p['padding'])}")
        if self.p["output_padding"] != (0, 0):
            parts.append(f"out pad {size_text(self.p['output_padding'])}")
        if not self.p["bias"]:
            parts.append("no bias")
        return ", ".join(parts)

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        nid = self.id
        ins = [xs[0], b.const(f"{nid}.weight", params["weight"])]
        if "bias" in params:
            ins.append(b.const(f"{nid}.bias", params["bias"]))
        ph, pw = self.p["padding"]
        b.op("ConvTranspose", ins, out, kernel_shape=list(self.p["kernel_size"]),
             strides=list(self.p["stride"]), pads=[ph, pw, ph, pw],
             output_padding=list(self.p["output_padding"]), dilations=[1, 1], group=1)

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        x = imp.materialize(imp.value(node), node)
        w = imp.need_const(node, 1, "weight").astype(np.float32)
        if w.ndim != 4 or len(x.shape) != 3 or w.shape[0] != x.shape[0]:
            raise imp.fail(node, "is not a 2-D transposed convolution on (C, H, W) images")
        if int(a.get("group", 1)) != 1:
            raise imp.fail(node, "is grouped; NetBuilder's ConvTranspose2D has group 1")
        if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            raise imp.fail(node, "is dilated; NetBuilder's ConvTranspose2D is not")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise imp.fail(node, f"uses auto_pad {a['auto_pad']}; give explicit pads")
        k = [int(v) for v in w.shape[2:]]
        stride = [int(v) for v in a.get("strides", [1, 1])]
        t, l, bo, r = (list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4]
        outpad = [int(v) for v in a.get("output_padding", [0, 0])]
        if "output_shape" in a:  # the spec's total padding, split as SAME_UPPER/NOTSET say
            _, h, wd = x.shape
            want = [int(v) for v in a["output_shape"]][-2:]
            total = [stride[0] * (h - 1) + outpad[0] + k[0] - want[0],
                     stride[1] * (wd - 1) + outpad[1] + k[1] - want[1]]
            t, bo, l, r = total[0] // 2, total[0] - total[0] // 2, total[1] // 2, \
                total[1] - total[1] // 2
        # cropping less at the bottom/right than at the top/left is output padding
        extra = [int(t) - int(bo), int(l) - int(r)]
        if min(extra) < 0 or any(outpad[i] + extra[i] >= stride[i] for i in (0, 1)):
            raise imp.fail(node, f"pads (top, left, bottom, right) = {(t, l, bo, r)}; "
                                 "NetBuilder crops equally on both sides (less at the "
                                 "bottom/right only by less than the stride)")
        outpad = [outpad[0] + extra[0], outpad[1] + extra[1]]
        state = {"weight": w}
        if len(node.input) > 2 and node.input[2]:
            state["bias"] = imp.need_const(node, 2, "bias").astype(np.float32)
        params = {"filters": int(w.shape[1]), "kernel_size": k, "stride": stride,
                  "padding": [int(t), int(l)], "output_padding": outpad,
                  "bias": "bias" in state}
        imp.vals[node.output[0]] = imp.add(node, "ConvTranspose2D", params, [x], state)

    def to_pytorch(self, ctx, xs, out):
        p = self.p
        ctor = (f"nn.ConvTranspose2d({self.in_channels}, {p['filters']}, kernel_size="
                f"{ctx.pair(p['kernel_size'])}, stride={ctx.pair(p['stride'])}, "
                f"padding={ctx.pair(p['padding'])}, "
                f"output_padding={ctx.pair(p['output_padding'])}, bias={p['bias']})")
        init, ref = ctx.register(self.id, ctor)
        return init, [f"{out} = {ref}({xs[0]})"]

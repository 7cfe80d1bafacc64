"""Upsample2D: enlarge feature maps by an integer factor, as PyTorch's ``nn.Upsample``
(``scale_factor``, nearest or bilinear, ``align_corners``)."""

from __future__ import annotations

import math

import numpy as np

from ..kernels import upsample as ku
from ..kernels.reference import upsample as rup
from ..registry import Layer, ParamSpec, Shape, example, register
from .conv import image_shape, size_text

MAX_SCALE = 64


def axis_tables(size: int, scale: int, mode: str, align_corners: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, weight of i1) for each of the size·scale outputs along one axis (PyTorch's
    source index: nearest floor(i / scale); bilinear (i + 0.5) / scale - 0.5 clamped at 0,
    or i·(size - 1) / (out - 1) with align_corners)."""
    out = size * scale
    i = np.arange(out)
    if mode == "nearest":
        i0 = np.minimum(i // scale, size - 1)
        return i0.astype(np.intp), i0.astype(np.intp), np.zeros(out)
    if align_corners:
        src = i * ((size - 1) / (out - 1)) if out > 1 else np.zeros(out)
    else:
        src = np.maximum((i + 0.5) / scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), size - 1)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, src - i0


@register
class Upsample2D(Layer):
    """(C, H, W) -> (C, H·sh, W·sw) for an integer ``scale`` (sh, sw).

    nearest: output pixel (i, j) copies input (i // sh, j // sw). bilinear: the four nearest
    input pixels mixed by distance, the output pixel centres mapped to the input as PyTorch
    does (``align_corners`` False: half-pixel centres; True: the corner pixels of input and
    output coincide). Kernels: ``kernels.upsample.resample_*``; no parameters.
    """

    type_name = "Upsample2D"
    category = "Convolution"
    help = ("Enlarges each feature map by a whole factor, copying pixels (nearest) or "
            "blending neighbours (bilinear); no weights. The decoder half of U-Nets.")
    param_specs = (
        ParamSpec("scale", "size", 2, low=1, high=MAX_SCALE, help="enlargement factor (h, w)"),
        ParamSpec("mode", "choice", "nearest", choices=("nearest", "bilinear"),
                  help="copy the nearest pixel, or blend the four nearest"),
        ParamSpec("align_corners", "bool", False,
                  help="bilinear only: map the corner pixels onto each other (PyTorch's "
                       "align_corners)"),
    )
    glyph = "UP"
    id_prefix = "up"
    onnx_ops = ("Resize", "Upsample")
    kernels = (ku.resample_forward, ku.resample_backward)
    examples = (
        example((2, 3, 4)),
        example((2, 3, 2), scale=(3, 2), mode="bilinear", label="bilinear"),
        example((1, 3, 4), scale=2, mode="bilinear", align_corners=True, label="align-corners"),
    )

    def infer_shape(self) -> Shape:
        c, h, w = image_shape(self)
        sh, sw = self.p["scale"]
        return (c, h * sh, w * sw)

    def macs(self) -> int:
        """Two multiply-adds per output value and axis when bilinear, none when copying."""
        return 0 if self.p["mode"] == "nearest" else 4 * math.prod(self.out_shape)

    def tables(self, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        _, h, w = self.in_shapes[0]
        (sh, sw), mode, ac = self.p["scale"], self.p["mode"], self.p["align_corners"]
        r0, r1, rl = axis_tables(h, sh, mode, ac)
        c0, c1, cl = axis_tables(w, sw, mode, ac)
        return r0, r1, rl.astype(dtype), c0, c1, cl.astype(dtype)

    def forward(self, xs, params, train):
        x = np.ascontiguousarray(xs[0])
        y = np.empty((x.shape[0], *self.out_shape), x.dtype)
        ku.resample_forward(x, *self.tables(x.dtype), y)
        return y

    def backward(self, dy, params, grads):
        dy = np.ascontiguousarray(dy)
        _, h, w = self.in_shapes[0]
        return [ku.resample_backward(dy, *self.tables(dy.dtype), h, w)]

    def reference_forward(self, xs, params, train):
        return rup.resize2d(np.asarray(xs[0], np.float64), self.p["scale"], self.p["mode"],
                            self.p["align_corners"])

    def summary(self) -> str:
        text = f"×{size_text(self.p['scale'])} {self.p['mode']}"
        return text + (", align corners" if self.p["mode"] == "bilinear"
                       and self.p["align_corners"] else "")

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        sh, sw = self.p["scale"]
        scales = b.const(f"{self.id}/scales", np.array([1, 1, sh, sw], np.float32))
        if self.p["mode"] == "nearest":
            b.op("Resize", [xs[0], "", scales], out, mode="nearest",
                 coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        else:
            b.op("Resize", [xs[0], "", scales], out, mode="linear",
                 coordinate_transformation_mode="align_corners" if self.p["align_corners"]
                 else "pytorch_half_pixel")

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        x = imp.materialize(imp.value(node), node)
        if len(x.shape) != 3:
            raise imp.fail(node, "does not resize (C, H, W) images")
        _, h, w = x.shape
        if node.op_type == "Upsample":  # opset 7-9: scales an attribute, then input 1
            scales = a.get("scales") if "scales" in a else imp.need_const(node, 1, "scales")
            coord = "asymmetric"
            nearest = "floor"
        else:
            scales = imp.const(node.input[2]) if len(node.input) > 2 else None
            if scales is None or np.size(scales) == 0:
                sizes = imp.need_const(node, 3, "sizes")
                scales = np.asarray(sizes, np.float64) / np.array([1, 1, h, w][-len(sizes):])
            coord = a.get("coordinate_transformation_mode", "half_pixel")
            nearest = a.get("nearest_mode", "round_prefer_floor")
        scales = [float(s) for s in np.asarray(scales, np.float64).ravel()]
        if len(scales) != 4 or scales[:2] != [1.0, 1.0] or not all(
                s >= 1 and s == int(s) for s in scales[2:]):
            raise imp.fail(node, f"scales by {scales}; NetBuilder's Upsample2D enlarges height "
                                 "and width by whole factors")
        mode = a.get("mode", "nearest")
        scale = [int(scales[2]), int(scales[3])]
        if mode == "nearest":
            if coord != "asymmetric" or (nearest != "floor" and max(scale) > 1
                                         and not (nearest == "round_prefer_floor"
                                                  and max(scale) <= 2)):
                raise imp.fail(node, f"picks the nearest pixel by {coord} / {nearest}; "
                                     "NetBuilder copies pixel floor(i / scale) (asymmetric, "
                                     "floor), as PyTorch")
            params = {"scale": scale, "mode": "nearest"}
        elif mode == "linear":
            if coord not in ("align_corners", "pytorch_half_pixel", "half_pixel"):
                raise imp.fail(node, f"interpolates with {coord} coordinates; NetBuilder "
                                     "follows PyTorch (half_pixel or align_corners)")
            params = {"scale": scale, "mode": "bilinear",
                      "align_corners": coord == "align_corners"}
        else:
            raise imp.fail(node, f"uses mode {mode}; NetBuilder's Upsample2D is nearest or "
                                 "bilinear")
        imp.vals[node.output[0]] = imp.add(node, "Upsample2D", params, [x])

    def to_pytorch(self, ctx, xs, out):
        sh, sw = self.p["scale"]
        bil = self.p["mode"] == "bilinear"
        extra = f", align_corners={self.p['align_corners']}" if bil else ""
        ctor = f"nn.Upsample(scale_factor=({float(sh)}, {float(sw)}), mode='{self.p['mode']}'{extra})"
        init, ref = ctx.register(self.id, ctor)
        return init, [f"{out} = {ref}({xs[0]})"]

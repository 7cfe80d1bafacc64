"""MaxPool2D, AvgPool2D and GlobalAvgPool2D on images (C, H, W).

Padding: "valid" (none), "same" (output = ceil(input / stride), TensorFlow's split with the
odd pixel at the bottom/right) or an int p per side (PyTorch; at most half the pool size, so
that no window is only padding). Max pooling never picks padding. Average pooling counts the
padded zeros for an int padding (PyTorch's default count_include_pad=True) and counts only
the real pixels for "same" (TensorFlow's rule), so border outputs are true averages.

``ceil_mode`` (PyTorch's ceil_mode=True, ONNX's ceil_mode = 1; with "valid" or int padding)
rounds the output size up: the last window may overhang the bottom/right edge, as long as it
starts inside the image or its top/left padding. The overhang is not padding: max pooling
takes the largest real pixel and average pooling divides by the part of the window inside the
padded image (PyTorch's and onnxruntime's rule).

MACs: max pooling does no multiply-adds (0); average pooling counts one per window element
(C·OH·OW·KH·KW), as the depthwise convolution it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels import pool as kpool
from ..kernels.reference import pool as rpool
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, get_layer_class, register
from .conv import (
    MAX_SIZE,
    image_shape,
    onnx_padding,
    onnx_window,
    plan_windows,
    size_text,
    window_geometry,
)


def ceil_size(size: int, k: int, stride: int, before: int, after: int) -> int:
    """Output length along one axis with ceil_mode (PyTorch's and ONNX's rule): the size
    rounded up, less one if the last window would start in the end padding."""
    out = -(-(size + before + after - k) // stride) + 1
    return out - 1 if (out - 1) * stride >= size + before else out


def same_pads(x_shape: Shape, k: list[int], stride: list[int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of NetBuilder's 'same' padding for a (C, H, W) input."""
    _, h, w = x_shape
    _, t, b = window_geometry(h, k[0], stride[0], "same")
    _, l, r = window_geometry(w, k[1], stride[1], "same")
    return t, l, b, r


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
        ParamSpec("ceil_mode", "bool", False,
                  help="round the output size up: the last window may overhang the image "
                       "(PyTorch's ceil_mode=True)"),
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
        if self.p["ceil_mode"]:
            if pad == "same":
                raise self.shape_error("ceil_mode rounds up the output of 'valid' or pixel "
                                       "padding; 'same' already gives ceil(input / stride): "
                                       "turn ceil_mode off")
            t, b, l, r = self.pads
            oh = ceil_size(h, k[0], self.stride[0], t, b)
            ow = ceil_size(w, k[1], self.stride[1], l, r)
        return (c, oh, ow)

    def summary(self) -> str:
        kh, kw = self.p["pool_size"]
        parts = [f"{kh}×{kw}"]
        if self.stride != self.p["pool_size"]:
            parts.append(f"stride {size_text(self.stride)}")
        if self.p["padding"] != "valid":
            parts.append(f"pad {self.p['padding']}")
        if self.p["ceil_mode"]:
            parts.append("ceil")
        return ", ".join(parts)

    def _window_args(self) -> tuple[int, ...]:
        kh, kw = self.p["pool_size"]
        sh, sw = self.stride
        return kh, kw, sh, sw, self.pads[0], self.pads[2]

    def _padded_limits(self) -> tuple[int, int]:
        """(H + bottom pad, W + right pad): where average pooling stops counting padding."""
        _, h, w = self.in_shapes[0]
        return h + self.pads[1], w + self.pads[3]

    def onnx_attrs(self, b: Any) -> dict[str, Any]:
        """kernel_shape, strides, pads (and ceil_mode when on) of the ONNX pooling op."""
        out = {"kernel_shape": list(self.p["pool_size"]), "strides": list(self.stride),
               "pads": b.pads(self)}
        if self.p["ceil_mode"]:
            out["ceil_mode"] = 1
        return out

    @classmethod
    def from_onnx(cls, imp, index, node):
        type_name = cls.type_name
        a = imp.attrs(node)
        x = imp.materialize(imp.value(node), node)
        if len(x.shape) == 2:  # a (C, T) sequence: MaxPool1D's / AvgPool1D's
            kind = "MaxPool1D" if node.op_type == "MaxPool" else "AvgPool1D"
            return get_layer_class(kind).from_onnx_1d(imp, node, x)
        if len(x.shape) != 3:
            raise imp.fail(node, "does not pool a (C, H, W) image")
        if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
            raise imp.fail(node, "returns its indices; NetBuilder does not")
        k = list(a["kernel_shape"])
        if len(k) != 2:
            raise imp.fail(node, f"has a {len(k)}-D window; NetBuilder pools 2-D images")
        stride = onnx_window(imp, node, a, k)
        pads = tuple((list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4])
        same = same_pads(x.shape, k, stride)
        # NetBuilder's AvgPool2D averages over the padding too with int padding (PyTorch's
        # count_include_pad=True) and over the real pixels only with 'same' padding.
        include = bool(a.get("count_include_pad", 0))
        if type_name == "AvgPool2D" and not include and any(pads):
            if pads != same:
                raise imp.fail(node, f"pads (top, left, bottom, right) = {pads} and averages "
                                     "the real pixels only (count_include_pad = 0); NetBuilder "
                                     "does that only with 'same' padding (pads "
                                     f"{same} here): export with count_include_pad=True")
            pad: str | int = "same"
        else:
            pad = _pool_padding(imp, node, a, x, k, stride, pads, same, type_name)
        if type_name == "AvgPool2D" and include and pad == "same" and any(same):
            raise imp.fail(node, "pads like 'same' and averages over the padding "
                                 "(count_include_pad = 1); NetBuilder's 'same' average pooling "
                                 "counts only the real pixels: export with symmetric pads")
        ceil = _onnx_ceil_mode(imp, node, a, x, k, stride, pad)
        params = {"pool_size": k, "stride": stride, "padding": pad}
        if ceil:
            params["ceil_mode"] = True
        imp.vals[node.output[0]] = imp.add(node, type_name, params, [x])


def _pool_padding(imp: Any, node: Any, a: dict[str, Any], x: Any, k: list[int],
                  stride: list[int], pads: tuple[int, ...], same: tuple[int, ...],
                  type_name: str) -> str | int:
    """The ``padding`` param of an ONNX pooling node, refusing pads of more than half the
    window (saying so, before the general rule that pads are equal on all sides)."""
    t, l, b, r = pads
    if a.get("auto_pad", "NOTSET") == "NOTSET" and t == b == l == r and 2 * t > min(k):
        if type_name == "MaxPool2D" and pads == same:
            return "same"  # max pooling never picks padding: the same windows
        raise imp.fail(node, f"pads {t} px on every side, more than half the "
                             f"{k[0]}×{k[1]} window, so some windows would hold only "
                             "padding; NetBuilder's pooling allows at most "
                             f"{min(k) // 2} px: lower the padding")
    return onnx_padding(imp, node, a, x, k, stride)


def _onnx_ceil_mode(imp: Any, node: Any, a: dict[str, Any], x: Any, k: list[int],
                    stride: list[int], pad: str | int) -> bool:
    """Whether the imported layer needs ceil_mode: only when the node asks for it and it
    changes the output size (so files that do not need it import without it)."""
    if not a.get("ceil_mode", 0) or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return False
    if pad == "same":
        t, l, b, r = (list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4]
        want = [ceil_size(s, kk, st, lo, hi)
                for s, kk, st, lo, hi in zip(x.shape[1:], k, stride, (t, l), (b, r))]
        have = [-(-s // st) for s, st in zip(x.shape[1:], stride)]
        if want != have:
            raise imp.fail(node, f"pads (top, left, bottom, right) = {(t, l, b, r)} unevenly and "
                                 f"rounds its output size up (ceil_mode = 1) to "
                                 f"{want[0]}×{want[1]}; NetBuilder's ceil_mode needs equal pads "
                                 "on all sides: export with symmetric padding")
        return False
    p = 0 if pad == "valid" else int(pad)
    floor = [(s + 2 * p - kk) // st + 1 for s, kk, st in zip(x.shape[1:], k, stride)]
    ceil = [ceil_size(s, kk, st, p, p) for s, kk, st in zip(x.shape[1:], k, stride)]
    return floor != ceil


@register
class MaxPool2D(_Pool2D):
    type_name = "MaxPool2D"
    help = "Keeps the largest value of each window: shrinks the image, keeps strong features."
    glyph = "MX"
    id_prefix = "pool"
    fusion_role = "pool2"
    onnx_ops = ("MaxPool",)
    kernels = (kpool.maxpool2d_forward, kpool.maxpool2d_backward)
    examples = (example((2, 6, 6), pool_size=2),
                example((2, 7, 7), pool_size=3, stride=2, padding=1, label="pad1-stride2"),
                example((2, 7, 5), pool_size=2, padding="same", label="same"),
                example((2, 8, 7), pool_size=3, stride=2, padding=1, ceil_mode=True,
                        label="ceil"))

    def fusion_stage(self) -> str:
        """"pool2" only for the 2×2, stride 2, unpadded window of the fused kernels."""
        fits = (self.p["pool_size"] == (2, 2) and self.stride == (2, 2)
                and self.p["padding"] == "valid" and not self.p["ceil_mode"])
        return self.fusion_role if fits else ""

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

    def reference_forward(self, xs, params, train):
        return rpool.maxpool2d_forward(np.asarray(xs[0], np.float64), self.p["pool_size"],
                                       self.stride, self.pads, self.p["ceil_mode"])

    def to_onnx(self, b, xs, out, params):
        b.op("MaxPool", xs, out, **self.onnx_attrs(b))

    def to_pytorch(self, ctx, xs, out):
        sym, padding, pad4 = ctx.padding(self)
        k, s = ctx.pair(self.p["pool_size"]), ctx.pair(self.stride)
        if sym:
            pad = "" if padding == "(0, 0)" else f", padding={padding}"
            ceil = ", ceil_mode=True" if self.p["ceil_mode"] else ""
            return [], [f"{out} = F.max_pool2d({xs[0]}, {k}, {s}{pad}{ceil})"]
        return [], [f"{out} = F.max_pool2d(F.pad({xs[0]}, {pad4}, value=-math.inf), {k}, {s})"]


@register
class AvgPool2D(_Pool2D):
    type_name = "AvgPool2D"
    help = "Averages each window: shrinks the image smoothly."
    glyph = "AV"
    id_prefix = "avgpool"
    onnx_ops = ("AveragePool",)
    kernels = (kpool.avgpool2d_forward, kpool.avgpool2d_backward)
    examples = (example((2, 6, 6), pool_size=2),
                example((1, 5, 5), pool_size=3, stride=1, padding="same", label="same-3x3"),
                example((2, 7, 7), pool_size=3, stride=2, padding=1, label="pad1"),
                example((2, 8, 7), pool_size=3, stride=2, padding=1, ceil_mode=True,
                        label="ceil"),
                example((1, 7, 5), pool_size=2, ceil_mode=True, label="ceil-valid"))

    def macs(self) -> int:
        c, oh, ow = self.out_shape
        kh, kw = self.p["pool_size"]
        return c * oh * ow * kh * kw

    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                train: bool) -> np.ndarray:
        x = np.ascontiguousarray(xs[0])
        _, oh, ow = self.out_shape
        return kpool.avgpool2d_forward(x, *self._window_args(), *self._padded_limits(), oh, ow,
                                       self.count_pad)

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        _, h, w = self.in_shapes[0]
        return [kpool.avgpool2d_backward(np.ascontiguousarray(dy), *self._window_args(),
                                         *self._padded_limits(), h, w, self.count_pad)]

    def reference_forward(self, xs, params, train):
        return rpool.avgpool2d_forward(np.asarray(xs[0], np.float64), self.p["pool_size"],
                                       self.stride, self.pads, self.count_pad,
                                       self.p["ceil_mode"])

    def to_onnx(self, b, xs, out, params):
        b.op("AveragePool", xs, out, **self.onnx_attrs(b),
             count_include_pad=int(bool(self.count_pad)))

    def to_pytorch(self, ctx, xs, out):
        sym, padding, pad4 = ctx.padding(self)
        k, s = ctx.pair(self.p["pool_size"]), ctx.pair(self.stride)
        x = xs[0]
        ceil = ", ceil_mode=True" if self.p["ceil_mode"] else ""
        if padding == "(0, 0)" and sym:
            return [], [f"{out} = F.avg_pool2d({x}, {k}, {s}{ceil})"]
        if sym:
            return [], [f"{out} = F.avg_pool2d({x}, {k}, {s}, padding={padding}, "
                        f"count_include_pad={bool(self.count_pad)}{ceil})"]
        return [], [
            "# 'same' padding: average over the real pixels of each window only",
            f"{out} = F.avg_pool2d(F.pad({x}, {pad4}), {k}, {s}) / F.avg_pool2d(",
            f"    F.pad(torch.ones_like({x}[:1, :1]), {pad4}), {k}, {s})"]


@register
class GlobalAvgPool2D(Layer):
    """The mean of each channel over the whole image: (C, H, W) -> (C,)."""

    type_name = "GlobalAvgPool2D"
    category = "Pooling"
    help = "Averages each channel over the whole image: (C, H, W) -> (C,)."
    glyph = "GA"
    id_prefix = "gap"
    onnx_ops = ("GlobalAveragePool", "ReduceMean")
    examples = (example((3, 4, 5)),)

    def infer_shape(self) -> Shape:
        return (image_shape(self)[0],)

    def macs(self) -> int:
        c, h, w = self.in_shapes[0]
        return c * h * w

    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                train: bool) -> np.ndarray:
        """(N, C, H, W) -> (N, C): each plane's sum as a product with a vector of ones (one
        BLAS matrix-vector product over the N·C planes, several times faster than
        ``mean`` over two axes), then divided by H·W."""
        x = np.ascontiguousarray(xs[0])
        n, c, h, w = x.shape
        sums = x.reshape(n * c, h * w) @ np.ones(h * w, x.dtype)
        sums /= h * w
        return sums.reshape(n, c)

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        _, h, w = self.in_shapes[0]
        n, c = dy.shape
        g = (dy / (h * w)).astype(dy.dtype, copy=False)
        dx = np.empty((n, c, h, w), dy.dtype)
        dx[...] = g[:, :, None, None]
        return [dx]

    def summary(self) -> str:
        return ""

    def to_onnx(self, b, xs, out, params):
        g = b.op("GlobalAveragePool", xs, f"{self.id}/pooled", name=self.id)
        b.op("Flatten", [g], out, name=f"{self.id}/flatten", axis=1)

    @classmethod
    def from_onnx(cls, imp, index, node):
        x = imp.materialize(imp.value(node), node)
        keep = 1
        if node.op_type == "ReduceMean":
            rank = len(x.shape) + 1
            axes = sorted(a + rank if a < 0 else a for a in imp.axes(node))
            k = int(imp.attrs(node).get("keepdims", 1))  # sequences: over T of (T, E), (C, T)
            if get_layer_class("SequencePool").mean_from_onnx(imp, node, x, axes, k) or \
                    get_layer_class("GlobalAvgPool1D").mean_from_onnx(imp, node, x, axes, k):
                return
            if len(x.shape) != 3 or axes != [2, 3]:
                over = f"axes {axes}" if axes else "every axis"
                raise imp.fail(node, f"averages over {over} of {fmt_shape(x.shape)} samples; "
                                     "NetBuilder averages only over an image's height and width "
                                     "(axes [2, 3] of (C, H, W): GlobalAvgPool2D)")
            keep = int(imp.attrs(node).get("keepdims", 1))
        elif len(x.shape) == 2 and get_layer_class("GlobalAvgPool1D").mean_from_onnx(
                imp, node, x, None, 1):  # a (C, T) sequence
            return
        if len(x.shape) != 3:
            raise imp.fail(node, "does not pool a (C, H, W) image")
        y = imp.add(node, "GlobalAvgPool2D", {}, [x])
        imp.vals[node.output[0]] = imp.Val(y.node, y.shape,
                                           view=(y.shape[0], 1, 1) if keep else None)

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = {xs[0]}.mean(dim=(2, 3))"]

"""Conv1D, MaxPool1D, AvgPool1D and GlobalAvgPool1D on sequences laid out (C, T), as
PyTorch's ``nn.Conv1d`` / ``nn.MaxPool1d`` / ``nn.AvgPool1d`` (a (T, F) sequence goes
through a Permute first).

Each windowed layer runs its 2-D sibling's kernels on the sequence seen as a (C, 1, T)
image with a (1, k) window: the input is padded along T here (zeros for the convolution
and the average, -inf for the maximum) and the 2-D layer slides without padding. Padding
follows the 2-D layers: "valid", "same" (output ceil(T / stride), the odd step at the end)
or an int p per side; AvgPool1D counts the padded zeros for an int p and only the real
steps for "same".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..init import INITS, initialize
from ..kernels import fused as kfused
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register
from .conv import MAX_SIZE, Conv2D, window_geometry
from .pool import AvgPool2D, MaxPool2D


def sequence_shape(layer: Layer) -> tuple[int, int]:
    """(C, T), or a ShapeError saying how to get there."""
    s = layer.in_shapes[0]
    if len(s) == 2:
        return s
    hint = "add a Reshape to (1, T)" if len(s) == 1 else "add a Reshape"
    raise layer.shape_error(f"expects a sequence (C, T), got {fmt_shape(s)}: {hint}")


class _Windowed1D(Layer):
    """Window arithmetic along T and the 2-D sibling (``self.inner``) on (C, 1, T)."""

    window = "kernel_size"

    def _plan(self, k: int, stride: int) -> tuple[int, int]:
        """Sets ``self.pads`` (before, after) along T; returns (C, T)."""
        c, t = sequence_shape(self)
        out, lo, hi = window_geometry(t, k, stride, self.p["padding"])
        if out < 1:
            raise self.shape_error(f"{self.window} {k} is longer than the {t}-step input"
                                   f"{'' if self.p['padding'] == 'valid' else ' padded'}: use a "
                                   f"smaller {self.window}, more padding or padding 'same'")
        self.pads = (lo, hi)
        return c, t

    def _padded(self, x: np.ndarray, fill: float, pads: tuple[int, int]) -> np.ndarray:
        lo, hi = pads
        x4 = x[:, :, None, :]
        if lo == hi == 0:
            return np.ascontiguousarray(x4)
        return np.pad(x4, ((0, 0), (0, 0), (0, 0), (lo, hi)), constant_values=fill)

    @staticmethod
    def _unpad(dx4: np.ndarray, pads: tuple[int, int]) -> np.ndarray:
        lo, hi = pads
        return np.ascontiguousarray(dx4[:, :, 0, lo:dx4.shape[3] - hi])

    def _pads_text(self) -> str:
        return "" if self.p["padding"] == "valid" else f"pad {self.p['padding']}"


@register
class Conv1D(_Windowed1D):
    """1-D convolution (cross-correlation) over T: (C, T) -> (filters, OT); weight
    (filters, C, kernel_size), bias (filters,), as ``nn.Conv1d``."""

    type_name = "Conv1D"
    category = "Convolution"
    help = "Slides learnable filters along a sequence (C, T); each filter makes one channel."
    param_specs = (
        ParamSpec("filters", "int", 16, low=1, high=65536, help="number of output channels"),
        ParamSpec("kernel_size", "int", 3, low=1, high=MAX_SIZE, help="filter length (steps)"),
        ParamSpec("stride", "int", 1, low=1, high=MAX_SIZE, help="step between positions"),
        ParamSpec("padding", "padding", "valid", low=0, high=MAX_SIZE,
                  help="'valid' (none), 'same' (output = ceil(T / stride)) or zeros per side"),
        ParamSpec("bias", "bool", True, help="add a learnable bias per filter"),
        ParamSpec("init", "choice", "he", choices=INITS, help="weight initialisation"),
    )
    glyph = "C1"
    id_prefix = "conv1d"
    onnx_shared_ops = ("Conv",)
    kernels = (kfused.conv_block_forward, kfused.conv_block_backward)
    examples = (example((2, 9), filters=3, kernel_size=3, padding=1),
                example((3, 10), filters=2, kernel_size=4, stride=3, padding="same",
                        label="stride3-same"),
                example((1, 7), filters=2, kernel_size=2, bias=False, label="nobias"))

    def infer_shape(self) -> Shape:
        k, s = self.p["kernel_size"], self.p["stride"]
        c, t = self._plan(k, s)
        self.in_channels = c
        lo, hi = self.pads
        self.inner = Conv2D(self.id, {"filters": self.p["filters"], "kernel_size": (1, k),
                                      "stride": (1, s), "bias": self.p["bias"]},
                            [(c, 1, t + lo + hi)])
        return (self.p["filters"], self.inner.out_shape[2])

    def param_shapes(self) -> dict[str, Shape]:
        out = {"weight": (self.p["filters"], self.in_channels, self.p["kernel_size"])}
        if self.p["bias"]:
            out["bias"] = (self.p["filters"],)
        return out

    def macs(self) -> int:
        return self.out_shape[0] * self.out_shape[1] * self.in_channels * self.p["kernel_size"]

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shapes = self.param_shapes()
        out = {"weight": initialize(self.p["init"], shapes["weight"], rng)}
        if self.p["bias"]:
            out["bias"] = np.zeros(shapes["bias"], np.float32)
        return out

    @staticmethod
    def _as2d(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(params)
        w = params["weight"]
        out["weight"] = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
        return out

    def forward(self, xs, params, train):
        y = self.inner.forward([self._padded(xs[0], 0.0, self.pads)], self._as2d(params),
                               train)
        return y[:, :, 0, :]

    def backward(self, dy, params, grads):
        g2 = self._as2d(grads)  # views (of contiguous grads): the 2-D backward fills them
        (dx4,) = self.inner.backward(np.ascontiguousarray(dy)[:, :, None, :],
                                     self._as2d(params), g2)
        if not np.shares_memory(g2["weight"], grads["weight"]):  # a strided grads array
            grads["weight"][...] = g2["weight"].reshape(grads["weight"].shape)
        return [self._unpad(dx4, self.pads)]

    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        lo, hi = self.pads
        xp = np.pad(x, ((0, 0), (0, 0), (lo, hi)))
        k, s = self.p["kernel_size"], self.p["stride"]
        ot = self.out_shape[1]
        win = np.stack([xp[:, :, j * s:j * s + k] for j in range(ot)], axis=2)  # N, C, OT, k
        y = np.einsum("ncok,fck->nfo", win, np.asarray(params["weight"], np.float64))
        return y + params["bias"][None, :, None] if "bias" in params else y

    def summary(self) -> str:
        parts = [f"{self.p['filters']} × {self.p['kernel_size']}"]
        if self.p["stride"] != 1:
            parts.append(f"stride {self.p['stride']}")
        if self._pads_text():
            parts.append(self._pads_text())
        if not self.p["bias"]:
            parts.append("no bias")
        return ", ".join(parts)

    def to_onnx(self, b, xs, out, params):
        nid = self.id
        ins = [xs[0], b.const(f"{nid}.weight", params["weight"])]
        if "bias" in params:
            ins.append(b.const(f"{nid}.bias", params["bias"]))
        b.op("Conv", ins, out, kernel_shape=[self.p["kernel_size"]],
             strides=[self.p["stride"]], pads=list(self.pads), dilations=[1], group=1)

    @staticmethod
    def from_onnx_1d(imp: Any, node: Any, x: Any) -> None:
        """An ONNX Conv over (N, C, T) (handed over by Conv2D's ``from_onnx``)."""
        a = imp.attrs(node)
        w = imp.need_const(node, 1, "weight").astype(np.float32)
        if int(a.get("group", 1)) != 1 or any(d != 1 for d in a.get("dilations", [1])):
            raise imp.fail(node, "is a grouped or dilated 1-D convolution; NetBuilder's "
                                 "Conv1D has group 1 and no dilation")
        if w.ndim != 3:
            raise imp.fail(node, f"has a {w.ndim - 2}-D kernel on a (C, T) sequence")
        k, stride = int(w.shape[2]), _stride(a)
        state = {"weight": w}
        if len(node.input) > 2 and node.input[2]:
            state["bias"] = imp.need_const(node, 2, "bias").astype(np.float32)
        params = {"filters": int(w.shape[0]), "kernel_size": k, "stride": stride,
                  "padding": _onnx_padding_1d(imp, node, a, x.shape[1], k, stride),
                  "bias": "bias" in state}
        imp.vals[node.output[0]] = imp.add(node, "Conv1D", params, [x], state)

    def to_pytorch(self, ctx, xs, out):
        p = self.p
        lo, hi = self.pads
        sym = lo == hi
        init, ref = ctx.register(self.id, f"nn.Conv1d({self.in_channels}, {p['filters']}, "
                                          f"{p['kernel_size']}, stride={p['stride']}, "
                                          f"padding={lo if sym else 0}, bias={p['bias']})")
        x = xs[0] if sym else f"F.pad({xs[0]}, ({lo}, {hi}))"
        return init, [f"{out} = {ref}({x})"]


def _stride(a: dict[str, Any]) -> int:
    return int(next(iter(a.get("strides", [1]))))


def _pads(a: dict[str, Any]) -> tuple[int, int]:
    lo, hi = [*a.get("pads", [0, 0]), 0, 0][:2]
    return int(lo), int(hi)


def _onnx_padding_1d(imp: Any, node: Any, a: dict[str, Any], t: int, k: int,
                     stride: int, prefer_same: bool = False) -> str | int:
    """The ``padding`` param of a 1-D ONNX Conv / pool (``prefer_same``: read equal pads
    that are also the 'same' ones as 'same')."""
    auto = a.get("auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        return "same"
    if auto == "VALID":
        return "valid"
    if auto != "NOTSET":
        raise imp.fail(node, f"uses auto_pad {auto}; NetBuilder pads like SAME_UPPER")
    lo, hi = _pads(a)
    same = (lo, hi) == window_geometry(t, k, stride, "same")[1:]
    if same and (prefer_same or lo != hi):
        return "same"
    if lo == hi:
        return "valid" if lo == 0 else lo
    raise imp.fail(node, f"pads (start, end) = ({lo}, {hi}); NetBuilder pads equally on both "
                         "sides, or 'same' (the extra step at the end)")


class _Pool1D(_Windowed1D):
    category = "Pooling"
    window = "pool_size"
    param_specs = (
        ParamSpec("pool_size", "int", 2, low=1, high=MAX_SIZE, help="window length (steps)"),
        ParamSpec("stride", "int", None, low=1, high=MAX_SIZE, optional=True,
                  help="step between windows (empty: the pool size)"),
        ParamSpec("padding", "padding", "valid", low=0, high=MAX_SIZE,
                  help="'valid' (none), 'same' (output = ceil(T / stride)) or steps per side"),
    )
    inner_cls: type[Layer] = MaxPool2D
    fill = -np.inf

    def infer_shape(self) -> Shape:
        k = self.p["pool_size"]
        self.stride = self.p["stride"] or k
        pad = self.p["padding"]
        if isinstance(pad, int) and 2 * pad > k:
            raise self.shape_error(f"padding {pad} is more than half the pool size {k}: "
                                   f"windows would see only padding; use padding ≤ {k // 2} "
                                   "or 'same'")
        c, t = self._plan(k, self.stride)
        self.channels = c
        same = pad == "same" and self.fill == 0.0  # the average over the real steps only
        lo, hi = (0, 0) if same else self.pads
        self.inner = self.inner_cls(self.id, {"pool_size": (1, k), "stride": (1, self.stride),
                                              "padding": "same" if same else "valid"},
                                    [(c, 1, t + lo + hi)])
        return (c, self.inner.out_shape[2])

    def _pre_pads(self) -> tuple[int, int]:
        return (0, 0) if self.p["padding"] == "same" and self.fill == 0.0 else self.pads

    def forward(self, xs, params, train):
        x4 = self._padded(np.asarray(xs[0]), self.fill, self._pre_pads())
        return self.inner.forward([x4], {}, train)[:, :, 0, :]

    def backward(self, dy, params, grads):
        (dx4,) = self.inner.backward(np.ascontiguousarray(dy)[:, :, None, :], {}, {})
        return [self._unpad(dx4, self._pre_pads())]

    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        lo, hi = self.pads
        k, s = self.p["pool_size"], self.stride
        xp = np.pad(x, ((0, 0), (0, 0), (lo, hi)), constant_values=self.fill)
        win = np.stack([xp[:, :, j * s:j * s + k] for j in range(self.out_shape[1])], axis=2)
        if self.fill != 0.0:
            return win.max(axis=-1)
        if self.p["padding"] != "same":
            return win.mean(axis=-1)
        real = np.pad(np.ones(x.shape[2]), (lo, hi))
        count = np.stack([real[j * s:j * s + k] for j in range(self.out_shape[1])]).sum(1)
        return win.sum(axis=-1) / count

    def summary(self) -> str:
        parts = [str(self.p["pool_size"])]
        if self.stride != self.p["pool_size"]:
            parts.append(f"stride {self.stride}")
        if self._pads_text():
            parts.append(self._pads_text())
        return ", ".join(parts)

    @staticmethod
    def from_onnx_1d(imp: Any, node: Any, x: Any) -> None:
        """An ONNX MaxPool / AveragePool over (N, C, T) (handed over by the 2-D pools)."""
        _pool_from_onnx_1d(imp, node, x)

    def _torch_args(self) -> str:
        return f"{self.p['pool_size']}, {self.stride}"


@register
class MaxPool1D(_Pool1D):
    """The maximum of each window along T: (C, T) -> (C, OT), as ``nn.MaxPool1d``; padding
    is never picked."""

    type_name = "MaxPool1D"
    help = "Keeps the largest value of each window along a sequence (C, T)."
    glyph = "M1"
    id_prefix = "maxpool1d"
    onnx_shared_ops = ("MaxPool",)
    kernels = MaxPool2D.kernels
    examples = (example((2, 8)), example((3, 9), pool_size=3, stride=2, padding=1,
                                         label="pad1"),
                example((2, 7), pool_size=2, padding="same", label="same"))

    def to_onnx(self, b, xs, out, params):
        b.op("MaxPool", xs, out, kernel_shape=[self.p["pool_size"]], strides=[self.stride],
             pads=list(self.pads))

    def to_pytorch(self, ctx, xs, out):
        lo, hi = self.pads
        if lo == hi:
            return [], [f"{out} = F.max_pool1d({xs[0]}, {self._torch_args()}, padding={lo})"]
        return [], [f"{out} = F.max_pool1d(F.pad({xs[0]}, ({lo}, {hi}), value=-math.inf), "
                    f"{self._torch_args()})"]


@register
class AvgPool1D(_Pool1D):
    """The mean of each window along T: (C, T) -> (C, OT), as ``nn.AvgPool1d`` (the padded
    zeros of an int padding counted; with "same" only the real steps)."""

    type_name = "AvgPool1D"
    help = "Averages each window along a sequence (C, T)."
    glyph = "A1"
    id_prefix = "avgpool1d"
    onnx_shared_ops = ("AveragePool",)
    inner_cls = AvgPool2D
    fill = 0.0
    kernels = AvgPool2D.kernels
    examples = (example((2, 8)), example((3, 9), pool_size=3, stride=2, padding=1,
                                         label="pad1"),
                example((2, 7), pool_size=3, stride=2, padding="same", label="same"))

    def macs(self) -> int:
        return self.out_shape[0] * self.out_shape[1] * self.p["pool_size"]

    def to_onnx(self, b, xs, out, params):
        b.op("AveragePool", xs, out, kernel_shape=[self.p["pool_size"]],
             strides=[self.stride], pads=list(self.pads),
             count_include_pad=int(self.p["padding"] != "same"))

    def to_pytorch(self, ctx, xs, out):
        lo, hi = self.pads
        if self.p["padding"] != "same":
            return [], [f"{out} = F.avg_pool1d({xs[0]}, {self._torch_args()}, padding={lo})"]
        x, a = xs[0], self._torch_args()
        return [], [f"{out} = F.avg_pool1d(F.pad({x}, ({lo}, {hi})), {a}) / F.avg_pool1d(",
                    f"    F.pad(torch.ones_like({x}[:1, :1]), ({lo}, {hi})), {a})  "
                    "# the mean of the real steps"]


def _pool_from_onnx_1d(imp: Any, node: Any, x: Any) -> None:
    """An ONNX MaxPool / AveragePool over (N, C, T) (handed over by the 2-D pools)."""
    a = imp.attrs(node)
    k = list(a["kernel_shape"])
    if len(k) != 1 or any(d != 1 for d in a.get("dilations", [1])) or \
            (len(node.output) > 1 and node.output[1]):
        raise imp.fail(node, "is not a plain 1-D pooling of a (C, T) sequence")
    stride = _stride(a)
    include = bool(a.get("count_include_pad", 0))
    pad = _onnx_padding_1d(imp, node, a, x.shape[1], k[0], stride,
                           prefer_same=node.op_type == "AveragePool" and not include)
    span = x.shape[1] + sum(_pads(a)) - k[0]
    if a.get("ceil_mode", 0) and span % stride:
        raise imp.fail(node, "rounds its output size up (ceil_mode = 1); NetBuilder's "
                             "1-D pooling rounds down")
    wrong_count = (pad == "same" and include) or (pad not in ("same", "valid")
                                                  and not include)
    if node.op_type == "AveragePool" and wrong_count:
        raise imp.fail(node, "counts the padding differently from NetBuilder's AvgPool1D "
                             "(the zeros of an int padding, none with 'same')")
    params = {"pool_size": k[0], "padding": pad}
    if stride != k[0]:
        params["stride"] = stride
    kind = "MaxPool1D" if node.op_type == "MaxPool" else "AvgPool1D"
    imp.vals[node.output[0]] = imp.add(node, kind, params, [x])


@register
class GlobalAvgPool1D(Layer):
    """The mean over T of each channel: (C, T) -> (C,), as ``x.mean(dim=2)``."""

    type_name = "GlobalAvgPool1D"
    category = "Pooling"
    help = "Averages each channel of a sequence (C, T) over time: (C, T) -> (C,)."
    glyph = "G1"
    id_prefix = "gap1d"
    onnx_shared_ops = ("ReduceMean", "GlobalAveragePool")
    examples = (example((3, 5)), example((1, 4)))

    def infer_shape(self) -> Shape:
        c, _ = sequence_shape(self)
        return (c,)

    def macs(self) -> int:
        return self.in_shapes[0][0] * self.in_shapes[0][1]

    def forward(self, xs, params, train):
        self._t = xs[0].shape[2]
        return xs[0].mean(axis=2)

    def backward(self, dy, params, grads):
        n, c = dy.shape
        return [np.broadcast_to((dy / self._t)[:, :, None], (n, c, self._t)).copy()]

    def summary(self) -> str:
        return ""

    def to_onnx(self, b, xs, out, params):
        b.op("ReduceMean", xs, out, axes=[2], keepdims=0)

    @staticmethod
    def mean_from_onnx(imp: Any, node: Any, x: Any, axes: list[int] | None, keep: int) -> bool:
        """ReduceMean over axis 2 (or GlobalAveragePool, ``axes`` None) of (N, C, T): a
        GlobalAvgPool1D (handed over by GlobalAvgPool2D). False if it does not fit."""
        if len(x.shape) != 2 or axes not in (None, [2]):
            return False
        y = imp.add(node, "GlobalAvgPool1D", {}, [x])
        imp.vals[node.output[0]] = imp.Val(y.node, y.shape, view=(y.shape[0], 1) if keep
                                           else None)
        return True

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = {xs[0]}.mean(dim=2)"]


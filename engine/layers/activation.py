"""Activation layers: ReLU, LeakyReLU, PReLU, Sigmoid, Tanh, HardSigmoid, HardTanh, Swish,
Softmax. Each is a node of its own, keeps its input's shape and dtype, and works on any shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ParamError
from ..kernels import activation as ak
from ..kernels.reference import activation as ra
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register
from .norm import channel_axis, channel_view

EXAMPLES = (example((2, 3, 4)), example((6,)))
# The largest float32: a HardTanh bound this far out is no bound for any finite value (a
# one-sided ONNX Clip / torch.clamp imports with it).
FLOAT_MAX = float(np.finfo(np.float32).max)


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _short_float(v: Any) -> float:
    """The shortest decimal that is the same float32 (ONNX stores float32)."""
    return float(str(np.float32(v)))


class _Elementwise(Layer):
    """An activation applied value by value on the flattened batch.

    Subclasses implement ``_forward(x, y)`` and ``_backward(dy, dx)`` on flat arrays; the
    input and output of the last forward are kept in ``self._x`` / ``self._y`` (flat)."""

    category = "Activation"
    examples = EXAMPLES

    def _forward(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _backward(self, dy: np.ndarray, dx: np.ndarray) -> None:
        raise NotImplementedError

    def forward(self, xs, params, train):
        x = np.ascontiguousarray(xs[0])
        y = np.empty_like(x)
        self._x, self._y = x.reshape(-1), y.reshape(-1)
        self._forward(self._x, self._y)
        return y

    def backward(self, dy, params, grads):
        flat = np.ascontiguousarray(dy, dtype=self._x.dtype).reshape(-1)
        dx = np.empty_like(flat)
        self._backward(flat, dx)
        return [dx.reshape(dy.shape)]

    def summary(self) -> str:
        return ""

    @classmethod
    def from_onnx(cls, imp, index, node):
        imp.elementwise(node, cls.type_name)


@register
class ReLU(_Elementwise):
    """y = max(x, 0)."""

    type_name = "ReLU"
    help = "Rectified linear unit: keeps positive values, zeroes negative ones."
    icon_curve = staticmethod(lambda x: np.maximum(x, 0.0))
    output_bounds = (0.0, math.inf)
    fusion_role = "relu"
    onnx_ops = ("Relu",)
    kernels = (ak.relu_forward, ak.relu_backward)

    def _forward(self, x, y):
        ak.relu_forward(x, y)

    def _backward(self, dy, dx):
        ak.relu_backward(self._x, dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.relu_forward(np.asarray(xs[0], np.float64))

    def to_onnx(self, b, xs, out, params):
        b.op("Relu", xs, out)

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = torch.relu({xs[0]})"]


@register
class LeakyReLU(_Elementwise):
    """y = x for x > 0, alpha * x otherwise."""

    type_name = "LeakyReLU"
    help = "Like ReLU, but negative values are scaled by a small slope instead of zeroed."
    param_specs = (
        ParamSpec("alpha", "float", 0.01, low=0.0, high=1.0, help="slope for negative inputs"),
    )
    icon_curve = staticmethod(lambda x: np.where(x > 0, x, 0.15 * x))
    id_prefix = "lrelu"
    onnx_ops = ("LeakyRelu",)
    kernels = (ak.leaky_relu_forward, ak.leaky_relu_backward)
    examples = (example((6,), alpha=0.2), example((2, 3, 4)))

    def _forward(self, x, y):
        ak.leaky_relu_forward(x, self.p["alpha"], y)

    def _backward(self, dy, dx):
        ak.leaky_relu_backward(self._x, self.p["alpha"], dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.leaky_relu_forward(np.asarray(xs[0], np.float64), self.p["alpha"])

    def summary(self) -> str:
        return f"α = {self.p['alpha']:g}"

    def to_onnx(self, b, xs, out, params):
        b.op("LeakyRelu", xs, out, alpha=float(self.p["alpha"]))

    @classmethod
    def from_onnx(cls, imp, index, node):
        imp.elementwise(node, "LeakyReLU", {"alpha": float(imp.attrs(node).get("alpha", 0.01))})

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = F.leaky_relu({xs[0]}, {ctx.num(self.p['alpha'])})"]


@register
class PReLU(Layer):
    """LeakyReLU with a learnable slope per channel: param ``weight`` (C,) as PyTorch's
    nn.PReLU. The channel is axis 0 of (C, H, W) and the last axis of (F,) or (T, F)."""

    type_name = "PReLU"
    category = "Activation"
    help = "Like LeakyReLU, but each channel learns its own slope for negative values."
    param_specs = (
        ParamSpec("init", "float", 0.25, low=0.0, high=1.0,
                  help="starting slope for negative inputs"),
    )
    icon_curve = staticmethod(lambda x: np.where(x > 0, x, 0.3 * x))
    onnx_ops = ("PRelu",)
    kernels = (ak.prelu_forward, ak.prelu_backward)
    examples = (example((4,)), example((3, 4)), example((2, 3, 3)))

    @property
    def channels(self) -> int:
        s = self.in_shapes[0]
        return s[channel_axis(s)]

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) == 0:
            raise self.shape_error("needs an input with at least one dimension")
        return s

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.channels,)}

    def init_params(self, rng):
        return {"weight": np.full(self.channels, self.p["init"], np.float32)}

    def forward(self, xs, params, train):
        shape = self.in_shapes[0]
        x = np.ascontiguousarray(xs[0])
        y = np.empty_like(x)
        self._x3 = channel_view(x, shape)
        ak.prelu_forward(self._x3, params["weight"], channel_view(y, shape))
        return y

    def backward(self, dy, params, grads):
        shape = self.in_shapes[0]
        dy3 = channel_view(np.ascontiguousarray(dy, dtype=self._x3.dtype), shape)
        dx3 = np.empty_like(dy3)
        grads["weight"][...] = ak.prelu_backward(self._x3, params["weight"], dy3, dx3)
        return [dx3.reshape(dy.shape)]

    def reference_forward(self, xs, params, train):
        x = np.ascontiguousarray(xs[0], np.float64)
        shape = self.in_shapes[0]
        return ra.prelu_forward(channel_view(x, shape), params["weight"]).reshape(x.shape)

    def summary(self) -> str:
        return f"{self.channels} slopes"

    def to_onnx(self, b, xs, out, params):
        s = self.in_shapes[0]
        w = params["weight"]
        slope = w.reshape(-1, *([1] * (len(s) - 1))) if len(s) >= 3 else w
        b.op("PRelu", [xs[0], b.const(f"{self.id}.weight", slope)], out)

    @classmethod
    def from_onnx(cls, imp, index, node):
        x = imp.materialize(imp.value(node), node)
        slope = np.asarray(imp.need_const(node, 1, "slope"), np.float32)
        s = x.shape
        c = s[0] if len(s) >= 3 else s[-1]
        flat = slope.reshape(-1)
        expect = (c, *([1] * (len(s) - 1))) if len(s) >= 3 else (c,)
        if flat.size == 1:
            flat = np.full(c, flat[0], np.float32)
        elif flat.size != c or slope.shape[-len(expect):] != expect[-slope.ndim:]:
            raise imp.fail(node, f"has slopes shaped {fmt_shape(slope.shape)}; NetBuilder's "
                                 f"PReLU has one slope per channel, {fmt_shape(expect)}")
        imp.vals[node.output[0]] = imp.add(node, "PReLU", {}, [x], {"weight": flat})

    def to_pytorch(self, ctx, xs, out):
        init, ref = ctx.register(self.id, f"nn.PReLU({self.channels}, "
                                          f"init={ctx.num(self.p['init'])})")
        if len(self.in_shapes[0]) == 2:
            return init, [f"{out} = {ref}({xs[0]}.transpose(1, 2)).transpose(1, 2)  "
                          "# one slope per feature (last axis)"]
        return init, [f"{out} = {ref}({xs[0]})"]


@register
class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x))."""

    type_name = "Sigmoid"
    help = "Squashes values into (0, 1); before a bce Output it is folded into the loss."
    icon_curve = staticmethod(lambda x: 4 * _sig(2 * x) - 2)
    output_bounds = (0.0, 1.0)
    loss_fold = "bce"
    onnx_ops = ("Sigmoid",)
    kernels = (ak.sigmoid_forward, ak.sigmoid_backward)

    def _forward(self, x, y):
        ak.sigmoid_forward(x, y)

    def _backward(self, dy, dx):
        ak.sigmoid_backward(self._y, dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.sigmoid_forward(np.asarray(xs[0], np.float64))

    @classmethod
    def from_onnx(cls, imp, index, node):
        """Sigmoid, or x·Sigmoid(x) (a Swish) when its only consumer multiplies it by x."""
        mul = imp.only_consumer(node.output[0])
        x_name = node.input[0]
        if mul is not None and mul.op_type == "Mul":
            other = mul.input[1] if mul.input[0] == node.output[0] else mul.input[0]
            if other == x_name and x_name in imp.vals:
                Swish.add_from_onnx(imp, mul, imp.value(node), 1.0)
                imp.skip.add(imp.index_of(mul))
                return
        imp.elementwise(node, "Sigmoid")

    def to_onnx(self, b, xs, out, params):
        b.op("Sigmoid", xs, out)

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = torch.sigmoid({xs[0]})"]


@register
class Tanh(_Elementwise):
    """y = tanh(x)."""

    type_name = "Tanh"
    help = "Squashes values into (-1, 1)."
    icon_curve = staticmethod(lambda x: 2 * np.tanh(x))
    output_bounds = (-1.0, 1.0)
    onnx_ops = ("Tanh",)
    kernels = (ak.tanh_forward, ak.tanh_backward)

    def _forward(self, x, y):
        ak.tanh_forward(x, y)

    def _backward(self, dy, dx):
        ak.tanh_backward(self._y, dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.tanh_forward(np.asarray(xs[0], np.float64))

    def to_onnx(self, b, xs, out, params):
        b.op("Tanh", xs, out)

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = torch.tanh({xs[0]})"]


@register
class HardSigmoid(_Elementwise):
    """y = max(0, min(1, alpha x + beta)); gradient alpha where 0 < alpha x + beta < 1.

    The defaults (alpha = 0.25, beta = 0.5: flat outside -2 < x < 2) are the catalogue's;
    PyTorch's nn.Hardsigmoid is alpha = 1/6 (flat outside -3 < x < 3), ONNX's default 0.2."""

    type_name = "HardSigmoid"
    help = "Piecewise-linear sigmoid: clip(α·x + β, 0, 1); cheap to compute."
    param_specs = (
        ParamSpec("alpha", "float", 0.25, low=0.0, high=100.0,
                  help="slope (PyTorch's Hardsigmoid: 1/6, ONNX's default: 0.2)"),
        ParamSpec("beta", "float", 0.5, low=-100.0, high=100.0, help="value at x = 0"),
    )
    icon_curve = staticmethod(lambda x: 4 * np.clip(0.25 * x + 0.5, 0.0, 1.0) - 2)
    output_bounds = (0.0, 1.0)
    onnx_ops = ("HardSigmoid",)
    kernels = (ak.hard_sigmoid_forward, ak.hard_sigmoid_backward)
    examples = (*EXAMPLES, example((7,), alpha=1 / 6, label="pytorch"),
                example((2, 5), alpha=0.2, beta=0.3, label="onnx-default"))

    def _forward(self, x, y):
        ak.hard_sigmoid_forward(x, self.p["alpha"], self.p["beta"], y)

    def _backward(self, dy, dx):
        ak.hard_sigmoid_backward(self._x, self.p["alpha"], self.p["beta"], dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.hard_sigmoid_forward(np.asarray(xs[0], np.float64), self.p["alpha"],
                                       self.p["beta"])

    def summary(self) -> str:
        a, b = self.p["alpha"], self.p["beta"]
        return "" if (a, b) == (0.25, 0.5) else f"α = {a:.4g}, β = {b:g}"

    def to_onnx(self, b, xs, out, params):
        b.op("HardSigmoid", xs, out, alpha=float(self.p["alpha"]), beta=float(self.p["beta"]))

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        params = {} if (alpha, beta) == (0.25, 0.5) else {"alpha": alpha, "beta": beta}
        imp.elementwise(node, "HardSigmoid", params)

    def to_pytorch(self, ctx, xs, out):
        a, b = self.p["alpha"], self.p["beta"]
        if math.isclose(a, 1 / 6, rel_tol=1e-6) and b == 0.5:
            return [], [f"{out} = F.hardsigmoid({xs[0]})"]
        return [], [f"{out} = torch.clamp({ctx.num(a)} * {xs[0]} + {ctx.num(b)}, 0.0, 1.0)"]


@register
class HardTanh(_Elementwise):
    """y = clip(x, min_val, max_val); gradient 1 strictly inside, 0 outside. A bound of
    ±FLOAT_MAX (the largest float32) leaves that side open."""

    type_name = "HardTanh"
    help = "Piecewise-linear tanh: clips values to [min_val, max_val]."
    param_specs = (
        ParamSpec("min_val", "float", -1.0, low=-FLOAT_MAX, high=FLOAT_MAX,
                  help="lower clip value (-3.4e38: none)"),
        ParamSpec("max_val", "float", 1.0, low=-FLOAT_MAX, high=FLOAT_MAX,
                  help="upper clip value (3.4e38: none)"),
    )
    icon_curve = staticmethod(lambda x: 2 * np.clip(x, -1.0, 1.0))
    output_bounds = (-1.0, 1.0)
    onnx_ops = ("Clip",)
    kernels = (ak.hard_tanh_forward, ak.hard_tanh_backward)
    examples = (example((8,), min_val=-0.5, max_val=0.7), example((2, 3, 4)),
                example((6,), min_val=0.1, max_val=FLOAT_MAX, label="min-only"))

    @classmethod
    def resolve_params(cls, params: dict[str, Any], node_id: str | None = None
                       ) -> dict[str, Any]:
        out = super().resolve_params(params, node_id)
        if out["min_val"] >= out["max_val"]:
            where = f"{cls.type_name} '{node_id}'" if node_id else cls.type_name
            raise ParamError(f"{where}: min_val ({out['min_val']:g}) must be below max_val "
                             f"({out['max_val']:g})", node_id)
        return out

    def _forward(self, x, y):
        ak.hard_tanh_forward(x, self.p["min_val"], self.p["max_val"], y)

    def _backward(self, dy, dx):
        ak.hard_tanh_backward(self._x, self.p["min_val"], self.p["max_val"], dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.hard_tanh_forward(np.asarray(xs[0], np.float64), self.p["min_val"],
                                    self.p["max_val"])

    def output_range(self) -> tuple[float, float]:
        return self.p["min_val"], self.p["max_val"]

    def summary(self) -> str:
        lo, hi = self.p["min_val"], self.p["max_val"]
        return (f"{'(-∞' if lo <= -FLOAT_MAX else f'[{lo:g}'}, "
                f"{'∞)' if hi >= FLOAT_MAX else f'{hi:g}]'}")

    def to_onnx(self, b, xs, out, params):
        lo = b.const(f"{self.id}/min", self.p["min_val"])
        hi = b.const(f"{self.id}/max", self.p["max_val"])
        b.op("Clip", [xs[0], lo, hi], out)

    @classmethod
    def from_onnx(cls, imp, index, node):
        """Clip to [lo, hi]: a HardTanh, a ReLU for [0, inf), nothing without bounds."""
        a = imp.attrs(node)
        lo = imp.const(node.input[1]) if len(node.input) > 1 else a.get("min")
        hi = imp.const(node.input[2]) if len(node.input) > 2 else a.get("max")
        if (len(node.input) > 1 and node.input[1] and lo is None) or \
                (len(node.input) > 2 and node.input[2] and hi is None):
            raise imp.fail(node, "needs constant min and max")
        lo_f = -math.inf if lo is None else _short_float(lo)
        hi_f = math.inf if hi is None else _short_float(hi)
        if lo_f == -math.inf and hi_f == math.inf:  # no bounds: nothing to do
            imp.vals[node.output[0]] = imp.value(node, allow_perm=True)
        elif lo_f == 0.0 and hi_f == math.inf:
            imp.elementwise(node, "ReLU")
        else:  # an open side: the largest float32, the same for every finite value
            imp.elementwise(node, "HardTanh", {"min_val": max(lo_f, -FLOAT_MAX),
                                               "max_val": min(hi_f, FLOAT_MAX)})

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = F.hardtanh({xs[0]}, {ctx.num(self.p['min_val'])}, "
                    f"{ctx.num(self.p['max_val'])})"]


@register
class Swish(_Elementwise):
    """y = x · sigmoid(beta x); beta is fixed (beta = 1 is SiLU)."""

    type_name = "Swish"
    help = "x · sigmoid(β·x): a smooth ReLU (SiLU when β = 1)."
    param_specs = (
        ParamSpec("beta", "float", 1.0, low=0.0, high=100.0, help="sharpness; fixed, not learned"),
    )
    icon_curve = staticmethod(lambda x: x * _sig(x))
    aliases = ("SiLU",)
    onnx_ops = ("Mul",)
    kernels = (ak.swish_forward, ak.swish_backward)
    examples = (example((6,)), example((2, 3, 3), beta=1.7))

    def _forward(self, x, y):
        self._s = np.empty_like(x)
        ak.swish_forward(x, self.p["beta"], y, self._s)

    def _backward(self, dy, dx):
        ak.swish_backward(self._x, self._s, self.p["beta"], dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.swish_forward(np.asarray(xs[0], np.float64), self.p["beta"])

    def summary(self) -> str:
        return f"β = {self.p['beta']:g}"

    def to_onnx(self, b, xs, out, params):
        nid, beta = self.id, self.p["beta"]
        z = xs[0]
        if beta != 1.0:
            z = b.op("Mul", [xs[0], b.const(f"{nid}/beta", beta)], f"{nid}/scaled")
        s = b.op("Sigmoid", [z], f"{nid}/sigmoid")
        b.op("Mul", [xs[0], s], out)

    @classmethod
    def from_onnx(cls, imp, index, node):
        """Mul(x, beta) -> Sigmoid -> Mul(x, ·): a Swish (x·Sigmoid(x) is read by Sigmoid);
        any other x · c is a Scale's."""
        ins = list(node.input)
        c_i = next((i for i, t in enumerate(ins) if t in imp.consts), None)
        if c_i is not None:
            x_name = ins[1 - c_i]
            sig = imp.only_consumer(node.output[0])
            mul = imp.only_consumer(sig.output[0]) if sig is not None and \
                sig.op_type == "Sigmoid" else None
            beta = imp.consts[ins[c_i]]
            if mul is not None and mul.op_type == "Mul" and beta.size == 1 and \
                    x_name in (mul.input[0], mul.input[1]) and sig.output[0] in mul.input:
                cls.add_from_onnx(imp, mul, imp.value(node, 1 - c_i),
                                  _short_float(beta.reshape(())))
                imp.skip.update({imp.index_of(sig), imp.index_of(mul)})
                return
            imp.const_handlers["Mul"].from_onnx(imp, index, node)  # x · c: a Scale
            return
        raise imp.fail(node, "multiplies two tensors; NetBuilder has no elementwise product "
                             "layer (only x·sigmoid(β·x), a Swish)")

    @staticmethod
    def add_from_onnx(imp: Any, mul: Any, x: Any, beta: float) -> None:
        """A Swish node for x·Sigmoid(β·x) ending at the ONNX Mul ``mul``."""
        imp.vals[mul.output[0]] = imp.add(mul, "Swish", {} if beta == 1.0 else {"beta": beta},
                                          [imp.materialize(x, mul)])

    def to_pytorch(self, ctx, xs, out):
        beta = self.p["beta"]
        if beta == 1.0:
            return [], [f"{out} = F.silu({xs[0]})"]
        return [], [f"{out} = {xs[0]} * torch.sigmoid({ctx.num(beta)} * {xs[0]})"]


@register
class Softmax(Layer):
    """Softmax over one axis of the sample (default the last). Before a cross-entropy Output
    the Network folds it into the loss; on its own it has an exact backward."""

    type_name = "Softmax"
    category = "Activation"
    help = "Turns scores into probabilities that sum to 1 (over the last axis)."
    param_specs = (
        ParamSpec("axis", "int", -1, low=-4, high=3,
                  help="axis of the sample to normalise over; -1 = last"),
    )
    icon_curve = staticmethod(lambda x: 4 * _sig(3 * x) - 2)
    loss_fold = "cross_entropy"
    onnx_ops = ("Softmax",)
    kernels = (ak.softmax_forward, ak.softmax_backward)
    examples = (example((5,)), example((3, 4), axis=0))

    def folds_into_loss(self) -> str:
        """Cross-entropy takes the softmax over the last axis only."""
        return self.loss_fold if self.batch_axis == len(self.in_shapes[0]) else ""

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        a = self.p["axis"]
        if not -len(s) <= a < len(s):
            raise self.shape_error(
                f"has axis {a}, but its input {fmt_shape(s)} has {len(s)} dimension"
                f"{'s' if len(s) != 1 else ''}: use an axis from {-len(s)} to {len(s) - 1}")
        return s

    @property
    def batch_axis(self) -> int:
        """The softmax axis in the batch array (N, *shape)."""
        a = self.p["axis"]
        return 1 + (a if a >= 0 else len(self.in_shapes[0]) + a)

    def _to_rows(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, self.batch_axis, -1))

    def _from_rows(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(a, -1, self.batch_axis))

    def forward(self, xs, params, train):
        x = self._to_rows(xs[0])
        y = np.empty_like(x)
        ak.softmax_forward(x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1]))
        self._y = y
        return self._from_rows(y)

    def backward(self, dy, params, grads):
        y = self._y
        d = self._to_rows(np.asarray(dy, dtype=y.dtype))
        dx = np.empty_like(y)
        ak.softmax_backward(y.reshape(-1, y.shape[-1]), d.reshape(-1, d.shape[-1]),
                            dx.reshape(-1, dx.shape[-1]))
        return [self._from_rows(dx)]

    def summary(self) -> str:
        return "" if self.p["axis"] == -1 else f"axis {self.p['axis']}"

    def reference_forward(self, xs, params, train):
        x = np.moveaxis(np.asarray(xs[0], np.float64), self.batch_axis, -1)
        return np.moveaxis(ra.softmax_forward(x), -1, self.batch_axis)

    def to_onnx(self, b, xs, out, params):
        b.op("Softmax", xs, out, axis=int(self.batch_axis))

    @classmethod
    def from_onnx(cls, imp, index, node):
        x = imp.materialize(imp.value(node), node)
        rank = len(x.shape) + 1
        axis = int(imp.attrs(node).get("axis", -1 if imp.opset >= 13 else 1))
        axis = axis + rank if axis < 0 else axis
        if imp.opset < 13 and axis != rank - 1:
            raise imp.fail(node, "uses the opset < 13 softmax over several axes")
        if axis == 0:
            raise imp.fail(node, "normalises over the batch axis")
        params = {} if axis == rank - 1 else {"axis": axis - 1}
        imp.vals[node.output[0]] = imp.add(node, "Softmax", params, [x])

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = torch.softmax({xs[0]}, dim={self.batch_axis})"]

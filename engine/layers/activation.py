"""Activation layers: ReLU, LeakyReLU, PReLU, Sigmoid, Tanh, HardSigmoid, HardTanh, Swish,
Softmax. Each is a node of its own, keeps its input's shape and dtype, and works on any shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParamError
from ..kernels import activation as ak
from ..registry import Layer, ParamSpec, Shape, fmt_shape, register
from .norm import channel_axis, channel_view


class _Elementwise(Layer):
    """An activation applied value by value on the flattened batch.

    Subclasses implement ``_forward(x, y)`` and ``_backward(dy, dx)`` on flat arrays; the
    input and output of the last forward are kept in ``self._x`` / ``self._y`` (flat)."""

    category = "Activation"

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


@register
class ReLU(_Elementwise):
    """y = max(x, 0)."""

    type_name = "ReLU"
    help = "Rectified linear unit: keeps positive values, zeroes negative ones."

    def _forward(self, x, y):
        ak.relu_forward(x, y)

    def _backward(self, dy, dx):
        ak.relu_backward(self._x, dy, dx)


@register
class LeakyReLU(_Elementwise):
    """y = x for x > 0, alpha * x otherwise."""

    type_name = "LeakyReLU"
    help = "Like ReLU, but negative values are scaled by a small slope instead of zeroed."
    param_specs = (
        ParamSpec("alpha", "float", 0.01, low=0.0, high=1.0, help="slope for negative inputs"),
    )

    def _forward(self, x, y):
        ak.leaky_relu_forward(x, self.p["alpha"], y)

    def _backward(self, dy, dx):
        ak.leaky_relu_backward(self._x, self.p["alpha"], dy, dx)

    def summary(self) -> str:
        return f"α = {self.p['alpha']:g}"


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

    def summary(self) -> str:
        return f"{self.channels} slopes"


@register
class Sigmoid(_Elementwise):
    """y = 1 / (1 + exp(-x))."""

    type_name = "Sigmoid"
    help = "Squashes values into (0, 1); before a bce Output it is folded into the loss."

    def _forward(self, x, y):
        ak.sigmoid_forward(x, y)

    def _backward(self, dy, dx):
        ak.sigmoid_backward(self._y, dy, dx)


@register
class Tanh(_Elementwise):
    """y = tanh(x)."""

    type_name = "Tanh"
    help = "Squashes values into (-1, 1)."

    def _forward(self, x, y):
        ak.tanh_forward(x, y)

    def _backward(self, dy, dx):
        ak.tanh_backward(self._y, dy, dx)


@register
class HardSigmoid(_Elementwise):
    """y = max(0, min(1, 0.25 x + 0.5)): slope 1/4, flat outside -2 < x < 2.

    This is the catalogue's definition (ONNX HardSigmoid with alpha = 0.25, beta = 0.5), not
    PyTorch's nn.Hardsigmoid, which is x / 6 + 0.5 clipped (flat outside -3 < x < 3)."""

    type_name = "HardSigmoid"
    help = "Piecewise-linear sigmoid: clip(0.25·x + 0.5, 0, 1); cheap to compute."

    def _forward(self, x, y):
        ak.hard_sigmoid_forward(x, y)

    def _backward(self, dy, dx):
        ak.hard_sigmoid_backward(self._x, dy, dx)


@register
class HardTanh(_Elementwise):
    """y = clip(x, min_val, max_val); gradient 1 strictly inside, 0 outside."""

    type_name = "HardTanh"
    help = "Piecewise-linear tanh: clips values to [min_val, max_val]."
    param_specs = (
        ParamSpec("min_val", "float", -1.0, low=-1e6, high=1e6, help="lower clip value"),
        ParamSpec("max_val", "float", 1.0, low=-1e6, high=1e6, help="upper clip value"),
    )

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

    def summary(self) -> str:
        return f"[{self.p['min_val']:g}, {self.p['max_val']:g}]"


@register
class Swish(_Elementwise):
    """y = x · sigmoid(beta x); beta is fixed (beta = 1 is SiLU)."""

    type_name = "Swish"
    help = "x · sigmoid(β·x): a smooth ReLU (SiLU when β = 1)."
    param_specs = (
        ParamSpec("beta", "float", 1.0, low=0.0, high=100.0, help="sharpness; fixed, not learned"),
    )

    def _forward(self, x, y):
        self._s = np.empty_like(x)
        ak.swish_forward(x, self.p["beta"], y, self._s)

    def _backward(self, dy, dx):
        ak.swish_backward(self._x, self._s, self.p["beta"], dy, dx)

    def summary(self) -> str:
        return f"β = {self.p['beta']:g}"


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

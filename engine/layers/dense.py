"""Dense (on the last axis), Flatten and Reshape."""

from __future__ import annotations

import math

import numpy as np

from ..init import INITS, initialize
from ..registry import Layer, ParamSpec, Shape, fmt_shape, register
from ..text import plural


@register
class Dense(Layer):
    """y = x @ weight.T + bias on the last axis: (..., in) -> (..., units)."""

    type_name = "Dense"
    category = "Core"
    help = "Fully connected layer: every output sees every input feature (last axis)."
    param_specs = (
        ParamSpec("units", "int", 64, low=1, high=1_000_000, help="number of output features"),
        ParamSpec("bias", "bool", True, help="add a learnable bias"),
        ParamSpec("init", "choice", "he", choices=INITS, help="weight initialisation"),
    )

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) > 2:
            raise self.shape_error(f"expects a flat input, got {fmt_shape(s)}: add a Flatten")
        return (*s[:-1], self.p["units"])

    @property
    def n_in(self) -> int:
        return self.in_shapes[0][-1]

    def param_shapes(self) -> dict[str, Shape]:
        out = {"weight": (self.p["units"], self.n_in)}
        if self.p["bias"]:
            out["bias"] = (self.p["units"],)
        return out

    def macs(self) -> int:
        steps = math.prod(self.in_shapes[0][:-1])
        return steps * self.n_in * self.p["units"]

    def init_params(self, rng):
        out = {"weight": initialize(self.p["init"], (self.p["units"], self.n_in), rng)}
        if self.p["bias"]:
            out["bias"] = np.zeros(self.p["units"], np.float32)
        return out

    def forward(self, xs, params, train):
        x = xs[0]
        self._x = x
        x2 = x.reshape(-1, x.shape[-1])
        y = x2 @ params["weight"].T
        if "bias" in params:
            y += params["bias"]
        return y.reshape(*x.shape[:-1], y.shape[-1])

    def backward(self, dy, params, grads):
        x = self._x
        x2 = x.reshape(-1, x.shape[-1])
        dy2 = dy.reshape(-1, dy.shape[-1])
        np.dot(dy2.T, x2, out=grads["weight"])
        if "bias" in grads:
            np.sum(dy2, axis=0, out=grads["bias"])
        if not self.needs_input_grad:
            return [None]
        return [(dy2 @ params["weight"]).reshape(x.shape)]

    def summary(self) -> str:
        return plural(self.p["units"], "unit") + ("" if self.p["bias"] else ", no bias")


@register
class Flatten(Layer):
    type_name = "Flatten"
    category = "Core"
    help = "Lays all features of a sample out in one vector: (C, H, W) -> (C·H·W,)."

    def infer_shape(self) -> Shape:
        return (math.prod(self.in_shapes[0]),)

    def forward(self, xs, params, train):
        return xs[0].reshape(xs[0].shape[0], -1)

    def backward(self, dy, params, grads):
        return [dy.reshape(dy.shape[0], *self.in_shapes[0])]

    def summary(self) -> str:
        return ""


@register
class Reshape(Layer):
    type_name = "Reshape"
    category = "Core"
    help = "Gives each sample a new shape with the same number of elements."
    param_specs = (
        ParamSpec("shape", "shape", (1, 28, 28), low=1, high=1_000_000, required=True,
                  help="new per-sample shape"),
    )

    def infer_shape(self) -> Shape:
        s, t = self.in_shapes[0], self.p["shape"]
        if math.prod(s) != math.prod(t):
            raise self.shape_error(f"cannot reshape {fmt_shape(s)} ({math.prod(s)} values) to "
                                   f"{fmt_shape(t)} ({math.prod(t)} values)")
        return t

    def forward(self, xs, params, train):
        return xs[0].reshape(xs[0].shape[0], *self.p["shape"])

    def backward(self, dy, params, grads):
        return [dy.reshape(dy.shape[0], *self.in_shapes[0])]

    def summary(self) -> str:
        return fmt_shape(self.p["shape"])

"""Scale: y = scale · x + shift, value by value, with two fixed numbers (not learned).

What a model does to its data with constants: ``x / 255``, ``(x - 0.5) / 0.5``, ``2 * x - 1``.
ONNX writes it as Mul / Div then Add / Sub with a one-number constant, which is how it is
exported and what it imports from (one node for a Mul or Div followed by an Add or Sub).
"""

from __future__ import annotations

import numpy as np

from ..registry import Layer, ParamSpec, Shape, example, register

LIMIT = 1e6
VERBS = {"Mul": "multiplies by", "Div": "divides by", "Add": "adds", "Sub": "subtracts"}


def _number(value: np.ndarray, rank: int) -> float | None:
    """The constant as one float32-exact number, or None if it is not one number whose
    broadcast keeps the data's shape."""
    if value.size != 1 or value.ndim > rank or not np.issubdtype(value.dtype, np.number):
        return None
    return float(np.float32(value.reshape(())))


@register
class Scale(Layer):
    """y = scale · x + shift on any shape; dy/dx = scale. The numbers are fixed, not learned."""

    type_name = "Scale"
    category = "Core"
    help = "Multiplies by a fixed number, then adds another: scale·x + shift (x / 255, 2x - 1)."
    param_specs = (
        ParamSpec("scale", "float", 1.0, low=-LIMIT, high=LIMIT, help="the factor"),
        ParamSpec("shift", "float", 0.0, low=-LIMIT, high=LIMIT, help="added after scaling"),
    )
    glyph = "a·x"
    id_prefix = "scale"
    onnx_const_ops = ("Mul", "Add", "Sub", "Div")
    examples = (example((6,), scale=2.5, shift=-1.0), example((2, 3, 4), scale=-0.5),
                example((5,), shift=0.25, label="shift-only"))

    def infer_shape(self) -> Shape:
        return self.in_shapes[0]

    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                train: bool) -> np.ndarray:
        x = xs[0]
        return (x * x.dtype.type(self.p["scale"]) + x.dtype.type(self.p["shift"])).astype(
            x.dtype, copy=False)

    def backward(self, dy: np.ndarray, params: dict[str, np.ndarray],
                 grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [dy * dy.dtype.type(self.p["scale"])]

    def reference_forward(self, xs, params, train):
        return np.asarray(xs[0], np.float64) * self.p["scale"] + self.p["shift"]

    def summary(self) -> str:
        a, b = self.p["scale"], self.p["shift"]
        if b == 0:
            return f"× {a:g}"
        return f"{a:g}·x {'+' if b > 0 else '−'} {abs(b):g}" if a != 1 else \
            f"{'+' if b > 0 else '−'} {abs(b):g}"

    def to_onnx(self, b, xs, out, params):
        a, s = self.p["scale"], self.p["shift"]
        y = xs[0]
        if a != 1 or s == 0:
            y = b.op("Mul", [y, b.const(f"{self.id}/scale", a)], out if s == 0 else
                     f"{self.id}/scaled", name=self.id if s == 0 else f"{self.id}/scale")
        if s != 0:
            b.op("Add", [y, b.const(f"{self.id}/shift", s)], out, name=self.id)

    @classmethod
    def from_onnx(cls, imp, index, node):
        """Mul / Div / Add / Sub of data by one number (Sub(c, x) is -x + c); a Mul or Div
        whose only reader adds or subtracts a number becomes one node with both."""
        op = node.op_type
        if len(node.input) != 2:
            raise imp.fail(node, f"has {len(node.input)} inputs; a Scale reads data and a number")
        const_at = [i for i, t in enumerate(node.input) if t in imp.consts]
        if len(const_at) != 1:
            raise imp.fail(node, "works on two data tensors; NetBuilder has no layer that "
                                 f"combines them with {op}")
        c_i = const_at[0]
        x = imp.value(node, 1 - c_i, allow_perm=True)
        rank = len(x.onnx_shape) + 1
        c = _number(imp.consts[node.input[c_i]], rank)
        if c is None:
            arr = imp.consts[node.input[c_i]]
            verb = VERBS[op]
            if arr.size == 1:
                raise imp.fail(node, f"{verb} a constant shaped {list(arr.shape)}, which adds "
                                     f"axes to the rank-{rank} data; give it at most {rank} axes")
            raise imp.fail(node, f"{verb} a constant shaped {list(arr.shape)}; NetBuilder's "
                                 "Scale takes one number (per-channel values: fold them into "
                                 "the weights of the layer before or after it)")
        if op == "Div" and c_i == 0:
            raise imp.fail(node, "divides a constant by data (a reciprocal), which NetBuilder "
                                 "has no layer for")
        if op == "Div" and c == 0:
            raise imp.fail(node, "divides by zero")
        scale, shift = {"Mul": (c, 0.0), "Div": (1.0 / c if c else 1.0, 0.0), "Add": (1.0, c),
                        "Sub": (1.0, -c) if c_i == 1 else (-1.0, c)}[op]
        last = node
        nxt = imp.only_consumer(node.output[0]) if op in ("Mul", "Div") else None
        if nxt is not None and nxt.op_type in ("Add", "Sub") and len(nxt.input) == 2:
            k = 1 if nxt.input[0] == node.output[0] else 0
            other = nxt.input[k]
            d = _number(imp.consts[other], rank) if other in imp.consts else None
            if d is not None and nxt.input[1 - k] == node.output[0] != other:
                if nxt.op_type == "Add":
                    shift = d
                elif k == 1:  # y - d
                    shift = -d
                else:  # d - y
                    scale, shift = -scale, d
                imp.skip.add(imp.index_of(nxt))
                last = nxt
        params = {k: v for k, v in (("scale", scale), ("shift", shift))
                  if v != (1.0 if k == "scale" else 0.0)}
        if any(abs(v) > LIMIT for v in params.values()):
            raise imp.fail(node, f"scales or shifts by more than {LIMIT:g}: {params}")
        src = [imp.Val(x.node, x.shape)] if x.perm else [imp.materialize(x, node)]
        y = imp.add(last, "Scale", params, src)  # named after the last node (its export)
        imp.vals[last.output[0]] = imp.Val(y.node, y.shape, x.perm)

    def to_pytorch(self, ctx, xs, out):
        a, b = self.p["scale"], self.p["shift"]
        return [], [f"{out} = {xs[0]} * {ctx.num(a)} + {ctx.num(b)}"]

"""Merge layers with any number (≥ 2) of inputs on ports 0..n-1: Add and Concat."""

from __future__ import annotations

import numpy as np

from ..kernels import normact as na
from ..kernels.conv import batch_chunks
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, get_layer_class, register


def _listing(shapes: list[Shape]) -> str:
    return ", ".join(f"{fmt_shape(s)} at port {p}" for p, s in enumerate(shapes))


@register
class Add(Layer):
    """Elementwise sum of all inputs, which must share one shape (e.g. a residual link).

    Two inputs run ``kernels.normact.add_forward`` split over the batch (with a following
    ReLU the fused ``AddBlock`` runs the same kernel and writes the ReLU output too)."""

    type_name = "Add"
    category = "Merge"
    help = "Adds its inputs value by value (e.g. a residual connection); shapes must match."
    min_inputs = 2
    max_inputs = None
    glyph = "+"
    onnx_ops = ("Add", "Sum")
    fusion_role = "add"
    kernels = (na.add_forward,)
    examples = (example((2, 4, 4), (2, 4, 4)), example((5,), (5,), (5,)))

    def infer_shape(self) -> Shape:
        shapes = self.in_shapes
        if len(shapes) < 2:
            raise self.shape_error(f"needs at least 2 inputs, got {len(shapes)}")
        if any(s != shapes[0] for s in shapes[1:]):
            raise self.shape_error(f"needs all inputs of the same shape, got {_listing(shapes)}")
        return shapes[0]

    def fusion_stage(self) -> str:
        """"add" for two inputs (the fused kernel adds two arrays)."""
        return self.fusion_role if len(self.in_shapes) == 2 else ""

    def forward(self, xs, params, train):
        if len(xs) != 2:
            y = xs[0] + xs[1]
            for x in xs[2:]:
                y += x
            return y
        a = np.ascontiguousarray(xs[0])
        y = np.empty_like(a)
        self.run_forward(a, xs[1], False, y, y[:0])
        return y

    @staticmethod
    def run_forward(a: np.ndarray, b: np.ndarray, relu: bool, y: np.ndarray,
                    yrelu: np.ndarray) -> None:
        """y = a + b (batches of one shape), and yrelu = max(y, 0) when ``relu``."""
        a = np.ascontiguousarray(a)
        b = np.ascontiguousarray(b, dtype=a.dtype)
        na.add_forward(a.reshape(-1), b.reshape(-1), relu, batch_chunks(a.shape[0]),
                       y.reshape(-1), yrelu.reshape(-1))

    def reference_forward(self, xs, params, train):
        return sum((np.asarray(x, np.float64) for x in xs[1:]), np.asarray(xs[0], np.float64))

    def backward(self, dy, params, grads):
        return [dy] * len(self.in_shapes)

    def summary(self) -> str:
        return f"{len(self.in_shapes)} inputs"

    def to_onnx(self, b, xs, out, params):
        b.op("Add" if len(xs) == 2 else "Sum", xs, out)

    @classmethod
    def from_onnx(cls, imp, index, node):
        if node.op_type == "Add" and any(t in imp.consts for t in node.input):
            const = next(t for t in node.input if t in imp.consts)
            data = [i for i, t in enumerate(node.input) if t != const]
            if len(data) == 1:  # x + a table shaped like the (T, E) sample: positions
                x = imp.materialize(imp.value(node, data[0]), node)
                pos = get_layer_class("PositionalEmbedding")
                if pos.add_from_onnx(imp, node, x, imp.consts[const]):
                    return
            imp.const_handlers["Add"].from_onnx(imp, index, node)  # x + c: a Scale
            return
        xs = [imp.materialize(imp.value(node, i), node) for i in range(len(node.input))]
        if len(xs) == 1:
            imp.vals[node.output[0]] = xs[0]
            return
        imp.vals[node.output[0]] = imp.add(node, "Add", {}, xs)

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = {' + '.join(xs)}"]


@register
class Concat(Layer):
    """Joins its inputs along one axis of the sample (0 = channels of (C, H, W), or the
    features of (F,)); every other dimension must match. Port order is the join order."""

    type_name = "Concat"
    category = "Merge"
    help = "Joins its inputs along one axis (default 0: channels); other sizes must match."
    param_specs = (
        ParamSpec("axis", "int", 0, low=-4, high=3,
                  help="axis of the sample to join along; 0 = channels, -1 = last"),
    )
    min_inputs = 2
    max_inputs = None
    glyph = "‖"
    onnx_ops = ("Concat",)
    examples = (example((3, 5, 5), (2, 5, 5)), example((3, 4), (3, 2), axis=-1))

    @property
    def sample_axis(self) -> int:
        """The join axis within the sample shape, made non-negative."""
        a = self.p["axis"]
        return a if a >= 0 else len(self.in_shapes[0]) + a

    def infer_shape(self) -> Shape:
        shapes = self.in_shapes
        if len(shapes) < 2:
            raise self.shape_error(f"needs at least 2 inputs, got {len(shapes)}")
        nd = len(shapes[0])
        if any(len(s) != nd for s in shapes[1:]):
            raise self.shape_error(f"needs inputs with the same number of dimensions, got "
                                   f"{_listing(shapes)}: add a Flatten or Reshape")
        a = self.p["axis"]
        if not -nd <= a < nd:
            raise self.shape_error(f"has axis {a}, but its inputs have {nd} dimension"
                                   f"{'s' if nd != 1 else ''}: use an axis from {-nd} to "
                                   f"{nd - 1}")
        a = self.sample_axis
        for d in range(nd):
            if d != a and any(s[d] != shapes[0][d] for s in shapes[1:]):
                raise self.shape_error(
                    f"joins along axis {a}, so every other axis must match, but axis {d} "
                    f"differs: {_listing(shapes)}")
        out = list(shapes[0])
        out[a] = sum(s[a] for s in shapes)
        return tuple(out)

    def forward(self, xs, params, train):
        return np.concatenate(xs, axis=1 + self.sample_axis)

    def backward(self, dy, params, grads):
        a = self.sample_axis
        bounds = np.cumsum([s[a] for s in self.in_shapes])[:-1]
        return [np.ascontiguousarray(part) for part in np.split(dy, bounds, axis=1 + a)]

    def summary(self) -> str:
        return f"axis {self.p['axis']}, {len(self.in_shapes)} inputs"

    def to_onnx(self, b, xs, out, params):
        b.op("Concat", xs, out, axis=1 + self.sample_axis)

    @classmethod
    def from_onnx(cls, imp, index, node):
        xs = [imp.materialize(imp.value(node, i), node) for i in range(len(node.input))]
        rank = len(xs[0].shape) + 1
        axis = int(imp.attrs(node)["axis"])
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise imp.fail(node, "joins along the batch axis")
        axis -= 1
        imp.vals[node.output[0]] = imp.add(node, "Concat", {"axis": -1 if axis == rank - 2 and
                                                            axis > 0 else axis}, xs)

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = torch.cat([{', '.join(xs)}], dim={1 + self.sample_axis})"]

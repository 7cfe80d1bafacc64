"""Embedding: integer token ids -> learned vectors (the dense alternative to one-hot)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, get_layer_class, register


@register
class Embedding(Layer):
    """Looks up row ``id`` of ``weight`` (vocab, dim) for every id: (T,) -> (T, dim).

    Ids arrive as floats (the Network feeds float arrays); they must be whole numbers in
    0 … vocab-1, else DataError. Same as PyTorch's ``nn.Embedding``: weight init N(0, 1),
    no gradient with respect to the ids. Category "Core", next to Dense, as in Keras.
    """

    type_name = "Embedding"
    category = "Core"
    help = "Turns integer token ids (T,) into learned vectors (T, dim): dense instead of one-hot."
    param_specs = (
        ParamSpec("vocab", "int", 100, low=1, high=10_000_000,
                  help="number of distinct tokens; ids run from 0 to vocab - 1"),
        ParamSpec("dim", "int", 16, low=1, high=65_536, help="length of each token's vector"),
    )
    glyph = "EM"
    onnx_ops = ("Gather",)
    examples = (example((6,), vocab=10, dim=4), example((2, 3), vocab=5, dim=3))

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) > 3:
            raise self.shape_error(f"expects token ids shaped (T,), got {fmt_shape(s)}: "
                                   "add a Reshape or Flatten first")
        return (*s, self.p["dim"])

    def index_range(self, port: int) -> int:
        """Inputs on ``port`` are integer ids in [0, vocab) (used by gradient checks)."""
        return self.p["vocab"]

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.p["vocab"], self.p["dim"])}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"weight": rng.standard_normal((self.p["vocab"], self.p["dim"])).astype(np.float32)}

    def _ids(self, x: np.ndarray) -> np.ndarray:
        ids = np.rint(x)
        bad = ~(ids == x)
        if bad.any():
            v = x[bad].flat[0]
            raise DataError(f"{self.where} expects whole-number token ids, got {v!r}: encode "
                            "tokens as integers 0 … vocab-1", self.id)
        if ids.size and (ids.min() < 0 or ids.max() >= self.p["vocab"]):
            v = ids.min() if ids.min() < 0 else ids.max()
            raise DataError(f"{self.where} got token id {int(v)}, outside 0 … "
                            f"{self.p['vocab'] - 1}: raise vocab to the number of distinct "
                            "tokens or re-encode the data", self.id)
        return ids.astype(np.intp)

    def forward(self, xs, params, train):
        self._idx = self._ids(xs[0])
        return params["weight"][self._idx]

    def backward(self, dy, params, grads):
        g = grads["weight"]
        g.fill(0)
        np.add.at(g, self._idx.reshape(-1), dy.reshape(-1, g.shape[1]))
        return [None]

    def summary(self) -> str:
        return f"{self.p['vocab']} → {self.p['dim']}"

    def to_onnx(self, b, xs, out, params):
        ids = b.op("Cast", xs, f"{self.id}/ids", to=b.onnx.TensorProto.INT64)
        b.op("Gather", [b.const(f"{self.id}.weight", params["weight"]), ids], out,
             name=self.id, axis=0)

    @classmethod
    def from_onnx(cls, imp, index, node):
        if node.input[0] not in imp.consts:
            # x[:, 0] or x[:, -1] of a (T, E) sequence: a SequencePool's
            if get_layer_class("SequencePool").step_from_onnx(imp, node):
                return
            raise imp.fail(node, f"picks entries along axis {imp.attrs(node).get('axis', 0)} "
                                 "of a computed tensor (as x[:, k]); NetBuilder has no layer "
                                 "that slices tensors (Gather imports as an embedding lookup "
                                 "in a constant table)")
        if int(imp.attrs(node).get("axis", 0)) != 0:
            raise imp.fail(node, "gathers along an axis other than 0 (an embedding table's "
                                 "rows)")
        table = imp.need_const(node, 0, "embedding table").astype(np.float32)
        ids = imp.materialize(imp.value(node, 1), node)
        if table.ndim != 2:
            raise imp.fail(node, f"has a table shaped {fmt_shape(table.shape)}; an embedding "
                                 "is (vocab, dim)")
        params = {"vocab": int(table.shape[0]), "dim": int(table.shape[1])}
        imp.vals[node.output[0]] = imp.add(node, "Embedding", params, [ids], {"weight": table})

    def to_pytorch(self, ctx, xs, out):
        init, ref = ctx.register(self.id, f"nn.Embedding({self.p['vocab']}, {self.p['dim']})")
        return init, [f"{out} = {ref}({xs[0]}.long())  # token ids arrive as floats"]

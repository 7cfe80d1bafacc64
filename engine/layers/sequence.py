"""Sequence helpers: PositionalEmbedding (learned or sinusoidal positions added to a (T, E)
sequence), SequencePool ((T, E) -> (E,) by the mean, the first or the last step) and Permute
((T, F) <-> (F, T), between the recurrent / attention layout and Conv1D's (C, T))."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register


def sinusoid_table(steps: int, features: int) -> np.ndarray:
    """(steps, features) float64: column j of position t is sin(t / 10000^(2i/E)) for even
    j = 2i and cos of the same angle for odd j = 2i + 1 (Vaswani et al., 2017)."""
    pos = np.arange(steps, dtype=np.float64)[:, None]
    i = np.arange(features) // 2
    angle = pos / np.power(10000.0, 2.0 * i / features)
    return np.where(np.arange(features) % 2 == 0, np.sin(angle), np.cos(angle))


def _sequence_shape(layer: Layer) -> tuple[int, int]:
    s = layer.in_shapes[0]
    if len(s) != 2:
        raise layer.shape_error(f"takes a sequence (T, E), got {fmt_shape(s)}: give it "
                                "(steps, features), e.g. after an Embedding")
    return s[0], s[1]


@register
class PositionalEmbedding(Layer):
    """y = x + P[:T] for x (T, E): tells attention where each step is. ``learned``: P is the
    parameter ``weight`` (max_len, E), initialised N(0, 1) as ``nn.Embedding``; rows T …
    max_len-1 serve longer sequences of the same model. ``sinusoidal``: P is the fixed table
    of ``sinusoid_table``, nothing to learn.

    In ONNX the layer is x + P[:T], a constant: importing it gives max_len = T."""

    type_name = "PositionalEmbedding"
    category = "Attention"
    help = ("Adds a position vector to each step of a (T, E) sequence, learned or "
            "sinusoidal, so that attention knows the order of the steps.")
    param_specs = (
        ParamSpec("max_len", "int", 512, low=1, high=1_000_000,
                  help="longest sequence (T) the table covers"),
        ParamSpec("mode", "choice", "learned", choices=("learned", "sinusoidal"),
                  help="learned: a trained table (max_len, E); sinusoidal: fixed sines and "
                       "cosines of the position"),
    )
    glyph = "PE"
    id_prefix = "pos"
    onnx_shared_ops = ("Add",)
    examples = (example((5, 4), max_len=5), example((6, 5), mode="sinusoidal", max_len=64),
                example((3, 6), mode="sinusoidal", max_len=3, label="sin-full"))

    def infer_shape(self) -> Shape:
        t, _ = _sequence_shape(self)
        if t > self.p["max_len"]:
            raise self.shape_error(f"has positions for {self.p['max_len']} steps, but the "
                                   f"sequence has {t}: raise max_len to at least {t}")
        return self.in_shapes[0]

    @property
    def learned(self) -> bool:
        return self.p["mode"] == "learned"

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.p["max_len"], self.in_shapes[0][1])} if self.learned else {}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if not self.learned:
            return {}
        return {"weight": rng.standard_normal(self.param_shapes()["weight"]).astype(np.float32)}

    def macs(self) -> int:
        return 0

    def table(self, params: dict[str, np.ndarray], dtype: Any) -> np.ndarray:
        """P[:T] (T, E) in ``dtype``."""
        t, e = self.in_shapes[0]
        if self.learned:
            return np.asarray(params["weight"][:t], dtype)
        return sinusoid_table(t, e).astype(dtype)

    def forward(self, xs, params, train):
        x = xs[0]
        return x + self.table(params, x.dtype)

    def backward(self, dy, params, grads):
        if self.learned:
            g = grads["weight"]
            g.fill(0)
            g[:dy.shape[1]] = dy.sum(axis=0)
        return [dy]

    def summary(self) -> str:
        return f"{self.p['mode']}, max_len {self.p['max_len']}"

    def to_onnx(self, b, xs, out, params):
        name = f"{self.id}.weight" if self.learned else f"{self.id}/sinusoid"
        b.op("Add", [xs[0], b.const(name, self.table(params, np.float32))], out)

    @staticmethod
    def add_from_onnx(imp: Any, node: Any, x: Any, table: np.ndarray) -> bool:
        """x + a constant shaped like a (T, E) sample of x: a PositionalEmbedding (sinusoidal
        if the constant is that table, else learned), max_len = T. False if it does not fit."""
        shape = tuple(x.shape)
        if len(shape) != 2 or table.shape not in (shape, (1, *shape)):
            return False
        table = table.reshape(shape).astype(np.float64)
        t, e = shape
        if np.allclose(table, sinusoid_table(t, e), rtol=0, atol=1e-6):
            imp.vals[node.output[0]] = imp.add(node, "PositionalEmbedding",
                                               {"max_len": t, "mode": "sinusoidal"}, [x])
        else:
            imp.vals[node.output[0]] = imp.add(node, "PositionalEmbedding", {"max_len": t}, [x],
                                               {"weight": table.astype(np.float32)})
        return True

    def to_pytorch(self, ctx, xs, out):
        t, e = self.in_shapes[0]
        x = xs[0]
        if self.learned:
            init, ref = ctx.register(self.id, f"nn.Embedding({self.p['max_len']}, {e})")
            return init, [f"{out} = {x} + {ref}.weight[:{t}]  # learned positions"]
        return [], [
            f"{out}_pos = torch.arange({t}, dtype={x}.dtype, device={x}.device)[:, None]",
            f"{out}_col = torch.arange({e}, device={x}.device)",
            f"{out}_angle = {out}_pos / torch.pow(10000.0, 2.0 * ({out}_col // 2) / {e})",
            f"{out} = {x} + torch.where({out}_col % 2 == 0, torch.sin({out}_angle), "
            f"torch.cos({out}_angle))  # sinusoidal positions"]


@register
class SequencePool(Layer):
    """(T, E) -> (E,): the mean over the steps, or the first or the last step (a
    classification token, or a causal model's summary)."""

    type_name = "SequencePool"
    category = "Pooling"
    help = "Turns a sequence (T, E) into one vector (E,): the mean of the steps, the first or "\
           "the last step."
    param_specs = (
        ParamSpec("mode", "choice", "mean", choices=("mean", "first", "last"),
                  help="mean of all steps, or the first or the last step"),
    )
    glyph = "SP"
    id_prefix = "seqpool"
    onnx_ops = ("Slice",)
    examples = (example((5, 3)), example((4, 2), mode="first"), example((3, 4), mode="last"))

    def infer_shape(self) -> Shape:
        _, e = _sequence_shape(self)
        return (e,)

    def forward(self, xs, params, train):
        x = xs[0]
        self._t = x.shape[1]
        mode = self.p["mode"]
        if mode == "mean":
            return x.mean(axis=1)
        return np.ascontiguousarray(x[:, 0 if mode == "first" else -1])

    def backward(self, dy, params, grads):
        n, e = dy.shape
        mode = self.p["mode"]
        if mode == "mean":
            return [np.broadcast_to((dy / self._t)[:, None, :], (n, self._t, e)).copy()]
        dx = np.zeros((n, self._t, e), dy.dtype)
        dx[:, 0 if mode == "first" else -1] = dy
        return [dx]

    def summary(self) -> str:
        return self.p["mode"]

    def to_onnx(self, b, xs, out, params):
        nid, mode = self.id, self.p["mode"]
        if mode == "mean":
            b.op("ReduceMean", xs, out, axes=[1], keepdims=0)
            return
        start = 0 if mode == "first" else -1
        s = b.op("Slice", [xs[0], b.const(f"{nid}/start", [start], np.int64),
                           b.const(f"{nid}/end", [start + 1 if start == 0 else 2**62],
                                   np.int64),
                           b.const(f"{nid}/axes", [1], np.int64)], f"{nid}/step", name=nid)
        b.op("Squeeze", [s, b.const(f"{nid}/squeeze", [1], np.int64)], out,
             name=f"{nid}/squeeze")

    @staticmethod
    def mean_from_onnx(imp: Any, node: Any, x: Any, axes: list[int], keep: int) -> bool:
        """ReduceMean over the steps (axis 1) of (N, T, E): a mean SequencePool. False if it
        does not fit."""
        if len(x.shape) != 2 or axes != [1]:
            return False
        y = imp.add(node, "SequencePool", {}, [x])
        imp.vals[node.output[0]] = imp.Val(y.node, y.shape, view=(1, y.shape[0]) if keep
                                           else None)
        return True

    @staticmethod
    def step_from_onnx(imp: Any, node: Any) -> bool:
        """Gather(x, 0 or -1 (or T-1), axis=1) of (N, T, E), PyTorch's ``x[:, 0]`` /
        ``x[:, -1]``: a first or last SequencePool. False if it does not fit."""
        idx = imp.const(node.input[1])
        x = imp.vals.get(node.input[0])
        if idx is None or idx.size != 1 or idx.ndim != 0 or \
                int(imp.attrs(node).get("axis", 0)) != 1 or not isinstance(x, imp.Val):
            return False
        x = imp.materialize(imp.value(node), node)
        if len(x.shape) != 2:
            return False
        t, k = x.shape[0], int(idx)
        if k not in (0, -1, t - 1):
            return False
        mode = "first" if k == 0 else "last"
        imp.vals[node.output[0]] = imp.add(node, "SequencePool", {"mode": mode}, [x])
        return True

    @classmethod
    def from_onnx(cls, imp, index, node):
        """One step of (N, T, E) (axis 1): the first (0 … 1) or the last (-1 or T-1 … end)."""
        x = imp.materialize(imp.value(node), node)
        ins = list(node.input)
        start, end, axes, steps = (imp.const(ins[i]) if i < len(ins) and ins[i] else None
                                   for i in range(1, 5))
        if len(x.shape) != 2 or start is None or end is None or start.size != 1 or \
                (axes is not None and axes.reshape(-1).tolist() not in ([1], [-2])) or \
                (steps is not None and steps.reshape(-1).tolist() != [1]):
            raise imp.fail(node, "slices a tensor; NetBuilder has no slicing layer (it reads "
                                 "a Slice only as the first or last step of a (T, E) "
                                 "sequence: SequencePool)")
        t = x.shape[0]
        a, z = int(start.reshape(-1)[0]), int(end.reshape(-1)[0])
        a = a + t if a < 0 else a
        z = min(z + t if z < 0 else z, t)
        if (a, z) not in ((0, 1), (t - 1, t)):
            raise imp.fail(node, f"keeps steps {a} … {z - 1} of {t}; NetBuilder's "
                                 "SequencePool keeps the first or the last step only")
        mode = "first" if a == 0 and (t > 1 or start.reshape(-1)[0] >= 0) else "last"
        y = imp.add(node, "SequencePool", {"mode": mode}, [x])
        imp.vals[node.output[0]] = imp.Val(y.node, y.shape, view=(1, y.shape[0]))

    def to_pytorch(self, ctx, xs, out):
        mode = self.p["mode"]
        if mode == "mean":
            return [], [f"{out} = {xs[0]}.mean(dim=1)"]
        return [], [f"{out} = {xs[0]}[:, {0 if mode == 'first' else -1}]"]


@register
class Permute(Layer):
    """Swaps the two axes of each sample: (A, B) -> (B, A), as ``x.transpose(1, 2)``; turns
    a (T, F) sequence into Conv1D's (C, T) and back. In ONNX a Transpose with perm
    [0, 2, 1] (the importer makes this node wherever such a transpose feeds a layer)."""

    type_name = "Permute"
    category = "Core"
    help = "Swaps the two axes of a sequence: (T, F) ↔ (F, T), e.g. to feed a Conv1D."
    glyph = "⇄"
    onnx_shared_ops = ("Transpose",)
    examples = (example((3, 5)), example((1, 4)))

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) != 2:
            raise self.shape_error(f"swaps the two axes of a (T, F) sequence, got "
                                   f"{fmt_shape(s)}: add a Reshape to two axes first")
        return (s[1], s[0])

    def forward(self, xs, params, train):
        return np.ascontiguousarray(xs[0].transpose(0, 2, 1))

    def backward(self, dy, params, grads):
        return [np.ascontiguousarray(dy.transpose(0, 2, 1))]

    def summary(self) -> str:
        return "{} → {}".format(*map(fmt_shape, (self.in_shapes[0], self.out_shape)))

    def to_onnx(self, b, xs, out, params):
        b.op("Transpose", xs, out, name=self.id, perm=[0, 2, 1])

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = {xs[0]}.transpose(1, 2)"]

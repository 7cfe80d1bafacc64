"""Dense (on the last axis), Flatten and Reshape."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..init import INITS, identity_problem, initialize
from ..kernels import conv as kconv
from ..kernels import fused as kfused
from ..kernels.blas import blas_address
from ..kernels.reference import fused as rfused
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register
from ..text import plural

DENSE_SERIAL_MACS = 300_000  # multiply-adds per batch below which a Dense runs on one slice


def dense_chunks(rows: int, weight_size: int) -> int:
    """Slices a Dense product of ``rows`` input rows by a weight of ``weight_size`` numbers
    runs in: one for small products (waking the thread pool costs more than the work:
    ``DENSE_SERIAL_MACS``), else one per thread. Depends on sizes only, so results do not
    change with the machine's load."""
    if rows * weight_size < DENSE_SERIAL_MACS:
        return 1
    return kconv.batch_chunks(rows)


def _bias_or_empty(params: dict[str, np.ndarray], dtype: Any) -> np.ndarray:
    b = params.get("bias")
    return np.zeros(0, dtype) if b is None else np.ascontiguousarray(b, dtype=dtype)


@register
class Dense(Layer):
    """y = x @ weight.T + bias on the last axis: (..., in) -> (..., units).

    Runs the fused Dense kernels (``kernels.fused.dense_forward`` / ``dense_backward``)
    without their ReLU: the same code a fused Dense block runs (``engine.fusion``)."""

    type_name = "Dense"
    category = "Core"
    help = "Fully connected layer: every output sees every input feature (last axis)."
    param_specs = (
        ParamSpec("units", "int", 64, low=1, high=1_000_000, help="number of output features"),
        ParamSpec("bias", "bool", True, help="add a learnable bias"),
        ParamSpec("init", "choice", "he", choices=INITS,
                  help="weight initialisation; identity: starts passing its input through"),
    )
    glyph = "FC"
    id_prefix = "dense"
    fusion_role = "dense"
    onnx_ops = ("Gemm", "MatMul")
    kernels = (kfused.dense_forward, kfused.dense_backward, kfused.dense_small_forward,
               kfused.dense_small_backward)
    examples = (example((5,), units=4), example((3, 5), units=4),
                example((5,), units=3, bias=False, label="nobias"))

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) > 2:
            raise self.shape_error(f"expects a flat input, got {fmt_shape(s)}: add a Flatten")
        if self.p["init"] == "identity" and self.p["units"] != s[-1]:
            raise self.shape_error(f"init 'identity' {identity_problem((self.p['units'], s[-1]))}"
                                   f": set units to {s[-1]} or choose another init")
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
        x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        w = np.ascontiguousarray(params["weight"], dtype=x2.dtype)
        y2 = np.empty((x2.shape[0], self.p["units"]), x2.dtype)
        self._chunks = dense_chunks(x2.shape[0], w.size)
        kfused.dense_kernels(self._chunks)[0](x2, w, _bias_or_empty(params, x2.dtype), False,
                                              self._chunks, y2, y2[:0])
        self._x2, self._y2, self._xshape = x2, y2, x.shape
        return y2.reshape(*x.shape[:-1], y2.shape[-1])

    def backward(self, dy, params, grads):
        x2 = self._x2
        dy2 = np.ascontiguousarray(dy, dtype=x2.dtype).reshape(-1, self.p["units"])
        w = np.ascontiguousarray(params["weight"], dtype=x2.dtype)
        gb = grads.get("bias")
        dx = kfused.dense_kernels(self._chunks)[1](
            x2, w, dy2, self._y2, False, True, self._chunks, grads["weight"],
            np.zeros(0, x2.dtype) if gb is None else gb, blas_address(x2.dtype))
        return [dx.reshape(self._xshape)]

    def frozen_grads(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Empty weight-gradient arrays: the kernels then skip the weight gradient (and no
        bias gradient is summed)."""
        g = grads["weight"]
        return {"weight": np.empty((0, *g.shape[1:]), g.dtype)}

    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        y, _ = rfused.dense_forward(x.reshape(-1, x.shape[-1]), params["weight"],
                                    params.get("bias"), False)
        return y.reshape(*x.shape[:-1], -1)

    def summary(self) -> str:
        return plural(self.p["units"], "unit") + ("" if self.p["bias"] else ", no bias")

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        nid = self.id
        if len(self.in_shapes[0]) == 1:
            ins = [xs[0], b.const(f"{nid}.weight", params["weight"])]
            if "bias" in params:
                ins.append(b.const(f"{nid}.bias", params["bias"]))
            b.op("Gemm", ins, out, transB=1)
            return
        wt = b.const(f"{nid}.weight_t", params["weight"].T)
        if "bias" not in params:
            b.op("MatMul", [xs[0], wt], out)
            return
        mm = b.op("MatMul", [xs[0], wt], f"{nid}/matmul", name=nid)
        b.op("Add", [mm, b.const(f"{nid}.bias", params["bias"])], out, name=f"{nid}/bias")

    @classmethod
    def from_onnx(cls, imp, index, node):
        if node.op_type == "Gemm":
            cls._from_gemm(imp, node)
        else:
            cls._from_matmul(imp, node)

    @classmethod
    def _from_gemm(cls, imp: Any, node: Any) -> None:
        a = imp.attrs(node)
        if a.get("transA", 0):  # Gemm(Transpose(x), transA = 1) was made Gemm(x) before
            raise imp.fail(node, "transposes its data input (transA = 1), which puts the "
                                 "batch on the inner axis; NetBuilder's Dense multiplies "
                                 "(N, F) samples: export x @ W.T (transA = 0)")
        x = imp.materialize(imp.value(node), node)
        if len(x.shape) != 1:
            raise imp.fail(node, f"gets samples shaped {fmt_shape(x.shape)}; Gemm needs (F,)")
        w = imp.need_const(node, 1, "weight").astype(np.float32)
        if w.ndim != 2:
            raise imp.fail(node, f"has a weight B shaped {fmt_shape(w.shape)}; Gemm's is 2-D")
        w = w if a.get("transB", 0) else w.T
        w = w * float(a.get("alpha", 1.0))
        state = {"weight": w}
        units = w.shape[0]
        if len(node.input) > 2 and node.input[2]:
            c = imp.need_const(node, 2, "bias").astype(np.float32) * float(a.get("beta", 1.0))
            state["bias"] = cls._gemm_bias(imp, node, c, units)
        params = {"units": units, "bias": "bias" in state}
        imp.vals[node.output[0]] = imp.add(node, "Dense", params, [x], state)

    @staticmethod
    def _gemm_bias(imp: Any, node: Any, c: np.ndarray, units: int) -> np.ndarray:
        """Gemm's C as one bias per unit: C may be a scalar, (units,), (1, units), or a matrix
        whose rows (or columns) are all equal; a bias that differs per sample is refused."""
        if c.ndim == 0:
            return np.full(units, c, np.float32)
        if c.ndim <= 2 and c.size and c.shape[-1] in (1, units):
            rows = c.reshape(-1, c.shape[-1])
            if (rows == rows[0]).all():
                return np.broadcast_to(rows[0], (units,)).copy()
        raise imp.fail(node, f"adds a bias C shaped {fmt_shape(c.shape)} that differs from "
                             "sample to sample; NetBuilder's Dense has one bias per unit: give "
                             f"C shaped ({units},) or (1, {units})")

    @classmethod
    def _from_matmul(cls, imp: Any, node: Any) -> None:
        x = imp.materialize(imp.value(node), node)
        w = imp.need_const(node, 1, "weight").astype(np.float32)
        if w.ndim != 2 or len(x.shape) > 2 or w.shape[0] != x.shape[-1]:
            raise imp.fail(node, f"multiplies {fmt_shape(x.shape)} samples by a "
                                 f"{fmt_shape(w.shape)} matrix; NetBuilder's Dense needs a 2-D "
                                 "weight on (F,) or (T, F)")
        state = {"weight": w.T.copy()}
        out, anchor = node.output[0], node
        add = imp.only_consumer(out)
        if add is not None and add.op_type == "Add":
            other = add.input[1] if add.input[0] == out else add.input[0]
            bias = imp.const(other)
            if bias is not None and bias.size == w.shape[1]:
                state["bias"] = bias.reshape(-1).astype(np.float32)
                imp.skip.add(imp.index_of(add))
                out = add.output[0]
        params = {"units": int(w.shape[1]), "bias": "bias" in state}
        imp.vals[out] = imp.add(anchor, "Dense", params, [x], state)

    def to_pytorch(self, ctx, xs, out):
        init, ref = ctx.register(self.id, f"nn.Linear({self.in_shapes[0][-1]}, "
                                          f"{self.p['units']}, bias={self.p['bias']})")
        return init, [f"{out} = {ref}({xs[0]})"]


@register
class Flatten(Layer):
    type_name = "Flatten"
    category = "Core"
    help = "Lays all features of a sample out in one vector: (C, H, W) -> (C·H·W,)."
    glyph = "FL"
    id_prefix = "flatten"
    onnx_ops = ("Flatten",)
    examples = (example((2, 3, 4)),)

    def infer_shape(self) -> Shape:
        return (math.prod(self.in_shapes[0]),)

    def forward(self, xs, params, train):
        return xs[0].reshape(xs[0].shape[0], -1)

    def backward(self, dy, params, grads):
        return [dy.reshape(dy.shape[0], *self.in_shapes[0])]

    def summary(self) -> str:
        return ""

    def to_onnx(self, b, xs, out, params):
        b.op("Flatten", xs, out, axis=1)

    @classmethod
    def from_onnx(cls, imp, index, node):
        v = imp.value(node)
        if int(imp.attrs(node).get("axis", 1)) != 1:
            raise imp.fail(node, "flattens from an axis other than 1 (the batch stays apart)")
        imp.reshape_to(node, v, (math.prod(v.onnx_shape),), "Flatten")

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = torch.flatten({xs[0]}, 1)"]


@register
class Reshape(Layer):
    type_name = "Reshape"
    category = "Core"
    help = "Gives each sample a new shape with the same number of elements."
    param_specs = (
        ParamSpec("shape", "shape", (1, 28, 28), low=1, high=1_000_000, required=True,
                  help="new per-sample shape"),
    )
    glyph = "RS"
    onnx_ops = ("Reshape",)
    examples = (example((12,), shape=(3, 4)), example((2, 3, 4), shape=(4, 6)))

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

    def to_onnx(self, b, xs, out, params):
        shape = b.const(f"{self.id}/shape", [-1, *self.p["shape"]], np.int64)
        b.op("Reshape", [xs[0], shape], out)

    @classmethod
    def from_onnx(cls, imp, index, node):
        v = imp.value(node)
        target = imp.need_const(node, 1, "shape").astype(np.int64).tolist()
        have = v.onnx_shape
        size = math.prod(have)
        if not target or target[0] not in (0, -1):
            raise imp.fail(node, f"reshapes to {target}, which fixes the batch size")
        dims = [have[i - 1] if d == 0 and 1 <= i <= len(have) else d
                for i, d in enumerate(target)][1:]
        if target[0] == -1 and -1 in dims:
            raise imp.fail(node, f"reshapes to {target} with two unknown sizes")
        if -1 in dims:
            known = math.prod(d for d in dims if d != -1)
            dims = [size // known if d == -1 else d for d in dims]
        if math.prod(dims) != size or any(d <= 0 for d in dims):
            if target[0] == -1:
                raise imp.fail(node, f"reshapes {fmt_shape(have)} samples to {target}, which "
                                     "moves values between the batch and the samples; "
                                     "NetBuilder keeps the batch axis whole")
            raise imp.fail(node, f"cannot reshape {fmt_shape(have)} samples to {target}")
        imp.reshape_to(node, v, tuple(dims), "Reshape")

    def to_pytorch(self, ctx, xs, out):
        dims = ", ".join(str(d) for d in self.p["shape"])
        return [], [f"{out} = {xs[0]}.reshape({xs[0]}.shape[0], {dims})"]

"""LayerNorm: normalise each position's features (the last axis), as PyTorch's
``nn.LayerNorm(F)``."""

from __future__ import annotations

import math

import numpy as np

from ..kernels import conv as kconv
from ..kernels import groupnorm as gk
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register


@register
class LayerNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) · weight + bias, the mean and the biased variance
    taken over the last axis of each sample (over F of (F,), of each step of (T, F), of each
    row of (C, H, W)); weight and bias (F,), starting at ones and zeros. The same in training
    and inference (no running statistics): PyTorch's ``nn.LayerNorm(F, eps)``, whose
    parameters are ``weight`` and ``bias``. Runs ``kernels.groupnorm`` with one group."""

    type_name = "LayerNorm"
    category = "Normalization"
    help = ("Normalises each sample's features (last axis) to mean 0 and variance 1, then "
            "learns a scale and shift; independent of the batch.")
    param_specs = (
        ParamSpec("eps", "float", 1e-5, low=1e-10, high=1.0,
                  help="added to the variance before the square root"),
    )
    glyph = "LN"
    id_prefix = "ln"
    onnx_ops = ("LayerNormalization",)
    kernels = (gk.group_norm_forward, gk.group_norm_backward)
    examples = (example((6,)), example((3, 4), eps=1e-3), example((2, 3, 5)))

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) == 0:
            raise self.shape_error("needs an input with at least one dimension")
        if s[-1] < 2:
            raise self.shape_error(f"normalises the last axis, which has one value in "
                                   f"{fmt_shape(s)}: every output would be the bias; "
                                   "normalise a longer axis (add a Reshape)")
        return s

    @property
    def features(self) -> int:
        return self.in_shapes[0][-1]

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.features,), "bias": (self.features,)}

    def macs(self) -> int:
        """One multiply-add per value once the statistics are known."""
        return math.prod(self.in_shapes[0])

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        f = self.features
        return {"weight": np.ones(f, np.float32), "bias": np.zeros(f, np.float32)}

    def forward(self, xs, params, train):
        x = np.ascontiguousarray(xs[0])
        rows = x.reshape(-1, self.features, 1)
        y = np.empty_like(x)
        self._mean = np.empty((rows.shape[0], 1))
        self._invstd = np.empty((rows.shape[0], 1))
        gk.group_norm_forward(rows, 1, np.ascontiguousarray(params["weight"], x.dtype),
                              np.ascontiguousarray(params["bias"], x.dtype), self.p["eps"],
                              y.reshape(rows.shape), self._mean, self._invstd)
        self._rows = rows
        return y

    def backward(self, dy, params, grads):
        rows = self._rows
        dy3 = np.ascontiguousarray(dy, dtype=rows.dtype).reshape(rows.shape)
        dx = np.empty_like(rows)
        gk.group_norm_backward(rows, dy3, 1, self._mean, self._invstd,
                               np.ascontiguousarray(params["weight"], rows.dtype),
                               kconv.batch_chunks(rows.shape[0]), dx, grads["weight"],
                               grads["bias"])
        return [dx.reshape(dy.shape)]

    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.p["eps"]) * params["weight"] + params["bias"]

    def summary(self) -> str:
        text = f"{self.features} features"
        return text if self.p["eps"] == 1e-5 else f"{text}, eps {self.p['eps']:g}"

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        b.op("LayerNormalization", [xs[0], b.const(f"{self.id}.weight", params["weight"]),
                                    b.const(f"{self.id}.bias", params["bias"])], out,
             axis=-1, epsilon=float(self.p["eps"]))

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        x = imp.materialize(imp.value(node), node)
        rank = len(x.shape) + 1
        if int(a.get("axis", -1)) not in (-1, rank - 1):
            raise imp.fail(node, f"normalises from axis {a.get('axis')}; NetBuilder's "
                                 "LayerNorm normalises the last axis only")
        if any(node.output[1:]):
            raise imp.fail(node, "returns its mean or inverse deviation; NetBuilder does not")
        f = x.shape[-1]
        weight = imp.need_const(node, 1, "scale").astype(np.float32).reshape(-1)
        bias = (imp.need_const(node, 2, "bias").astype(np.float32).reshape(-1)
                if len(node.input) > 2 and node.input[2] else np.zeros(f, np.float32))
        if weight.size not in (1, f) or bias.size not in (1, f):
            raise imp.fail(node, f"has a scale of {weight.size} and a bias of {bias.size} "
                                 f"values; NetBuilder's LayerNorm has one per feature ({f})")
        state = {"weight": np.broadcast_to(weight, (f,)).copy(),
                 "bias": np.broadcast_to(bias, (f,)).copy()}
        eps = float(str(np.float32(a.get("epsilon", 1e-5))))
        imp.vals[node.output[0]] = imp.add(node, "LayerNorm", {"eps": eps}, [x], state)

    def to_pytorch(self, ctx, xs, out):
        init, ref = ctx.register(self.id, f"nn.LayerNorm({self.features}, "
                                          f"eps={ctx.num(self.p['eps'])})")
        return init, [f"{out} = {ref}({xs[0]})"]

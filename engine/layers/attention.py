"""MultiHeadAttention: self-attention over a sequence (T, E), as PyTorch's
``nn.MultiheadAttention(E, heads, batch_first=True)`` called as ``mha(x, x, x)``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ParamError
from ..kernels import attention as ka
from ..kernels import fused as kfused
from ..kernels.blas import blas_address
from ..kernels.conv import OneThreadBlas
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register
from .attention_onnx import claim_attention, read_attention, write_attention
from .attention_torch import rewrite_attention
from .dense import dense_chunks


def attention_reference(x: np.ndarray, params: dict[str, np.ndarray], heads: int,
                        causal: bool, rate: float, u: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(y (N, T, E), the softmax weights (N, heads, T, T)) in float64 numpy; ``u`` the
    dropout draws (kept where u ≥ rate) or None."""
    x = np.asarray(x, np.float64)
    n, t, e = x.shape
    d = e // heads
    qkv = x @ np.asarray(params["in_proj_weight"], np.float64).T + params["in_proj_bias"]
    q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(n, t, heads, d).transpose(0, 2, 1, 3)
               for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
    if causal:
        s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    pd = p if u is None else np.where(u >= rate, p / (1.0 - rate), 0.0)
    ctx = (pd @ v).transpose(0, 2, 1, 3).reshape(n, t, e)
    y = ctx @ np.asarray(params["out_proj_weight"], np.float64).T + params["out_proj_bias"]
    return y, p


@register
class MultiHeadAttention(Layer):
    """Self-attention: every step of a (T, E) sequence looks at every step (or, ``causal``,
    at the steps up to itself) through ``heads`` heads of width D = E / heads.

    q, k, v = split(x @ in_proj_weightᵀ + in_proj_bias) (each (T, E), head h its columns
    h·D … (h+1)·D - 1); per head softmax(q kᵀ / √D) v, with ``dropout`` on the attention
    weights while training; the heads side by side @ out_proj_weightᵀ + out_proj_bias.
    Parameters in PyTorch's layout: ``in_proj_weight`` (3E, E), ``in_proj_bias`` (3E,),
    ``out_proj_weight`` (E, E), ``out_proj_bias`` (E,) (``out_proj.weight`` / ``.bias`` in
    its state_dict). The projections run the Dense kernels, the attention
    ``kernels.attention``."""

    type_name = "MultiHeadAttention"
    category = "Attention"
    help = ("Self-attention over a sequence (T, E): each step mixes in the steps it attends "
            "to, through several heads; the core of a transformer.")
    param_specs = (
        ParamSpec("heads", "int", 4, low=1, high=1024,
                  help="number of attention heads; must divide the feature size E"),
        ParamSpec("causal", "bool", False,
                  help="each step attends only to itself and earlier steps (a decoder)"),
        ParamSpec("dropout", "float", 0.0, low=0.0, high=1.0,
                  help="fraction of attention weights dropped while training (0 ≤ p < 1)"),
    )
    uses_rng = True
    glyph = "MHA"
    id_prefix = "attn"
    onnx_ops = ("Einsum",)
    kernels = (ka.attention_forward, ka.attention_backward, kfused.dense_forward,
               kfused.dense_backward)
    examples = (example((5, 4), heads=2), example((4, 6), heads=3, causal=True),
                example((3, 4), heads=1, dropout=0.3, label="dropout"),
                example((6, 8), heads=2, causal=True, dropout=0.2, label="causal-dropout"))

    @classmethod
    def resolve_params(cls, params: dict[str, Any], node_id: str | None = None
                       ) -> dict[str, Any]:
        out = super().resolve_params(params, node_id)
        if out["dropout"] >= 1.0:
            where = f"{cls.type_name} '{node_id}'" if node_id else cls.type_name
            raise ParamError(f"{where}: dropout must be below 1 (1 drops every weight), got "
                             f"{out['dropout']:g}", node_id)
        return out

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) != 2:
            raise self.shape_error(f"attends over a sequence (T, E), got {fmt_shape(s)}: "
                                   "give it (steps, features), e.g. after an Embedding")
        if s[1] % self.p["heads"]:
            raise self.shape_error(f"splits E = {s[1]} features into {self.p['heads']} heads, "
                                   f"which does not divide evenly: use a number of heads that "
                                   f"divides {s[1]}")
        return s

    @property
    def embed(self) -> int:
        return self.in_shapes[0][1]

    @property
    def head_dim(self) -> int:
        return self.embed // self.p["heads"]

    def param_shapes(self) -> dict[str, Shape]:
        e = self.embed
        return {"in_proj_weight": (3 * e, e), "in_proj_bias": (3 * e,),
                "out_proj_weight": (e, e), "out_proj_bias": (e,)}

    def macs(self) -> int:
        """Projections 4·T·E², attention 2·T²·E."""
        t, e = self.in_shapes[0]
        return 4 * t * e * e + 2 * t * t * e

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """PyTorch's: in_proj_weight Xavier-uniform over (3E, E), out_proj_weight
        U(±1/√E), biases zero."""
        e = self.embed
        a = math.sqrt(6.0 / (4 * e))
        return {"in_proj_weight": rng.uniform(-a, a, (3 * e, e)).astype(np.float32),
                "in_proj_bias": np.zeros(3 * e, np.float32),
                "out_proj_weight": rng.uniform(-1 / math.sqrt(e), 1 / math.sqrt(e),
                                               (e, e)).astype(np.float32),
                "out_proj_bias": np.zeros(e, np.float32)}

    def _draws(self, shape: tuple[int, ...], train: bool) -> np.ndarray | None:
        if not train or self.p["dropout"] == 0.0:
            return None
        return self.rng.random(shape, dtype=np.float32)

    def forward(self, xs, params, train):
        x = np.ascontiguousarray(xs[0])
        n, t, e = x.shape
        heads = self.p["heads"]
        dt = x.dtype
        w_in = np.ascontiguousarray(params["in_proj_weight"], dt)
        w_out = np.ascontiguousarray(params["out_proj_weight"], dt)
        x2 = x.reshape(n * t, e)
        qkv = np.empty((n * t, 3 * e), dt)
        self._chunks_in = dense_chunks(n * t, w_in.size)
        kfused.dense_forward(x2, w_in, np.ascontiguousarray(params["in_proj_bias"], dt), False,
                             self._chunks_in, qkv, qkv[:0])
        u = self._draws((n, heads, t, t), train)
        self._u = np.zeros((0, 0, 0, 0), np.float32) if u is None else u
        self._rate = 0.0 if u is None else float(self.p["dropout"])
        probs = np.empty((n, heads, t, t), dt)
        ctx = np.empty((n, t, e), dt)
        with OneThreadBlas(n * heads > 1):  # BLAS from every parallel (sample, head) task
            ka.attention_forward(qkv.reshape(n, t, 3 * e), heads, 1.0 / math.sqrt(e // heads),
                                 self.p["causal"], self._rate, self._u, probs, ctx)
        y = np.empty((n * t, e), dt)
        self._chunks_out = dense_chunks(n * t, w_out.size)
        kfused.dense_forward(ctx.reshape(n * t, e), w_out,
                             np.ascontiguousarray(params["out_proj_bias"], dt), False,
                             self._chunks_out, y, y[:0])
        self._x2, self._qkv, self._probs, self._ctx, self._y = x2, qkv, probs, ctx, y
        return y.reshape(n, t, e)

    @property
    def attention_weights(self) -> np.ndarray:
        """The last forward's softmax weights (N, heads, T, T), before dropout."""
        return self._probs

    def backward(self, dy, params, grads):
        x2, qkv = self._x2, self._qkv
        n, heads, t, _ = self._probs.shape
        e = x2.shape[1]
        dt = x2.dtype
        dy2 = np.ascontiguousarray(dy, dtype=dt).reshape(n * t, e)
        w_out = np.ascontiguousarray(params["out_proj_weight"], dt)
        w_in = np.ascontiguousarray(params["in_proj_weight"], dt)
        dctx = kfused.dense_backward(self._ctx.reshape(n * t, e), w_out, dy2, self._y, False,
                                     True, self._chunks_out, grads["out_proj_weight"],
                                     grads["out_proj_bias"], blas_address(dt))
        dqkv = np.empty((n, t, 3 * e), dt)
        with OneThreadBlas(n * heads > 1):
            ka.attention_backward(qkv.reshape(n, t, 3 * e), self._probs, heads,
                                  1.0 / math.sqrt(e // heads), self._rate, self._u,
                                  dctx.reshape(n, t, e), dqkv)
        dx = kfused.dense_backward(x2, w_in, dqkv.reshape(n * t, 3 * e), qkv, False, True,
                                   self._chunks_in, grads["in_proj_weight"],
                                   grads["in_proj_bias"], blas_address(dt))
        return [dx.reshape(n, t, e)]

    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        n, t, _ = x.shape
        u = self._draws((n, self.p["heads"], t, t), train)
        return attention_reference(x, params, self.p["heads"], self.p["causal"],
                                   self.p["dropout"], u)[0]

    def summary(self) -> str:
        text = f"{self.p['heads']} heads × {self.head_dim}"
        if self.p["causal"]:
            text += ", causal"
        return text + (f", dropout {self.p['dropout']:g}" if self.p["dropout"] else "")

    # ----- export and import (engine/layers/attention_onnx.py) -------------------------------
    def to_onnx(self, b, xs, out, params):
        write_attention(self, b, xs[0], out, params)

    @classmethod
    def rewrite_onnx(cls, rw):
        rewrite_attention(rw, attention_reference)  # PyTorch's op-by-op attention

    @classmethod
    def claim_onnx(cls, imp, index, node):
        claim_attention(imp, index, node)

    @classmethod
    def from_onnx(cls, imp, index, node):
        read_attention(imp, index, node)

    def to_pytorch(self, ctx, xs, out):
        p = self.p
        init, ref = ctx.register(self.id, f"nn.MultiheadAttention({self.embed}, {p['heads']}, "
                                          f"dropout={ctx.num(p['dropout'])}, "
                                          "batch_first=True)")
        ctx.rename_params(self.id, {"out_proj_weight": "out_proj.weight",
                                    "out_proj_bias": "out_proj.bias"})
        x = xs[0]
        if not p["causal"]:
            return init, [f"{out}, _ = {ref}({x}, {x}, {x}, need_weights=False)"]
        t = self.in_shapes[0][0]
        return init, [f"{out}, _ = {ref}({x}, {x}, {x}, need_weights=False, attn_mask=torch."
                      f"triu(torch.ones({t}, {t}, dtype=torch.bool, device={x}.device), 1), "
                      "is_causal=True)  # step i sees steps 0 … i"]

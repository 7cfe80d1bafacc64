"""GroupNorm: normalise each sample's channels in groups, as PyTorch's ``nn.GroupNorm``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kernels import conv as kconv
from ..kernels import groupnorm as gk
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register


@register
class GroupNorm(Layer):
    """The channels of each sample split into ``groups`` groups of consecutive channels; each
    group normalised by its own mean and biased variance (over its channels and positions),
    then every channel scaled by ``weight`` and shifted by ``bias`` (C,), starting at ones and
    zeros. The same in training and inference. PyTorch's ``nn.GroupNorm(groups, C, eps)``:
    channels first, (C, H, W) images (or any (C, ...)) and (F,) vectors (C = F). groups = 1
    normalises the whole sample, groups = C each channel (instance norm)."""

    type_name = "GroupNorm"
    category = "Normalization"
    help = ("Normalises each sample's channels in groups (independent of the batch), then "
            "learns a scale and shift per channel.")
    param_specs = (
        ParamSpec("groups", "int", 2, low=1, high=65536,
                  help="number of channel groups; must divide the channels"),
        ParamSpec("eps", "float", 1e-5, low=1e-10, high=1.0,
                  help="added to the variance before the square root"),
    )
    glyph = "GN"
    id_prefix = "gn"
    onnx_ops = ("InstanceNormalization",)
    kernels = (gk.group_norm_forward, gk.group_norm_backward)
    examples = (example((4, 3, 3)), example((6,), groups=3, eps=1e-3),
                example((4, 2, 2), groups=4, label="instance"),
                example((2, 2, 3), groups=1, label="one-group"))

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) == 2:
            raise self.shape_error(f"expects channels first, (C, H, W) or (F,), got the "
                                   f"sequence {fmt_shape(s)}: use a LayerNorm for (T, F)")
        if len(s) == 0:
            raise self.shape_error("needs an input with at least one dimension")
        c, g = s[0], self.p["groups"]
        if c % g:
            fits = [d for d in range(1, c + 1) if c % d == 0]
            raise self.shape_error(f"splits {c} channels into {g} groups, which does not "
                                   f"divide evenly: use groups {', '.join(map(str, fits[:8]))}"
                                   f"{' …' if len(fits) > 8 else ''}")
        if c // g * math.prod(s[1:]) < 2:
            raise self.shape_error(f"has one value per group ({c} channels in {g} groups of "
                                   f"{fmt_shape(s)}): every output would be the bias; use "
                                   "fewer groups")
        return s

    @property
    def channels(self) -> int:
        return self.in_shapes[0][0]

    def _view(self, x: np.ndarray) -> np.ndarray:
        """A batch (N, C, ...) as (N, C, S)."""
        return x.reshape(x.shape[0], self.channels, -1)

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.channels,), "bias": (self.channels,)}

    def macs(self) -> int:
        """One multiply-add per value once the statistics are known."""
        return math.prod(self.in_shapes[0])

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c = self.channels
        return {"weight": np.ones(c, np.float32), "bias": np.zeros(c, np.float32)}

    def forward(self, xs, params, train):
        x = np.ascontiguousarray(xs[0])
        x3 = self._view(x)
        y = np.empty_like(x)
        g = self.p["groups"]
        self._mean = np.empty((x.shape[0], g))
        self._invstd = np.empty((x.shape[0], g))
        gk.group_norm_forward(x3, g, np.ascontiguousarray(params["weight"], x.dtype),
                              np.ascontiguousarray(params["bias"], x.dtype), self.p["eps"],
                              self._view(y), self._mean, self._invstd)
        self._x3 = x3
        return y

    def backward(self, dy, params, grads):
        x3 = self._x3
        dy3 = self._view(np.ascontiguousarray(dy, dtype=x3.dtype))
        dx = np.empty_like(x3)
        gk.group_norm_backward(x3, dy3, self.p["groups"], self._mean, self._invstd,
                               np.ascontiguousarray(params["weight"], x3.dtype),
                               kconv.batch_chunks(x3.shape[0]), dx, grads["weight"],
                               grads["bias"])
        return [dx.reshape(dy.shape)]

    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        grouped = x.reshape(x.shape[0], self.p["groups"], -1)
        mean = grouped.mean(axis=-1, keepdims=True)
        var = grouped.var(axis=-1, keepdims=True)
        xhat = ((grouped - mean) / np.sqrt(var + self.p["eps"])).reshape(x.shape)
        per_channel = (1, -1, *([1] * (x.ndim - 2)))
        return xhat * params["weight"].reshape(per_channel) + params["bias"].reshape(per_channel)

    def summary(self) -> str:
        text = f"{self.p['groups']} groups of {self.channels // self.p['groups']}"
        return text if self.p["eps"] == 1e-5 else f"{text}, eps {self.p['eps']:g}"

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        """Reshape to (N, groups, ·) -> InstanceNormalization (scale 1, bias 0: one group is
        one instance channel) -> Reshape back -> Mul weight -> Add bias, per channel.
        (ONNX's GroupNormalization needs opset 18, and its scale changed meaning in 21.)"""
        nid, g, shape = self.id, self.p["groups"], self.in_shapes[0]
        per_channel = (-1, *([1] * (len(shape) - 1)))
        r = b.op("Reshape", [xs[0], b.const(f"{nid}/groups_shape", [0, g, -1], np.int64)],
                 f"{nid}/groups")
        n = b.op("InstanceNormalization", [r, b.const(f"{nid}/ones", np.ones(g)),
                                           b.const(f"{nid}/zeros", np.zeros(g))],
                 f"{nid}/normalized", name=nid, epsilon=float(self.p["eps"]))
        n = b.op("Reshape", [n, b.const(f"{nid}/shape", [0, *shape], np.int64)],
                 f"{nid}/channels")
        n = b.op("Mul", [n, b.const(f"{nid}.weight", params["weight"].reshape(per_channel))],
                 f"{nid}/scaled")
        b.op("Add", [n, b.const(f"{nid}.bias", params["bias"].reshape(per_channel))], out,
             name=f"{nid}/bias")

    @classmethod
    def claim_onnx(cls, imp, index, node):
        """Claim the Reshape before and the Reshape, Mul and Add after an
        InstanceNormalization that ``to_onnx`` (or a tool doing the same) wrote."""
        before = imp.producer.get(node.input[0])
        if before is None or before.op_type != "Reshape" or \
                imp.only_consumer(before.output[0]) is not node:
            return
        target = imp.const(before.input[1])
        after = imp.only_consumer(node.output[0])
        mul = imp.only_consumer(after.output[0]) if after is not None else None
        add = imp.only_consumer(mul.output[0]) if mul is not None else None
        if target is None or target.size != 3 or int(target.reshape(-1)[0]) not in (0, -1) \
                or after is None or after.op_type != "Reshape" or mul is None \
                or mul.op_type != "Mul" or add is None or add.op_type != "Add":
            return
        w = next((imp.const(t) for t in mul.input if t != after.output[0]), None)
        bias = next((imp.const(t) for t in add.input if t != mul.output[0]), None)
        if w is None or bias is None:
            return
        imp.matches[index] = (before, int(target.reshape(-1)[1]), after, w, bias, add)
        imp.skip.update(imp.index_of(n) for n in (before, after, mul, add))

    @classmethod
    def from_onnx(cls, imp, index, node):
        """A claimed chain is a GroupNorm (the instance scale and bias folded into the
        per-channel weight and bias); a lone InstanceNormalization of (C, …) is one with a
        group per channel."""
        a = imp.attrs(node)
        eps = float(a.get("epsilon", 1e-5))
        scale = imp.need_const(node, 1, "scale").astype(np.float64).reshape(-1)
        shift = imp.need_const(node, 2, "bias").astype(np.float64).reshape(-1)
        match = imp.matches.get(index)
        if match is None:
            x = imp.materialize(imp.value(node), node)
            if len(x.shape) < 2:
                raise imp.fail(node, "normalises samples without channels and positions")
            params = {"groups": x.shape[0], "eps": eps}
            state = {"weight": scale, "bias": shift}
            out = node.output[0]
        else:
            before, groups, after, w, bias, add = match
            x = imp.materialize(imp.value(before), before)
            c = x.shape[0]
            back = imp.need_const(after, 1, "shape").astype(np.int64).reshape(-1).tolist()
            if len(x.shape) == 2 or groups < 1 or c % groups or back[:1] not in ([0], [-1]) \
                    or tuple(back[1:]) != x.shape:
                raise imp.fail(node, f"normalises {groups} groups of samples shaped "
                                     f"{fmt_shape(x.shape)} and reshapes them to {back}; "
                                     "NetBuilder's GroupNorm needs (C, …) or (F,) with the "
                                     "groups dividing C, reshaped back as they were")
            w, bias = cls._per_channel(imp, node, w, c), cls._per_channel(imp, node, bias, c)
            group_of = np.arange(c) // (c // groups)
            s, t = np.broadcast_to(scale, (groups,)), np.broadcast_to(shift, (groups,))
            state = {"weight": s[group_of] * w, "bias": t[group_of] * w + bias}
            params = {"groups": groups, "eps": eps}
            out = add.output[0]
        imp.vals[out] = imp.add(node, "GroupNorm", params, [x],
                                {k: v.astype(np.float32) for k, v in state.items()})

    @staticmethod
    def _per_channel(imp: Any, node: Any, v: np.ndarray, c: int) -> np.ndarray:
        flat = np.asarray(v, np.float64).reshape(-1)
        if flat.size not in (1, c):
            raise imp.fail(node, f"is scaled by {flat.size} values after normalising; "
                                 f"NetBuilder's GroupNorm has one per channel ({c})")
        return np.broadcast_to(flat, (c,)).copy()

    def to_pytorch(self, ctx, xs, out):
        init, ref = ctx.register(self.id, f"nn.GroupNorm({self.p['groups']}, {self.channels}, "
                                          f"eps={ctx.num(self.p['eps'])})")
        return init, [f"{out} = {ref}({xs[0]})"]

"""BatchNorm and Dropout (category "Normalization"), and the channel layout they share with
PReLU: per-sample shapes of 3 or more dims are channels-first ``(C, *spatial)``; 1-D ``(F,)``
and 2-D ``(T, F)`` shapes have their channels (features) on the last axis."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DataError, ParamError
from ..kernels import norm as nk
from ..kernels import normact as na
from ..kernels.conv import batch_chunks
from ..kernels.reference import norm as rnorm
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register


def channel_axis(shape: Shape) -> int:
    """Index, within a per-sample shape, of the channel (feature) axis."""
    return 0 if len(shape) >= 3 else len(shape) - 1


def channel_view(x: np.ndarray, shape: Shape) -> np.ndarray:
    """A contiguous batch (N, *shape) seen as (M, C, S), channels in the middle."""
    if len(shape) >= 3:
        return x.reshape(x.shape[0], shape[0], math.prod(shape[1:]))
    return x.reshape(x.shape[0] * math.prod(shape[:-1]), shape[-1], 1)


def row_chunks(x3: np.ndarray) -> int:
    """Parallel chunks for the batch-norm kernels on the channel view x3 (M, C, S): one per
    thread, at most one per row (the training kernels take at most one per channel,
    ``kernels.normact``)."""
    return batch_chunks(x3.shape[0] * x3.shape[1])


def _axis_word(shape: Shape) -> str:
    return "channels" if len(shape) >= 3 else "features"


@register
class BatchNorm(Layer):
    """Normalises each channel with the batch's mean and variance in training and with
    running estimates in evaluation, then scales by ``weight`` and shifts by ``bias``.

    Channels: axis 0 of (C, H, W); the feature axis of (F,) and (T, F) (statistics over the
    batch and the time steps). ``running = momentum * running + (1 - momentum) * batch``,
    the running variance unbiased: PyTorch's BatchNorm with its momentum = 1 - ours.
    """

    type_name = "BatchNorm"
    category = "Normalization"
    help = "Normalises each channel over the batch, then learns a scale and shift."
    param_specs = (
        ParamSpec("momentum", "float", 0.9, low=0.0, high=1.0,
                  help="how much of the running statistics each batch keeps "
                       "(0.9 = PyTorch's momentum 0.1)"),
        ParamSpec("eps", "float", 1e-5, low=1e-10, high=1.0,
                  help="added to the variance before the square root"),
    )
    glyph = "BN"
    id_prefix = "bn"
    onnx_ops = ("BatchNormalization",)
    fusion_role = "norm"
    kernels = (na.bn_train_forward, na.bn_train_backward, na.bn_eval_forward,
               na.bn_eval_backward, na.bn_add_relu_train_forward, na.bn_add_relu_train_backward)
    examples = (example((4,), momentum=0.8), example((3, 4), eps=1e-3), example((2, 3, 3)))

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) == 0:
            raise self.shape_error("needs an input with at least one dimension")
        return s

    @property
    def channels(self) -> int:
        s = self.in_shapes[0]
        return s[channel_axis(s)]

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.channels,), "bias": (self.channels,)}

    def buffer_shapes(self) -> dict[str, Shape]:
        return {"running_mean": (self.channels,), "running_var": (self.channels,)}

    def macs(self) -> int:
        """One multiply-add per value once the statistics are folded into a scale and shift."""
        return math.prod(self.in_shapes[0])

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c = self.channels
        return {"weight": np.ones(c, np.float32), "bias": np.zeros(c, np.float32),
                "running_mean": np.zeros(c, np.float32), "running_var": np.ones(c, np.float32)}

    def forward(self, xs, params, train):
        x = np.ascontiguousarray(xs[0])
        y = np.empty_like(x)
        self.run_forward(x, params, train, y, y[:0])
        return y

    def run_forward(self, x: np.ndarray, params: dict[str, np.ndarray], train: bool,
                    y: np.ndarray, yrelu: np.ndarray) -> None:
        """Normalise the batch x (N, *shape) into y, and with a non-empty ``yrelu`` (same
        shape; the fused ``NormBlock``) write max(y, 0) there too. Training updates the
        running statistics and keeps what ``run_backward`` needs."""
        shape = self.in_shapes[0]
        x3 = channel_view(x, shape)
        y3 = channel_view(y, shape)
        relu = yrelu.shape[0] > 0
        r3 = channel_view(yrelu, shape) if relu else y3[:0]
        eps = self.p["eps"]
        self._x3, self._train = x3, train
        if not train:
            na.bn_eval_forward(x3, params["running_mean"], params["running_var"],
                               params["weight"], params["bias"], eps, relu, row_chunks(x3),
                               y3, r3)
            return
        mean, var = self._batch_statistics(x3)
        na.bn_train_forward(x3, params["weight"], params["bias"], eps, relu, row_chunks(x3),
                            y3, r3, mean, var, self._scale())
        self._update_running(params, mean, var, x3)

    def run_forward_add_relu(self, x: np.ndarray, skip: np.ndarray,
                             params: dict[str, np.ndarray], train: bool, y: np.ndarray,
                             yadd: np.ndarray, yrelu: np.ndarray) -> None:
        """The end of a residual block (the fused ``NormAddBlock``): y = this BatchNorm of x,
        yadd = y + skip, yrelu = max(yadd, 0); all shaped as x."""
        shape = self.in_shapes[0]
        x3 = channel_view(x, shape)
        if not train:
            self.run_forward(x, params, False, y, y[:0])
            na.add_forward(y.reshape(-1), np.ascontiguousarray(skip, x.dtype).reshape(-1),
                           True, batch_chunks(x.shape[0]), yadd.reshape(-1), yrelu.reshape(-1))
            return
        self._x3, self._train = x3, True
        mean, var = self._batch_statistics(x3)
        v = [channel_view(a, shape) for a in (np.ascontiguousarray(skip, x.dtype), y, yadd,
                                              yrelu)]
        na.bn_add_relu_train_forward(x3, v[0], params["weight"], params["bias"], self.p["eps"],
                                     row_chunks(x3), v[1], v[2], v[3], mean, var,
                                     self._scale())
        self._update_running(params, mean, var, x3)

    def run_backward_add_relu(self, dy: np.ndarray, mask: np.ndarray,
                              params: dict[str, np.ndarray], grads: dict[str, np.ndarray]
                              ) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dskip) of ``run_forward_add_relu`` from the gradient of its ReLU output;
        ``mask`` is that output."""
        shape = self.in_shapes[0]
        x3 = self._x3
        dx3, ds3 = np.empty_like(x3), np.empty_like(x3)
        if not self._train:  # one pass: dskip (the masked gradient) and dx from it
            na.bn_eval_backward(x3, channel_view(dy, shape), channel_view(mask, shape), True,
                                params["running_mean"], params["running_var"],
                                params["weight"], self.p["eps"], dx3, ds3, grads["weight"],
                                grads["bias"])
            return dx3.reshape(dy.shape), ds3.reshape(dy.shape)
        na.bn_add_relu_train_backward(x3, channel_view(dy, shape), channel_view(mask, shape),
                                      row_chunks(x3), self._mean, self._invstd, params["weight"],
                                      dx3, ds3, grads["weight"], grads["bias"])
        return dx3.reshape(dy.shape), ds3.reshape(dy.shape)

    def _batch_statistics(self, x3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arrays for the batch mean and variance (C,), or a DataError for a batch with one
        value per channel. They are rows of ``_stats`` (4, C) float64, kept from step to
        step with the forward's scale and the inverse standard deviation."""
        count = x3.shape[0] * x3.shape[2]
        if count < 2:
            shape = self.in_shapes[0]
            n = x3.shape[0] // max(1, math.prod(shape[:-1])) if len(shape) < 3 else x3.shape[0]
            raise DataError(
                f"{self.where} needs more than one value per {_axis_word(shape)[:-1]} to "
                f"train, got a batch of {n} sample{'s' if n != 1 else ''} "
                f"shaped {fmt_shape(shape)}: "
                "use a batch size of at least 2", self.id)
        c = x3.shape[1]
        st = getattr(self, "_stats", None)
        if st is None or st.shape[1] != c:
            st = self._stats = np.empty((4, c))
        return st[0], st[1]

    def _scale(self) -> np.ndarray:
        """The array (C,) where the training forward writes its per-channel scale
        (after ``_batch_statistics``, which sized it)."""
        return self._stats[2]

    def _update_running(self, params: dict[str, np.ndarray], mean: np.ndarray,
                        var: np.ndarray, x3: np.ndarray) -> None:
        """Keep the batch statistics for the backward; move the running ones towards them."""
        count = x3.shape[0] * x3.shape[2]
        self._mean, self._invstd = mean, self._stats[3]
        np.sqrt(var + self.p["eps"], out=self._invstd)
        np.divide(1.0, self._invstd, out=self._invstd)
        mom = self.p["momentum"]
        rm, rv = params["running_mean"], params["running_var"]
        rm *= mom
        rm += (1.0 - mom) * mean
        rv *= mom
        rv += (1.0 - mom) * var * (count / (count - 1))

    def backward(self, dy, params, grads):
        dy = np.ascontiguousarray(dy, dtype=self._x3.dtype)
        return [self.run_backward(dy, dy[:0], params, grads)]

    def run_backward(self, dy: np.ndarray, mask: np.ndarray, params: dict[str, np.ndarray],
                     grads: dict[str, np.ndarray]) -> np.ndarray:
        """dx (shaped as dy) from the gradient of the last output, filling the parameter
        gradients; a non-empty ``mask`` (the ReLU output of a fused ``NormBlock``) passes
        the gradient only where it is > 0 (in training the kernel recomputes that from x
        with the forward's scale and the bias instead of reading the mask)."""
        shape = self.in_shapes[0]
        x3 = self._x3
        dy3 = channel_view(dy, shape)
        relu = mask.shape[0] > 0
        m3 = channel_view(mask, shape) if relu else dy3[:0]
        dx3 = np.empty_like(x3)
        if self._train:
            na.bn_train_backward(x3, dy3, relu, row_chunks(x3), self._mean, self._invstd,
                                 self._scale(), params["bias"], params["weight"], dx3,
                                 grads["weight"], grads["bias"])
        else:
            na.bn_eval_backward(x3, dy3, m3, relu, params["running_mean"],
                                params["running_var"], params["weight"], self.p["eps"],
                                dx3, dx3[:0], grads["weight"], grads["bias"])
        return dx3.reshape(dy.shape)

    def reference_forward(self, xs, params, train):
        shape = self.in_shapes[0]
        x = np.ascontiguousarray(xs[0], np.float64)
        x3 = channel_view(x, shape)
        eps = self.p["eps"]
        if not train:
            return rnorm.batchnorm_eval_forward(x3, params["running_mean"], params["running_var"],
                                                params["weight"], params["bias"],
                                                eps).reshape(x.shape)
        y, mean, var = rnorm.batchnorm_train_forward(x3, params["weight"], params["bias"], eps)
        count = x3.shape[0] * x3.shape[2]
        mom = self.p["momentum"]
        params["running_mean"][...] = mom * params["running_mean"] + (1 - mom) * mean
        params["running_var"][...] = (mom * params["running_var"]
                                      + (1 - mom) * var * count / (count - 1))
        return y.reshape(x.shape)

    def summary(self) -> str:
        text = f"{self.channels} {_axis_word(self.in_shapes[0])}"
        if self.p["momentum"] != 0.9:
            text += f", momentum {self.p['momentum']:g}"
        return text

    def to_onnx(self, b, xs, out, params):
        nid = self.id
        names = [b.const(f"{nid}.{k}", params[k])
                 for k in ("weight", "bias", "running_mean", "running_var")]
        attrs = {"epsilon": float(self.p["eps"]), "momentum": float(self.p["momentum"])}
        if len(self.in_shapes[0]) != 2:
            b.op("BatchNormalization", [xs[0], *names], out, **attrs)
            return
        t = b.op("Transpose", xs, f"{nid}/channels_first", perm=[0, 2, 1])
        y = b.op("BatchNormalization", [t, *names], f"{nid}/normalized", name=nid, **attrs)
        b.op("Transpose", [y], out, name=f"{nid}/channels_last", perm=[0, 2, 1])

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        if a.get("training_mode", 0) or (len(node.output) > 1 and any(node.output[1:])):
            raise imp.fail(node, "is in training mode; export the model for inference")
        x = imp.value(node, allow_perm=True)
        if x.perm:
            if len(x.shape) != 2 or x.perm != (0, 2, 1):
                raise imp.fail(node, "normalises a transposed tensor NetBuilder cannot express")
        elif len(x.shape) == 2:
            raise imp.fail(node, "normalises axis 1 of (C, L) samples; NetBuilder's BatchNorm "
                                 "normalises the last axis of (T, F) samples")
        else:
            x = imp.materialize(x, node)
        names = ("weight", "bias", "running_mean", "running_var")
        state = {k: imp.need_const(node, i + 1, k).astype(np.float32)
                 for i, k in enumerate(names)}
        params = {"eps": float(a.get("epsilon", 1e-5)),
                  "momentum": float(min(1.0, max(0.0, a.get("momentum", 0.9))))}
        y = imp.add(node, "BatchNorm", params, [imp.Val(x.node, x.shape)], state)
        imp.vals[node.output[0]] = imp.Val(y.node, y.shape, x.perm)

    def to_pytorch(self, ctx, xs, out):
        rank = len(self.in_shapes[0])
        cls = {1: "BatchNorm1d", 2: "BatchNorm1d", 3: "BatchNorm2d"}.get(rank, "BatchNorm3d")
        momentum = 1.0 - self.p["momentum"]
        init, ref = ctx.register(self.id, f"nn.{cls}({self.channels}, "
                                          f"eps={ctx.num(self.p['eps'])}, "
                                          f"momentum={round(momentum, 12)!r})")
        if rank == 2:
            return init, [f"{out} = {ref}({xs[0]}.transpose(1, 2)).transpose(1, 2)  "
                          "# per feature, over batch and time"]
        return init, [f"{out} = {ref}({xs[0]})"]


@register
class Dropout(Layer):
    """Inverted dropout: in training each value is zeroed with probability ``rate`` and the
    kept ones are scaled by 1 / (1 - rate), so evaluation is the identity. The mask is drawn
    (as float32 uniforms, whatever the dtype) from ``self.rng``."""

    type_name = "Dropout"
    category = "Normalization"
    help = "Randomly zeroes a fraction of the values while training, against overfitting."
    param_specs = (
        ParamSpec("rate", "float", 0.5, low=0.0, high=1.0,
                  help="fraction of values dropped while training (0 ≤ rate < 1)"),
    )
    uses_rng = True
    glyph = "DO"
    id_prefix = "drop"
    onnx_ops = ("Dropout",)
    kernels = (nk.dropout_apply,)
    examples = (example((6,), rate=0.3), example((2, 3, 3), rate=0.0, label="rate0"))

    @classmethod
    def resolve_params(cls, params: dict[str, Any], node_id: str | None = None
                       ) -> dict[str, Any]:
        out = super().resolve_params(params, node_id)
        if out["rate"] >= 1.0:
            where = f"{cls.type_name} '{node_id}'" if node_id else cls.type_name
            raise ParamError(f"{where}: rate must be below 1 (a rate of 1 drops everything), "
                             f"got {out['rate']:g}", node_id)
        return out

    def forward(self, xs, params, train):
        rate = self.p["rate"]
        self._u = None
        if not train or rate == 0.0:
            return xs[0]
        x = np.ascontiguousarray(xs[0])
        u = self.rng.random(x.shape, dtype=np.float32)
        y = np.empty_like(x)
        nk.dropout_apply(x.reshape(-1), u.reshape(-1), rate, y.reshape(-1))
        self._u = u
        return y

    def backward(self, dy, params, grads):
        if self._u is None:
            return [dy]
        dy = np.ascontiguousarray(dy)
        dx = np.empty_like(dy)
        nk.dropout_apply(dy.reshape(-1), self._u.reshape(-1), self.p["rate"], dx.reshape(-1))
        return [dx]

    def summary(self) -> str:
        return f"rate {self.p['rate']:g}"

    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        rate = self.p["rate"]
        if not train or rate == 0.0:
            return x
        return rnorm.dropout_apply(x, self.rng.random(x.shape, dtype=np.float32), rate)

    def to_onnx(self, b, xs, out, params):
        ratio = b.const(f"{self.id}/ratio", self.p["rate"])
        b.op("Dropout", [xs[0], ratio], out)

    @classmethod
    def from_onnx(cls, imp, index, node):
        a = imp.attrs(node)
        ratio = imp.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if len(node.input) > 1 and node.input[1] and ratio is None:
            raise imp.fail(node, "has a computed ratio; NetBuilder needs a constant one")
        # training_mode (opset 12+) true drops units at inference too: refused, as
        # BatchNormalization in training mode is; false or absent is plain inference.
        if len(node.input) > 2 and node.input[2]:
            mode = imp.const(node.input[2])
            if mode is None or mode.size != 1 or bool(mode.reshape(())):
                raise imp.fail(node, "is in training mode (training_mode = "
                                     f"{'computed' if mode is None else bool(mode.reshape(-1)[0])})"
                                     "; export the model for inference (model.eval())")
        if len(node.output) > 1 and node.output[1] and (
                node.output[1] in imp.consumers or node.output[1] in imp.outputs):
            raise imp.fail(node, "returns its mask; NetBuilder's Dropout does not")
        rate = float(str(np.float32(ratio))) if ratio is not None else float(a.get("ratio", 0.5))
        x = imp.value(node)
        imp.vals[node.output[0]] = imp.add(node, "Dropout", {"rate": rate},
                                           [imp.materialize(x, node)])

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = F.dropout({xs[0]}, p={ctx.num(self.p['rate'])}, "
                    "training=self.training)"]

"""GELU: the exact (erf) Gaussian error linear unit of transformers, as PyTorch's
``nn.GELU()`` (``approximate="none"``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kernels import activation as ak
from ..kernels.reference import activation as ra
from ..registry import register
from .activation import _Elementwise

SQRT2 = math.sqrt(2.0)


def _gelu_curve(x: np.ndarray) -> np.ndarray:
    return ra.gelu_forward(np.asarray(x, np.float64))


@register
class GELU(_Elementwise):
    """y = x · Φ(x) = x · (1 + erf(x / √2)) / 2, Φ the standard normal distribution
    function; the exact form, not the tanh approximation. Any shape."""

    type_name = "GELU"
    help = ("Gaussian error linear unit x·Φ(x): a smooth ReLU, the activation of "
            "transformers (BERT, GPT, ViT); exact, with erf.")
    icon_curve = staticmethod(_gelu_curve)
    output_bounds = (-0.17, math.inf)
    onnx_ops = ("Erf", "Div", "Gelu")
    kernels = (ak.gelu_forward, ak.gelu_backward)

    def _forward(self, x, y):
        ak.gelu_forward(x, y)

    def _backward(self, dy, dx):
        ak.gelu_backward(self._x, dy, dx)

    def reference_forward(self, xs, params, train):
        return ra.gelu_forward(np.asarray(xs[0], np.float64))

    def to_onnx(self, b, xs, out, params):
        """x · (erf(x / √2) + 1) · 0.5 in opset-17 ops (ONNX's Gelu needs opset 20), as
        ``torch.onnx`` writes ``F.gelu``."""
        nid = self.id
        z = b.op("Div", [xs[0], b.const(f"{nid}/sqrt2", SQRT2)], f"{nid}/scaled")
        e = b.op("Erf", [z], f"{nid}/erf", name=nid)  # the importer names the node after it
        e = b.op("Add", [e, b.const(f"{nid}/one", 1.0)], f"{nid}/erf1")
        e = b.op("Mul", [xs[0], e], f"{nid}/x_erf1")
        b.op("Mul", [e, b.const(f"{nid}/half", 0.5)], out, name=f"{nid}/times_half")

    @staticmethod
    def _scalar(imp: Any, node: Any, data: str) -> float | None:
        """The constant scalar ``node`` (binary) combines with ``data``, else None."""
        if len(node.input) != 2 or data not in node.input:
            return None
        other = node.input[1] if node.input[0] == data else node.input[0]
        c = imp.const(other)
        return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

    @classmethod
    def _chain(cls, imp: Any, erf: Any) -> tuple[Any, list[Any], Any] | None:
        """(the scaling node before ``erf``, the nodes after it, the last) of
        x · (erf(x / √2) + 1) · 0.5 (x / √2 may be x · (1/√2); the two products in either
        order), or None when ``erf`` is not part of a GELU."""
        scale = imp.producer.get(erf.input[0])
        if scale is None or scale.op_type not in ("Div", "Mul") or \
                imp.only_consumer(scale.output[0]) is not erf:
            return None
        x = next((t for t in scale.input if imp.const(t) is None), None)
        c = cls._scalar(imp, scale, x) if x is not None else None
        want = SQRT2 if scale.op_type == "Div" else 1 / SQRT2
        if c is None or not math.isclose(c, want, rel_tol=1e-5):
            return None
        add = imp.only_consumer(erf.output[0])
        if add is None or add.op_type != "Add" or \
                not math.isclose(cls._scalar(imp, add, erf.output[0]) or 0.0, 1.0):
            return None
        m1 = imp.only_consumer(add.output[0])
        m2 = imp.only_consumer(m1.output[0]) if m1 is not None else None
        if m1 is None or m2 is None or m1.op_type != "Mul" or m2.op_type != "Mul":
            return None
        half_first = math.isclose(cls._scalar(imp, m1, add.output[0]) or 0.0, 0.5)
        x_first = x in m1.input and add.output[0] in m1.input
        if half_first and x in m2.input and m1.output[0] in m2.input:
            pass
        elif not (x_first and math.isclose(cls._scalar(imp, m2, m1.output[0]) or 0.0, 0.5)):
            return None
        return scale, [add, m1, m2], m2

    @classmethod
    def claim_onnx(cls, imp, index, node):
        """Claim the x / √2 before and the + 1, · x, · 0.5 after an Erf of a GELU."""
        if node.op_type != "Erf":
            return
        chain = cls._chain(imp, node)
        if chain is not None:
            scale, after, last = chain
            imp.matches[index] = (scale, last)
            imp.skip.update(imp.index_of(n) for n in (scale, *after))

    @classmethod
    def from_onnx(cls, imp, index, node):
        if node.op_type == "Gelu":
            how = imp.attrs(node).get("approximate", "none")
            if how != "none":
                raise imp.fail(node, f"is the {how} approximation of GELU; NetBuilder's GELU "
                                     "is the exact one (erf): export with approximate='none'")
            imp.elementwise(node, "GELU")
            return
        match = imp.matches.get(index)
        if match is None and node.op_type == "Div" and "Div" in imp.const_handlers \
                and any(t in imp.consts for t in node.input):
            imp.const_handlers["Div"].from_onnx(imp, index, node)  # x / c: a Scale
            return
        if match is None:
            what = "divides" if node.op_type == "Div" else "computes erf"
            raise imp.fail(node, f"{what} outside the pattern x · (erf(x / √2) + 1) · 0.5 of "
                                 "a GELU, the only place NetBuilder reads a Div or an Erf")
        scale, last = match
        x = imp.value(scale, next(i for i, t in enumerate(scale.input) if imp.const(t) is None))
        imp.vals[last.output[0]] = imp.add(node, "GELU", {}, [imp.materialize(x, node)])

    def to_pytorch(self, ctx, xs, out):
        return [], [f"{out} = F.gelu({xs[0]})"]

"""The importer's value model: ``Val`` (an ONNX tensor that is an engine node's output, or a
view of it) and ``PendingRNN`` (the raw output of an ONNX recurrent op, before the transposes
and reshapes that make it batch-first), and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NetBuilderError
from ..registry import Shape

# Ops that may reshape a pending recurrent output on its way to batch-first.
PENDING_OPS = frozenset({"Transpose", "Squeeze", "Reshape", "Flatten", "ReduceSum"})


class OnnxImportError(NetBuilderError):
    """The ONNX file cannot become a NetBuilder graph (unsupported ops or layouts)."""


@dataclass
class Val:
    """An ONNX tensor that is (a view of) an engine node's output.

    ``perm``: batch-array axes of the ONNX tensor relative to the engine layout (() = same);
    ``view``: the ONNX per-sample shape when it is a reshape of the node's (e.g. (C, 1, 1))."""

    node: str
    shape: Shape
    perm: tuple[int, ...] = ()
    view: Shape | None = None

    @property
    def onnx_shape(self) -> Shape:
        """Per-sample shape of the ONNX tensor."""
        if self.view is not None:
            return self.view
        if self.perm:
            full = (0, *self.shape)
            dims = tuple(full[p] for p in self.perm)
            return dims[1:] if self.perm[0] == 0 else dims
        return self.shape


def short_float(v: Any) -> float:
    """The shortest decimal that is the same float32 (ONNX stores float32: 0.2, not
    0.20000000298...)."""
    return float(str(np.float32(v)))


@dataclass
class PendingRNN:
    """The raw output of an ONNX recurrent op, before the ops that make it batch-first.

    ``labels`` name its axes: T (time), D (direction), N (batch), H (hidden), DH (merged);
    ``type_name``, ``params`` and ``state`` are the layer it becomes."""

    node: str
    onnx_node: Any
    type_name: str
    params: dict[str, Any]
    state: dict[str, np.ndarray]
    x: Any
    labels: tuple[str, ...]
    dirs: int
    merge: str | None = None


def pending_step(imp: Any, node: Any, pend: PendingRNN) -> None:
    """Apply a Transpose / Squeeze / Reshape / Flatten / ReduceSum to a PendingRNN."""
    labels = list(pend.labels)
    op = node.op_type
    if op == "Transpose":
        perm = list(imp.attrs(node).get("perm", list(range(len(labels)))[::-1]))
        labels = [labels[p] for p in perm]
    elif op in ("Squeeze", "ReduceSum"):
        axes = [ax + len(labels) if ax < 0 else ax for ax in imp.axes(node)]
        if op == "ReduceSum" and int(imp.attrs(node).get("keepdims", 1)):
            raise imp.fail(node, "keeps the direction axis; NetBuilder merges it away")
        if [labels[ax] for ax in axes] != ["D"] or (op == "Squeeze" and pend.dirs != 1):
            raise imp.fail(node, f"reduces axes {axes} of a recurrent output; only the "
                                 "direction axis can go")
        if op == "ReduceSum":
            pend.merge = "sum"
        labels.pop(axes[0])
    elif op in ("Reshape", "Flatten"):
        if op == "Flatten":
            if int(imp.attrs(node).get("axis", 1)) != len(labels) - 2 or labels[-2:] != ["D", "H"]:
                raise imp.fail(node, "flattens a recurrent output other than (…, D, H)")
        else:
            target = imp.need_const(node, 1, "shape").astype(np.int64).tolist()
            if labels[-2:] != ["D", "H"] or len(target) != len(labels) - 1 or \
                    labels[0] != "N" or target[-1] not in (-1, pend.dirs * pend.params["units"]):
                raise imp.fail(node, f"reshapes a recurrent output to {target}; NetBuilder "
                                     "joins only the direction and hidden axes")
        labels = [*labels[:-2], "DH"]
        pend.merge = pend.merge or "concat"
    else:
        raise imp.fail(node, "uses a raw recurrent output")
    pend.labels = tuple(labels)
    imp.vals[node.output[0]] = pend
    finish_pending(imp, node.output[0], pend)


def finish_pending(imp: Any, tensor: str, pend: PendingRNN) -> None:
    """Add the recurrent node once ``tensor`` is batch-first: (N, T, ·) or (N, ·)."""
    done = {("N", "T", "DH"), ("N", "DH")}
    if pend.dirs == 1 or pend.merge == "sum":
        done |= {("N", "T", "H"), ("N", "H")}
    if pend.labels not in done:
        return
    params = dict(pend.params)
    if pend.dirs == 2:
        params["merge"] = "sum" if "DH" not in pend.labels else "concat"
    base = Val(pend.x.node, pend.x.shape)
    imp.vals[tensor] = imp.add(pend.onnx_node, pend.type_name, params, [base], pend.state,
                               hint=pend.node)

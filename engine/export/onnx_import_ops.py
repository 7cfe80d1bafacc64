"""The importer's value model: ``Val`` (an ONNX tensor that is an engine node's output, or a
view of it) and ``PendingRNN`` (the raw output of an ONNX recurrent op, before the transposes,
reshapes and Gathers that make it batch-first: ``pending_step``), and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import NetBuilderError
from ..registry import Shape

# Ops that may reshape a pending recurrent output on its way to batch-first, or pick one
# direction (h_n[k]) or the last step (out[:, -1]) of it.
PENDING_OPS = frozenset({"Transpose", "Squeeze", "Reshape", "Flatten", "ReduceSum", "Gather"})


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
    """Apply a Transpose / Squeeze / Reshape / Flatten / ReduceSum / Gather to a PendingRNN."""
    # A copy: two readers of one raw output (h_n[-2] and h_n[-1]) each get their own layer.
    pend = replace(pend, params=dict(pend.params), state=dict(pend.state))
    labels = list(pend.labels)
    op = node.op_type
    if op == "Gather":
        labels = _gather_step(imp, node, pend, labels)
    elif op == "Transpose":
        perm = list(imp.attrs(node).get("perm", list(range(len(labels)))[::-1]))
        if sorted(perm) != list(range(len(labels))):
            raise imp.fail(node, f"has perm {perm} for a tensor of rank {len(labels)}")
        labels = [labels[p] for p in perm]
    elif op in ("Squeeze", "ReduceSum"):
        axes = [ax + len(labels) if ax < 0 else ax for ax in imp.axes(node)]
        if op == "ReduceSum" and int(imp.attrs(node).get("keepdims", 1)):
            raise imp.fail(node, "keeps the direction axis; NetBuilder merges it away")
        if any(not 0 <= ax < len(labels) for ax in axes) or \
                [labels[ax] for ax in axes] != ["D"] or (op == "Squeeze" and pend.dirs != 1):
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
            # the leading axes stay: copied (0) or the steps written out (the dynamo
            # exporter's [T, 0, D·H]), or the batch first as before
            steps = pend.x.shape[0]
            keeps = labels[0] == "N" or all(
                t == 0 or (lab == "T" and t == steps) for t, lab in zip(target[:-1], labels))
            if labels[-2:] != ["D", "H"] or len(target) != len(labels) - 1 or not keeps or \
                    target[-1] not in (-1, pend.dirs * pend.params["units"]):
                raise imp.fail(node, f"reshapes a recurrent output to {target}; NetBuilder "
                                     "joins only the direction and hidden axes")
        labels = [*labels[:-2], "DH"]
        pend.merge = pend.merge or "concat"
    else:
        raise imp.fail(node, "uses a raw recurrent output")
    pend.labels = tuple(labels)
    imp.vals[node.output[0]] = pend
    finish_pending(imp, node.output[0], pend)


def _gather_step(imp: Any, node: Any, pend: PendingRNN, labels: list[str]) -> list[str]:
    """``h_n[k]`` (one direction of the D axis) or ``out[:, -1]`` (the final step of the T
    axis) on a raw recurrent output; returns the labels without the gathered axis."""
    idx = imp.need_const(node, 1, "index")
    axis = int(imp.attrs(node).get("axis", 0))
    axis = axis + len(labels) if axis < 0 else axis
    if idx.ndim != 0 or idx.dtype.kind not in "iu" or not 0 <= axis < len(labels):
        raise imp.fail(node, "gathers several entries of a recurrent output; NetBuilder takes "
                             "one direction (h_n[k]) or the last step (out[:, -1]) only")
    label, k = labels[axis], int(idx)
    if label == "D":
        if pend.dirs == 2:  # one direction of a bidirectional op: keep its weights alone
            backward = k % 2 == 1  # NetBuilder's backward-only layer keeps the _reverse names
            pend.state = {n: w for n, w in pend.state.items()
                          if n.endswith("_reverse") == backward}
            pend.params["direction"] = "backward" if backward else "forward"
            pend.dirs = 1
    elif label == "T":
        steps = pend.x.shape[0]
        last = 0 if pend.params["direction"] == "backward" else steps - 1
        if pend.dirs == 2:
            raise imp.fail(node, f"reads step {k} of a bidirectional {pend.type_name}'s outputs "
                                 "(as out[:, -1]): the forward state after the whole sequence "
                                 "next to the backward state after one step; NetBuilder has no "
                                 "layer that slices time steps: use the final states "
                                 "torch.cat((h_n[-2], h_n[-1]), 1) instead")
        if (k + steps if k < 0 else k) != last:
            raise imp.fail(node, f"reads step {k} of {steps} of a {pend.type_name}'s outputs; "
                                 "NetBuilder can take only the final state (out[:, -1] going "
                                 "forward): it has no layer that slices time steps")
        pend.params["return_sequences"] = False
    else:
        raise imp.fail(node, "picks one " + ("sample of the batch" if label == "N" else
                                             "hidden unit") + " of a recurrent output, which "
                             "NetBuilder cannot express")
    labels.pop(axis)
    return labels


def finish_pending(imp: Any, tensor: str, pend: PendingRNN) -> None:
    """Add the recurrent node once ``tensor`` is batch-first: (N, T, ·) or (N, ·), or a
    (N, [T,] D, H) that nothing reshapes further."""
    done = {("N", "T", "DH"), ("N", "DH")}
    if pend.dirs == 1 or pend.merge == "sum":
        done |= {("N", "T", "H"), ("N", "H")}
    readers = imp.consumers.get(tensor, [])
    # (N, [T,] D, H) that nothing merges further (a graph output, as ONNX's own Y_h read
    # batch-first) is the concat merge viewed with its direction axis
    split = pend.labels in {("N", "D", "H"), ("N", "T", "D", "H")} and pend.merge is None and (
        tensor in imp.outputs or not any(r.op_type in PENDING_OPS for r in readers))
    if pend.labels not in done and not split:
        return
    if len(readers) == 1 and readers[0].op_type == "Gather" and tensor not in imp.outputs:
        return  # out[:, -1] follows: the Gather decides between all steps and the last one
    params = dict(pend.params)
    if pend.dirs == 2:
        params["merge"] = "sum" if "DH" not in pend.labels and not split else "concat"
    base = Val(pend.x.node, pend.x.shape)
    val = imp.add(pend.onnx_node, pend.type_name, params, [base], pend.state, hint=pend.node)
    if split:
        h = pend.params["units"]
        val = Val(val.node, val.shape, view=(*val.shape[:-1], pend.dirs, h))
    imp.vals[tensor] = val


@dataclass(frozen=True)
class Mapped:
    """One ONNX node (``op`` and its name) and the NetBuilder nodes made for it, as
    (id, type) pairs; none for a node that only moves data (Identity, Transpose...) and
    ``part_of`` the ONNX node whose layer took it in (a GroupNorm's Reshape, a Swish's
    Sigmoid)."""

    op: str
    name: str
    nodes: tuple[tuple[str, str], ...] = ()
    part_of: str = ""

    def line(self) -> str:
        src = f"{self.op} '{self.name}'"
        if self.nodes:
            return f"{src} → " + ", ".join(f"{t} '{nid}'" for nid, t in self.nodes)
        if self.part_of:
            return f"{src} → part of the layer made for '{self.part_of}'"
        return f"{src} → no layer of its own (moves or views data)"



"""SimpleRNN, LSTM and GRU to and from the ONNX RNN, LSTM and GRU ops.

Export: x (N, T, F) -> Transpose -> (T, N, F) -> op -> Y (T, D, N, H) with return_sequences,
else Y_h (D, N, H) -> Transpose to batch first -> Reshape (concat, or one direction) or
ReduceSum over the direction axis (sum). Gates are reordered from PyTorch's (LSTM i, f, g, o;
GRU r, z, n) to ONNX's (LSTM i, o, f, c; GRU z, r, h); GRU uses linear_before_reset = 1,
which is PyTorch's formula. Import undoes exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..registry import Layer
from .onnx_export import _Builder, converter

RNN_OPS = ("RNN", "LSTM", "GRU")
TYPE_OF_OP = {"RNN": "SimpleRNN", "LSTM": "LSTM", "GRU": "GRU"}
OP_OF_TYPE = {v: k for k, v in TYPE_OF_OP.items()}
# ONNX gate block k comes from PyTorch gate block ORDER[op][k].
ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}
DIRECTIONS = {"forward": "forward", "backward": "reverse", "bidirectional": "bidirectional"}


def _to_onnx_gates(a: np.ndarray, op: str, h: int) -> np.ndarray:
    return np.concatenate([a[k * h:(k + 1) * h] for k in ORDER[op]], axis=0)


def _from_onnx_gates(a: np.ndarray, op: str, h: int) -> np.ndarray:
    out = np.empty_like(a)
    for k, src in enumerate(ORDER[op]):
        out[src * h:(src + 1) * h] = a[k * h:(k + 1) * h]
    return out


@converter("SimpleRNN", "LSTM", "GRU")
def _recurrent(b: _Builder, layer: Layer, xs: list[str], out: str,
               p: dict[str, np.ndarray]) -> None:
    nid, op, h = layer.id, OP_OF_TYPE[layer.type_name], layer.p["units"]
    sfx = layer.suffixes
    w = np.stack([_to_onnx_gates(p[f"weight_ih{s}"], op, h) for s in sfx])
    r = np.stack([_to_onnx_gates(p[f"weight_hh{s}"], op, h) for s in sfx])
    bias = np.stack([np.concatenate([_to_onnx_gates(p[f"bias_ih{s}"], op, h),
                                     _to_onnx_gates(p[f"bias_hh{s}"], op, h)]) for s in sfx])
    x_t = b.op("Transpose", xs, f"{nid}/time_major", perm=[1, 0, 2])
    attrs: dict[str, Any] = {"hidden_size": h, "direction": DIRECTIONS[layer.p["direction"]]}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    seq = layer.p["return_sequences"]
    y = f"{nid}/Y" if seq else f"{nid}/Y_h"
    outputs = [y, ""] if seq else ["", y]
    if op == "LSTM":
        outputs.append("")
    b.op(op, [x_t, b.const(f"{nid}.W", w), b.const(f"{nid}.R", r), b.const(f"{nid}.B", bias)],
         y, name=nid, outputs=outputs, **attrs)
    perm = [2, 0, 1, 3] if seq else [1, 0, 2]
    bf = b.op("Transpose", [y], f"{nid}/batch_first", perm=perm)
    d_axis = 2 if seq else 1
    if len(sfx) == 2 and layer.p["merge"] == "sum":
        axes = b.const(f"{nid}/direction_axis", [d_axis], np.int64)
        b.op("ReduceSum", [bf, axes], out, name=f"{nid}/merge", keepdims=0)
    else:
        shape = b.const(f"{nid}/merged_shape", [0, 0, -1] if seq else [0, -1], np.int64)
        b.op("Reshape", [bf, shape], out, name=f"{nid}/merge")


# ----- import -------------------------------------------------------------------------------
@dataclass
class PendingRNN:
    """The raw output of an ONNX recurrent op, before the ops that make it batch-first.

    ``labels`` name its axes: T (time), D (direction), N (batch), H (hidden), DH (merged)."""

    node: str
    onnx_node: Any
    type_name: str
    params: dict[str, Any]
    state: dict[str, np.ndarray]
    x: Any
    labels: tuple[str, ...]
    dirs: int
    merge: str | None = None


def convert_rnn(imp: Any, node: Any) -> None:
    """Read an ONNX RNN / LSTM / GRU node into a PendingRNN on its used output."""
    op = node.op_type
    a = imp.attrs(node)
    x = imp.value(node, allow_perm=True)
    layout = int(a.get("layout", 0))
    want = () if layout == 1 else (1, 0, 2)
    if len(x.shape) != 2 or tuple(x.perm) != want:
        raise imp.fail(node, "reads a sequence NetBuilder cannot express: it needs (N, T, F) "
                             "samples transposed to (T, N, F), or layout = 1")
    for i, what in ((4, "sequence_lens"), (5, "initial_h"), (6, "initial_c"), (7, "P")):
        if len(node.input) > i and node.input[i]:
            raise imp.fail(node, f"has {what}; NetBuilder's recurrent layers start from zeros "
                                 "and read whole sequences")
    if a.get("clip") is not None or a.get("input_forget", 0):
        raise imp.fail(node, "uses clip or input_forget, which NetBuilder does not have")
    default_acts = {"RNN": ["Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"],
                    "GRU": ["Sigmoid", "Tanh"]}[op]
    acts = a.get("activations")
    if acts and [s.lower() for s in acts[:len(default_acts)]] != [s.lower() for s in default_acts]:
        raise imp.fail(node, f"uses activations {acts}; NetBuilder's are {default_acts}")
    if op == "GRU" and not a.get("linear_before_reset", 0):
        raise imp.fail(node, "has linear_before_reset = 0 (the reset gate applied before the "
                             "recurrent product, as Keras' reset_after=False); NetBuilder's GRU "
                             "is PyTorch's (linear_before_reset = 1): export a GRU with "
                             "reset_after=True, or from PyTorch")
    direction = {"forward": "forward", "reverse": "backward",
                 "bidirectional": "bidirectional"}.get(a.get("direction", "forward"))
    if direction is None:
        raise imp.fail(node, f"has direction {a.get('direction')!r}; ONNX knows forward, "
                             "reverse and bidirectional")
    h = int(a.get("hidden_size", 0))
    if not 0 < h <= 1 << 20:
        raise imp.fail(node, f"has hidden_size {a.get('hidden_size')}")
    sfx = ("", "_reverse") if direction == "bidirectional" else \
        ("_reverse",) if direction == "backward" else ("",)
    w, r, bias = _weights(imp, node, op, h, len(sfx), x.shape[1])
    gh = len(ORDER[op]) * h
    state = {}
    for d, s in enumerate(sfx):
        state[f"weight_ih{s}"] = _from_onnx_gates(w[d], op, h)
        state[f"weight_hh{s}"] = _from_onnx_gates(r[d], op, h)
        state[f"bias_ih{s}"] = _from_onnx_gates(bias[d, :gh], op, h)
        state[f"bias_hh{s}"] = _from_onnx_gates(bias[d, gh:], op, h)
    used = [i for i, t in enumerate(node.output) if t and (t in imp.consumers or t in imp.outputs)]
    if used != [0] and used != [1]:
        raise imp.fail(node, "must have exactly one of Y (all steps) or Y_h (last step) used")
    seq = used == [0]
    if layout == 1:
        labels = ("N", "T", "D", "H") if seq else ("N", "D", "H")
    else:
        labels = ("T", "D", "N", "H") if seq else ("D", "N", "H")
    pend = PendingRNN(node=imp.hint(node), onnx_node=node, type_name=TYPE_OF_OP[op],
                      params={"units": h, "return_sequences": seq, "direction": direction},
                      state=state, x=x, labels=labels, dirs=len(sfx))
    imp.vals[node.output[used[0]]] = pend
    _maybe_finish(imp, node, node.output[used[0]], pend)


def _weights(imp: Any, node: Any, op: str, h: int, dirs: int,
             features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W, R and B of a recurrent op, checked against its hidden size, directions and input
    (a damaged file must not reach the gate slicing with other shapes)."""
    gh = len(ORDER[op]) * h
    w = imp.need_const(node, 1, "W").astype(np.float32)
    r = imp.need_const(node, 2, "R").astype(np.float32)
    b = None
    if len(node.input) > 3 and node.input[3]:
        b = imp.need_const(node, 3, "B").astype(np.float32)
    b = np.zeros((dirs, 2 * gh), np.float32) if b is None else b
    for name, arr, want in (("W", w, (dirs, gh, features)), ("R", r, (dirs, gh, h)),
                            ("B", b, (dirs, 2 * gh))):
        if arr.shape != want:
            raise imp.fail(node, f"has {name} shaped {list(arr.shape)}; a {dirs}-direction "
                                 f"{op} of hidden size {h} on {features} features needs "
                                 f"{list(want)}")
    return w, r, b


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
        axes = [ax + len(labels) if ax < 0 else ax for ax in imp._axes(node)]
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
            # the leading axes stay: copied (0), or the batch first as before
            keeps = labels[0] == "N" or all(t == 0 for t in target[:-1])
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
    _maybe_finish(imp, node, node.output[0], pend)


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


_STEP_OPS = frozenset({"Transpose", "Squeeze", "Reshape", "Flatten", "ReduceSum", "Gather"})


def _maybe_finish(imp: Any, node: Any, tensor: str, pend: PendingRNN) -> None:
    done = {("N", "T", "DH"), ("N", "DH")}
    if pend.dirs == 1 or pend.merge == "sum":
        done |= {("N", "T", "H"), ("N", "H")}
    readers = imp.consumers.get(tensor, [])
    # (N, [T,] D, H) that nothing merges further (a graph output, as ONNX's own Y_h read
    # batch-first) is the concat merge viewed with its direction axis
    split = pend.labels in {("N", "D", "H"), ("N", "T", "D", "H")} and pend.merge is None and (
        tensor in imp.outputs or not any(r.op_type in _STEP_OPS for r in readers))
    if pend.labels not in done and not split:
        return
    if len(readers) == 1 and readers[0].op_type == "Gather" and tensor not in imp.outputs:
        return  # out[:, -1] follows: the Gather decides between all steps and the last one
    params = dict(pend.params)
    if pend.dirs == 2:
        params["merge"] = "sum" if "DH" not in pend.labels and not split else "concat"
    base = type(pend.x)(pend.x.node, pend.x.shape)
    val = imp.add(pend.onnx_node, pend.type_name, params, [base], pend.state, hint=pend.node)
    if split:
        h = pend.params["units"]
        val = type(val)(val.node, val.shape, view=(*val.shape[:-1], pend.dirs, h))
    imp.vals[tensor] = val

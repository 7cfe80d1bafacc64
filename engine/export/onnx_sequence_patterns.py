"""The recurrent half of ``onnx_patterns``: rewrites of what ``torch.onnx.export`` writes
around nn.RNN / nn.LSTM / nn.GRU into what the importer's recurrent handlers read.

- time-major inputs (``batch_first=False``: the input goes straight into the RNN) become
  batch-first inputs and a Transpose; time-major outputs become batch-first outputs, the
  Transpose moved up through the per-step layers to the RNN;
- zero initial states (``ConstantOfShape`` / ``Expand`` of zeros, folded) and full-length
  ``sequence_lens`` are dropped: NetBuilder's layers start from zeros and read whole sequences;
- ``h_n[-1]`` of stacked layers (a Gather of the Concat of every layer's state) reads the
  last layer's state; ``cat((h_n[-2], h_n[-1]), 1)`` is the bidirectional concat merge;
- the (T, N, H) sequence between stacked layers gets a Transpose pair that the importer reads
  as a batch-first tensor in between.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .onnx_fold import Filled

RNN_OPS = ("RNN", "LSTM", "GRU")
# Ops through which a trailing Transpose of the batch and time axes can move up unchanged.
_PER_STEP_UNARY = frozenset({"Relu", "Tanh", "Sigmoid", "LeakyRelu", "HardSigmoid", "Clip",
                             "Identity", "Dropout", "Elu", "Selu", "Softplus"})


def copy_proto(onnx: Any, proto: Any) -> Any:
    new = type(proto)()
    new.CopyFrom(proto)
    return new


def label(node: Any) -> str:
    """``LSTM node '/rnn/LSTM'``: how messages and notes name a node."""
    return f"{node.op_type} node '{node.name or (node.output[0] if node.output else '?')}'"


def _dim_text(d: Any) -> str:
    return str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")


class SequenceRewrites:
    """Methods of ``onnx_patterns._Rewriter`` for recurrent ops (a mixin: it uses the
    rewriter's nodes, consts, shapes, notes and helpers)."""

    onnx: Any
    h: Any
    nodes: list[Any]
    inputs: list[Any]
    outputs: list[Any]
    shapes: dict[str, tuple[int | str | None, ...]]
    notes: list[str]

    def time_major_inputs(self) -> None:
        """Inputs read directly as X of a layout-0 RNN are (T, N, F): read them as (N, T, F)."""
        cons = self.consumers()
        for k, inp in enumerate(self.inputs):
            dims = inp.type.tensor_type.shape.dim
            readers = cons.get(inp.name, [])
            if len(dims) != 3 or not any(
                    n.op_type in RNN_OPS and n.input[0] == inp.name and
                    not int(self.attrs(n).get("layout", 0)) for n in readers):
                continue
            inner = self.fresh(f"{inp.name}/time_major")
            for i, n in enumerate(self.nodes):
                if inp.name in n.input:
                    new = self.copy_node(n)
                    for j, t in enumerate(new.input):
                        if t == inp.name:
                            new.input[j] = inner
                    self.nodes[i] = new
            self.nodes.insert(0, self.h.make_node("Transpose", [inp.name], [inner],
                                                  name=inner, perm=[1, 0, 2]))
            new_inp = copy_proto(self.onnx, inp)
            d = new_inp.type.tensor_type.shape.dim
            a, b = copy_proto(self.onnx, d[0]), copy_proto(self.onnx, d[1])
            d[0].CopyFrom(b)
            d[1].CopyFrom(a)
            self.inputs[k] = new_inp
            shown = [_dim_text(x) for x in dims]
            self.notes.append(f"input '{inp.name}' is time-major (T, N, F) = ({', '.join(shown)}),"
                              " as PyTorch's batch_first=False: the imported model reads it "
                              "batch-first (N, T, F)")

    def zero_initial_states(self) -> None:
        for i, node in enumerate(self.nodes):
            if node.op_type not in RNN_OPS:
                continue
            new = None
            for k, what in ((5, "initial_h"), (6, "initial_c")):
                if len(node.input) <= k or not node.input[k]:
                    continue
                v = self.value(node.input[k])
                zero = (isinstance(v, Filled) and v.value == 0) or \
                    (isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and not v.any())
                if zero:
                    new = new or self.copy_node(node)
                    new.input[k] = ""
                    self.notes.append(f"{label(node)}: zero {what} dropped (NetBuilder's "
                                      "recurrent layers start from zeros)")
            if len(node.input) > 4 and node.input[4]:
                lens = self.value(node.input[4])
                x = self.shapes.get(node.input[0]) or ()
                t_axis = 1 if int(self.attrs(node).get("layout", 0)) else 0
                t = x[t_axis] if len(x) > t_axis else None
                if isinstance(lens, np.ndarray) and isinstance(t, int) and lens.size and \
                        (lens == t).all():
                    new = new or self.copy_node(node)
                    new.input[4] = ""
                    self.notes.append(f"{label(node)}: sequence_lens equal to the full length "
                                      f"{t} dropped")
            if new is not None:
                while len(new.input) and not new.input[-1]:
                    del new.input[-1]
                self.nodes[i] = new

    def gather_of_concat(self) -> None:
        """Gather(Concat(a, b, …, axis k), i, axis k) with a scalar i reads one part: the
        ``h_n[-1]`` of stacked RNN layers, whose states PyTorch concatenates."""
        prod = self.producers()
        for i, node in enumerate(self.nodes):
            if node.op_type != "Gather" or len(node.input) < 2:
                continue
            idx = self.scalar_int(node.input[1])
            cat = prod.get(node.input[0])
            if idx is None or self.consts[node.input[1]].ndim != 0 or cat is None or \
                    cat.op_type != "Concat":
                continue
            axis = int(self.attrs(node).get("axis", 0))
            if int(self.attrs(cat).get("axis", 0)) != axis or axis < 0:
                continue
            sizes = [self.shapes.get(t, ())[axis] if len(self.shapes.get(t, ())) > axis else None
                     for t in cat.input]
            if any(not isinstance(s, int) for s in sizes):
                continue
            total = sum(sizes)
            k = idx + total if idx < 0 else idx
            if not 0 <= k < total:
                raise self.fail(node, f"reads index {idx} of an axis of size {total}")
            j = 0
            while k >= sizes[j]:
                k -= sizes[j]
                j += 1
            part = cat.input[j]
            new = self.copy_node(node)
            new.input[0] = part
            new.input[1] = self.add_const(f"{node.input[1]}/part", np.array(k, np.int64))
            self.nodes[i] = new
            self.notes.append(f"{label(node)} reads index {idx} of Concat '{cat.name}': "
                              f"index {k} of '{part}'")

    def concat_of_directions(self) -> None:
        """Concat(Gather(t, 0), Gather(t, 1)) on the last axis, t's gathered axis of size 2:
        ``torch.cat((h_n[-2], h_n[-1]), 1)`` of a bidirectional RNN = Transpose + Reshape."""
        prod = self.producers()
        for i, node in enumerate(self.nodes):
            if node.op_type != "Concat" or len(node.input) != 2:
                continue
            gs = [prod.get(t) for t in node.input]
            if any(g is None or g.op_type != "Gather" or len(g.input) < 2 for g in gs) or \
                    gs[0].input[0] != gs[1].input[0]:
                continue
            src = gs[0].input[0]
            shape = self.shapes.get(src)
            axes = {int(self.attrs(g).get("axis", 0)) for g in gs}
            if shape is None or len(axes) != 1:
                continue
            rank = len(shape)
            a = axes.pop()
            a = a + rank if a < 0 else a
            idx = [self.scalar_int(g.input[1]) for g in gs]
            if not 0 <= a < rank or shape[a] != 2 or None in idx or \
                    [(j + 2) % 2 for j in idx] != [0, 1]:
                continue
            c = int(self.attrs(node).get("axis", 0))
            if (c + rank - 1 if c < 0 else c) != rank - 2:
                continue
            perm = [d for d in range(rank) if d != a]
            perm.insert(rank - 2, a)
            moved = self.fresh(f"{node.output[0]}/directions_last")
            target = self.add_const(f"{node.output[0]}/merge_shape",
                                    np.array([0] * (rank - 2) + [-1], np.int64))
            self.nodes[i:i + 1] = [
                self.h.make_node("Transpose", [src], [moved], name=moved, perm=perm),
                self.h.make_node("Reshape", [moved, target], [node.output[0]],
                                 name=node.name or node.output[0])]
            self.notes.append(f"{label(node)} joins both directions of '{src}' (as "
                              "torch.cat((h_n[-2], h_n[-1]), 1)): a bidirectional concat merge")

    def rnn_time_major_between(self) -> None:
        """An RNN whose X is not the Transpose of a batch-first tensor (a stacked layer reads
        the previous layer's (T, N, H) output) gets X → (N, T, H) → (T, N, H): two Transposes
        that cancel, which the importer reads as a batch-first tensor in between."""
        prod = self.producers()
        for node in list(self.nodes):
            if node.op_type not in RNN_OPS or int(self.attrs(node).get("layout", 0)):
                continue
            p = prod.get(node.input[0])
            if p is not None and p.op_type == "Transpose" and \
                    list(self.attrs(p).get("perm", [])) == [1, 0, 2]:
                continue
            x = node.input[0]
            bf = self.fresh(f"{x}/batch_first")
            tm = self.fresh(f"{x}/time_major")
            new = self.copy_node(node)
            new.input[0] = tm
            at = self.nodes.index(node)
            self.nodes[at:at + 1] = [
                self.h.make_node("Transpose", [x], [bf], name=bf, perm=[1, 0, 2]),
                self.h.make_node("Transpose", [bf], [tm], name=tm, perm=[1, 0, 2]), new]

    def time_major_outputs(self) -> None:
        """An output with the batch on axis 1 (a time-major sequence) is written batch-first:
        a Transpose is appended and moved up through per-step layers to the RNN."""
        for k, out in enumerate(self.outputs):
            shape = self.shapes.get(out.name)
            if shape is None or len(shape) < 2 or shape[0] == "N" or shape[1] != "N":
                continue
            perm = [1, 0, *range(2, len(shape))]
            inner = self.fresh(f"{out.name}/time_major")
            for i, n in enumerate(self.nodes):
                if out.name in n.output:
                    new = self.copy_node(n)
                    new.name = n.name or out.name  # messages keep naming it as the file does
                    for j, t in enumerate(new.output):
                        if t == out.name:
                            new.output[j] = inner
                    self.nodes[i] = new
            for i, n in enumerate(self.nodes):
                if out.name in n.input:
                    new = self.copy_node(n)
                    for j, t in enumerate(new.input):
                        if t == out.name:
                            new.input[j] = inner
                    self.nodes[i] = new
            self.shapes[inner] = shape
            tr = self.h.make_node("Transpose", [inner], [out.name], name=f"{out.name}/batch_first",
                                  perm=perm)
            self.nodes.append(tr)
            new_out = copy_proto(self.onnx, out)
            dims = new_out.type.tensor_type.shape.dim
            if len(dims) >= 2:
                a, b = copy_proto(self.onnx, dims[0]), copy_proto(self.onnx, dims[1])
                dims[0].CopyFrom(b)
                dims[1].CopyFrom(a)
            self.outputs[k] = new_out
            self.notes.append(f"output '{out.name}' is time-major (T, N, …): the imported model "
                              "writes it batch-first (N, T, …)")
            self.hoist(tr)

    def hoist(self, tr: Any) -> None:
        """Move Transpose ``tr`` above the single-use per-step layers that produce its input."""
        perm = list(self.attrs(tr).get("perm", []))
        if not perm or perm[-1] != len(perm) - 1:
            return  # a per-step layer works on the last axis, which must stay put
        while True:
            cons = self.consumers()
            prod = self.producers()
            p = prod.get(tr.input[0])
            if p is None or len(cons.get(tr.input[0], [])) != 1 or not self._per_step(p, len(perm)):
                return
            data_i = 0 if p.op_type != "Add" or self.value(p.input[0]) is None else 1
            moved = self.fresh(f"{p.input[data_i]}/batch_first")
            new_tr = self.h.make_node("Transpose", [p.input[data_i]], [moved], name=moved,
                                      perm=perm)
            new_p = self.copy_node(p)
            new_p.input[data_i] = moved
            del new_p.output[1:]
            new_p.output[0] = tr.output[0]
            at = self.nodes.index(p)
            self.nodes.remove(tr)
            self.nodes[at:at + 1] = [new_tr, new_p]
            tr = new_tr

    def _per_step(self, p: Any, rank: int) -> bool:
        """Whether ``p`` works on each step's last axis alone (commutes with the Transpose)."""
        if p.op_type in _PER_STEP_UNARY:
            return p.op_type != "Dropout" or len(p.output) == 1 or not p.output[1]
        if p.op_type in ("Softmax", "LogSoftmax"):
            return int(self.attrs(p).get("axis", -1)) == -1
        if p.op_type == "MatMul":
            w = self.value(p.input[1])
            return isinstance(w, np.ndarray) and w.ndim == 2 and self.value(p.input[0]) is None
        if p.op_type == "Add":
            ins = [self.value(t) for t in p.input]
            c = ins[0] if isinstance(ins[0], np.ndarray) else ins[1]
            data = ins[1] if c is ins[0] else ins[0]
            # c of fewer axes than the result: the data has them all, c varies on the last
            return isinstance(c, np.ndarray) and data is None and c.ndim < rank and \
                all(d == 1 for d in c.shape[:-1])
        return False

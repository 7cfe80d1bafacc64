"""Rewrite what ``torch.onnx.export`` writes into the forms the ONNX importer maps to layers.

Runs on the graph before the importer (``normalize_graph``), and changes nothing the graph
computes:

- folds constants (``onnx_fold``): Constant nodes, arithmetic on initialisers, and shape
  arithmetic that depends only on the batch size (``x.view(x.size(0), -1)``, the zero initial
  state Shape → Gather → Unsqueeze → Concat → ConstantOfShape / Expand of an RNN);
- a fixed batch size written into a Reshape (``[2, -1]`` with inputs of batch 2) becomes
  "keep the batch" (``[0, -1]``);
- the recurrent patterns (zero initial states, ``h_n[-1]``, ``out[:, -1]``, stacked and
  time-major layers): see ``onnx_sequence_patterns``;
- a Gather of a scalar index on an axis of size 1 is a Squeeze; Gemm with ``transA`` of a
  Transpose is a plain Gemm; Unsqueeze of data becomes a Reshape, Squeeze without axes gets
  them.

Every rewrite adds a line to ``notes`` (for the import report). Dead nodes are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .onnx_fold import FOLD_OPS, Filled, FoldError, SymInts, check_size, fold_budget, fold_node
from .onnx_import_ops import OnnxImportError
from .onnx_sequence_patterns import RNN_OPS, SequenceRewrites, copy_proto, label

BATCH_SYMBOL = "__netbuilder_batch__"
# Initialisers up to this many elements go into the shape-inference model as values (shape
# vectors, axes); larger ones only as typed inputs (their shape is all inference needs).
SMALL_CONST = 4096


@dataclass
class Normalized:
    """The rewritten graph: NodeProtos in order, graph inputs / outputs (ValueInfoProtos) and
    what was done (one line each)."""

    nodes: list[Any]
    inputs: list[Any]
    outputs: list[Any]
    notes: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def node_attrs(onnx: Any, node: Any) -> dict[str, Any]:
    """Attribute values by name (tensors as size-checked arrays, strings decoded)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = tensor_array(onnx, a.t, f"attribute '{a.name}' of {label(node)}")
            continue
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", "replace") for s in v]
        out[a.name] = v
    return out


def tensor_array(onnx: Any, t: Any, what: str) -> np.ndarray:
    """A TensorProto as an array, refusing external data and data that does not match the
    declared dims before anything is allocated."""
    if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
        raise OnnxImportError(f"{what} '{t.name}' keeps its data in an external file; NetBuilder "
                              "imports self-contained .onnx files: re-save the model with "
                              "onnx.save(model, path, save_as_external_data=False)")
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise OnnxImportError(f"{what} '{t.name}' declares a negative dimension {dims}")
    n = int(np.prod(dims, dtype=object)) if dims else 1
    np_type = _NP_TYPES.get(t.data_type)
    if np_type is None:
        name = onnx.TensorProto.DataType.Name(t.data_type) \
            if t.data_type in onnx.TensorProto.DataType.values() else str(t.data_type)
        raise OnnxImportError(f"{what} '{t.name}' holds {name} data, which NetBuilder does not "
                              "read")
    have = _stored_elements(t, np.dtype(np_type))
    if have != n:
        raise OnnxImportError(f"{what} '{t.name}' declares {n:,} elements (dims {dims}) but "
                              f"holds {have:,}: the file is damaged")
    try:
        return np.asarray(onnx.numpy_helper.to_array(t)).copy()
    except Exception as exc:  # onnx raises assorted errors on odd tensors
        raise OnnxImportError(f"{what} '{t.name}' cannot be read ({type(exc).__name__})") \
            from None


_NP_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
             7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
             13: np.uint64}


def _stored_elements(t: Any, dtype: np.dtype) -> int:
    if t.HasField("raw_data"):
        return len(t.raw_data) // dtype.itemsize
    if dtype in (np.float32,):
        return len(t.float_data)
    if dtype == np.float64:
        return len(t.double_data)
    if dtype in (np.int64,):
        return len(t.int64_data)
    if dtype in (np.uint32, np.uint64):
        return len(t.uint64_data)
    return len(t.int32_data)  # int8/16/32, uint8/16, bool, float16 (as bits)


class _Rewriter(SequenceRewrites):
    def __init__(self, onnx: Any, model: Any, consts: dict[str, np.ndarray],
                 source: str, rewrites: Sequence[Callable[[Any], None]] = ()) -> None:
        self.onnx = onnx
        self.rewrites = rewrites
        self.h = onnx.helper
        self.model = model
        self.source = source
        self.consts = consts
        g = model.graph
        self.nodes: list[Any] = list(g.node)
        self.inputs = [copy_proto(onnx, i) for i in g.input if i.name not in consts]
        self.outputs = [copy_proto(onnx, o) for o in g.output]
        self.sym: dict[str, SymInts | Filled] = {}
        self.shapes: dict[str, tuple[int | str | None, ...]] = {}
        self.notes: list[str] = []
        self.names = {t for n in self.nodes for t in (*n.input, *n.output) if t} | set(consts) \
            | {i.name for i in g.input} | {o.name for o in g.output}
        self.batch: int | None = None
        self.folded: dict[str, int] = {}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          0)
        self.misses: list[str] = []  # what rewrites could not read, for a refusal

    # ----- small helpers ------------------------------------------------------------------
    def fail(self, node: Any, message: str) -> OnnxImportError:
        return OnnxImportError(f"{self.source}: {label(node)} {message}")

    def fresh(self, hint: str) -> str:
        name, k = hint, 2
        while name in self.names:
            name = f"{hint}_{k}"
            k += 1
        self.names.add(name)
        return name

    def add_const(self, hint: str, value: np.ndarray) -> str:
        name = self.fresh(hint)
        self.consts[name] = value
        return name

    def copy_node(self, node: Any) -> Any:
        new = self.onnx.NodeProto()
        new.CopyFrom(node)
        return new

    def replace(self, old: Any, new: Any) -> None:
        self.nodes[self.nodes.index(old)] = new

    def consumers(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for n in self.nodes:
            for t in n.input:
                if t:
                    out.setdefault(t, []).append(n)
        return out

    def producers(self) -> dict[str, Any]:
        return {t: n for n in self.nodes for t in n.output if t}

    def attrs(self, node: Any) -> dict[str, Any]:
        return node_attrs(self.onnx, node)

    def scalar_int(self, name: str) -> int | None:
        v = self.consts.get(name)
        if v is None or v.dtype.kind not in "iu" or v.size != 1:
            return None
        return int(v.reshape(()))

    # ----- the pass -------------------------------------------------------------------------
    def run(self) -> Normalized:
        self.take_constant_nodes()
        self.time_major_inputs()
        self.find_fixed_batch()
        self.drop_dead()
        if self.rewrites:
            self.fold_constants()
        for rewrite in self.rewrites:  # the layers' own (rewrite_onnx), e.g. attention
            rewrite(self)
        try:
            return self.rest()
        except OnnxImportError as exc:
            if not self.misses:
                raise
            raise OnnxImportError(f"{exc.message}. In PyTorch terms: {'; '.join(self.misses)}") \
                from None

    def rest(self) -> Normalized:
        """The pass after the attention rewrite."""
        for _ in range(4):  # folding can reveal shapes that let more fold
            self.infer()
            if not self.fold():
                break
        self.drop_dead()
        self.zero_initial_states()
        self.infer()
        self.time_major_outputs()
        self.gather_of_concat()
        self.concat_of_directions()
        self.gather_size_one()
        self.rnn_time_major_between()
        self.gemm_trans_a()
        self.unsqueeze_and_squeeze()
        self.drop_dead()
        self.check_symbolic_uses()
        if self.folded:
            parts = ", ".join(f"{op} ×{k}" for op, k in sorted(self.folded.items()))
            n = sum(self.folded.values())
            self.notes.insert(0, f"folded {n} constant computation{'' if n == 1 else 's'} "
                                 f"({parts})")
        return Normalized(self.nodes, self.inputs, self.outputs, self.notes, self.misses)

    def take_constant_nodes(self) -> None:
        keep = []
        for n in self.nodes:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                self.consts[n.output[0]] = self.constant_value(n)
                self.folded["Constant"] = self.folded.get("Constant", 0) + 1
            else:
                keep.append(n)
        self.nodes = keep

    def constant_value(self, node: Any) -> np.ndarray:
        a = self.attrs(node)
        if "value" in a:
            return np.asarray(a["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in a:
                return np.asarray(a[key], dtype)
        raise self.fail(node, "has no numeric value NetBuilder can read (sparse or string "
                              "constants are not supported)")

    # ----- batch axis and shapes ------------------------------------------------------------
    def find_fixed_batch(self) -> None:
        """The batch size every input declares, if they all fix the same one."""
        fixed = set()
        for inp in self.inputs:
            dims = inp.type.tensor_type.shape.dim
            fixed.add(dims[0].dim_value if len(dims) and dims[0].HasField("dim_value") else None)
        self.batch = fixed.pop() if len(fixed) == 1 else None

    def infer(self) -> None:
        """Per-tensor shapes by ONNX shape inference, the batch axis of every input marked."""
        onnx, h = self.onnx, self.h
        ins = []
        for inp in self.inputs:
            vi = copy_proto(onnx, inp)
            dims = vi.type.tensor_type.shape.dim
            if len(dims):
                dims[0].Clear()
                dims[0].dim_param = BATCH_SYMBOL
            ins.append(vi)
        used = {t for n in self.nodes for t in n.input if t}
        inits = []
        for name in used & set(self.consts):
            v = self.consts[name]
            try:
                elem = h.np_dtype_to_tensor_dtype(v.dtype)
            except (KeyError, TypeError, ValueError):
                continue
            if v.size <= SMALL_CONST:
                inits.append(onnx.numpy_helper.from_array(v, name))
            else:
                ins.append(h.make_tensor_value_info(name, elem, list(v.shape)))
        outs = [h.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None)
                for o in self.outputs]
        graph = h.make_graph(self.nodes, "shapes", ins, outs, initializer=inits)
        m = h.make_model(graph, opset_imports=list(self.model.opset_import))
        m.ir_version = self.model.ir_version
        self.shapes = {}
        try:
            inferred = onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False,
                                                         data_prop=True)
        except Exception:  # inference is a help: without shapes, less folds
            return
        for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            tt = vi.type.tensor_type
            if not tt.HasField("shape"):
                continue
            self.shapes[vi.name] = tuple(
                "N" if d.dim_param == BATCH_SYMBOL else
                int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim)

    # ----- folding --------------------------------------------------------------------------
    def value(self, name: str) -> Any:
        if not name:
            return None
        v = self.consts.get(name)
        return v if v is not None else self.sym.get(name)

    def fold(self) -> bool:
        changed = False
        keep = []
        for node in self.nodes:
            new = self.reshape_target(node)
            if new is not node:
                changed = True
                node = new
            if node.op_type not in FOLD_OPS or node.domain not in ("", "ai.onnx"):
                keep.append(node)
                continue
            ins = [self.value(t) for t in node.input]
            shape = self.shapes.get(node.input[0]) if node.input else None
            out = fold_node(self.onnx, node, self.attrs(node), ins, shape)
            if out is None:
                keep.append(node)
                continue
            for name, v in zip(node.output, out):
                if isinstance(v, np.ndarray):
                    self.consts[name] = v
                else:
                    self.sym[name] = v
            self.folded[node.op_type] = self.folded.get(node.op_type, 0) + 1
            changed = True
        self.nodes = keep
        return changed

    def fold_constants(self) -> None:
        """Fold the nodes whose inputs are all constants (an Identity of a weight the
        exporter shared between layers, a weight's Transpose), so that the layers' rewrites
        read weights as constants; the shape arithmetic waits for ``fold``."""
        keep = []
        for node in self.nodes:
            ins = [self.consts.get(t) if t else None for t in node.input]
            out = fold_node(self.onnx, node, self.attrs(node), ins, None) \
                if node.input and all(v is not None for v, t in zip(ins, node.input) if t) \
                and node.domain in ("", "ai.onnx") else None
            if out is None or not all(isinstance(v, np.ndarray) for v in out):
                keep.append(node)
                continue
            self.consts.update(zip(node.output, out))
            self.folded[node.op_type] = self.folded.get(node.op_type, 0) + 1
        self.nodes = keep

    def reshape_target(self, node: Any) -> Any:
        """A Reshape whose target holds the batch size (traced [2, -1], or [N, -1] from
        Shape/Gather) gets 0 there: "keep this dimension", which is the batch. ``allowzero``
        (the dynamo exporter's [2, 48]) only changes what a 0 in the target means, so a
        target without one loses it."""
        if node.op_type != "Reshape" or len(node.input) < 2:
            return node
        data = self.shapes.get(node.input[0])
        target = self.value(node.input[1])
        allowzero = int(self.attrs(node).get("allowzero", 0))
        if data is None or (allowzero and not (isinstance(target, np.ndarray)
                                               and target.size and np.all(target != 0))):
            return node
        if isinstance(target, SymInts):
            entries = target.entries()
            if target.values.ndim != 1 or None in entries:
                return node
            if any(e == "N" and (i >= len(data) or data[i] != "N")
                   for i, e in enumerate(entries)):
                raise self.fail(node, f"reshapes to {entries} (N: the batch size), moving the "
                                      "batch off its axis; NetBuilder keeps the batch first")
            fixed = [0 if e == "N" else int(e) for e in entries]
        elif isinstance(target, np.ndarray) and target.dtype.kind in "iu" and \
                self.batch is not None and target.ndim == 1:
            fixed = [int(t) for t in target]
            if not any(t == self.batch and i < len(data) and data[i] == "N"
                       for i, t in enumerate(fixed)):
                return node
            fixed = [0 if t == self.batch and i < len(data) and data[i] == "N" else t
                     for i, t in enumerate(fixed)]
        else:
            return node
        new = self.copy_node(node)
        new.input[1] = self.add_const(f"{node.input[1]}/batch_kept", np.array(fixed, np.int64))
        if allowzero:  # the 0 just written means "the batch": the default reading of a 0
            keep = [a for a in new.attribute if a.name != "allowzero"]
            del new.attribute[:]
            new.attribute.extend(keep)
        self.notes.append(f"{label(node)}: target {_text(target)} keeps the batch: {fixed}")
        return new

    def check_symbolic_uses(self) -> None:
        """A value computed from the batch size can only be a Reshape target (handled) or an
        RNN's initial state (refused by the importer with its own message)."""
        prod = {}
        for n in self.model.graph.node:
            for t in n.output:
                prod[t] = n
        for node in self.nodes:
            for k, t in enumerate(node.input):
                if t not in self.sym or (node.op_type in RNN_OPS and k in (5, 6)):
                    continue
                src = prod.get(t)
                origin = f" by {label(src)}" if src is not None else ""
                v = self.sym[t]
                what = (f"a tensor of {v.value!r} shaped {list(v.shape)}"
                        if isinstance(v, Filled) else f"the values {v.entries()}")
                raise self.fail(node, f"reads '{t}', {what} (N: the batch size, None: unknown) "
                                      f"computed from the input's shape{origin}; NetBuilder can "
                                      "use such values only as a Reshape target or a zero "
                                      "initial RNN state: compute it from constants instead")

    # ----- structural rewrites --------------------------------------------------------------
    def drop_dead(self) -> None:
        live = {o.name for o in self.outputs}
        keep = []
        for node in reversed(self.nodes):
            if any(t in live for t in node.output if t):
                keep.append(node)
                live.update(t for t in node.input if t)
        self.nodes = keep[::-1]

    def gather_size_one(self) -> None:
        """Gather of a scalar index on an axis of size 1 is a Squeeze (``h_n[-1]`` of one
        layer, one direction)."""
        for i, node in enumerate(self.nodes):
            if node.op_type != "Gather" or len(node.input) < 2:
                continue
            idx = self.scalar_int(node.input[1])
            shape = self.shapes.get(node.input[0])
            if idx is None or self.consts[node.input[1]].ndim != 0 or shape is None or \
                    idx not in (0, -1):
                continue
            a = int(self.attrs(node).get("axis", 0))
            a = a + len(shape) if a < 0 else a
            if not 0 <= a < len(shape) or shape[a] != 1:
                continue
            self.nodes[i] = self.squeeze(node.input[0], node.output[0], a,
                                         node.name or node.output[0])
            self.notes.append(f"{label(node)} reads the only entry of axis {a}: a Squeeze")

    def squeeze(self, src: str, out: str, axis: int, name: str) -> Any:
        if self.opset >= 13:
            axes = self.add_const(f"{name}/axes", np.array([axis], np.int64))
            return self.h.make_node("Squeeze", [src, axes], [out], name=name)
        return self.h.make_node("Squeeze", [src], [out], name=name, axes=[axis])

    def gemm_trans_a(self) -> None:
        """Gemm(Transpose(x), W, transA = 1) is Gemm(x, W)."""
        prod = self.producers()
        for i, node in enumerate(self.nodes):
            if node.op_type != "Gemm" or not int(self.attrs(node).get("transA", 0)):
                continue
            p = prod.get(node.input[0])
            if p is None or p.op_type != "Transpose" or \
                    list(self.attrs(p).get("perm", [1, 0])) != [1, 0]:
                continue
            new = self.h.make_node("Gemm", [p.input[0], *node.input[1:]], list(node.output),
                                   name=node.name)
            for a in node.attribute:
                if a.name != "transA":
                    new.attribute.append(a)
            self.nodes[i] = new
            self.notes.append(f"{label(node)}: transA of Transpose '{p.name}' cancels")

    def unsqueeze_and_squeeze(self) -> None:
        """Unsqueeze of data (``x.unsqueeze(-1)``) and Squeeze without axes become a Reshape /
        a Squeeze with explicit axes, from the inferred shape; the batch axis stays."""
        for i, node in enumerate(self.nodes):
            if node.op_type not in ("Unsqueeze", "Squeeze") or not node.input or \
                    self.value(node.input[0]) is not None:
                continue
            shape = self.shapes.get(node.input[0])
            out = self.shapes.get(node.output[0])
            if shape is None or out is None or not shape or shape[0] != "N" or \
                    any(not isinstance(d, int) for d in (*shape[1:], *out[1:])) or \
                    not out or out[0] != "N":
                continue
            if node.op_type == "Squeeze":
                if (len(node.input) > 1 and node.input[1]) or "axes" in self.attrs(node):
                    continue
                axes = [k for k, d in enumerate(shape) if d == 1]
                if not axes:
                    continue
                self.nodes[i] = self.squeeze_all(node, axes)
                continue
            target = self.add_const(f"{node.output[0]}/shape", np.array([0, *out[1:]], np.int64))
            self.nodes[i] = self.h.make_node("Reshape", [node.input[0], target],
                                             [node.output[0]], name=node.name or node.output[0])
            self.notes.append(f"{label(node)} on data: a Reshape to {list(out[1:])} per sample")

    def squeeze_all(self, node: Any, axes: list[int]) -> Any:
        name = node.name or node.output[0]
        if self.opset >= 13:
            ax = self.add_const(f"{name}/axes", np.array(axes, np.int64))
            return self.h.make_node("Squeeze", [node.input[0], ax], list(node.output), name=name)
        return self.h.make_node("Squeeze", [node.input[0]], list(node.output), name=name,
                                axes=axes)

def _text(v: Any) -> str:
    return str(v.entries()) if isinstance(v, SymInts) else str(np.asarray(v).tolist())


def check_names(model: Any, source: str) -> None:
    """Refuse names that are not text (a damaged file: protobuf hands them over as bytes, or
    fails to decode them)."""
    g = model.graph
    try:
        names = [g.name, *(n.name for n in g.node), *(n.op_type for n in g.node),
                 *(t for n in g.node for t in (*n.input, *n.output)),
                 *(t.name for t in g.initializer), *(v.name for v in (*g.input, *g.output)),
                 *(s for p in model.metadata_props for s in (p.key, p.value))]
    except UnicodeDecodeError:
        names = [b""]
    if not all(isinstance(s, str) for s in names):
        raise OnnxImportError(f"{source} has names that are not valid UTF-8 text: the file is "
                              "damaged")


def normalize_graph(onnx: Any, model: Any, consts: dict[str, np.ndarray], source: str,
                    rewrites: Sequence[Callable[[Any], None]] = ()) -> Normalized:
    """The rewritten graph of ``model`` (``consts``: its initialisers, gains folded values).
    ``rewrites`` (the layers' ``rewrite_onnx``) run on the rewriter first, before folding.

    Raises OnnxImportError when a constant computation is impossible or too large, or when a
    value computed from the batch size is used where NetBuilder cannot follow it."""
    try:
        with fold_budget([v.size for v in consts.values()]):
            return _Rewriter(onnx, model, consts, source, rewrites).run()
    except FoldError as exc:
        raise OnnxImportError(f"{source}: {exc.message}") from None


__all__ = ["Normalized", "check_names", "check_size", "node_attrs", "normalize_graph",
           "tensor_array"]

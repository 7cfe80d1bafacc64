"""Import an ONNX model as an engine Graph and its weights.

Two passes. First ``onnx_patterns.normalize_graph`` rewrites, op by op and knowing no layer
type, what exporters write around the layers (constant folding left undone, shape arithmetic
of the batch size, zero RNN states, time-major and stacked RNNs, ``h_n[-1]``: see there) into
one canonical form. Then the ``Importer`` here maps that graph to layers.

Supported: the op subset ``onnx_export`` writes (and the same ops from other tools where they
mean the same thing). Each layer type converts the ops it lists in ``onnx_ops`` (its
``from_onnx``, e.g. Dense: Gemm, MatMul + the Add of a bias; SpatialTransformer: GridSample
on the affine grid it exports); the importer itself handles the ops that only move data
(Identity, Cast between float types, Constant, Transpose, Squeeze, and the reshapes and
Gathers after a recurrent op).
``supported_ops()`` lists them all; anything else is refused in one message listing every
unsupported node.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from ..errors import GraphFormatError, NetBuilderError
from ..graph import Edge, Graph, Node
from ..registry import Layer, Shape, fmt_shape, get_layer_class, layer_types
from .common import require
from .onnx_export import META_GRAPH, META_OUTPUTS, META_TRAINING
from .onnx_fold import FOLD_OPS
from .onnx_hints import refusal_hint
from .onnx_import_ops import (
    PENDING_OPS,
    Mapped,
    OnnxImportError,
    PendingRNN,
    Val,
    finish_pending,
    pending_step,
    short_float,
)
from .onnx_patterns import check_names, normalize_graph, tensor_array

# Ops the importer handles itself: they move or view data and make no node of their own.
STRUCTURAL_OPS = frozenset({"Identity", "Cast", "Constant", "Transpose", "Squeeze",
                            "ReduceSum"})


def onnx_handlers() -> dict[str, type[Layer]]:
    """ONNX op type -> the registered layer type whose ``from_onnx`` converts it."""
    out: dict[str, type[Layer]] = {}
    for cls in layer_types().values():
        if not cls.capabilities().onnx_import:
            continue
        for op in cls.onnx_ops:
            if op in out or op in STRUCTURAL_OPS:
                raise TypeError(f"ONNX op {op} is claimed by {cls.type_name} and "
                                f"{out[op].type_name if op in out else 'the importer'}")
            out[op] = cls
    return out


def onnx_const_handlers() -> dict[str, type[Layer]]:
    """ONNX op type -> the layer type converting its nodes with one constant operand
    (``Layer.onnx_const_ops``: Scale for Mul, Add, Sub and Div by a number)."""
    out: dict[str, type[Layer]] = {}
    for cls in layer_types().values():
        for op in cls.onnx_const_ops if cls.capabilities().onnx_import else ():
            if op in out:
                raise TypeError(f"ONNX op {op} with a constant is claimed by {cls.type_name} "
                                f"and {out[op].type_name}")
            out[op] = cls
    return out


def onnx_rewrites() -> list[Any]:
    """The layers' ``rewrite_onnx`` hooks (those that override it), for the rewrite pass."""
    return [cls.rewrite_onnx for cls in layer_types().values()
            if cls.rewrite_onnx.__func__ is not Layer.rewrite_onnx.__func__]


def supported_ops() -> frozenset[str]:
    """Every ONNX op type the importer reads (the layers' ``onnx_ops`` and
    ``onnx_const_ops``, and its own)."""
    return frozenset(onnx_handlers()) | frozenset(onnx_const_handlers()) | STRUCTURAL_OPS


def _sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_\-]", "_", name).strip("_-")
    if not s or not s[0].isalpha():
        s = "n_" + s if s else "node"
    return s[:56]


class Importer:
    """One conversion; ``run()`` returns (graph, state).

    The ``imp`` that ``Layer.from_onnx`` / ``claim_onnx`` receive: ``vals`` maps ONNX tensor
    names to ``Val`` (an engine node's output) or ``PendingRNN``; ``consts`` the constant
    tensors; ``skip`` indices of nodes already converted with another; ``matches`` what a
    ``claim_onnx`` found for its node (by index). Helpers read attributes and constants,
    add engine nodes (``add``) and fail with a message naming the ONNX node (``fail``)."""

    Val = Val
    PendingRNN = PendingRNN

    def __init__(self, model: Any, source: str) -> None:
        self.onnx = require("onnx")
        self.numpy_helper = self.onnx.numpy_helper
        self.model = model
        self.source = source
        self.g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          0)
        check_names(model, source)
        self.meta = {p.key: p.value for p in model.metadata_props}
        self.consts: dict[str, np.ndarray] = {
            t.name: tensor_array(self.onnx, t, "initialiser") for t in self.g.initializer}
        # What exporters write around the layers (constant folding left undone, shape
        # arithmetic of the batch size, zero RNN states, time-major sequences...) is rewritten
        # first into the forms the layers' hooks map; ``notes`` says what was done.
        norm = normalize_graph(self.onnx, model, self.consts, source, onnx_rewrites())
        self.notes: list[str] = norm.notes
        self.misses: list[str] = norm.misses  # what the layers' rewrites could not read
        self.g = self.onnx.helper.make_graph(norm.nodes, self.g.name, norm.inputs, norm.outputs)
        self.vals: dict[str, Val | PendingRNN] = {}
        self.graph = Graph("imported")
        self.state: dict[str, np.ndarray] = {}
        self.shapes: dict[str, Shape] = {}
        self.taken: set[str] = set()
        self.consumers: dict[str, list[Any]] = {}
        self.producer: dict[str, Any] = {}
        for node in self.g.node:
            for t in node.input:
                if t:
                    self.consumers.setdefault(t, []).append(node)
            for t in node.output:
                if t:
                    self.producer[t] = node
        self.outputs = [o.name for o in self.g.output]
        # node -> its index, for index_of (a scan per call is slow on 10,000-node graphs)
        self.positions = {id(n): i for i, n in enumerate(self.g.node)}
        self.skip: set[int] = set()
        self.matches: dict[int, Any] = {}
        # engine node -> the ONNX Transpose swapping its sample axes, and the Permute made
        self.transposes: dict[str, Any] = {}
        self.permuted: dict[str, Val] = {}
        self.handlers = onnx_handlers()
        self.const_handlers = onnx_const_handlers()
        self.mapped: list[Mapped] = []  # node by node, for the import report

    # ----- helpers ----------------------------------------------------------------------------
    def fail(self, node: Any, message: str) -> OnnxImportError:
        return OnnxImportError(f"{self.source}: {node.op_type} node '{node.name or node.output[0]}' "
                               f"{message}")

    def attrs(self, node: Any) -> dict[str, Any]:
        h = self.onnx.helper
        out = {}
        for a in node.attribute:
            v = h.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [s.decode("utf-8", "replace") for s in v]
            elif hasattr(v, "dims") and hasattr(v, "data_type"):
                v = self.numpy_helper.to_array(v)
            elif isinstance(v, float):
                v = short_float(v)
            out[a.name] = v
        return out

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def need_const(self, node: Any, i: int, what: str) -> np.ndarray:
        v = self.const(node.input[i]) if i < len(node.input) else None
        if v is None:
            raise self.fail(node, f"needs a constant {what} (input {i}), got a computed tensor")
        return v

    def value(self, node: Any, i: int = 0, allow_perm: bool = False) -> Val:
        name = node.input[i]
        v = self.vals.get(name)
        if v is None:
            if name in self.consts:
                raise self.fail(node, f"takes the constant '{name}' where NetBuilder needs data "
                                      "flowing from an Input")
            raise self.fail(node, f"reads '{name}', which no supported node produces")
        if isinstance(v, PendingRNN):
            raise self.fail(node, f"uses the raw output of recurrent node '{v.node}' in a way "
                                  "NetBuilder cannot express (expected the transpose/reshape "
                                  "that gives (N, T, H) or (N, H))")
        if v.perm and not allow_perm and self.swaps_sample_axes(v):
            return self.unpermute(name, v)
        if v.perm and not allow_perm:
            raise self.fail(node, f"works on a transposed tensor (perm {list(v.perm)}); "
                                  "NetBuilder layers keep the batch-first layout")
        return v

    @staticmethod
    def swaps_sample_axes(v: Val) -> bool:
        """Whether ``v`` is its node's (T, F) seen as (F, T): what a Permute node does."""
        return v.perm == (0, 2, 1) and len(v.shape) == 2 and v.view is None

    def unpermute(self, tensor: str, v: Val) -> Val:
        """A Permute node making the transposed ``tensor`` batch-first (named after the
        Transpose that made it), bound in place of the view."""
        made = self.permuted.get(v.node)
        if made is None:
            src = self.transposes.get(v.node)
            nid = self.new_id(self.hint(src) if src is not None else f"{v.node}_permute")
            self.graph.nodes[nid] = Node(nid, "Permute", {})
            self.graph.edges.append(Edge(v.node, nid, 0))
            made = self.permuted[v.node] = Val(nid, (v.shape[1], v.shape[0]))
            self.shapes[nid] = made.shape
        self.vals[tensor] = made
        return made

    def only_consumer(self, tensor: str) -> Any | None:
        cons = self.consumers.get(tensor, [])
        return cons[0] if len(cons) == 1 and tensor not in self.outputs else None

    def new_id(self, hint: str) -> str:
        base = _sanitize(hint)
        nid, k = base, 2
        while nid in self.taken:
            nid = f"{base}_{k}"
            k += 1
        self.taken.add(nid)
        return nid

    def hint(self, node: Any) -> str:
        out = node.output[0]
        if node.name and node.name not in self.outputs:
            return node.name
        return out if out not in self.outputs else (node.name or node.op_type.lower())

    def materialize(self, v: Val, node: Any) -> Val:
        """A Val whose ONNX shape is the engine node's shape (inserting a Reshape node)."""
        if v.view is None or v.view == v.shape:
            return Val(v.node, v.shape, v.perm)
        return self.add(node, "Reshape", {"shape": list(v.view)}, [Val(v.node, v.shape)],
                        hint=f"{v.node}_reshape")

    def add(self, node: Any, type_name: str, params: dict[str, Any], inputs: list[Val],
            state: dict[str, np.ndarray] | None = None, hint: str | None = None) -> Val:
        """Add an engine node fed by ``inputs``; return its Val."""
        nid = self.new_id(hint or self.hint(node))
        cls = get_layer_class(type_name)
        try:
            layer = cls(nid, params, [i.shape for i in inputs])
        except NetBuilderError as exc:
            raise self.fail(node, f"maps to a {type_name} that does not fit: {exc.message}") \
                from None
        self.graph.nodes[nid] = Node(nid, type_name, params)
        for port, v in enumerate(inputs):
            self.graph.edges.append(Edge(v.node, nid, port))
        want = {**layer.param_shapes(), **layer.buffer_shapes()}
        for k, arr in (state or {}).items():
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if arr.shape != tuple(want[k]):
                raise self.fail(node, f"has {k} shaped {fmt_shape(arr.shape)}; the {type_name} "
                                      f"needs {fmt_shape(want[k])}")
            self.state[f"{nid}.{k}"] = arr
        self.shapes[nid] = layer.out_shape
        return Val(nid, layer.out_shape)

    # ----- entry ----------------------------------------------------------------------------
    def run(self) -> tuple[Graph, dict[str, np.ndarray]]:
        self._check_ops()
        self.output_ids = {name: self.new_id(name) for name in self.outputs}
        init_names = set(self.consts)
        for inp in self.g.input:
            if inp.name not in init_names:
                self._add_input(inp)
        taker: dict[int, int] = {}  # a node another one's layer took in -> that one
        for idx, node in enumerate(self.g.node):
            if node.op_type in self.handlers:
                before = set(self.skip)
                self.handlers[node.op_type].claim_onnx(self, idx, node)
                taker.update(dict.fromkeys(self.skip - before, idx))
        made: dict[int, tuple[tuple[str, str], ...]] = {}
        for idx, node in enumerate(self.g.node):
            if idx in self.skip:
                continue
            ids, before = list(self.graph.nodes), set(self.skip)
            pend = self.vals.get(node.input[0]) if node.input else None
            if node.op_type in PENDING_OPS and isinstance(pend, PendingRNN):
                pending_step(self, node, pend)
            elif node.op_type in self.handlers:
                self.handlers[node.op_type].from_onnx(self, idx, node)
            elif node.op_type in self.const_handlers:
                self.const_handlers[node.op_type].from_onnx(self, idx, node)
            else:
                getattr(self, "op_" + node.op_type)(node)
            made[idx] = tuple((nid, self.graph.nodes[nid].type)
                              for nid in list(self.graph.nodes)[len(ids):])
            taker.update(dict.fromkeys(self.skip - before, idx))
        for idx, node in enumerate(self.g.node):
            owner = taker.get(idx)
            self.mapped.append(Mapped(node.op_type, node.name or node.output[0],
                                      made.get(idx, ()), "" if owner is None else
                                      self.g.node[owner].name or self.g.node[owner].output[0]))
        self._add_outputs()
        try:
            training = json.loads(self.meta.get(META_TRAINING, "{}"))
        except ValueError:
            training = {}
        self.graph.training = training if isinstance(training, dict) else {}
        return self.graph, self.state

    def _check_ops(self) -> None:
        bad: dict[str, list[str]] = {}
        for n in self.g.node:
            if n.domain not in ("", "ai.onnx") or not (n.op_type in self.handlers
                                                        or n.op_type in self.const_handlers
                                                        or n.op_type in STRUCTURAL_OPS):
                key = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                bad.setdefault(key, []).append(n.name or n.output[0])
        if bad:
            parts = []
            for op, names in sorted(bad.items()):
                shown = ", ".join(f"'{s}'" for s in names[:3]) + (" …" if len(names) > 3 else "")
                parts.append(f"{op} ({shown})")
            folded = sorted(op for op in bad if op in FOLD_OPS)
            hint = (f" ({', '.join(folded)} can be imported only where they compute constants or "
                    "the batch size; here they work on data)") if folded else ""
            raise OnnxImportError(f"{self.source}: NetBuilder cannot import these ONNX ops: "
                                  + "; ".join(parts) + hint)

    def _add_input(self, inp: Any) -> None:
        tt = inp.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) < 2 or any(d is None or d <= 0 for d in dims[1:]):
            shown = [d or "?" for d in dims]
            raise OnnxImportError(f"{self.source}: input '{inp.name}' has shape {shown}; "
                                  "NetBuilder needs (batch, fixed per-sample sizes...)")
        nid = self.new_id(inp.name)
        shape = tuple(int(d) for d in dims[1:])
        self.graph.nodes[nid] = Node(nid, "Input", {"shape": list(shape)})
        self.shapes[nid] = shape
        self.vals[inp.name] = Val(nid, shape)

    def _add_outputs(self) -> None:
        try:
            heads = json.loads(self.meta.get(META_OUTPUTS, "{}") or "{}")
        except ValueError:
            heads = {}
        for name in self.outputs:
            v = self.vals.get(name)
            if isinstance(v, Val) and self.swaps_sample_axes(v):
                v = self.unpermute(name, v)
            if name in self.consts:
                raise OnnxImportError(f"{self.source}: output '{name}' is a constant; NetBuilder's "
                                      "outputs are computed from inputs")
            if not isinstance(v, Val) or v.perm:
                raise OnnxImportError(f"{self.source}: output '{name}' is not a batch-first "
                                      "result of supported layers")
            node = self.producer.get(name)
            v = self.materialize(v, node) if node is not None else v
            oid = self.output_ids[name]
            head = heads.get(name) if isinstance(heads, dict) else None
            head = head if isinstance(head, dict) else {}
            params = {k: head[k] for k in ("loss", "weight", "target") if k in head}
            params.setdefault("loss", self._guess_loss(v))
            self.graph.nodes[oid] = Node(oid, "Output", params)
            self.graph.edges.append(Edge(v.node, oid, 0))

    def _guess_loss(self, v: Val) -> str:
        """The loss a layer folds into (Sigmoid: bce, Softmax: cross-entropy), else
        cross-entropy for several scores, else mse."""
        t = self.graph.nodes[v.node].type
        folded = get_layer_class(t).loss_fold
        if folded:
            return folded
        if len(v.shape) >= 1 and v.shape[-1] >= 2 and t != "Input":
            return "cross_entropy"
        return "mse"

    # ----- simple ops -------------------------------------------------------------------------
    def op_Identity(self, node: Any) -> None:
        src = node.input[0]
        if src in self.consts:
            self.consts[node.output[0]] = self.consts[src]
        else:
            self.vals[node.output[0]] = self.vals[src] if src in self.vals else self.value(node)

    def op_Cast(self, node: Any) -> None:
        # NetBuilder computes in float32: a cast to float / double changes nothing, but a cast
        # to an integer truncates and one to float16 rounds, so those are refused unless the
        # integers are only token ids for embedding tables (Casts of constants were folded).
        tp = self.onnx.TensorProto
        to = int(self.attrs(node).get("to", 0))
        if to in (tp.FLOAT, tp.DOUBLE):
            self.op_Identity(node)
            return
        name = tp.DataType.Name(to) if to in tp.DataType.values() else str(to)
        ints = (tp.INT64, tp.INT32, tp.INT16, tp.INT8, tp.UINT8, tp.UINT16, tp.UINT32, tp.UINT64)
        readers = self.consumers.get(node.output[0], [])
        if to in ints and readers and node.output[0] not in self.outputs and all(
                r.op_type == "Gather" and list(r.input).index(node.output[0]) == 1 and
                r.input[0] in self.consts for r in readers):
            self.op_Identity(node)  # embedding ids: the Embedding layer takes whole numbers
            return
        raise self.fail(node, f"converts to {name}, which "
                              + ("rounds toward zero" if to in ints else "changes the values")
                              + "; NetBuilder computes in float32 and has no such layer: "
                              "remove the cast (casts to float and double are fine)")

    def elementwise(self, node: Any, type_name: str, params: dict[str, Any] | None = None
                    ) -> None:
        """An engine node of ``type_name`` on the node's input, keeping a transposed view
        transposed (an elementwise op commutes with it)."""
        x = self.value(node, allow_perm=True)
        y = self.add(node, type_name, params or {}, [Val(x.node, x.shape)] if x.perm else
                     [self.materialize(x, node)])
        self.vals[node.output[0]] = Val(y.node, y.shape, x.perm)

    def index_of(self, node: Any) -> int:
        """Position of ``node`` in the ONNX graph (for ``skip``)."""
        i = self.positions.get(id(node))
        if i is None or self.g.node[i] is not node:
            raise AssertionError(node.name)
        return i

    # ----- ops that move data ---------------------------------------------------------------
    def reshape_to(self, node: Any, v: Val, shape: Shape, type_name: str) -> None:
        """Bind the node's output to ``v`` seen as ``shape``: the same node if the shape is
        unchanged, else a new Flatten or Reshape node."""
        if shape == v.shape:
            self.vals[node.output[0]] = Val(v.node, v.shape)
            return
        params = {} if type_name == "Flatten" else {"shape": list(shape)}
        self.vals[node.output[0]] = self.add(node, type_name, params, [Val(v.node, v.shape)])

    def op_Squeeze(self, node: Any) -> None:
        v = self.value(node)
        axes = self.axes(node)
        rank = len(v.onnx_shape) + 1
        axes = sorted(a + rank if a < 0 else a for a in axes)
        full = (0, *v.onnx_shape)
        if 0 in axes or any(full[a] != 1 for a in axes):
            raise self.fail(node, "squeezes an axis that is not of size 1 or the batch")
        shape = tuple(d for i, d in enumerate(full) if i and i not in axes)
        self.reshape_to(node, v, shape, "Reshape")

    def axes(self, node: Any) -> list[int]:
        """The ``axes`` of a Squeeze / Reduce node (input 1 from opset 13, else the attribute)."""
        if len(node.input) > 1 and node.input[1]:
            return self.need_const(node, 1, "axes").astype(np.int64).reshape(-1).tolist()
        return list(self.attrs(node).get("axes", []))

    def op_Transpose(self, node: Any) -> None:
        x = self.value(node, allow_perm=True)
        x = x if x.perm else self.materialize(x, node)
        rank = len(x.shape) + 1
        perm = list(self.attrs(node).get("perm", list(range(rank))[::-1]))
        if sorted(perm) != list(range(rank)):
            raise self.fail(node, f"has perm {perm} for a tensor of rank {rank}")
        base = list(x.perm or range(rank))
        new = tuple(base[p] for p in perm)
        self.vals[node.output[0]] = Val(x.node, x.shape, () if new == tuple(range(rank)) else new)
        if new == (0, 2, 1):
            self.transposes.setdefault(x.node, node)

    def op_ReduceSum(self, node: Any) -> None:
        raise self.fail(node, "sums over axes; NetBuilder has no reduction layer")

    def finish_pending(self, tensor: str, pend: PendingRNN) -> None:
        """Add a pending recurrent output's node once ``tensor`` is batch-first."""
        finish_pending(self, tensor, pend)


def import_onnx(source: Any, name: str | None = None,
                notes: list[str] | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """(Graph, state) from an ONNX file path, bytes or ``onnx.ModelProto``.

    ``state`` maps full parameter names (``"conv1.weight"``) to float32 arrays, ready for
    ``Network.load_state_dict``. ``notes``, if given, gets one line per rewrite made on the
    way (constants folded, zero RNN states dropped, time-major inputs read batch-first...).
    Raises OnnxImportError (a NetBuilderError) naming every unsupported op, or the node whose
    layout NetBuilder cannot express. ``onnx_report.import_onnx_report`` says the same as a
    report (what became what, what was folded, what was refused)."""
    graph, state, importer = import_with_importer(source, name)
    if notes is not None:
        notes.extend(importer.notes)
    return graph, state


def import_with_importer(source: Any, name: str | None = None
                         ) -> tuple[Graph, dict[str, np.ndarray], Importer]:
    """``import_onnx`` that also returns the Importer (its ``mapped`` and ``notes``)."""
    onnx = require("onnx")
    label = "model"
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        label = os.fspath(source)
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise GraphFormatError(f"no such ONNX file: {label}") from None
        except OSError as exc:
            raise GraphFormatError(f"cannot read {label}: {exc.strerror or exc}") from None
    else:
        data = None
    if data is not None:
        try:
            model = onnx.load_model_from_string(data)
        except Exception as exc:
            raise GraphFormatError(f"{label} is not an ONNX model ({type(exc).__name__})") \
                from None
    else:
        model = source
    if not len(model.graph.node):
        raise GraphFormatError(f"{label} holds no ONNX graph")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise GraphFormatError(f"{label} is not a valid ONNX model: {first}") from None
    importer = None
    try:
        importer = Importer(model, label)
        graph, state = importer.run()
    except OnnxImportError as exc:
        hints = [refusal_hint(model)]  # the PyTorch module behind the refused node, if known
        if importer is not None:
            hints += importer.misses
        hint = "; ".join(h for h in hints if h)
        if not hint:
            raise
        raise OnnxImportError(f"{exc}. In PyTorch terms: {hint}") from None
    except NetBuilderError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        raise OnnxImportError(f"{label}: malformed ONNX model ({type(exc).__name__}: {exc})") \
            from None
    stem = os.path.splitext(os.path.basename(label))[0] if label != "model" else ""
    graph.name = name or importer.meta.get(META_GRAPH) or stem or model.graph.name or "imported"
    graph.validate()
    return graph, state, importer


__all__ = ["OnnxImportError", "import_onnx", "onnx_handlers", "supported_ops"]

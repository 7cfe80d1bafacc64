"""Import an ONNX model as an engine Graph and its weights.

First ``onnx_patterns.normalize_graph`` rewrites what exporters write around the layers
(constant folding left undone, shape arithmetic of the batch size, zero RNN states,
time-major and stacked RNNs: see there); then the handlers here map ops to layers.

Supported: the op subset ``onnx_export`` writes (and the same ops from other tools where they
mean the same thing): Gemm, MatMul (+ Add of a bias), Conv, MaxPool, AveragePool,
GlobalAveragePool, ReduceMean over H and W, Flatten, Reshape, Relu, LeakyRelu, PRelu, Sigmoid,
Tanh, HardSigmoid (alpha 0.25, beta 0.5), Clip, x·Sigmoid(βx), Softmax, BatchNormalization,
Dropout (inference), Add, Sum, Concat, Gather (+ Cast) for embeddings, RNN / LSTM / GRU with
the transposes and reshapes around them, GridSample on an affine grid (a spatial
transformer), Cast between float types, and Identity. Anything else is refused in one message
listing every unsupported node.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

import numpy as np

from ..errors import GraphFormatError, NetBuilderError
from ..graph import Edge, Graph, Node
from ..registry import Shape, fmt_shape, get_layer_class
from .common import require
from .onnx_export import META_GRAPH, META_OUTPUTS, META_TRAINING
from .onnx_fold import FOLD_OPS
from .onnx_import_ops import ImageOps, OnnxImportError, Val, short_float
from .onnx_patterns import check_names, normalize_graph, tensor_array
from .onnx_recurrent import RNN_OPS, PendingRNN, convert_rnn, pending_step

SUPPORTED_OPS = frozenset({
    "Gemm", "MatMul", "Add", "Sum", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
    "ReduceMean", "Flatten", "Reshape", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh",
    "HardSigmoid", "Clip", "Mul", "Softmax", "BatchNormalization", "Dropout", "Concat", "Gather",
    "Cast", "Identity", "Constant", "Transpose", "Squeeze", "ReduceSum", "GridSample",
    *RNN_OPS})


def _sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_\-]", "_", name).strip("_-")
    if not s or not s[0].isalpha():
        s = "n_" + s if s else "node"
    return s[:56]


class Importer(ImageOps):
    """One conversion; ``run()`` returns (graph, state)."""

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
        # first into the forms the handlers below map; ``notes`` says what was done.
        norm = normalize_graph(self.onnx, model, self.consts, source)
        self.notes: list[str] = norm.notes
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
        # node -> its index, for _index (a scan per call is slow on 10,000-node graphs)
        self.positions = {id(n): i for i, n in enumerate(self.g.node)}
        self.skip: set[int] = set()
        self.stn: dict[int, tuple[str, tuple[int, int]]] = {}

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
        if v.perm and not allow_perm:
            raise self.fail(node, f"works on a transposed tensor (perm {list(v.perm)}); "
                                  "NetBuilder layers keep the batch-first layout")
        return v

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
        self._find_spatial_transformers()
        for idx, node in enumerate(self.g.node):
            if idx in self.skip:
                continue
            if idx in self.stn:
                self._spatial_transformer(node, *self.stn[idx])
                continue
            if node.op_type in RNN_OPS:
                convert_rnn(self, node)
                continue
            getattr(self, "op_" + node.op_type)(node)
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
            if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS:
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
        t = self.graph.nodes[v.node].type
        if t == "Sigmoid":
            return "bce"
        if t == "Softmax" or (len(v.shape) >= 1 and v.shape[-1] >= 2 and t != "Input"):
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

    def op_Dropout(self, node: Any) -> None:
        a = self.attrs(node)
        ratio = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if len(node.input) > 1 and node.input[1] and ratio is None:
            raise self.fail(node, "has a computed ratio; NetBuilder needs a constant one")
        # training_mode (opset 12+) true drops units at inference too: refused, as
        # BatchNormalization in training mode is; false or absent is plain inference.
        if len(node.input) > 2 and node.input[2]:
            mode = self.const(node.input[2])
            if mode is None or mode.size != 1 or bool(mode.reshape(())):
                raise self.fail(node, "is in training mode (training_mode = "
                                      f"{'computed' if mode is None else bool(mode.reshape(-1)[0])})"
                                      "; export the model for inference (model.eval())")
        if len(node.output) > 1 and node.output[1] and (
                node.output[1] in self.consumers or node.output[1] in self.outputs):
            raise self.fail(node, "returns its mask; NetBuilder's Dropout does not")
        rate = short_float(ratio) if ratio is not None else float(a.get("ratio", 0.5))
        x = self.value(node)
        self.vals[node.output[0]] = self.add(node, "Dropout", {"rate": rate},
                                             [self.materialize(x, node)])

    def _elementwise(self, node: Any, type_name: str, params: dict[str, Any] | None = None) -> None:
        x = self.value(node, allow_perm=True)
        y = self.add(node, type_name, params or {}, [Val(x.node, x.shape)] if x.perm else
                     [self.materialize(x, node)])
        self.vals[node.output[0]] = Val(y.node, y.shape, x.perm)

    def op_Relu(self, node: Any) -> None:
        self._elementwise(node, "ReLU")

    def op_Tanh(self, node: Any) -> None:
        self._elementwise(node, "Tanh")

    def op_LeakyRelu(self, node: Any) -> None:
        self._elementwise(node, "LeakyReLU", {"alpha": float(self.attrs(node).get("alpha", 0.01))})

    def op_HardSigmoid(self, node: Any) -> None:
        a = self.attrs(node)
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if not (math.isclose(alpha, 0.25, rel_tol=1e-6) and math.isclose(beta, 0.5, rel_tol=1e-6)):
            torch = " (PyTorch's Hardsigmoid / Hardswish)" if math.isclose(alpha, 1 / 6,
                                                                          rel_tol=1e-4) else ""
            raise self.fail(node, f"is clip(αx + β, 0, 1) with α = {alpha:g}, β = {beta:g}"
                                  f"{torch}; NetBuilder's HardSigmoid has α = 0.25, β = 0.5 only "
                                  "(other values come with issue 19's phase 2): use "
                                  "nn.Sigmoid, or that HardSigmoid, in the model before export")
        self._elementwise(node, "HardSigmoid")

    def op_Clip(self, node: Any) -> None:
        a = self.attrs(node)
        lo = self.const(node.input[1]) if len(node.input) > 1 else a.get("min")
        hi = self.const(node.input[2]) if len(node.input) > 2 else a.get("max")
        if (len(node.input) > 1 and node.input[1] and lo is None) or \
                (len(node.input) > 2 and node.input[2] and hi is None):
            raise self.fail(node, "needs constant min and max")
        lo_f = -math.inf if lo is None else short_float(lo)
        hi_f = math.inf if hi is None else short_float(hi)
        if lo_f == -math.inf and hi_f == math.inf:  # no bounds: nothing to do
            self.vals[node.output[0]] = self.value(node, allow_perm=True)
        elif lo_f == 0.0 and hi_f == math.inf:
            self._elementwise(node, "ReLU")
        elif math.isfinite(lo_f) and math.isfinite(hi_f):
            self._elementwise(node, "HardTanh", {"min_val": lo_f, "max_val": hi_f})
        else:
            raise self.fail(node, f"clips to [{lo_f:g}, {hi_f:g}], bounded on one side only; "
                                  "NetBuilder's HardTanh needs both bounds (and Clip(0, ∞) is a "
                                  "ReLU): clamp to a finite min and max before export")

    def op_PRelu(self, node: Any) -> None:
        x = self.materialize(self.value(node), node)
        slope = np.asarray(self.need_const(node, 1, "slope"), np.float32)
        s = x.shape
        c = s[0] if len(s) >= 3 else s[-1]
        flat = slope.reshape(-1)
        expect = (c, *([1] * (len(s) - 1))) if len(s) >= 3 else (c,)
        if flat.size == 1:
            flat = np.full(c, flat[0], np.float32)
        elif flat.size != c or slope.shape[-len(expect):] != expect[-slope.ndim:]:
            raise self.fail(node, f"has slopes shaped {fmt_shape(slope.shape)}; NetBuilder's "
                                  f"PReLU has one slope per channel, {fmt_shape(expect)}")
        self.vals[node.output[0]] = self.add(node, "PReLU", {}, [x], {"weight": flat})

    def op_Softmax(self, node: Any) -> None:
        x = self.materialize(self.value(node), node)
        rank = len(x.shape) + 1
        axis = int(self.attrs(node).get("axis", -1 if self.opset >= 13 else 1))
        axis = axis + rank if axis < 0 else axis
        if self.opset < 13 and axis != rank - 1:
            raise self.fail(node, "uses the opset < 13 softmax over several axes")
        if axis == 0:
            raise self.fail(node, "normalises over the batch axis")
        params = {} if axis == rank - 1 else {"axis": axis - 1}
        self.vals[node.output[0]] = self.add(node, "Softmax", params, [x])

    def op_Sigmoid(self, node: Any) -> None:
        mul = self.only_consumer(node.output[0])
        x_name = node.input[0]
        if mul is not None and mul.op_type == "Mul":
            other = mul.input[1] if mul.input[0] == node.output[0] else mul.input[0]
            if other == x_name and x_name in self.vals:
                self._swish(mul, self.value(node), 1.0)
                self.skip.add(self._index(mul))
                return
        self._elementwise(node, "Sigmoid")

    def op_Mul(self, node: Any) -> None:
        ins = list(node.input)
        c_i = next((i for i, t in enumerate(ins) if t in self.consts), None)
        if c_i is not None:
            x_name = ins[1 - c_i]
            sig = self.only_consumer(node.output[0])
            mul = self.only_consumer(sig.output[0]) if sig is not None and \
                sig.op_type == "Sigmoid" else None
            beta = self.consts[ins[c_i]]
            if mul is not None and mul.op_type == "Mul" and beta.size == 1 and \
                    x_name in (mul.input[0], mul.input[1]) and sig.output[0] in mul.input:
                self._swish(mul, self.value(node, 1 - c_i), short_float(beta.reshape(())))
                self.skip.update({self._index(sig), self._index(mul)})
                return
            raise self.fail(node, "scales by a constant (x · c); NetBuilder has no scaling "
                                  "layer yet (only x·sigmoid(β·x), a Swish): fold the factor "
                                  "into the weights of the layer before or after it")
        raise self.fail(node, "multiplies two tensors; NetBuilder has no elementwise product "
                              "layer (only x·sigmoid(β·x), a Swish)")

    def _swish(self, mul: Any, x: Val, beta: float) -> None:
        y = self.add(mul, "Swish", {} if beta == 1.0 else {"beta": beta},
                     [self.materialize(x, mul)])
        self.vals[mul.output[0]] = y

    def _index(self, node: Any) -> int:
        i = self.positions.get(id(node))
        if i is None or self.g.node[i] is not node:
            raise AssertionError(node.name)
        return i

    # ----- core layers ------------------------------------------------------------------------
    def op_Gemm(self, node: Any) -> None:
        a = self.attrs(node)
        if a.get("transA", 0):  # Gemm(Transpose(x), transA = 1) was made Gemm(x) before
            raise self.fail(node, "transposes its data input (transA = 1), which puts the "
                                  "batch on the inner axis; NetBuilder's Dense multiplies "
                                  "(N, F) samples: export x @ W.T (transA = 0)")
        x = self.materialize(self.value(node), node)
        if len(x.shape) != 1:
            raise self.fail(node, f"gets samples shaped {fmt_shape(x.shape)}; Gemm needs (F,)")
        w = self.need_const(node, 1, "weight").astype(np.float32)
        if w.ndim != 2:
            raise self.fail(node, f"has a weight B shaped {fmt_shape(w.shape)}; Gemm's is 2-D")
        w = w if a.get("transB", 0) else w.T
        w = w * float(a.get("alpha", 1.0))
        state = {"weight": w}
        units = w.shape[0]
        if len(node.input) > 2 and node.input[2]:
            c = self.need_const(node, 2, "bias").astype(np.float32) * float(a.get("beta", 1.0))
            state["bias"] = self._gemm_bias(node, c, units)
        params = {"units": units, "bias": "bias" in state}
        self.vals[node.output[0]] = self.add(node, "Dense", params, [x], state)

    def _gemm_bias(self, node: Any, c: np.ndarray, units: int) -> np.ndarray:
        """Gemm's C as one bias per unit: C may be a scalar, (units,), (1, units), or a matrix
        whose rows (or columns) are all equal; a bias that differs per sample is refused."""
        if c.ndim == 0:
            return np.full(units, c, np.float32)
        if c.ndim <= 2 and c.size and c.shape[-1] in (1, units):
            rows = c.reshape(-1, c.shape[-1])
            if (rows == rows[0]).all():
                return np.broadcast_to(rows[0], (units,)).copy()
        raise self.fail(node, f"adds a bias C shaped {fmt_shape(c.shape)} that differs from "
                              "sample to sample; NetBuilder's Dense has one bias per unit: give "
                              f"C shaped ({units},) or (1, {units})")

    def op_MatMul(self, node: Any) -> None:
        x = self.materialize(self.value(node), node)
        w = self.need_const(node, 1, "weight").astype(np.float32)
        if w.ndim != 2 or len(x.shape) > 2 or w.shape[0] != x.shape[-1]:
            raise self.fail(node, f"multiplies {fmt_shape(x.shape)} samples by a "
                                  f"{fmt_shape(w.shape)} matrix; NetBuilder's Dense needs a 2-D "
                                  "weight on (F,) or (T, F)")
        state = {"weight": w.T.copy()}
        out, anchor = node.output[0], node
        add = self.only_consumer(out)
        if add is not None and add.op_type == "Add":
            other = add.input[1] if add.input[0] == out else add.input[0]
            bias = self.const(other)
            if bias is not None and bias.size == w.shape[1]:
                state["bias"] = bias.reshape(-1).astype(np.float32)
                self.skip.add(self._index(add))
                out = add.output[0]
        params = {"units": int(w.shape[1]), "bias": "bias" in state}
        self.vals[out] = self.add(anchor, "Dense", params, [x], state)

    def op_Add(self, node: Any) -> None:
        if any(t in self.consts for t in node.input):
            raise self.fail(node, "adds a constant (x + c); NetBuilder has no shift layer yet "
                                  "(a bias belongs to a Dense or Conv2D): fold it into the bias of "
                                  "the layer before it")
        self.op_Sum(node)

    def op_Sum(self, node: Any) -> None:
        xs = [self.materialize(self.value(node, i), node) for i in range(len(node.input))]
        if len(xs) == 1:
            self.vals[node.output[0]] = xs[0]
            return
        self.vals[node.output[0]] = self.add(node, "Add", {}, xs)

    def op_Concat(self, node: Any) -> None:
        xs = [self.materialize(self.value(node, i), node) for i in range(len(node.input))]
        rank = len(xs[0].shape) + 1
        axis = int(self.attrs(node)["axis"])
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise self.fail(node, "joins along the batch axis")
        axis -= 1
        self.vals[node.output[0]] = self.add(node, "Concat", {"axis": -1 if axis == rank - 2 and
                                                              axis > 0 else axis}, xs)

    def op_Flatten(self, node: Any) -> None:
        if self._pending(node):
            return
        v = self.value(node)
        if int(self.attrs(node).get("axis", 1)) != 1:
            raise self.fail(node, "flattens from an axis other than 1 (the batch stays apart)")
        self._reshape_to(node, v, (math.prod(v.onnx_shape),), "Flatten")

    def op_Reshape(self, node: Any) -> None:
        if self._pending(node):
            return
        v = self.value(node)
        target = self.need_const(node, 1, "shape").astype(np.int64).tolist()
        have = v.onnx_shape
        size = math.prod(have)
        if not target or target[0] not in (0, -1):
            raise self.fail(node, f"reshapes to {target}, which fixes the batch size")
        dims = [have[i - 1] if d == 0 and 1 <= i <= len(have) else d
                for i, d in enumerate(target)][1:]
        if target[0] == -1 and -1 in dims:
            raise self.fail(node, f"reshapes to {target} with two unknown sizes")
        if -1 in dims:
            known = math.prod(d for d in dims if d != -1)
            dims = [size // known if d == -1 else d for d in dims]
        if math.prod(dims) != size or any(d <= 0 for d in dims):
            if target[0] == -1:
                raise self.fail(node, f"reshapes {fmt_shape(have)} samples to {target}, which "
                                      "moves values between the batch and the samples; "
                                      "NetBuilder keeps the batch axis whole")
            raise self.fail(node, f"cannot reshape {fmt_shape(have)} samples to {target}")
        self._reshape_to(node, v, tuple(dims), "Reshape")

    def _reshape_to(self, node: Any, v: Val, shape: Shape, type_name: str) -> None:
        if shape == v.shape:
            self.vals[node.output[0]] = Val(v.node, v.shape)
            return
        params = {} if type_name == "Flatten" else {"shape": list(shape)}
        self.vals[node.output[0]] = self.add(node, type_name, params, [Val(v.node, v.shape)])

    def op_Squeeze(self, node: Any) -> None:
        if self._pending(node):
            return
        v = self.value(node)
        axes = self._axes(node)
        rank = len(v.onnx_shape) + 1
        axes = sorted(a + rank if a < 0 else a for a in axes)
        full = (0, *v.onnx_shape)
        if 0 in axes or any(full[a] != 1 for a in axes):
            raise self.fail(node, "squeezes an axis that is not of size 1 or the batch")
        shape = tuple(d for i, d in enumerate(full) if i and i not in axes)
        self._reshape_to(node, v, shape, "Reshape")

    def _axes(self, node: Any) -> list[int]:
        if len(node.input) > 1 and node.input[1]:
            return self.need_const(node, 1, "axes").astype(np.int64).reshape(-1).tolist()
        return list(self.attrs(node).get("axes", []))

    def _pending(self, node: Any) -> bool:
        """Apply ``node`` to a recurrent op's raw output, if that is its input."""
        v = self.vals.get(node.input[0])
        if isinstance(v, PendingRNN):
            pending_step(self, node, v)
            return True
        return False

    def op_Transpose(self, node: Any) -> None:
        if self._pending(node):
            return
        x = self.value(node, allow_perm=True)
        x = x if x.perm else self.materialize(x, node)
        rank = len(x.shape) + 1
        perm = list(self.attrs(node).get("perm", list(range(rank))[::-1]))
        if sorted(perm) != list(range(rank)):
            raise self.fail(node, f"has perm {perm} for a tensor of rank {rank}")
        base = list(x.perm or range(rank))
        new = tuple(base[p] for p in perm)
        self.vals[node.output[0]] = Val(x.node, x.shape, () if new == tuple(range(rank)) else new)

    def op_ReduceSum(self, node: Any) -> None:
        if self._pending(node):
            return
        raise self.fail(node, "sums over axes; NetBuilder has no reduction layer")

    def op_ReduceMean(self, node: Any) -> None:
        x = self.materialize(self.value(node), node)
        rank = len(x.shape) + 1
        axes = sorted(a + rank if a < 0 else a for a in self._axes(node))
        if len(x.shape) != 3 or axes != [2, 3]:
            over = f"axes {axes}" if axes else "every axis"
            raise self.fail(node, f"averages over {over} of {fmt_shape(x.shape)} samples; "
                                  "NetBuilder averages only over an image's height and width "
                                  "(axes [2, 3] of (C, H, W): GlobalAvgPool2D)")
        y = self.add(node, "GlobalAvgPool2D", {}, [x])
        keep = int(self.attrs(node).get("keepdims", 1))
        self.vals[node.output[0]] = Val(y.node, y.shape, view=(y.shape[0], 1, 1) if keep else None)

    def op_Gather(self, node: Any) -> None:
        if self._pending(node):  # h_n[-1] / out[:, -1] of a recurrent op's raw output
            return
        if node.input[0] not in self.consts:
            raise self.fail(node, f"picks entries along axis {self.attrs(node).get('axis', 0)} "
                                  "of a computed tensor (as x[:, k]); NetBuilder has no layer "
                                  "that slices tensors (Gather imports as an embedding lookup "
                                  "in a constant table)")
        if int(self.attrs(node).get("axis", 0)) != 0:
            raise self.fail(node, "gathers along an axis other than 0 (an embedding table's rows)")
        table = self.need_const(node, 0, "embedding table").astype(np.float32)
        ids = self.materialize(self.value(node, 1), node)
        if table.ndim != 2:
            raise self.fail(node, f"has a table shaped {fmt_shape(table.shape)}; an embedding "
                                  "is (vocab, dim)")
        params = {"vocab": int(table.shape[0]), "dim": int(table.shape[1])}
        self.vals[node.output[0]] = self.add(node, "Embedding", params, [ids], {"weight": table})


def import_onnx(source: Any, name: str | None = None,
                notes: list[str] | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """(Graph, state) from an ONNX file path, bytes or ``onnx.ModelProto``.

    ``state`` maps full parameter names (``"conv1.weight"``) to float32 arrays, ready for
    ``Network.load_state_dict``. ``notes``, if given, gets one line per rewrite made on the
    way (constants folded, zero RNN states dropped, time-major inputs read batch-first...).
    Raises OnnxImportError (a NetBuilderError) naming every unsupported op, or the node whose
    layout NetBuilder cannot express."""
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
    try:
        importer = Importer(model, label)
        graph, state = importer.run()
    except NetBuilderError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        raise OnnxImportError(f"{label}: malformed ONNX model ({type(exc).__name__}: {exc})") \
            from None
    stem = os.path.splitext(os.path.basename(label))[0] if label != "model" else ""
    graph.name = name or importer.meta.get(META_GRAPH) or stem or model.graph.name or "imported"
    graph.validate()
    if notes is not None:
        notes.extend(importer.notes)
    return graph, state


__all__ = ["SUPPORTED_OPS", "OnnxImportError", "import_onnx"]

"""Export a model to ONNX (opset 17) with the ``onnx`` helper API.

Each layer writes its own nodes (``Layer.to_onnx`` with an ``OnnxBuilder``). Tensor names
are node ids: graph inputs are the Input ids, graph outputs the Output ids (each
an Identity of the value entering the Output, so a Softmax before a cross-entropy Output stays
in the graph as drawn), and every layer's result is the tensor named after its node. Helper
tensors are ``"<node>/<what>"``; weights are initialisers named ``"<node>.<param>"`` (our
names and PyTorch layouts where ONNX takes them as they are). The batch dimension is symbolic
(``N``). Inference semantics: BatchNorm uses its running statistics, Dropout is the identity.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..registry import Layer
from .common import ModelView, model_view, refuse_unsupported, require, write_file

OPSET = 17
IR_VERSION = 8
BATCH = "N"
PRODUCER = "netbuilder"
META_OUTPUTS = "netbuilder.outputs"
META_PREPROCESS = "netbuilder.preprocess"
META_GRAPH = "netbuilder.name"
META_TRAINING = "netbuilder.training"


class OnnxBuilder:
    """Collects ONNX nodes and initialisers for one model; the ``b`` of ``Layer.to_onnx``.

    ``onnx`` is the imported package (for ``b.onnx.TensorProto``); ``view`` the model."""

    def __init__(self, onnx: Any, view: ModelView) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.view = view
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._init_names: set[str] = set()

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        """An initialiser (added once) and its name."""
        if name not in self._init_names:
            arr = np.array(value, dtype=dtype, order="C")
            self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
            self._init_names.add(name)
        return name

    def op(self, op_type: str, inputs: list[str], output: str, name: str | None = None,
           outputs: list[str] | None = None, **attrs: Any) -> str:
        """Add a node computing ``output`` (or ``outputs``); named ``name`` or its output."""
        node = self.helper.make_node(op_type, inputs, outputs or [output], name=name or output,
                                     **attrs)
        self.nodes.append(node)
        return output

    @staticmethod
    def pads(layer: Layer) -> list[int]:
        """ONNX ``pads`` (top, left, bottom, right) of a windowed layer's ``pads``
        (top, bottom, left, right)."""
        t, b, l, r = layer.pads
        return [t, l, b, r]


# ----- model --------------------------------------------------------------------------------
def _describe(layer: Layer) -> str:
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in layer.p.items()}
    return f"{layer.type_name} {json.dumps(params, sort_keys=True)}"


def build_onnx(model: Any, seed: int = 0) -> Any:
    """The ``onnx.ModelProto`` of a Network, Graph or Bundle (checked with the ONNX checker).

    Raises ExportError naming every layer that has no ONNX equivalent."""
    onnx = require("onnx")
    view = model if isinstance(model, ModelView) else model_view(model, seed)
    refuse_unsupported(view, "onnx_export", "ONNX")
    h = onnx.helper
    b = OnnxBuilder(onnx, view)
    for nid in view.order:
        layer = view.layers[nid]
        first = len(b.nodes)
        layer.to_onnx(b, view.inputs_of[nid], nid, view.local(nid))
        for node in b.nodes[first:]:
            if not node.doc_string:
                node.doc_string = _describe(layer)

    def value_info(nid: str) -> Any:
        return h.make_tensor_value_info(nid, onnx.TensorProto.FLOAT,
                                        [BATCH, *view.shapes[nid]])

    graph = h.make_graph(b.nodes, _graph_name(view.name), [value_info(i) for i in view.input_ids],
                         [value_info(o) for o in view.output_ids], initializer=b.inits)
    m = h.make_model(graph, producer_name=PRODUCER, producer_version=_version(),
                     opset_imports=[h.make_opsetid("", OPSET)])
    m.ir_version = IR_VERSION
    m.doc_string = f"{view.name}: exported from NetBuilder"
    outputs = {o: {"loss": view.layers[o].p["loss"], "weight": view.layers[o].p["weight"],
                   "target": view.layers[o].p["target"], "source": view.inputs_of[o][0]}
               for o in view.output_ids}
    meta = {META_GRAPH: view.name, META_OUTPUTS: json.dumps(outputs)}
    if view.preprocess:
        meta[META_PREPROCESS] = json.dumps(view.preprocess)
    if view.training:
        meta[META_TRAINING] = json.dumps(view.training)
    h.set_model_props(m, meta)
    onnx.checker.check_model(m, full_check=True)
    return m


def export_onnx(model: Any, path: str | os.PathLike, seed: int = 0) -> dict[str, Any]:
    """Write ``model`` (Network, Graph or Bundle) as an ONNX file; return a short report:
    ``{"path", "bytes", "seconds", "nodes", "ops", "inputs", "outputs"}``."""
    onnx = require("onnx")
    t0 = time.perf_counter()
    m = build_onnx(model, seed)
    data = m.SerializeToString()
    write_file(Path(path), data)
    return {"path": os.fspath(path), "bytes": len(data), "seconds": time.perf_counter() - t0,
            "nodes": len(m.graph.node), "ops": sorted({n.op_type for n in m.graph.node}),
            "inputs": [i.name for i in m.graph.input],
            "outputs": [o.name for o in m.graph.output], "opset": OPSET,
            "onnx": onnx.__version__}


def describe_onnx(model: Any) -> str:
    """A netron-like text listing of an ``onnx.ModelProto``: I/O, then one line per node."""
    onnx = require("onnx")

    def dims(vi: Any) -> str:
        return "×".join(d.dim_param or str(d.dim_value) for d in vi.type.tensor_type.shape.dim)

    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    lines = [f"opset {model.opset_import[0].version}, producer {model.producer_name} "
             f"{model.producer_version}, {len(model.graph.node)} nodes, "
             f"{sum(int(np.prod(s)) for s in inits.values()):,} weights "
             f"({len(inits)} initialisers)"]
    lines += [f"input  {i.name}: float[{dims(i)}]" for i in model.graph.input]
    lines += [f"output {o.name}: float[{dims(o)}]" for o in model.graph.output]
    for n in model.graph.node:
        ins = ", ".join(f"{x}{list(inits[x])}" if x in inits else x for x in n.input if x)
        attrs = ", ".join(f"{a.name}={onnx.helper.get_attribute_value(a)}" for a in n.attribute)
        lines.append(f"  {n.op_type:<18} {n.name:<22} ({ins}) -> {', '.join(n.output)}"
                     + (f"  [{attrs}]" if attrs else ""))
    return "\n".join(lines)


def _graph_name(name: str) -> str:
    return name or "netbuilder_model"


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("netbuilder")
    except Exception:
        return "0"

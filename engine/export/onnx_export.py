"""Export a model to ONNX (opset 17) with the ``onnx`` helper API.

Tensor names are node ids: graph inputs are the Input ids, graph outputs the Output ids (each
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
from collections.abc import Callable
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


class _Builder:
    """Collects ONNX nodes and initialisers for one model."""

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


Converter = Callable[[_Builder, Layer, list[str], str, dict[str, np.ndarray]], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*type_names: str) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        for t in type_names:
            CONVERTERS[t] = fn
        return fn
    return deco


def _pads(layer: Layer) -> list[int]:
    t, b, l, r = layer.pads
    return [t, l, b, r]


# ----- core ---------------------------------------------------------------------------------
@converter("Dense")
def _dense(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict[str, np.ndarray]) -> None:
    nid = layer.id
    if len(layer.in_shapes[0]) == 1:
        ins = [xs[0], b.const(f"{nid}.weight", p["weight"])]
        if "bias" in p:
            ins.append(b.const(f"{nid}.bias", p["bias"]))
        b.op("Gemm", ins, out, transB=1)
        return
    wt = b.const(f"{nid}.weight_t", p["weight"].T)
    if "bias" not in p:
        b.op("MatMul", [xs[0], wt], out)
        return
    mm = b.op("MatMul", [xs[0], wt], f"{nid}/matmul", name=nid)
    b.op("Add", [mm, b.const(f"{nid}.bias", p["bias"])], out, name=f"{nid}/bias")


@converter("Flatten")
def _flatten(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("Flatten", xs, out, axis=1)


@converter("Reshape")
def _reshape(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    shape = b.const(f"{layer.id}/shape", [-1, *layer.p["shape"]], np.int64)
    b.op("Reshape", [xs[0], shape], out)


@converter("Input")
def _input(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    """Graph inputs are declared by ``export_onnx``; nothing to compute."""


@converter("Output")
def _output(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("Identity", xs, out)


# ----- convolution and pooling --------------------------------------------------------------
@converter("Conv2D")
def _conv(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict[str, np.ndarray]) -> None:
    nid = layer.id
    ins = [xs[0], b.const(f"{nid}.weight", p["weight"])]
    if "bias" in p:
        ins.append(b.const(f"{nid}.bias", p["bias"]))
    b.op("Conv", ins, out, kernel_shape=list(layer.p["kernel_size"]),
         strides=list(layer.p["stride"]), pads=_pads(layer), dilations=[1, 1], group=1)


@converter("MaxPool2D")
def _maxpool(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("MaxPool", xs, out, kernel_shape=list(layer.p["pool_size"]),
         strides=list(layer.stride), pads=_pads(layer))


@converter("AvgPool2D")
def _avgpool(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("AveragePool", xs, out, kernel_shape=list(layer.p["pool_size"]),
         strides=list(layer.stride), pads=_pads(layer),
         count_include_pad=int(bool(layer.count_pad)))


@converter("GlobalAvgPool2D")
def _gap(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    g = b.op("GlobalAveragePool", xs, f"{layer.id}/pooled", name=layer.id)
    b.op("Flatten", [g], out, name=f"{layer.id}/flatten", axis=1)


# ----- activations --------------------------------------------------------------------------
_SIMPLE = {"ReLU": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}


@converter(*_SIMPLE)
def _simple(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op(_SIMPLE[layer.type_name], xs, out)


@converter("LeakyReLU")
def _leaky(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("LeakyRelu", xs, out, alpha=float(layer.p["alpha"]))


@converter("PReLU")
def _prelu(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict[str, np.ndarray]) -> None:
    s = layer.in_shapes[0]
    w = p["weight"]
    slope = w.reshape(-1, *([1] * (len(s) - 1))) if len(s) >= 3 else w
    b.op("PRelu", [xs[0], b.const(f"{layer.id}.weight", slope)], out)


@converter("HardSigmoid")
def _hsig(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("HardSigmoid", xs, out, alpha=0.25, beta=0.5)


@converter("HardTanh")
def _htanh(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    lo = b.const(f"{layer.id}/min", layer.p["min_val"])
    hi = b.const(f"{layer.id}/max", layer.p["max_val"])
    b.op("Clip", [xs[0], lo, hi], out)


@converter("Swish")
def _swish(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    nid, beta = layer.id, layer.p["beta"]
    z = xs[0]
    if beta != 1.0:
        z = b.op("Mul", [xs[0], b.const(f"{nid}/beta", beta)], f"{nid}/scaled")
    s = b.op("Sigmoid", [z], f"{nid}/sigmoid")
    b.op("Mul", [xs[0], s], out)


@converter("Softmax")
def _softmax(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("Softmax", xs, out, axis=int(layer.batch_axis))


# ----- normalisation ------------------------------------------------------------------------
@converter("BatchNorm")
def _batchnorm(b: _Builder, layer: Layer, xs: list[str], out: str,
               p: dict[str, np.ndarray]) -> None:
    nid = layer.id
    names = [b.const(f"{nid}.{k}", p[k]) for k in ("weight", "bias", "running_mean",
                                                     "running_var")]
    attrs = {"epsilon": float(layer.p["eps"]), "momentum": float(layer.p["momentum"])}
    if len(layer.in_shapes[0]) != 2:
        b.op("BatchNormalization", [xs[0], *names], out, **attrs)
        return
    t = b.op("Transpose", xs, f"{nid}/channels_first", perm=[0, 2, 1])
    y = b.op("BatchNormalization", [t, *names], f"{nid}/normalized", name=nid, **attrs)
    b.op("Transpose", [y], out, name=f"{nid}/channels_last", perm=[0, 2, 1])


@converter("Dropout")
def _dropout(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    ratio = b.const(f"{layer.id}/ratio", layer.p["rate"])
    b.op("Dropout", [xs[0], ratio], out)


# ----- merge --------------------------------------------------------------------------------
@converter("Add")
def _add(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("Add" if len(xs) == 2 else "Sum", xs, out)


@converter("Concat")
def _concat(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    b.op("Concat", xs, out, axis=1 + layer.sample_axis)


# ----- embedding and spatial transformer ---------------------------------------------------
@converter("Embedding")
def _embedding(b: _Builder, layer: Layer, xs: list[str], out: str,
               p: dict[str, np.ndarray]) -> None:
    ids = b.op("Cast", xs, f"{layer.id}/ids", to=b.onnx.TensorProto.INT64)
    b.op("Gather", [b.const(f"{layer.id}.weight", p["weight"]), ids], out, name=layer.id, axis=0)


def base_grid(h: int, w: int) -> np.ndarray:
    """(H·W, 3) rows [x, y, 1] of the output pixel centres in [-1, 1] (align_corners = 0),
    row-major over (y, x), so that the sampling grid is base @ theta^T."""
    xs = (2.0 * np.arange(w) + 1.0) / w - 1.0
    ys = (2.0 * np.arange(h) + 1.0) / h - 1.0
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel(), np.ones(h * w)], axis=1).astype(np.float32)


@converter("SpatialTransformer")
def _stn(b: _Builder, layer: Layer, xs: list[str], out: str, p: dict) -> None:
    """theta + identity -> (N, 2, 3) -> grid = base @ theta^T -> GridSample (bilinear, zeros,
    align_corners 0). ONNX has AffineGrid only from opset 20, so the grid is a MatMul."""
    nid = layer.id
    ho, wo = layer.out_shape[1:]
    ident = b.const(f"{nid}/identity", [1, 0, 0, 0, 1, 0])
    t = b.op("Add", [xs[1], ident], f"{nid}/theta")
    t = b.op("Reshape", [t, b.const(f"{nid}/affine_shape", [-1, 2, 3], np.int64)],
             f"{nid}/affine")
    t = b.op("Transpose", [t], f"{nid}/affine_t", perm=[0, 2, 1])
    g = b.op("MatMul", [b.const(f"{nid}/base_grid", base_grid(ho, wo)), t], f"{nid}/grid_flat")
    g = b.op("Reshape", [g, b.const(f"{nid}/grid_shape", [-1, ho, wo, 2], np.int64)],
             f"{nid}/grid")
    b.op("GridSample", [xs[0], g], out, mode="bilinear", padding_mode="zeros", align_corners=0)


# ----- model --------------------------------------------------------------------------------
def _describe(layer: Layer) -> str:
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in layer.p.items()}
    return f"{layer.type_name} {json.dumps(params, sort_keys=True)}"


def build_onnx(model: Any, seed: int = 0) -> Any:
    """The ``onnx.ModelProto`` of a Network, Graph or Bundle (checked with the ONNX checker).

    Raises ExportError naming every layer that has no ONNX equivalent."""
    onnx = require("onnx")
    from . import onnx_recurrent  # noqa: F401  (registers the recurrent converters)
    view = model if isinstance(model, ModelView) else model_view(model, seed)
    refuse_unsupported(view, CONVERTERS, "ONNX")
    h = onnx.helper
    b = _Builder(onnx, view)
    for nid in view.order:
        layer = view.layers[nid]
        first = len(b.nodes)
        CONVERTERS[layer.type_name](b, layer, view.inputs_of[nid], nid, view.local(nid))
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

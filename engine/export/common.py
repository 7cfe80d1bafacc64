"""What the exporters share: a frozen view of a model (layers, shapes, wiring, weights) and
the refusal of layer types a format cannot express."""

from __future__ import annotations

import importlib
import keyword
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import NetBuilderError
from ..graph import Graph
from ..network import Network
from ..registry import Layer, Shape


class ExportError(NetBuilderError):
    """The model cannot be written in the requested format (a layer has no equivalent there)."""


@dataclass
class ModelView:
    """A compiled model as the exporters read it.

    ``order``: node ids, inputs first (topological); ``state``: float32 copies of every
    parameter and buffer by full name; ``fused``: Output id -> the node whose output its loss
    reads (a Softmax / Sigmoid folded into cross-entropy / bce reads its input, the logits).
    """

    name: str
    graph: Graph
    layers: dict[str, Layer]
    order: list[str]
    shapes: dict[str, Shape]
    inputs_of: dict[str, list[str]]
    consumers: dict[str, list[str]]
    input_ids: list[str]
    output_ids: list[str]
    state: dict[str, np.ndarray]
    fused: dict[str, str]
    preprocess: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    source: Graph | None = None  # the model as drawn, with its blocks (``graph`` is flat)

    def local(self, node_id: str) -> dict[str, np.ndarray]:
        """The node's parameters and buffers by their local name (``weight``, ...)."""
        prefix = node_id + "."
        return {k[len(prefix):]: v for k, v in self.state.items() if k.startswith(prefix)}

    def loss_source(self, output_id: str) -> str:
        """Node whose output the Output's loss reads (its input, or the fused logits)."""
        return self.fused.get(output_id, self.inputs_of[output_id][0])


def model_view(model: Any, seed: int = 0) -> ModelView:
    """A ModelView of a Network, a Graph (freshly initialised with ``seed``) or a Bundle."""
    preprocess = None
    if isinstance(model, Graph):
        net = Network(model, seed=seed)
    elif isinstance(model, Network):
        net = model
    elif hasattr(model, "net") and isinstance(model.net, Network):
        net = model.net
        preprocess = getattr(model, "preprocess", None)
    else:
        raise TypeError(f"cannot export a {type(model).__name__}: give a Graph, Network or Bundle")
    if preprocess is not None and preprocess.get("mode", "none") == "none":
        preprocess = None
    consumers: dict[str, list[str]] = {nid: [] for nid in net.order}
    for dst, srcs in net.inputs_of.items():
        for s in srcs:
            consumers[s].append(dst)
    state = {k: np.asarray(v, np.float32).copy() for k, v in net.state_dict().items()}
    return ModelView(
        name=net.graph.name, graph=net.graph, layers=dict(net.layers), order=list(net.order),
        shapes=dict(net.shapes), inputs_of={k: list(v) for k, v in net.inputs_of.items()},
        consumers=consumers, input_ids=list(net.input_ids), output_ids=list(net.output_ids),
        state=state, fused=dict(net.loss_logits), preprocess=preprocess,
        training=dict(net.graph.training or {}),
        source=getattr(net, "source_graph", net.graph))


def write_file(path: Path, data: bytes) -> None:
    """Write atomically, readable by others as a plain new file would be (umask applies)."""
    from ..atomic import atomic_write_bytes
    path = Path(path)
    atomic_write_bytes(path, data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def refuse_unsupported(view: ModelView, capability: str, fmt: str) -> None:
    """Raise ExportError naming every node whose layer type lacks ``capability`` (a field of
    ``Layer.capabilities()``, e.g. "onnx_export"): ``fmt`` cannot express it."""
    bad = [(nid, view.layers[nid].type_name) for nid in view.order
           if not getattr(view.layers[nid].capabilities(), capability)]
    if bad:
        listing = ", ".join(f"{t} '{nid}'" for nid, t in bad)
        raise ExportError(f"cannot export '{view.name}' to {fmt}: no {fmt} equivalent for "
                          f"{listing}; remove or replace {'it' if len(bad) == 1 else 'them'}",
                          bad[0][0])


def require(module: str) -> ModuleType:
    """Import a package that export or import needs (imported only then, so ``import engine``
    stays quick), or say plainly that it is missing from this installation."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"this needs the '{module}' package, which NetBuilder installs with "
                          f"it but which is missing here: pip install {module}") from None


_NON_ID = re.compile(r"[^A-Za-z0-9_]")


def py_identifier(name: str, taken: set[str] | None = None, reserved: Iterable[str] = ()) -> str:
    """A valid, unused Python identifier close to ``name`` (added to ``taken``)."""
    ident = _NON_ID.sub("_", name) or "v"
    if ident[0].isdigit():
        ident = "v_" + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident) or ident in set(reserved):
        ident += "_"
    if taken is not None:
        base, k = ident, 2
        while ident in taken:
            ident = f"{base}_{k}"
            k += 1
        taken.add(ident)
    return ident

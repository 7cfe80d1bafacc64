"""Freeze and thaw, and "start as identity", without Qt: the commands the Inspector, the
canvas' right-click menu and the tests push, and what a step costs with the frozen nodes
(``engine.cost``) for the Model Summary.

    cmd = freeze_command(doc, ["c1", "c3"], trainable=False)   # None: nothing to change
    doc.execute(cmd)
    graph_cost(doc.graph).summary()   # "backward … mult-adds/sample (…); frozen c1, c3 … save …"
"""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace

from engine.cost import TrainingCost, training_cost
from engine.errors import NetBuilderError
from engine.graph import Graph, Node
from engine.registry import Layer, get_layer_class

from .document import Document, SetNodeTraining, SetParams

IDENTITY_TYPES = ("Dense", "Conv2D")


def has_weights(doc: Document, node_id: str) -> bool:
    """Whether the node has parameters to freeze (a Block: any layer inside has; a node
    whose shapes are unknown: its type could have)."""
    node = doc.graph.nodes.get(node_id)
    if node is None:
        return False
    if node.block is not None:
        return True
    info = doc.analysis.nodes.get(node_id)
    if info is not None and info.params is not None:
        return info.params > 0
    return node.type in ("Dense", "Conv2D", "BatchNorm", "LayerNorm", "GroupNorm")


def trains_nothing(node: Node) -> bool:
    """Whether ``node`` is frozen: itself, or (a Block) every layer inside it whose type has
    weights, however deep (the engine freezes a block's layers with the block, and keeps
    a layer frozen inside a block that is not)."""
    if not node.trainable:
        return True
    if node.block is None:
        return False
    weighted = [n for n in node.block.nodes.values() if n.block is not None or _may_have_weights(n)]
    return bool(weighted) and all(trains_nothing(n) for n in weighted)


def _may_have_weights(node: Node) -> bool:
    try:
        return get_layer_class(node.type).param_shapes is not Layer.param_shapes
    except NetBuilderError:  # an unknown type: it could have
        return True


def freeze_command(doc: Document, node_ids: Iterable[str], trainable: bool
                   ) -> SetNodeTraining | None:
    """Freeze (``trainable`` false) or thaw the nodes with weights among ``node_ids``,
    keeping their learning-rate multipliers; None when none of them would change."""
    g = doc.graph
    chosen = set(node_ids)
    new = {nid: (trainable, g.nodes[nid].lr_mult) for nid in g.nodes  # in the model's order
           if nid in chosen and has_weights(doc, nid) and g.nodes[nid].trainable != trainable}
    if not new:
        return None
    names = ", ".join(f"'{n}'" for n in new)
    return SetNodeTraining(doc, new, f"{'Thaw' if trainable else 'Freeze'} {names}")


def lr_mult_command(doc: Document, node_id: str, lr_mult: float) -> SetNodeTraining | None:
    """Set one node's learning-rate multiplier; None if it already has it."""
    node = doc.graph.nodes[node_id]
    if node.lr_mult == lr_mult:
        return None
    return SetNodeTraining(doc, {node_id: (node.trainable, float(lr_mult))},
                           f"Set the learning-rate multiplier of '{node_id}' to {lr_mult:g}")


def identity_command(doc: Document, node_id: str) -> SetParams:
    """Make a Dense or Conv2D start as the identity (``init`` "identity"), with the sizes
    that allows: units = its input's features, or filters = channels with stride 1 and
    "same" padding. NetBuilderError (naming the node) when its input's shape is unknown
    or it is another type."""
    g = doc.graph
    node = g.nodes[node_id]
    if node.type not in IDENTITY_TYPES:
        raise NetBuilderError(f"only a Dense or Conv2D can start as the identity, not "
                              f"{node.type} '{node_id}'", node_id)
    ins = g.in_edges(node_id)
    info = doc.analysis.nodes.get(ins[0].src) if ins else None
    shape = info.out_shape if info is not None else None
    if not shape:
        raise NetBuilderError(f"'{node_id}' needs a wired input of known shape to start as "
                              "the identity", node_id)
    new = {**node.params, "init": "identity"}
    if node.type == "Dense":
        new["units"] = int(shape[-1])
    else:
        if len(shape) != 3:
            raise NetBuilderError(f"'{node_id}' needs an image input (channels, height, "
                                  "width) to start as the identity", node_id)
        k = node.params.get("kernel_size", 3)
        odd = [v | 1 for v in k] if isinstance(k, list) else k | 1  # an odd kernel has a centre
        new.update(filters=int(shape[0]), stride=1, padding="same", kernel_size=odd)
    return SetParams(node_id, node.params, new, f"Start '{node_id}' as the identity")


def graph_cost(graph: Graph) -> TrainingCost | None:
    """The multiply-adds of a training step of ``graph`` with its frozen nodes, without
    allocating weights; None when the graph does not build (a shape error)."""
    try:
        g = graph.flatten() if graph.has_blocks() else graph
        layers = g.build_layers()
    except NetBuilderError:
        return None
    order = list(layers)
    frozen = {nid for nid in order if layers[nid].param_shapes() and not g.nodes[nid].trainable}
    wiring = SimpleNamespace(layers=layers, order=order, frozen=frozen,
                             inputs_of={n: [e.src for e in g.in_edges(n)] for n in order})
    return training_cost(wiring)  # type: ignore[arg-type]

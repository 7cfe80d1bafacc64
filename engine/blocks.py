"""Nodes, wires and blocks as plain data, and the flattening of blocks.

A *block* is a node of type ``"Block"`` that holds a nested graph (``Node.block``): its own
nodes and wires, the names of its input ports (inner wires start from them as from nodes)
and the inner node whose output is the block's output. Blocks nest. In the model file::

    {"id": "res1", "type": "Block", "params": {},
     "block": {"name": "ResBlock", "inputs": ["x"], "output": "relu2",
               "nodes": [...], "edges": [{"src": "x", "dst": "conv1"}, ...], "ui": {...}}}

``flatten`` replaces every block by its contents. An inner node's id in the flat graph is
derived from the block's id and its own, ``derived_id("res1", "conv1") == "res1-conv1"``
(nested blocks chain: ``"stage1-res1-conv1"``); an id too long for the format ends in a
hash of the whole, so the same model always gives the same ids and parameter names.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import GraphFormatError, GraphStructureError, ParamError, short_repr
from .registry import Layer, get_layer_class

BLOCK_TYPE = "Block"
ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
MAX_DEPTH = 16  # blocks inside blocks
ID_MAX = 64


@dataclass
class Node:
    """One layer: ``params`` holds only the values given explicitly (defaults stay implicit).
    A node of type ``"Block"`` holds its nested graph in ``block``.

    ``trainable``: false freezes the node's parameters (no weight gradient is computed, the
    optimizer leaves them alone); ``lr_mult``: the node's learning rate is the run's times
    this (≥ 0). Neither changes what the layer computes. On a block, both apply to every
    layer inside (multiplied with the inner nodes' own)."""

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    block: Block | None = None
    trainable: bool = True
    lr_mult: float = 1.0

    def layer_class(self) -> type[Layer]:
        """The node's layer type; for a block, a class of its own with its input ports."""
        cls = get_layer_class(self.type, self.id)
        if self.block is not None and hasattr(cls, "for_block"):
            return cls.for_block(self.block)  # type: ignore[attr-defined]
        return cls


@dataclass(frozen=True)
class Edge:
    """Output of ``src`` feeds input ``port`` of ``dst``."""

    src: str
    dst: str
    port: int = 0


@dataclass
class Block:
    """A block's contents. ``inputs``: port names, in port order; ``output``: the inner node
    whose output leaves the block; ``ui``: inner positions (``{"pos": [x, y]}`` per id)."""

    name: str
    inputs: list[str]
    output: str
    nodes: dict[str, Node]
    edges: list[Edge]
    ui: dict[str, Any] = field(default_factory=dict)
    layer_cls: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "inputs": list(self.inputs), "output": self.output,
                "nodes": [node_to_dict(n) for n in self.nodes.values()],
                "edges": [edge_to_dict(e) for e in self.edges],
                "ui": copy.deepcopy(self.ui)}

    def layer_count(self) -> int:
        """Layers inside, counting those of nested blocks (not the blocks themselves)."""
        return sum(n.block.layer_count() if n.block is not None else 1
                   for n in self.nodes.values())

    def in_edges(self, node_id: str) -> list[Edge]:
        return sorted((e for e in self.edges if e.dst == node_id), key=lambda e: e.port)


def node_to_dict(n: Node) -> dict[str, Any]:
    d: dict[str, Any] = {"id": n.id, "type": n.type,
                         "params": {k: (list(v) if isinstance(v, tuple) else v)
                                    for k, v in n.params.items()}}
    if not n.trainable:
        d["trainable"] = False
    if n.lr_mult != 1.0:
        d["lr_mult"] = n.lr_mult
    if n.block is not None:
        d["block"] = n.block.to_dict()
    return d


def training_keys(nd: dict[str, Any], nid: str) -> tuple[bool, float]:
    """A node's ``trainable`` (default true) and ``lr_mult`` (default 1, a number ≥ 0)."""
    trainable = nd.get("trainable", True)
    if not isinstance(trainable, bool):
        raise ParamError(f"node '{nid}': trainable must be true or false, got "
                         f"{short_repr(trainable)}", nid)
    mult = nd.get("lr_mult", 1.0)
    if isinstance(mult, bool) or not isinstance(mult, int | float) or not math.isfinite(mult) \
            or mult < 0 or mult > 1e6:
        raise ParamError(f"node '{nid}': lr_mult must be a number between 0 and 1e6, got "
                         f"{short_repr(mult)}", nid)
    return trainable, float(mult)


def edge_to_dict(e: Edge) -> dict[str, Any]:
    return {"src": e.src, "dst": e.dst, "port": e.port}


def has_blocks(nodes: dict[str, Node]) -> bool:
    return any(n.block is not None for n in nodes.values())


# ----- reading ------------------------------------------------------------------------------
def _need(d: dict, key: str, types: type | tuple, what: str) -> Any:
    if key not in d:
        raise GraphFormatError(f"{what} has no {key!r}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and types is not bool):
        raise GraphFormatError(f"{what}: {key!r} has the wrong type ({type(v).__name__})")
    return v


def check_id(nid: Any, what: str) -> None:
    if not isinstance(nid, str) or not ID_PATTERN.match(nid):
        raise GraphStructureError(
            f"{what}: id {short_repr(nid)} is not valid: use letters, digits, '_' or '-', "
            "starting with a letter (at most 64 characters)")


def parse_node(nd: Any, i: int, version: int, where: str = "", depth: int = 0) -> Node:
    """A node of a model file (``where``: "" at the top, "block 'b': " inside one)."""
    if not isinstance(nd, dict):
        raise GraphFormatError(f"{where}node #{i} is not an object")
    nid = _need(nd, "id", str, f"{where}node #{i}")
    check_id(nid, f"{where}node #{i}")
    ntype = _need(nd, "type", str, f"{where}node '{nid}'")
    params = nd.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ParamError(f"{where}node '{nid}': params must be an object", nid)
    trainable, lr_mult = training_keys(nd, nid)
    body = nd.get("block")
    if body is not None or ntype == BLOCK_TYPE:
        if version < 2:
            raise GraphFormatError(f"{where}node '{nid}': blocks need model file version 2 "
                                   f"(this file says {version})")
        if ntype != BLOCK_TYPE:
            raise GraphFormatError(f"{where}node '{nid}': only a Block node has 'block' contents")
        if not isinstance(body, dict):
            raise GraphFormatError(f"{where}Block '{nid}' has no 'block' contents")
        if depth >= MAX_DEPTH:
            raise GraphFormatError(f"{where}Block '{nid}': blocks nest more than {MAX_DEPTH} deep")
        return Node(nid, ntype, dict(params), parse_block(body, nid, version, depth + 1),
                    trainable, lr_mult)
    return Node(nid, ntype, dict(params), None, trainable, lr_mult)


def parse_block(d: dict[str, Any], block_id: str, version: int, depth: int = 1) -> Block:
    """A block's contents, checked whole: ids, wires, ports, no cycle, no Input/Output."""
    what = f"Block '{block_id}'"
    where = f"block '{block_id}': "
    name = str(d.get("name") or block_id)[:200]
    inputs = _need(d, "inputs", list, what)
    if not inputs:
        raise GraphStructureError(f"{what} has no input port", block_id)
    for p in inputs:
        check_id(p, f"{what} input port")
    output = _need(d, "output", str, what)
    raw_nodes = _need(d, "nodes", list, what)
    nodes: dict[str, Node] = {}
    for i, nd in enumerate(raw_nodes):
        node = parse_node(nd, i, version, where, depth)
        if node.id in nodes or node.id in inputs:
            raise GraphStructureError(f"{what}: duplicate id '{node.id}'", block_id)
        cls = node.layer_class()
        if cls.type_name in ("Input", "Output"):
            raise GraphStructureError(f"{what}: a block holds no {cls.type_name} node "
                                      f"('{node.id}'); its ports take their place", block_id)
        cls.resolve_params(node.params, node.id)
        nodes[node.id] = node
    if len(set(inputs)) != len(inputs):
        raise GraphStructureError(f"{what}: input port names repeat", block_id)
    if output not in nodes:
        raise GraphStructureError(f"{what}: its output {short_repr(output)} is not one of its "
                                  "nodes", block_id)
    raw_edges = d.get("edges", [])
    if not isinstance(raw_edges, list):
        raise GraphFormatError(f"{what}: 'edges' must be a list")
    edges: list[Edge] = []
    fed: set[tuple[str, int]] = set()
    for i, ed in enumerate(raw_edges):
        if not isinstance(ed, dict):
            raise GraphFormatError(f"{what}: edge #{i} is not an object")
        src = _need(ed, "src", str, f"{what}: edge #{i}")
        dst = _need(ed, "dst", str, f"{what}: edge #{i}")
        port = ed.get("port", 0)
        if isinstance(port, bool) or not isinstance(port, int):
            raise GraphFormatError(f"{what}: edge #{i}: port must be a whole number")
        if src not in nodes and src not in inputs:
            raise GraphStructureError(f"{what}: edge #{i} starts at unknown {short_repr(src)}",
                                      block_id)
        if dst not in nodes:
            raise GraphStructureError(f"{what}: edge #{i} ends at unknown {short_repr(dst)}",
                                      block_id)
        dcls = nodes[dst].layer_class()
        n_max = 1024 if dcls.max_inputs is None else dcls.max_inputs
        if port < 0 or port >= n_max or (dst, port) in fed:
            raise GraphStructureError(f"{what}: edge #{i} ({src} -> {dst}) has no free input "
                                      f"port {port}", block_id)
        fed.add((dst, port))
        edges.append(Edge(src, dst, port))
    ui = d.get("ui", {})
    blk = Block(name, list(inputs), output, nodes, edges, copy.deepcopy(ui) if
                isinstance(ui, dict) else {})
    if _has_cycle(blk):
        raise GraphStructureError(f"{what}: its wires make a cycle", block_id)
    return blk


def _has_cycle(blk: Block) -> bool:
    succ: dict[str, list[str]] = {}
    indeg = dict.fromkeys(blk.nodes, 0)
    for e in blk.edges:
        if e.src in blk.nodes:
            succ.setdefault(e.src, []).append(e.dst)
            indeg[e.dst] += 1
    ready = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for m in succ.get(n, []):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return seen != len(blk.nodes)


# ----- flattening ---------------------------------------------------------------------------
def derived_id(block_id: str, inner_id: str) -> str:
    """The flat id of node ``inner_id`` of block ``block_id``: ``"<block>-<inner>"``, or, when
    that is longer than 64 characters, its first 55 and a hash of the whole."""
    s = f"{block_id}-{inner_id}"
    if len(s) <= ID_MAX:
        return s
    return s[:ID_MAX - 9] + "-" + hashlib.sha1(s.encode()).hexdigest()[:8]


def output_of(node_id: str, node: Node) -> str:
    """The flat id of the node whose output is ``node``'s (through nested blocks)."""
    while node.block is not None:
        inner = node.block.output
        node_id, node = derived_id(node_id, inner), node.block.nodes[inner]
    return node_id


@dataclass
class Flat:
    """A flattened graph: nodes (no blocks) in file order, wires, and for every flat id the
    chain of block ids it lies in (``[]`` at the top, ``["stage1", "res1"]`` nested)."""

    nodes: dict[str, Node]
    edges: list[Edge]
    path: dict[str, list[str]]


def flatten(nodes: dict[str, Node], edges: list[Edge]) -> Flat:
    """Replace every block by its contents (ids derived, see the module note). A block input
    that nothing feeds leaves the inner wires from it out. Raises GraphStructureError when a
    derived id is already taken."""
    flat = Flat({}, [], {})
    _expand(flat, "", [], nodes, edges, {})
    return flat


def _expand(flat: Flat, prefix: str, path: list[str], nodes: dict[str, Node],
            edges: list[Edge], port_src: dict[str, str | None],
            outer: tuple[bool, float] = (True, 1.0)) -> None:
    """``outer``: the enclosing blocks' (trainable, lr_mult), applied to every layer inside."""
    fid = {nid: (derived_id(prefix, nid) if prefix else nid) for nid in nodes}
    out_of = {nid: output_of(fid[nid], n) for nid, n in nodes.items()}
    feeds: dict[str, dict[int, str]] = {}
    for e in edges:
        src = port_src.get(e.src) if e.src in port_src else out_of.get(e.src)
        if src is None or e.dst not in nodes:
            continue
        if nodes[e.dst].block is not None:
            feeds.setdefault(e.dst, {})[e.port] = src
        else:
            flat.edges.append(Edge(src, fid[e.dst], e.port))
    for nid, node in nodes.items():
        f = fid[nid]
        if node.block is None:
            if f in flat.nodes:
                raise GraphStructureError(
                    f"the id '{f}' made for node '{nid}' of block '{path[-1]}' is taken by "
                    "another node: rename one of them", path[0] if path else f)
            flat.nodes[f] = Node(f, node.type, copy.deepcopy(node.params), None,
                                 node.trainable and outer[0], node.lr_mult * outer[1])
            flat.path[f] = list(path)
            continue
        b = node.block
        got = feeds.get(nid, {})
        _expand(flat, f, [*path, nid], b.nodes, b.edges,
                {name: got.get(i) for i, name in enumerate(b.inputs)},
                (node.trainable and outer[0], node.lr_mult * outer[1]))

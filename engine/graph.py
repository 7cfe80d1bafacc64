"""Graph, Node, Edge: the model as plain data; parsing, validation, topological order, shapes."""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .blocks import (
    BLOCK_TYPE,
    Block,
    Edge,
    Flat,
    Node,
    flatten,
    has_blocks,
    node_to_dict,
    parse_node,
    training_keys,
)
from .errors import (
    CycleError,
    GraphFormatError,
    GraphStructureError,
    ModelTooLargeError,
    NetBuilderError,
    ParamError,
    ShapeError,
    short_repr,
)
from .registry import Layer, Shape, fmt_shape, register_structural

FORMAT = "netbuilder.graph"
VERSION = 2  # 2: Block nodes (nested graphs); a file without blocks is still written as 1
ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
MAX_NODES = 20_000
MAX_INPUTS = 1024  # input ports of a variadic merge (Add, Concat)
MAX_ELEMENTS = 2**31 - 1


def available_memory_bytes() -> int:
    """Physical memory of this machine (bytes); a generous fallback where it cannot be read."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PB"


@dataclass
class Diagnosis:
    """Everything shape inference learned about a possibly broken graph."""

    shapes: dict[str, Shape]
    errors: dict[str, NetBuilderError]
    graph_errors: list[NetBuilderError]
    layers: dict[str, Layer] = field(default_factory=dict)  # built for every shaped node

    @property
    def ok(self) -> bool:
        return not self.errors and not self.graph_errors

    def all_errors(self) -> list[NetBuilderError]:
        return list(self.graph_errors) + list(self.errors.values())


def _need(d: dict, key: str, types: type | tuple, what: str) -> Any:
    if key not in d:
        raise GraphFormatError(f"{what} has no {key!r}")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and types is not bool):
        raise GraphFormatError(f"{what}: {key!r} has the wrong type ({type(v).__name__})")
    return v


class Graph:
    """A NetBuilder model: nodes, edges, UI positions and the training section."""

    def __init__(self, name: str = "untitled") -> None:
        self.name = name
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.ui: dict[str, Any] = {}
        self.training: dict[str, Any] = {}

    # ----- construction and I/O ------------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: Any, validate: bool = True) -> Graph:
        """Parse a model document. Raises GraphFormatError, UnknownLayerError, ParamError or
        GraphStructureError. With ``validate`` the whole graph must also be trainable
        (connected, acyclic, shapes fit): the first problem is raised."""
        if not isinstance(doc, dict):
            raise GraphFormatError(f"a model file must hold a JSON object, got {type(doc).__name__}")
        fmt = doc.get("format")
        if fmt != FORMAT:
            raise GraphFormatError(
                f"not a NetBuilder model: format is {short_repr(fmt)}, expected {FORMAT!r}")
        version = doc.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise GraphFormatError(f"model file has no valid version (got {short_repr(version)})")
        if version > VERSION:
            raise GraphFormatError(
                f"model file version {version} is newer than this NetBuilder reads "
                f"(up to {VERSION}); update NetBuilder")
        if version < 1:
            raise GraphFormatError(f"model file version {version} is not valid")
        g = cls(str(doc.get("name") or "untitled")[:200])
        nodes = _need(doc, "nodes", list, "model file")
        if len(nodes) > MAX_NODES:
            raise GraphFormatError(f"model has {len(nodes)} nodes; at most {MAX_NODES} are supported")
        for i, nd in enumerate(nodes):
            g.add_node(parse_node(nd, i, version))
        edges = doc.get("edges", [])
        if not isinstance(edges, list):
            raise GraphFormatError("model file: 'edges' must be a list")
        fed: dict[tuple[str, int], str] = {}
        for i, ed in enumerate(edges):
            if not isinstance(ed, dict):
                raise GraphFormatError(f"edge #{i} is not an object")
            src = _need(ed, "src", str, f"edge #{i}")
            dst = _need(ed, "dst", str, f"edge #{i}")
            port = ed.get("port", 0)
            if isinstance(port, bool) or not isinstance(port, int):
                raise GraphFormatError(f"edge #{i} ({short_repr(src)} -> {short_repr(dst)}): "
                                       "port must be a whole number")
            g.check_connect(src, dst, port, whole=False)
            if (dst, port) in fed:
                raise GraphStructureError(
                    f"input port {port} of {g.nodes[dst].type} '{dst}' is already fed by "
                    f"'{fed[dst, port]}'", dst)
            fed[dst, port] = src
            g.edges.append(Edge(src, dst, port))
        cycle = g.find_cycle()  # once for the file, not per edge: 10,000-node graphs
        if cycle:
            raise CycleError("the model file's edges make a cycle: "
                             + " -> ".join([*cycle, cycle[0]]), cycle[0], cycle)
        ui = doc.get("ui", {})
        g.ui = copy.deepcopy(ui) if isinstance(ui, dict) else {}
        training = doc.get("training", {})
        if not isinstance(training, dict):
            raise GraphFormatError("model file: 'training' must be an object")
        g.training = copy.deepcopy(training)
        if validate:
            g.validate()
        return g

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION if self.has_blocks() else 1,
            "name": self.name,
            "nodes": [node_to_dict(n) for n in self.nodes.values()],
            "edges": [{"src": e.src, "dst": e.dst, "port": e.port} for e in self.edges],
            "ui": copy.deepcopy(self.ui),
            "training": copy.deepcopy(self.training),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def copy(self) -> Graph:
        return Graph.from_dict(self.to_dict(), validate=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def has_blocks(self) -> bool:
        """Does any node hold a nested graph (a Block)?"""
        return has_blocks(self.nodes)

    def flatten(self) -> Graph:
        """The same model with every block replaced by its contents (``engine.blocks``):
        what compile and the exporters run. Positions of top-level nodes are kept."""
        flat = self.flat_parts()
        g = Graph(self.name)
        g.nodes, g.edges = flat.nodes, flat.edges
        g.ui = {k: copy.deepcopy(v) for k, v in self.ui.items() if k in flat.nodes}
        g.training = copy.deepcopy(self.training)
        return g

    def flat_parts(self) -> Flat:
        """Flat nodes, wires and the blocks each flat node lies in."""
        return flatten(self.nodes, self.edges)

    # ----- editing -------------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        if not isinstance(node.id, str) or not ID_PATTERN.match(node.id):
            raise GraphStructureError(
                f"node id {short_repr(node.id)} is not valid: use letters, digits, '_' or '-', "
                "starting with a letter (at most 64 characters)", None)
        if node.id in self.nodes:
            raise GraphStructureError(f"duplicate node id '{node.id}'", node.id)
        cls = node.layer_class()
        if cls.type_name == BLOCK_TYPE and node.block is None:
            raise GraphStructureError(f"Block '{node.id}' has no contents", node.id)
        cls.resolve_params(node.params, node.id)
        self.nodes[node.id] = node
        return node

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its edges; return both (for undo)."""
        node = self.nodes.pop(node_id)
        gone = [e for e in self.edges if node_id in (e.src, e.dst)]
        self.edges = [e for e in self.edges if node_id not in (e.src, e.dst)]
        self.ui.pop(node_id, None)
        return node, gone

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        """Replace a node's explicit params after validating them."""
        node = self.nodes[node_id]
        node.layer_class().resolve_params(params, node_id)
        node.params = dict(params)

    def set_training(self, node_id: str, trainable: bool | None = None,
                     lr_mult: float | None = None) -> None:
        """Freeze or thaw a node (``trainable``) and/or set its learning-rate multiplier."""
        node = self.nodes[node_id]
        doc = {"trainable": node.trainable if trainable is None else trainable,
               "lr_mult": node.lr_mult if lr_mult is None else lr_mult}
        node.trainable, node.lr_mult = training_keys(doc, node_id)

    def rename_node(self, old: str, new: str) -> None:
        if new == old:
            return
        if not isinstance(new, str) or not ID_PATTERN.match(new):
            raise GraphStructureError(
                f"node id {short_repr(new)} is not valid: use letters, digits, '_' or '-', "
                "starting with a letter", old)
        if new in self.nodes:
            raise GraphStructureError(f"a node named '{new}' already exists", old)
        self.nodes = {(new if k == old else k): v for k, v in self.nodes.items()}
        self.nodes[new].id = new
        self.edges = [Edge(new if e.src == old else e.src, new if e.dst == old else e.dst, e.port)
                      for e in self.edges]
        if old in self.ui:
            self.ui[new] = self.ui.pop(old)

    def check_connect(self, src: str, dst: str, port: int = 0, whole: bool = True) -> None:
        """Raise GraphStructureError / CycleError if ``src -> dst:port`` may not be added.
        ``whole`` False: leave out the cycle and taken-port checks (each walks every edge),
        for a caller that checks the whole graph once."""
        for nid in (src, dst):
            if nid not in self.nodes:
                raise GraphStructureError(f"edge {short_repr(src, 70)} -> {short_repr(dst, 70)}: "
                                          f"no node named {short_repr(nid, 70)}", None)
        src_cls, dst_cls = self.nodes[src].layer_class(), self.nodes[dst].layer_class()
        if not src_cls.has_output_port:
            raise GraphStructureError(f"{src_cls.type_name} '{src}' has no output to connect", src)
        n_max = MAX_INPUTS if dst_cls.max_inputs is None else dst_cls.max_inputs
        if port < 0 or port >= n_max:
            allowed = "no inputs" if n_max == 0 else f"ports 0..{n_max - 1}"
            raise GraphStructureError(
                f"edge {src} -> {dst}: {dst_cls.type_name} '{dst}' has no input port "
                f"{short_repr(port, 30)} ({allowed})", dst)
        if src == dst:
            raise CycleError(f"connecting '{src}' to itself would make a cycle", dst, [dst])
        if not whole:
            return
        if dst in self.ancestors(src):
            raise CycleError(f"connecting '{src}' to '{dst}' would make a cycle", dst,
                             [dst, src])
        for e in self.edges:
            if e.dst == dst and e.port == port:
                raise GraphStructureError(
                    f"input port {port} of {dst_cls.type_name} '{dst}' is already fed by "
                    f"'{e.src}'", dst)

    def connect(self, src: str, dst: str, port: int = 0) -> Edge:
        self.check_connect(src, dst, port)
        e = Edge(src, dst, port)
        self.edges.append(e)
        return e

    def disconnect(self, edge: Edge) -> None:
        self.edges.remove(edge)

    def free_port(self, dst: str) -> int | None:
        """Lowest input port of ``dst`` that nothing feeds, or None if all are taken."""
        cls = self.nodes[dst].layer_class()
        taken = {e.port for e in self.edges if e.dst == dst}
        limit = cls.max_inputs if cls.max_inputs is not None else len(taken) + 1
        for p in range(limit):
            if p not in taken:
                return p
        return None

    # ----- queries -------------------------------------------------------------------------
    def in_edges(self, node_id: str) -> list[Edge]:
        return sorted((e for e in self.edges if e.dst == node_id), key=lambda e: e.port)

    def out_edges(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def ancestors(self, node_id: str) -> set[str]:
        seen: set[str] = set()
        stack = [node_id]
        preds: dict[str, list[str]] = {}
        for e in self.edges:
            preds.setdefault(e.dst, []).append(e.src)
        while stack:
            for p in preds.get(stack.pop(), []):
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    def nodes_of_type(self, type_name: str) -> list[str]:
        return [n.id for n in self.nodes.values() if n.type == type_name]

    def input_ids(self) -> list[str]:
        return self.nodes_of_type("Input")

    def output_ids(self) -> list[str]:
        return self.nodes_of_type("Output")

    def find_cycle(self) -> list[str] | None:
        """Node ids on one cycle, or None."""
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in self.edges:
            succ[e.src].append(e.dst)
        color = dict.fromkeys(self.nodes, 0)
        for root in self.nodes:
            if color[root]:
                continue
            stack: list[tuple[str, Iterator[str]]] = [(root, iter(succ[root]))]
            path = [root]
            color[root] = 1
            while stack:
                nid, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    color[nid] = 2
                    stack.pop()
                    path.pop()
                elif color[nxt] == 1:
                    return path[path.index(nxt):]
                elif color[nxt] == 0:
                    color[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
                    path.append(nxt)
        return None

    def topological_order(self) -> list[str]:
        """Node ids, every node after all its inputs (stable: file order breaks ties)."""
        indeg = dict.fromkeys(self.nodes, 0)
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in self.edges:
            indeg[e.dst] += 1
            succ[e.src].append(e.dst)
        rank = {n: i for i, n in enumerate(self.nodes)}
        ready = sorted((n for n, d in indeg.items() if d == 0), key=rank.__getitem__)
        order: list[str] = []
        import heapq
        heap = [(rank[n], n) for n in ready]
        heapq.heapify(heap)
        while heap:
            _, n = heapq.heappop(heap)
            order.append(n)
            for m in succ[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    heapq.heappush(heap, (rank[m], m))
        if len(order) != len(self.nodes):
            cyc = self.find_cycle() or []
            raise CycleError("the graph has a cycle: " + " -> ".join([*cyc, cyc[0]] if cyc else []),
                             cyc[0] if cyc else None, cyc)
        return order

    # ----- validation and shapes -----------------------------------------------------------
    def diagnose(self, batch_size: int = 1) -> Diagnosis:
        """Infer every shape that can be inferred and collect every problem, per node.

        Never raises for a problem of the graph: the canvas shows what this returns."""
        shapes: dict[str, Shape] = {}
        layers: dict[str, Layer] = {}
        errors: dict[str, NetBuilderError] = {}
        graph_errors: list[NetBuilderError] = []
        if not self.input_ids():
            graph_errors.append(GraphStructureError("the model has no Input node: add one"))
        if not self.output_ids():
            graph_errors.append(GraphStructureError(
                "the model has no Output node: add one after the last layer"))
        cycle = self.find_cycle()
        on_cycle = set(cycle or [])
        if cycle:
            msg = "the graph has a cycle: " + " -> ".join([*cycle, cycle[0]])
            for nid in cycle:
                errors[nid] = CycleError(msg, nid, cycle)
        inputs: dict[str, dict[int, str]] = {n: {} for n in self.nodes}
        for e in self.edges:
            inputs[e.dst][e.port] = e.src
        order = self._order_ignoring(on_cycle)
        for nid in order:
            node = self.nodes[nid]
            cls = node.layer_class()
            ports = inputs[nid]
            need = cls.min_inputs
            n_ports = max([need, *[p + 1 for p in ports]]) if cls.max_inputs != 0 else 0
            missing = [p for p in range(n_ports) if p not in ports]
            if missing:
                names = ", ".join(_port_name(cls, p) for p in missing[:8])
                names += f" and {len(missing) - 8} more" if len(missing) > 8 else ""
                errors[nid] = GraphStructureError(
                    f"{cls.type_name} '{nid}' has nothing connected to input {names}", nid)
                continue
            in_ids = [ports[p] for p in range(n_ports)]
            if any(s not in shapes for s in in_ids):
                continue
            try:
                layer = cls(nid, node.params, [shapes[s] for s in in_ids])
            except (ShapeError, ParamError) as exc:
                errors[nid] = exc
                continue
            out = layer.out_shape
            if any(d <= 0 for d in out):
                errors[nid] = ShapeError(
                    f"{layer.where}: output shape {fmt_shape(out)} has an empty dimension; "
                    "the input is too small for this layer", nid)
                continue
            n_el = math.prod(out)
            if n_el > MAX_ELEMENTS:
                errors[nid] = ModelTooLargeError(
                    f"{layer.where}: output {fmt_shape(out)} has {n_el:,} elements per sample, "
                    "more than any machine can hold", nid)
                continue
            shapes[nid] = out
            layers[nid] = layer
        if not errors and not graph_errors:
            err = self._size_error(shapes, layers, batch_size)
            if err is not None:
                graph_errors.append(err)
        return Diagnosis(shapes, errors, graph_errors, layers)

    def _order_ignoring(self, skip: set[str]) -> list[str]:
        sub = Graph(self.name)
        sub.nodes = {k: v for k, v in self.nodes.items() if k not in skip}
        sub.edges = [e for e in self.edges if e.src not in skip and e.dst not in skip]
        return sub.topological_order()

    def _size_error(self, shapes: dict[str, Shape], layers: dict[str, Layer],
                    batch_size: int) -> ModelTooLargeError | None:
        params = sum(layers[nid].param_count() for nid in shapes
                     if self.nodes[nid].type != "Input")
        acts = sum(math.prod(s) for s in shapes.values())
        need = 4 * (4 * params + 3 * acts * max(1, batch_size))
        have = available_memory_bytes()
        if need > have:
            return ModelTooLargeError(
                f"the model would need about {fmt_bytes(need)} to train "
                f"({params:,} parameters, {acts:,} activations per sample, batch {batch_size}); "
                f"this machine has {fmt_bytes(have)}")
        return None

    def validate(self, batch_size: int = 1) -> dict[str, Shape]:
        """Raise the first problem that stops this graph from training; return its shapes."""
        d = self.diagnose(batch_size)
        for err in d.graph_errors:
            if isinstance(err, GraphStructureError):
                raise err
        cyc = next((e for e in d.errors.values() if isinstance(e, CycleError)), None)
        if cyc is not None:
            raise cyc
        for nid in self.topological_order():
            if nid in d.errors:
                raise d.errors[nid]
        for err in d.graph_errors:
            raise err
        return d.shapes

    def infer_shapes(self) -> dict[str, Shape]:
        """Per-sample output shape of every node; raises the first problem (see validate)."""
        return self.validate()

    def build_layers(self) -> dict[str, Layer]:
        """Layer instances for a valid graph, in topological order."""
        shapes = self.validate()
        layers: dict[str, Layer] = {}
        for nid in self.topological_order():
            node = self.nodes[nid]
            ins = [shapes[e.src] for e in self.in_edges(nid)]
            layers[nid] = node.layer_class()(nid, node.params, ins)
        return layers


def _port_name(cls: type[Layer], port: int) -> str:
    if port < len(cls.input_names) and (cls.max_inputs is not None or len(cls.input_names) > 1):
        return f"{port} ({cls.input_names[port]})"
    return str(port)


def load_graph(path: str | os.PathLike, validate: bool = True) -> Graph:
    """Read a model file (``*.json``). Raises GraphFormatError naming the file if unreadable."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise GraphFormatError(f"no such model file: {p}") from None
    except IsADirectoryError:
        raise GraphFormatError(f"{p} is a folder, not a model file") from None
    except OSError as exc:
        raise GraphFormatError(f"cannot read {p}: {exc.strerror or exc}") from None
    return graph_from_bytes(raw, str(p), validate)


def graph_from_bytes(raw: bytes, source: str = "model", validate: bool = True) -> Graph:
    if len(raw) > 64 * 2**20:
        raise GraphFormatError(f"{source}: {len(raw) / 2**20:.0f} MB is too large for a model file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GraphFormatError(f"{source} is not UTF-8 text (byte {exc.start}); "
                               "is it a model file?") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphFormatError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except ValueError:
        raise GraphFormatError(f"{source} is not valid JSON: it holds a number with too many "
                               "digits to read") from None
    except RecursionError:
        raise GraphFormatError(f"{source} is nested too deeply to be a model file") from None
    try:
        return Graph.from_dict(doc, validate=validate)
    except RecursionError:
        raise GraphFormatError(f"{source} is nested too deeply to be a model file") from None


def save_graph(graph: Graph, path: str | os.PathLike) -> None:
    """Write the model file atomically: the old file stays whole until the new one is."""
    atomic_write_text(Path(path), graph.to_json() + "\n")


class BlockLayer(Layer):
    """The layer type of a Block node. A block's own class (``for_block``) has one input port
    per block input; its output shape, parameter count and MACs are those of its contents.
    It never runs: compile and the exporters flatten blocks first."""

    type_name = BLOCK_TYPE
    category = "Blocks"
    help = ("A group of layers drawn as one node (Ctrl+G groups a selection); "
            "double-click to edit it in place.")
    min_inputs = 1
    max_inputs = None
    glyph = "▦"
    id_prefix = "block"
    body: Block | None = None

    @classmethod
    def for_block(cls, block: Block) -> type[BlockLayer]:
        """The class of one block (cached on it)."""
        got = block.layer_cls
        if got is not None and got.body is block:
            return got
        n = len(block.inputs)
        got = type("BlockLayer_" + block.name.replace(" ", "_")[:40], (cls,),
                   {"body": block, "min_inputs": n, "max_inputs": n,
                    "input_names": tuple(block.inputs), "__module__": __name__})
        block.layer_cls = got
        return got

    def inner_graph(self) -> Graph:
        """The contents as a graph whose Inputs stand for the ports (with this node's input
        shapes)."""
        b = self.body
        assert b is not None
        g = Graph(b.name)
        for name, shape in zip(b.inputs, self.in_shapes):
            g.nodes[name] = Node(name, "Input", {"shape": list(shape)})
        g.nodes.update(b.nodes)
        g.edges = list(b.edges)
        return g

    def infer_shape(self) -> Shape:
        if self.body is None:
            raise self.shape_error("has no contents")
        g = self.inner_graph()
        d = g.diagnose()
        for nid in g._order_ignoring(set()):
            if nid in d.errors:
                raise ShapeError(f"{self.where} ({self.body.name}): {d.errors[nid].message}",
                                 self.id)
        self.inner_shapes = d.shapes
        ins = {nid: [d.shapes[e.src] for e in g.in_edges(nid)] for nid in self.body.nodes}
        self.inner = {nid: n.layer_class()(nid, n.params, ins[nid])
                      for nid, n in self.body.nodes.items()}
        return d.shapes[self.body.output]

    def param_count(self) -> int:
        return sum(layer.param_count() for layer in self.inner.values())

    def macs(self) -> int:
        return sum(layer.macs() for layer in self.inner.values())

    def summary(self) -> str:
        return self.body.name if self.body else ""


register_structural(BlockLayer)

"""The Qt-free document: an ``engine.Graph`` (with node positions in ``graph.ui``), the file it
came from, a dirty flag, and every edit as an undoable command object.

Commands have ``do(doc)`` and ``undo(doc)``; ``Document.execute`` / ``Document.revert`` run
them and tell listeners what changed. The GUI wraps them in a QUndoStack (netbuilder/undo.py);
scripts and tests can drive a Document directly.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engine
from engine.blocks import BLOCK_TYPE, Block, parse_block, training_keys
from engine.errors import GraphFormatError, GraphStructureError
from engine.graph import VERSION, Edge, Graph, Node

from .analysis import Analysis, ReceptiveField, analyse, receptive_fields

Pos = tuple[float, float]


@dataclass
class Change:
    """What one edit touched; views refresh only what they must."""

    reset: bool = False
    structure: bool = False
    params: set[str] = field(default_factory=set)
    moved: set[str] = field(default_factory=set)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    training: bool = False
    meta: bool = False
    frozen: set[str] = field(default_factory=set)  # nodes whose trainable / lr_mult changed

    @property
    def affects_shapes(self) -> bool:
        return self.reset or self.structure or bool(self.params) or bool(self.renamed)


class Document:
    """A graph being edited. Listeners get a :class:`Change` after each edit."""

    def __init__(self, graph: Graph | None = None, path: str | Path | None = None) -> None:
        self.graph = graph if graph is not None else Graph("untitled")
        self.path: Path | None = Path(path) if path else None
        self._listeners: list[Callable[[Change], None]] = []
        self._serial = itertools.count(1)
        self._state = 0
        self._saved_state = 0
        self._pending: Change | None = None
        self._analysis: Analysis | None = None
        self._rf: dict[str, ReceptiveField] | None = None

    # ----- observers -----------------------------------------------------------------------
    def subscribe(self, fn: Callable[[Change], None]) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn: Callable[[Change], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _touch(self, **kw: Any) -> None:
        ch = self._pending if self._pending is not None else Change()
        for k, v in kw.items():
            cur = getattr(ch, k)
            if isinstance(cur, set):
                cur.update(v)
            elif isinstance(cur, list):
                cur.extend(v)
            else:
                setattr(ch, k, cur or v)
        if self._pending is None:
            self._emit(ch)
        else:
            self._pending = ch

    def _emit(self, ch: Change) -> None:
        if ch.affects_shapes:
            self._analysis = None
            self._rf = None
        for fn in list(self._listeners):
            fn(ch)

    # ----- dirty state ---------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self._state != self._saved_state

    @property
    def revision(self) -> int:
        """Identifies the current content: equal revisions mean equal graphs."""
        return self._state

    def mark_saved(self) -> None:
        self._saved_state = self._state
        self._touch(meta=True)

    @property
    def title(self) -> str:
        return self.path.name if self.path else (self.graph.name or "untitled")

    # ----- running commands ----------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group edits: listeners hear one merged Change at the end (even on error)."""
        if self._pending is not None:
            yield
            return
        self._pending = Change()
        try:
            yield
        finally:
            ch, self._pending = self._pending, None
            if ch != Change():
                self._emit(ch)

    def execute(self, cmd: Command) -> None:
        """Apply ``cmd``; on NetBuilderError nothing changes and the error propagates."""
        with self.batch():
            cmd.do(self)
            if cmd.state is None:
                cmd.state = next(self._serial)
            cmd.before = self._state
            self._state = cmd.state
            self._touch(meta=True)

    def revert(self, cmd: Command) -> None:
        with self.batch():
            cmd.undo(self)
            self._state = cmd.before
            self._touch(meta=True)

    # ----- whole-document operations -------------------------------------------------------
    def reset(self, graph: Graph, path: str | Path | None = None, dirty: bool = False) -> None:
        """Show another graph (New / Open / restore); history is the caller's to clear."""
        self.graph = graph
        self.path = Path(path) if path else None
        self._state = next(self._serial)
        self._saved_state = -1 if dirty else self._state
        self._analysis = None
        self._rf = None
        self._touch(reset=True)

    @staticmethod
    def read(path: str | Path) -> Graph:
        """Load a model file, or the model of a trained bundle (``*.nbmodel``), for editing
        (shape errors allowed). Raises NetBuilderError."""
        from engine import bundle

        if bundle.is_bundle_path(path):
            return bundle.load_bundle(path).graph
        return engine.load_graph(path, validate=False)

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically to ``path`` (or the current file) and mark the document clean."""
        target = Path(path) if path else self.path
        if target is None:
            raise GraphFormatError("the model has no file yet: choose where to save it")
        if target.suffix.lower() != ".json":
            target = target.with_suffix(target.suffix + ".json") if target.suffix else \
                target.with_suffix(".json")
        engine.save_graph(self.graph, target)
        self.path = target
        self.mark_saved()
        return target

    # ----- queries -------------------------------------------------------------------------
    @property
    def analysis(self) -> Analysis:
        if self._analysis is None:
            self._analysis = analyse(self.graph)
        return self._analysis

    @property
    def receptive_fields(self) -> dict[str, ReceptiveField]:
        if self._rf is None:
            self._rf = receptive_fields(self.graph, self.analysis)
        return self._rf

    def position(self, node_id: str) -> Pos | None:
        entry = self.graph.ui.get(node_id)
        if isinstance(entry, dict):
            pos = entry.get("pos")
            if (isinstance(pos, list | tuple) and len(pos) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos)):
                return float(pos[0]), float(pos[1])
        return None

    def fresh_id(self, type_name: str, taken: Iterable[str] = ()) -> str:
        """First free id like ``conv1``, ``dense2`` for a node of ``type_name`` (the layer's
        ``id_prefix``; an unknown type's name in lower case)."""
        cls = engine.layer_types().get(type_name)
        prefix = (cls.new_id_prefix() if cls is not None
                  else re.sub(r"2d$", "", type_name.lower()) or "node")
        used = set(self.graph.nodes) | set(taken)
        for i in itertools.count(1):
            cand = f"{prefix}{i}"
            if cand not in used:
                return cand
        raise AssertionError

    # ----- primitive edits (run them through commands to make them undoable) --------------
    def set_position(self, node_id: str, pos: Pos | None) -> None:
        if pos is None:
            self.graph.ui.pop(node_id, None)
        else:
            entry = self.graph.ui.get(node_id)
            entry = dict(entry) if isinstance(entry, dict) else {}
            entry["pos"] = [round(float(pos[0]), 2), round(float(pos[1]), 2)]
            self.graph.ui[node_id] = entry
        self._touch(moved={node_id})

    def insert_node(self, node: Node, ui: dict[str, Any] | None, index: int | None = None) -> None:
        self.graph.add_node(node)
        if index is not None and index < len(self.graph.nodes) - 1:
            items = list(self.graph.nodes.items())
            items.insert(index, items.pop())
            self.graph.nodes = dict(items)
        if ui is not None:
            self.graph.ui[node.id] = copy.deepcopy(ui)
        self._touch(structure=True)

    def delete_node(self, node_id: str) -> None:
        if any(node_id in (e.src, e.dst) for e in self.graph.edges):
            raise GraphStructureError(f"node '{node_id}' still has wires", node_id)
        self.graph.remove_node(node_id)
        self._touch(structure=True)

    def insert_edge(self, edge: Edge, index: int | None = None) -> None:
        self.graph.check_connect(edge.src, edge.dst, edge.port)
        if index is None or index >= len(self.graph.edges):
            self.graph.edges.append(edge)
        else:
            self.graph.edges.insert(index, edge)
        self._touch(structure=True)

    def delete_edge(self, edge: Edge) -> None:
        self.graph.disconnect(edge)
        self._touch(structure=True)

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        self.graph.set_params(node_id, params)
        self._touch(params={node_id})

    def rename(self, old: str, new: str) -> None:
        keys = list(self.graph.ui)
        self.graph.rename_node(old, new)
        self.reorder_ui([new if k == old else k for k in keys])
        self._touch(renamed=[(old, new)])

    def reorder_ui(self, keys: list[str]) -> None:
        """Put ``graph.ui`` entries back in a remembered order (files stay byte-identical)."""
        ui = self.graph.ui
        self.graph.ui = {**{k: ui[k] for k in keys if k in ui},
                         **{k: v for k, v in ui.items() if k not in keys}}

    def replace_graph(self, graph: Graph) -> None:
        """Swap in an edited copy of the graph (block edits): views re-read every node."""
        self.graph = graph
        self._touch(structure=True, params=set(graph.nodes), moved=set(graph.nodes))

    def set_name(self, name: str) -> None:
        self.graph.name = name
        self._touch(meta=True)

    def set_node_training(self, node_id: str, trainable: bool, lr_mult: float) -> None:
        """Freeze or thaw a node and set its learning-rate multiplier (ParamError if the
        multiplier is not a number from 0 to 1e6)."""
        self.graph.set_training(node_id, trainable, lr_mult)
        self._touch(frozen={node_id})

    def set_training(self, training: dict[str, Any]) -> None:
        self.graph.training = copy.deepcopy(training)
        self._touch(training=True)


# ----- commands ---------------------------------------------------------------------------
class Command:
    """One undoable edit. ``do`` must either succeed whole or change nothing."""

    text = "edit"

    def __init__(self) -> None:
        self.state: int | None = None
        self.before = 0

    def do(self, doc: Document) -> None:
        raise NotImplementedError

    def undo(self, doc: Document) -> None:
        raise NotImplementedError


@dataclass
class NodeSpec:
    """A node to add, with its UI entry (``{"pos": [x, y]}``)."""

    id: str
    type: str
    params: dict[str, Any]
    pos: Pos
    block: Block | None = None  # a Block node's contents
    trainable: bool = True  # false: frozen (``engine.Node.trainable``)
    lr_mult: float = 1.0

    def node(self) -> Node:
        return Node(self.id, self.type, copy.deepcopy(self.params), copy.deepcopy(self.block),
                    self.trainable, self.lr_mult)


class AddNodes(Command):
    """Add nodes (and wires among or to them): one drop, a paste or a duplicate."""

    def __init__(self, nodes: list[NodeSpec], edges: Iterable[Edge] = (), text: str = "") -> None:
        super().__init__()
        self.nodes = list(nodes)
        self.edges = list(edges)
        self.text = text or (f"Add {self.nodes[0].type} '{self.nodes[0].id}'"
                             if len(self.nodes) == 1 else f"Add {len(self.nodes)} nodes")

    def do(self, doc: Document) -> None:
        done: list[str] = []
        wired: list[Edge] = []
        try:
            for spec in self.nodes:
                doc.insert_node(spec.node(), {"pos": [float(spec.pos[0]), float(spec.pos[1])]})
                done.append(spec.id)
            for e in self.edges:
                doc.insert_edge(e)
                wired.append(e)
        except Exception:
            for e in reversed(wired):
                doc.delete_edge(e)
            for nid in reversed(done):
                doc.delete_node(nid)
            raise

    def undo(self, doc: Document) -> None:
        for e in reversed(self.edges):
            doc.delete_edge(e)
        for spec in reversed(self.nodes):
            doc.delete_node(spec.id)


class DeleteItems(Command):
    """Delete nodes (with their wires) and wires; undo puts everything back where it was."""

    def __init__(self, node_ids: Iterable[str] = (), edges: Iterable[Edge] = ()) -> None:
        super().__init__()
        self.node_ids = list(dict.fromkeys(node_ids))
        self.extra_edges = list(dict.fromkeys(edges))
        n, m = len(self.node_ids), len(self.extra_edges)
        if n == 1 and not m:
            self.text = f"Delete '{self.node_ids[0]}'"
        elif m == 1 and not n:
            e = self.extra_edges[0]
            self.text = f"Disconnect {e.src} → {e.dst}"
        else:
            self.text = f"Delete {n + m} items"
        self._nodes: list[tuple[int, Node, Any]] = []
        self._edges: list[tuple[int, Edge]] = []
        self._ui_order: list[str] = []

    def do(self, doc: Document) -> None:
        g = doc.graph
        gone_ids = set(self.node_ids)
        for nid in self.node_ids:
            if nid not in g.nodes:
                raise GraphStructureError(f"no node named '{nid}'", nid)
        want = set(self.extra_edges)
        self._edges = [(i, e) for i, e in enumerate(g.edges)
                       if e in want or e.src in gone_ids or e.dst in gone_ids]
        order = list(g.nodes)
        self._nodes = [(order.index(nid), copy.deepcopy(g.nodes[nid]),
                        copy.deepcopy(g.ui.get(nid))) for nid in self.node_ids]
        self._nodes.sort(key=lambda t: t[0])
        self._ui_order = list(g.ui)
        for _, e in reversed(self._edges):
            doc.delete_edge(e)
        for _, node, _ in reversed(self._nodes):
            doc.delete_node(node.id)

    def undo(self, doc: Document) -> None:
        for index, node, ui in self._nodes:
            doc.insert_node(copy.deepcopy(node), ui, index)
        for index, e in self._edges:
            doc.insert_edge(e, index)
        doc.reorder_ui(self._ui_order)


class Connect(Command):
    """Wire ``src``'s output to input ``port`` of ``dst`` (refused with the engine's reason)."""

    def __init__(self, src: str, dst: str, port: int = 0) -> None:
        super().__init__()
        self.edge = Edge(src, dst, port)
        self.text = f"Connect {src} → {dst}" + (f" (input {port})" if port else "")

    def do(self, doc: Document) -> None:
        doc.insert_edge(self.edge)

    def undo(self, doc: Document) -> None:
        doc.delete_edge(self.edge)


class MoveNodes(Command):
    """Set node positions (a drag, nudge or automatic layout)."""

    def __init__(self, moves: dict[str, tuple[Pos | None, Pos]], text: str = "") -> None:
        super().__init__()
        self.moves = dict(moves)
        self.text = text or (f"Move '{next(iter(self.moves))}'" if len(self.moves) == 1
                             else f"Move {len(self.moves)} nodes")

    def do(self, doc: Document) -> None:
        for nid, (_, new) in self.moves.items():
            doc.set_position(nid, new)

    def undo(self, doc: Document) -> None:
        for nid, (old, _) in self.moves.items():
            doc.set_position(nid, old)


class SetParams(Command):
    """Replace a node's explicit params (validated by the layer's ParamSpecs)."""

    def __init__(self, node_id: str, old: dict[str, Any], new: dict[str, Any], text: str = ""):
        super().__init__()
        self.node_id, self.old, self.new = node_id, copy.deepcopy(old), copy.deepcopy(new)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        self.text = text or f"Set {', '.join(changed) or 'params'} of '{node_id}'"

    def do(self, doc: Document) -> None:
        doc.set_params(self.node_id, copy.deepcopy(self.new))

    def undo(self, doc: Document) -> None:
        doc.set_params(self.node_id, copy.deepcopy(self.old))


class Rename(Command):
    """Change a node id; its wires and position follow."""

    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old, self.new = old, new
        self.text = f"Rename '{old}' to '{new}'"

    def do(self, doc: Document) -> None:
        doc.rename(self.old, self.new)

    def undo(self, doc: Document) -> None:
        doc.rename(self.new, self.old)


class SetTraining(Command):
    """Replace the model file's ``training`` section (dataset, optimizer, batch size, ...)."""

    def __init__(self, old: dict[str, Any], new: dict[str, Any], text: str = "") -> None:
        super().__init__()
        self.old, self.new = copy.deepcopy(old), copy.deepcopy(new)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        self.text = text or f"Set training {', '.join(changed) or 'settings'}"

    def do(self, doc: Document) -> None:
        doc.set_training(self.new)

    def undo(self, doc: Document) -> None:
        doc.set_training(self.old)


class SetNodeTraining(Command):
    """Freeze / thaw nodes and set their learning-rate multipliers: ``new`` maps node id
    to (trainable, lr_mult); undo puts back what they had."""

    def __init__(self, doc: Document, new: dict[str, tuple[bool, float]], text: str = ""):
        super().__init__()
        g = doc.graph
        self.old = {nid: (g.nodes[nid].trainable, g.nodes[nid].lr_mult) for nid in new}
        self.new = dict(new)
        names = ", ".join(f"'{n}'" for n in new)
        self.text = text or f"Set the training of {names}"

    def do(self, doc: Document) -> None:
        done: list[str] = []
        try:
            for nid, (trainable, mult) in self.new.items():
                doc.set_node_training(nid, trainable, mult)
                done.append(nid)
        except Exception:
            for nid in reversed(done):
                doc.set_node_training(nid, *self.old[nid])
            raise

    def undo(self, doc: Document) -> None:
        for nid, (trainable, mult) in self.old.items():
            doc.set_node_training(nid, trainable, mult)


class Composite(Command):
    """Several commands as one undo step (e.g. rewiring = disconnect + connect)."""

    def __init__(self, parts: list[Command], text: str) -> None:
        super().__init__()
        self.parts = parts
        self.text = text

    def do(self, doc: Document) -> None:
        done: list[Command] = []
        try:
            for c in self.parts:
                c.do(doc)
                done.append(c)
        except Exception:
            for c in reversed(done):
                c.undo(doc)
            raise

    def undo(self, doc: Document) -> None:
        for c in reversed(self.parts):
            c.undo(doc)


# ----- clipboard fragments ----------------------------------------------------------------
FRAGMENT_FORMAT = "netbuilder.fragment"


def make_fragment(doc: Document, node_ids: Iterable[str]) -> dict[str, Any]:
    """The selected nodes and the wires among them, as JSON-ready data."""
    keep = set(node_ids)
    return {
        "format": FRAGMENT_FORMAT,
        "nodes": [{**nd, "pos": list(doc.position(nd["id"]) or (0.0, 0.0))}
                  for nd in doc.graph.to_dict()["nodes"] if nd["id"] in keep],
        "edges": [{"src": e.src, "dst": e.dst, "port": e.port} for e in doc.graph.edges
                  if e.src in keep and e.dst in keep],
    }


def paste_command(doc: Document, fragment: Any, offset: Pos = (40.0, 40.0),
                  text: str = "Paste") -> AddNodes:
    """An AddNodes command for a fragment, with fresh ids and positions moved by ``offset``.

    Raises GraphFormatError for data that is not a fragment."""
    if not isinstance(fragment, dict) or fragment.get("format") != FRAGMENT_FORMAT:
        raise GraphFormatError("the clipboard holds no NetBuilder nodes")
    nodes, edges = fragment.get("nodes"), fragment.get("edges", [])
    if not isinstance(nodes, list) or not nodes or not isinstance(edges, list):
        raise GraphFormatError("the clipboard holds no NetBuilder nodes")
    rename: dict[str, str] = {}
    specs: list[NodeSpec] = []
    for nd in nodes:
        if not isinstance(nd, dict) or not isinstance(nd.get("id"), str) \
                or not isinstance(nd.get("type"), str):
            raise GraphFormatError("the clipboard holds a malformed node")
        cls = engine.get_layer_class(nd["type"], nd["id"])
        params = nd.get("params") or {}
        if not isinstance(params, dict):
            raise GraphFormatError("the clipboard holds a malformed node")
        cls.resolve_params(params, nd["id"])
        block = None
        if nd["type"] == BLOCK_TYPE or "block" in nd:
            if not isinstance(nd.get("block"), dict):
                raise GraphFormatError("the clipboard holds a block without its contents")
            block = parse_block(nd["block"], nd["id"], VERSION)
        new_id = doc.fresh_id(nd["type"], rename.values())
        rename[nd["id"]] = new_id
        pos = nd.get("pos")
        if not (isinstance(pos, list) and len(pos) == 2
                and all(isinstance(v, int | float) for v in pos)):
            pos = [0.0, 0.0]
        trainable, lr_mult = training_keys(nd, nd["id"])
        specs.append(NodeSpec(new_id, nd["type"], params,
                              (float(pos[0]) + offset[0], float(pos[1]) + offset[1]), block,
                              trainable, lr_mult))
    wires = []
    for ed in edges:
        if isinstance(ed, dict) and ed.get("src") in rename and ed.get("dst") in rename:
            port = ed.get("port", 0)
            wires.append(Edge(rename[ed["src"]], rename[ed["dst"]],
                              port if isinstance(port, int) else 0))
    return AddNodes(specs, wires, text=f"{text} {len(specs)} node" + ("s" if len(specs) > 1 else ""))

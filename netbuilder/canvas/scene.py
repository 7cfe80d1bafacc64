"""The canvas scene: keeps node and wire items in step with the Document, and turns mouse
gestures (drop, drag, wire, delete) into undoable commands."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsScene, QGraphicsSceneMouseEvent

import engine
from engine.errors import NetBuilderError
from engine.graph import Edge

from ..analysis import Analysis, fmt_shape
from ..document import (
    AddNodes,
    Change,
    Command,
    Composite,
    Connect,
    DeleteItems,
    Document,
    MoveNodes,
    NodeSpec,
    make_fragment,
    paste_command,
)
from ..layout import layered_layout
from . import theme
from .block_item import BlockItem
from .edge import EdgeItem, RubberWire, Toast
from .node import NodeItem, PortItem, repaint_where_drawn

MIME_LAYER = "application/x-netbuilder-layer"
BLOCK_PREFIX = "block:"  # a palette entry of the user's block library
SNAP_RADIUS = 18.0  # screen pixels: a dropped wire finds a port this close
PRESS_RADIUS = 9.0  # screen pixels: a press this close to a port starts a wire


@dataclass
class _Wiring:
    """A wire being drawn. ``from_output``: the fixed end is ``node``'s output."""

    node: str
    from_output: bool
    port: int
    rubber: RubberWire
    detached: Edge | None = None


class CanvasScene(QGraphicsScene):
    """Scene of one Document. ``push(cmd)`` runs a command through the undo stack and raises
    NetBuilderError when the engine refuses it."""

    message = Signal(str, bool)  # text, is it an error
    analysed = Signal(object)  # Analysis, after every shape-affecting change

    def __init__(self, doc: Document, push: Callable[[Command], None], parent=None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.push = push
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[Edge, EdgeItem] = {}
        self.snap_enabled = True
        self.last_toast: Toast | None = None
        self._wiring: _Wiring | None = None
        self._press: dict[str, QPointF] | None = None
        self._syncing = False
        self._rf_node: str | None = None
        self.drop_block: Callable[[str, QPointF], str | None] | None = None
        self.setBackgroundBrush(Qt.BrushStyle.NoBrush)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        doc.subscribe(self.on_change)
        self.selectionChanged.connect(self._update_rf)
        self.rebuild()

    # ----- keeping in step with the document -----------------------------------------------
    def on_change(self, ch: Change) -> None:
        if ch.reset:
            self.rebuild()
            return
        for old, new in ch.renamed:
            item = self.nodes.pop(old, None)
            if item is not None:
                item.set_node_id(new)
                self.nodes[new] = item
            for e in [e for e in self.edges if old in (e.src, e.dst)]:
                ei = self.edges.pop(e)
                ei.edge = Edge(new if e.src == old else e.src, new if e.dst == old else e.dst,
                               e.port)
                self.edges[ei.edge] = ei
        if ch.structure:
            self._reconcile()
        if ch.moved:
            repaint_where_drawn(*(self.nodes[n] for n in ch.moved if n in self.nodes))
            self._syncing = True
            try:
                for nid in ch.moved:
                    item, pos = self.nodes.get(nid), self.doc.position(nid)
                    if item is not None and pos is not None and item.pos() != QPointF(*pos):
                        item.defer_edges = True
                        item.setPos(QPointF(*pos))
                        item.defer_edges = False
            finally:
                self._syncing = False
        if ch.affects_shapes:
            self.refresh()
        if ch.structure or ch.moved:
            self.reroute()
            self._grow_rect()

    def reroute(self) -> None:
        """Re-plan every wire around the cards now in its way (after moves and edits)."""
        repaint_where_drawn(*self.edges.values())
        for item in self.edges.values():
            item.update_path(repaint_old=False)

    def rebuild(self) -> None:
        """Drop every item and build them again from the document."""
        self._cancel_wiring()
        for item in list(self.edges.values()):
            item.detach()
            self.removeItem(item)
        for item in list(self.nodes.values()):
            self.removeItem(item)
        self.nodes.clear()
        self.edges.clear()
        self._rf_node = None
        self._reconcile()
        self.refresh()
        self.place_unpositioned()
        self.reroute()
        self._grow_rect()

    def _reconcile(self) -> None:
        g = self.doc.graph
        for nid in [n for n in self.nodes if n not in g.nodes]:
            item = self.nodes.pop(nid)
            for e in list(item.edges):
                self._remove_edge_item(e.edge)
            self.removeItem(item)
        for nid, node in g.nodes.items():
            item = self.nodes.get(nid)
            if item is not None and (item.type_name != node.type
                                     or getattr(item, "node_ref", node) is not node):
                self._remove_node_item(nid)  # a block edit swaps in new block nodes
                item = None
            if item is None:
                item = BlockItem(nid, node) if node.block is not None else NodeItem(nid, node.type)
                item.snap = self._snap
                self.addItem(item)
                self.nodes[nid] = item
                pos = self.doc.position(nid)
                self._syncing = True
                item.setPos(QPointF(*pos) if pos else QPointF(0, 0))
                self._syncing = False
        live = set(g.edges)
        for e in [e for e in self.edges if e not in live]:
            self._remove_edge_item(e)
        for e in g.edges:
            if e not in self.edges and e.src in self.nodes and e.dst in self.nodes:
                item = EdgeItem(e, self.nodes[e.src], self.nodes[e.dst])
                self.addItem(item)
                item.update_path()
                self.edges[e] = item

    def _remove_edge_item(self, e: Edge) -> None:
        item = self.edges.pop(e, None)
        if item is not None:
            item.detach()
            self.removeItem(item)

    def _remove_node_item(self, nid: str) -> None:
        item = self.nodes.pop(nid)
        for e in list(item.edges):
            self._remove_edge_item(e.edge)
        self.removeItem(item)

    def refresh(self) -> Analysis:
        """Re-read shapes, sizes and errors from the document's analysis."""
        an = self.doc.analysis
        connected: dict[str, int] = {}
        for e in self.doc.graph.edges:
            connected[e.dst] = max(connected.get(e.dst, 0), e.port + 1)
        for nid, item in self.nodes.items():
            info = an.nodes.get(nid)
            if info is not None:
                item.set_info(info, n_inputs=item.port_count_for(connected.get(nid, 0)))
        for e, item in self.edges.items():
            src = an.nodes.get(e.src)
            item.set_label(fmt_shape(src.out_shape if src else None))
        self._update_rf()
        self.analysed.emit(an)
        return an

    # ----- live training monitor ----------------------------------------------------------
    def set_monitor(self, badges: dict[str, tuple[str, str, str]] | None = None,
                    flows: dict[tuple[str, str, int], tuple[float, bool]] | None = None) -> None:
        """Show training badges (node id -> text, level, tooltip) and wire tints ((src, dst,
        port) -> gradient norm, approximate?). Nodes and wires left out keep theirs."""
        for nid, (text, level, tip) in (badges or {}).items():
            item = self.nodes.get(nid)
            if item is not None:
                item.set_badge(text, level, tip)
        for (src, dst, port), (norm, approx) in (flows or {}).items():
            item = self.edges.get(Edge(src, dst, port))
            if item is not None:
                item.set_flow(norm, approx)

    def clear_monitor(self) -> None:
        """Remove every training badge and wire tint."""
        for item in self.nodes.values():
            item.set_badge(None)
        for e in self.edges.values():
            e.set_flow(None)

    def _grow_rect(self) -> None:
        r = self.itemsBoundingRect()
        self.setSceneRect(r.adjusted(-3000, -3000, 3000, 3000))

    def place_unpositioned(self) -> None:
        """Give nodes without a saved position one, and lay the whole graph out afresh when
        saved positions would make cards overlap (e.g. a file drawn with other node sizes).
        Not an undoable edit: the document stays clean."""
        missing = [nid for nid in self.nodes if self.doc.position(nid) is None]
        if len(missing) == len(self.nodes) or self._overlapping():
            pos = self.layout_positions()
        elif missing:
            placed = [self.nodes[n] for n in self.nodes if n not in missing]
            bottom = max(i.pos().y() + i.height for i in placed) + 60
            left = min(i.pos().x() for i in placed)
            pos = {n: (left + k * (theme.NODE_WIDTH + 40), bottom) for k, n in enumerate(missing)}
        else:
            return
        repaint_where_drawn(*(self.nodes[n] for n in pos if n in self.nodes))
        self._syncing = True
        for nid, p in pos.items():
            self.doc.graph.ui.setdefault(nid, {})["pos"] = [p[0], p[1]]
            item = self.nodes[nid]
            item.defer_edges = True
            item.setPos(QPointF(*p))
            item.defer_edges = False
        self._syncing = False

    def _overlapping(self) -> bool:
        boxes = []
        for nid, it in self.nodes.items():
            p = self.doc.position(nid)
            if p is not None:
                boxes.append((p[0], p[1], p[0] + it.width, p[1] + it.height))
        boxes.sort()
        for i, (_x0, y0, x1, y1) in enumerate(boxes):
            for bx0, by0, _bx1, by1 in boxes[i + 1:]:
                if bx0 >= x1:
                    break
                if by0 < y1 and y0 < by1:
                    return True
        return False

    def layout_positions(self) -> dict[str, tuple[float, float]]:
        g = self.doc.graph
        sizes = {nid: (it.width, it.height) for nid, it in self.nodes.items()}
        return layered_layout(list(g.nodes), [(e.src, e.dst, e.port) for e in g.edges], sizes,
                              grid=theme.GRID if self.snap_enabled else None)

    # ----- selection -----------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, ids: list[str]) -> None:
        self.clearSelection()
        for nid in ids:
            if nid in self.nodes:
                self.nodes[nid].setSelected(True)

    def _update_rf(self) -> None:
        sel = self.selected_node_ids()
        nid = sel[0] if len(sel) == 1 else None
        rf = self.doc.receptive_fields.get(nid) if nid else None
        if self._rf_node and self._rf_node != nid and self._rf_node in self.nodes:
            self.nodes[self._rf_node].set_rf(None)
        self._rf_node = nid
        if nid in self.nodes:
            self.nodes[nid].set_rf(rf)

    # ----- edits ---------------------------------------------------------------------------
    def run(self, cmd: Command, where: QPointF | None = None) -> bool:
        """Push ``cmd``; a refusal is shown (status bar + canvas label) and returns False."""
        try:
            self.push(cmd)
        except NetBuilderError as exc:
            self.refuse(exc.message, where)
            return False
        return True

    def refuse(self, text: str, where: QPointF | None = None) -> None:
        self.message.emit(text, True)
        if self.last_toast is not None and self.last_toast.scene() is self:
            self.last_toast.dismiss()
        self.last_toast = Toast(text)
        if where is None:
            views = self.views()
            where = (views[0].mapToScene(views[0].viewport().rect().center())
                     if views else QPointF(0, 0))
        self.last_toast.setPos(where)
        self.last_toast.timer.setParent(self)  # dies with the scene
        self.addItem(self.last_toast)

    def new_node_params(self, type_name: str) -> dict[str, Any]:
        cls = engine.get_layer_class(type_name)
        return {s.name: s.to_json(s.default) for s in cls.param_specs if s.required}

    def add_layer(self, type_name: str, at: QPointF) -> str | None:
        """Add a node of ``type_name`` centred where it was dropped; returns its id.
        ``"block:<name>"``: a block of the user's library (``drop_block``)."""
        if type_name.startswith(BLOCK_PREFIX) and self.drop_block is not None:
            return self.drop_block(type_name[len(BLOCK_PREFIX):], at)
        nid = self.doc.fresh_id(type_name)
        top_left = self._snap(at - QPointF(theme.NODE_WIDTH / 2, theme.HEADER_H / 2), True)
        spec = NodeSpec(nid, type_name, self.new_node_params(type_name),
                        (top_left.x(), top_left.y()))
        if not self.run(AddNodes([spec]), at):
            return None
        self.select_nodes([nid])
        self.message.emit(f"Added {type_name} '{nid}'", False)
        return nid

    def delete_selection(self) -> bool:
        ids, edges = self.selected_node_ids(), self.selected_edges()
        if not ids and not edges:
            return False
        return self.run(DeleteItems(ids, edges))

    def copy_selection(self) -> dict[str, Any] | None:
        ids = self.selected_node_ids()
        return make_fragment(self.doc, ids) if ids else None

    def free_offset(self, fragment: Any) -> tuple[float, float]:
        """How far right of where it was copied a fragment must land to cover no card (and
        so no port): the first free place in steps of its own width, on the grid (in place
        after a cut). Pasting again lands right of the last paste."""
        rects = []
        for nd in fragment.get("nodes", []) if isinstance(fragment, dict) else []:
            pos = nd.get("pos") if isinstance(nd, dict) else None
            if not (isinstance(pos, list) and len(pos) == 2
                    and all(isinstance(v, int | float) for v in pos)):
                continue
            item = self.nodes.get(nd.get("id"))
            h = item.height if item is not None else theme.HEADER_H * 3
            rects.append(QRectF(float(pos[0]), float(pos[1]), theme.NODE_WIDTH, h))
        if not rects:
            return (2 * theme.GRID, 2 * theme.GRID)
        box = rects[0]
        for r in rects[1:]:
            box = box.united(r)
        step = math.ceil((box.width() + theme.GRID) / theme.GRID) * theme.GRID
        taken = [QRectF(it.pos().x(), it.pos().y(), it.width, it.height).adjusted(
            -theme.GRID / 2, -theme.GRID / 2, theme.GRID / 2, theme.GRID / 2)
            for it in self.nodes.values()]
        for k in itertools.count(0):
            moved = [r.translated(k * step, 0) for r in rects]
            if not any(m.intersects(t) for m in moved for t in taken):
                return (k * step, 0.0)
        raise AssertionError

    def paste(self, fragment: Any, offset: tuple[float, float] | None = None,
              text: str = "Paste") -> list[str]:
        """Add a copied fragment (fresh ids), by default beside its originals where it
        covers nothing (``free_offset``); the pasted nodes end up selected."""
        if offset is None:
            offset = self.free_offset(fragment)
        try:
            cmd = paste_command(self.doc, fragment, offset, text)
        except NetBuilderError as exc:
            self.refuse(exc.message)
            return []
        if not self.run(cmd):
            return []
        ids = [s.id for s in cmd.nodes]
        self.select_nodes(ids)
        return ids

    def duplicate_selection(self) -> list[str]:
        """Copies of the selected nodes (and the wires among them) beside the originals."""
        frag = self.copy_selection()
        if not frag:
            return []
        return self.paste(frag, text="Duplicate")

    def auto_layout(self) -> bool:
        pos = self.layout_positions()
        if self.nodes:
            ox = min(i.pos().x() for i in self.nodes.values())
            oy = min(i.pos().y() for i in self.nodes.values())
            pos = {n: (x + ox, y + oy) for n, (x, y) in pos.items()}
        moves = {n: (self.doc.position(n), p) for n, p in pos.items()
                 if self.doc.position(n) != p}
        if not moves:
            self.message.emit("The layout is already tidy", False)
            return False
        return self.run(MoveNodes(moves, "Automatic layout"))

    # ----- moving --------------------------------------------------------------------------
    def _snap(self, p: QPointF, force: bool = False) -> QPointF:
        if self.snap_enabled and (force or (self._press is not None and not self._syncing)):
            g = theme.GRID
            return QPointF(round(p.x() / g) * g, round(p.y() / g) * g)
        return p

    # ----- mouse: moving nodes and drawing wires -----------------------------------------
    def port_at(self, p: QPointF, radius_px: float = SNAP_RADIUS) -> PortItem | None:
        """The port nearest to ``p`` within ``radius_px`` screen pixels."""
        views = self.views()
        zoom = views[0].transform().m11() if views else 1.0
        r = radius_px / max(zoom, 0.05)
        best, best_d = None, r
        for it in self.items(p.x() - r, p.y() - r, 2 * r, 2 * r,
                             Qt.ItemSelectionMode.IntersectsItemBoundingRect,
                             Qt.SortOrder.DescendingOrder):
            if isinstance(it, PortItem) and it.isVisible():
                d = (it.scenePos() - p).manhattanLength()
                if d < best_d:
                    best, best_d = it, d
        return best

    def node_at(self, p: QPointF) -> NodeItem | None:
        for it in self.items(p):
            if isinstance(it, NodeItem):
                return it
        return None

    def mousePressEvent(self, ev: QGraphicsSceneMouseEvent) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            port = self.port_at(ev.scenePos(), PRESS_RADIUS)
            if port is not None:
                self._start_wiring(port, ev.scenePos())
                ev.accept()
                return
        super().mousePressEvent(ev)
        if ev.button() == Qt.MouseButton.LeftButton and isinstance(self.mouseGrabberItem(),
                                                                     NodeItem):
            self._press = {i.node_id: i.pos() for i in self.selectedItems()
                           if isinstance(i, NodeItem)}

    def mouseMoveEvent(self, ev: QGraphicsSceneMouseEvent) -> None:
        if self._wiring is not None:
            p = ev.scenePos()
            port = self.port_at(p)
            if port is not None and port.state == "ok":
                p = port.scenePos()
            self._wiring.rubber.move_to(p)
            ev.accept()
            return
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev: QGraphicsSceneMouseEvent) -> None:
        if self._wiring is not None:
            self._finish_wiring(ev.scenePos())
            ev.accept()
            return
        super().mouseReleaseEvent(ev)
        press, self._press = self._press, None
        if press:
            moves = {}
            for nid, old in press.items():
                item = self.nodes.get(nid)
                if item is not None and item.pos() != old:
                    moves[nid] = ((old.x(), old.y()), (item.pos().x(), item.pos().y()))
            if moves:
                self.run(MoveNodes(moves))

    def _start_wiring(self, port: PortItem, at: QPointF) -> None:
        g = self.doc.graph
        if port.kind == "out":
            w = _Wiring(port.node_id, True, 0, RubberWire(port.scenePos(), True))
        else:
            fed = next((e for e in g.edges if e.dst == port.node_id and e.port == port.index),
                       None)
            if fed is not None:
                src = self.nodes[fed.src]
                w = _Wiring(fed.src, True, 0, RubberWire(src.out_port_pos(), True), fed)
                self.edges[fed].setVisible(False)
            else:
                w = _Wiring(port.node_id, False, port.index, RubberWire(port.scenePos(), False))
        self._wiring = w
        self.addItem(w.rubber)
        w.rubber.move_to(at)
        self._mark_candidates()

    def _mark_candidates(self) -> None:
        w = self._wiring
        assert w is not None
        g = self.doc.graph
        if w.from_output:
            bad = g.ancestors(w.node) | {w.node}
            taken = {(e.dst, e.port) for e in g.edges if e != w.detached}
            for nid, item in self.nodes.items():
                for p in item.in_ports:
                    ok = nid not in bad and (nid, p.index) not in taken
                    p.set_state("ok" if ok else "no")
                if item.out_port is not None:
                    item.out_port.set_state("")
        else:
            bad = _descendants(g, w.node) | {w.node}
            for nid, item in self.nodes.items():
                for p in item.in_ports:
                    p.set_state("")
                if item.out_port is not None:
                    item.out_port.set_state("no" if nid in bad else "ok")

    def _clear_candidates(self) -> None:
        for item in self.nodes.values():
            for p in item.in_ports:
                p.set_state("")
            if item.out_port is not None:
                item.out_port.set_state("")

    def _cancel_wiring(self) -> None:
        w, self._wiring = self._wiring, None
        if w is None:
            return
        if w.rubber.scene() is self:
            self.removeItem(w.rubber)
        if w.detached is not None and w.detached in self.edges:
            self.edges[w.detached].setVisible(True)
        self._clear_candidates()

    def _finish_wiring(self, at: QPointF) -> None:
        w = self._wiring
        assert w is not None
        port = self.port_at(at)
        node = port.node if port is not None else self.node_at(at)
        cmd: Command | None = None
        g = self.doc.graph
        if w.from_output:
            if port is not None and port.kind == "in":
                dst, dport = port.node_id, port.index
            elif node is not None and (port is None or port.kind == "in"):
                dst = node.node_id
                dport = _free_port(g, dst, w.detached)
                if dport is None:
                    self._cancel_wiring()
                    self.refuse(f"every input of {node.type_name} '{dst}' is already fed; "
                                "drop the wire on a free port or remove one first", at)
                    return
            else:
                dst, dport = None, None
            if w.detached is not None:
                if dst is None:
                    cmd = DeleteItems(edges=[w.detached])
                elif (dst, dport) != (w.detached.dst, w.detached.port):
                    cmd = Composite([DeleteItems(edges=[w.detached]),
                                     Connect(w.node, dst, dport)],
                                    f"Reconnect {w.node} → {dst}")
            elif dst is not None and not (node is not None and dst == w.node and port is None):
                cmd = Connect(w.node, dst, dport)
        else:
            src = None
            if port is not None and port.kind == "out":
                src = port.node_id
            elif node is not None and port is None and node.out_port is not None \
                    and node.node_id != w.node:
                src = node.node_id
            if src is not None:
                cmd = Connect(src, w.node, w.port)
        self._cancel_wiring()
        if cmd is not None:
            self.run(cmd, at)


def _descendants(g: engine.Graph, node_id: str) -> set[str]:
    succ: dict[str, list[str]] = {}
    for e in g.edges:
        succ.setdefault(e.src, []).append(e.dst)
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        for m in succ.get(stack.pop(), []):
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return seen


def _free_port(g: engine.Graph, dst: str, ignore: Edge | None) -> int | None:
    if ignore is not None and ignore.dst == dst:
        return ignore.port
    return g.free_port(dst)

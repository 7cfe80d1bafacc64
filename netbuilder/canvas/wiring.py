"""Mouse gestures on the canvas: moving cards (one undoable move when released) and
drawing wires from port to port, with the ports a wire may end on marked while it is drawn
(a mixin of CanvasScene)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QGraphicsSceneMouseEvent

import engine
from engine.graph import Edge

from ..document import Command, Composite, Connect, DeleteItems, MoveNodes
from . import theme
from .edge import RubberWire
from .node import NodeItem, PortItem

if TYPE_CHECKING:
    from .scene import CanvasScene

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


class WireDrawing:
    """Moving cards and drawing wires with the mouse."""

    def _snap(self: CanvasScene, p: QPointF, force: bool = False) -> QPointF:
        if self.snap_enabled and (force or (self._press is not None and not self._syncing)):
            g = theme.GRID
            return QPointF(round(p.x() / g) * g, round(p.y() / g) * g)
        return p

    def port_at(self: CanvasScene, p: QPointF, radius_px: float = SNAP_RADIUS) -> PortItem | None:
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

    def node_at(self: CanvasScene, p: QPointF) -> NodeItem | None:
        for it in self.items(p):
            if isinstance(it, NodeItem):
                return it
        return None

    def mousePressEvent(self: CanvasScene, ev: QGraphicsSceneMouseEvent) -> None:
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

    def mouseMoveEvent(self: CanvasScene, ev: QGraphicsSceneMouseEvent) -> None:
        if self._wiring is not None:
            p = ev.scenePos()
            port = self.port_at(p)
            if port is not None and port.state == "ok":
                p = port.scenePos()
            self._wiring.rubber.move_to(p)
            ev.accept()
            return
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self: CanvasScene, ev: QGraphicsSceneMouseEvent) -> None:
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

    def _start_wiring(self: CanvasScene, port: PortItem, at: QPointF) -> None:
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

    def _mark_candidates(self: CanvasScene) -> None:
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

    def _clear_candidates(self: CanvasScene) -> None:
        for item in self.nodes.values():
            for p in item.in_ports:
                p.set_state("")
            if item.out_port is not None:
                item.out_port.set_state("")

    def cancel_wiring(self: CanvasScene) -> None:
        """Drop the wire being drawn, if any (Escape; a rebuild)."""
        w, self._wiring = self._wiring, None
        if w is None:
            return
        if w.rubber.scene() is self:
            self.removeItem(w.rubber)
        if w.detached is not None and w.detached in self.edges:
            self.edges[w.detached].setVisible(True)
        self._clear_candidates()

    def _finish_wiring(self: CanvasScene, at: QPointF) -> None:
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
                    self.cancel_wiring()
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
        self.cancel_wiring()
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

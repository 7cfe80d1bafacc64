"""The canvas scene: keeps node and wire items in step with the Document (and shows the
training monitor's badges and tints on them). Its other jobs live beside it, as mixins:
``edits`` (undoable commands), ``placement`` (where cards go) and ``wiring`` (the mouse:
moving cards, drawing wires)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsScene

from engine.graph import Edge

from ..analysis import Analysis, fmt_shape
from ..document import Change, Command, Document
from ..freezing import trains_nothing
from .badges import place_badges
from .block_item import BlockItem
from .block_marks import BlockMap, fold_badges, fold_flows
from .edge import EdgeItem, Toast
from .edits import SceneEdits
from .node import NodeItem, repaint_where_drawn
from .placement import Placement
from .wiring import WireDrawing, _Wiring

MIME_LAYER = "application/x-netbuilder-layer"
BLOCK_PREFIX = "block:"  # a palette entry of the user's block library
__all__ = ["MIME_LAYER", "CanvasScene"]


class CanvasScene(WireDrawing, SceneEdits, Placement, QGraphicsScene):
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
        self._block_map: BlockMap | None = None  # flat ids -> collapsed blocks, lazily
        self.routes_deferred = False  # in a batch edit: wires are planned once at its end
        self.drop_block: Callable[[str, QPointF], str | None] | None = None
        self.setBackgroundBrush(Qt.BrushStyle.NoBrush)
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        doc.subscribe(self.on_change)
        self.selectionChanged.connect(self._update_rf)
        self.rebuild()

    # ----- keeping in step with the document -----------------------------------------------
    def on_change(self, ch: Change) -> None:
        self._block_map = None
        if ch.reset:
            self.rebuild()
            return
        if not (ch.structure or ch.moved):
            self._apply(ch)
            return
        # a structural edit or a move ends by re-planning the wires it may have changed:
        # those of the cards it touched and those passing where a card was or now is
        before = {nid: item.sceneBoundingRect() for nid, item in self.nodes.items()}
        self.routes_deferred = True
        try:
            self._apply(ch)
        finally:
            self.routes_deferred = False
        gone = [r for nid, r in before.items() if nid not in self.nodes or nid in ch.moved]
        now = [self.nodes[n].sceneBoundingRect() for n in self.nodes
               if n not in before or n in ch.moved]
        self.reroute(self._wires_near(gone + now))
        self._grow_rect()

    def _wires_near(self, rects: list[QRectF]) -> list[EdgeItem]:
        """Wires whose planned path or straight corridor meets one of ``rects``, plus those a
        deferred re-plan asked for (a card that changed size moves its ports)."""
        out = [e for e in self.edges.values() if e.route_pending]
        if not rects:
            return out
        area = QRectF()
        for r in rects:
            area |= r
        for e in self.edges.values():
            if e.route_pending:
                continue
            a, b = e.src.out_port_pos(), e.dst.in_port_pos(e.edge.port)
            span = QRectF(a, b).normalized().adjusted(-30, -30, 30, 30) | e.boundingRect()
            if span.intersects(area) and any(span.intersects(r) for r in rects):
                out.append(e)
        return out

    def _apply(self, ch: Change) -> None:
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
        elif ch.frozen:
            self._show_training(ch.frozen)
        if ch.moved and not ch.affects_shapes:
            place_badges(self.nodes.values())

    def reroute(self, wires: list[EdgeItem] | None = None) -> None:
        """Re-plan ``wires`` (default: every wire) around the cards now in their way."""
        wires = list(self.edges.values()) if wires is None else wires
        repaint_where_drawn(*wires)
        for item in wires:
            item.update_path(repaint_old=False)

    def rebuild(self) -> None:
        """Drop every item and build them again from the document."""
        self.cancel_wiring()
        for item in list(self.edges.values()):
            item.detach()
            self.removeItem(item)
        for item in list(self.nodes.values()):
            self.removeItem(item)
        self.nodes.clear()
        self.edges.clear()
        self._rf_node = None
        self.routes_deferred = True  # every wire is planned once, at the end
        try:
            self._reconcile()
            self.refresh()
            self.place_unpositioned()
        finally:
            self.routes_deferred = False
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
        self._show_training(self.nodes)
        self._update_rf()
        place_badges(self.nodes.values())
        self.analysed.emit(an)
        return an

    def _show_training(self, ids) -> None:
        """Draw which of ``ids`` are frozen and their learning-rate multipliers."""
        g = self.doc.graph
        for nid in ids:
            item, node = self.nodes.get(nid), g.nodes.get(nid)
            if item is not None and node is not None:
                item.set_training(not trains_nothing(node), node.lr_mult)

    def set_carry_marks(self, marks: dict[str, tuple[str, str]]) -> None:
        """Mark the cards after a graph edited while paused: node id -> (kind, reason),
        kind ``canvas.marks`` KEPT / FRESH / REFUSED; every other card loses its mark."""
        for nid, item in self.nodes.items():
            item.set_carry(*marks.get(nid, (None, "")))

    def carry_marks(self) -> dict[str, tuple[str, str]]:
        """The marks shown now (node id -> kind, reason)."""
        return {nid: item.carry for nid, item in self.nodes.items() if item.carry is not None}

    # ----- live training monitor ----------------------------------------------------------
    def set_monitor(self, badges: dict[str, tuple[str, str, str]] | None = None,
                    flows: dict[tuple[str, str, int], tuple[float, bool]] | None = None) -> None:
        """Show training badges (flat node id -> text, level, tooltip) and wire tints ((src,
        dst, port) of the flat network -> gradient norm, approximate?); what lies inside a
        collapsed block is shown on its card and its wires. Nodes and wires left out keep
        theirs."""
        if self._block_map is None:
            self._block_map = BlockMap.of(self.doc.graph)
        bmap = self._block_map
        for nid, (text, level, tip) in fold_badges(badges or {}, bmap).items():
            item = self.nodes.get(nid)
            if item is not None:
                item.set_badge(text, level, tip)
        for edge, (norm, approx) in fold_flows(flows or {}, bmap, list(self.edges)).items():
            self.edges[edge].set_flow(norm, approx)
        place_badges(self.nodes.values())

    def clear_monitor(self) -> None:
        """Remove every training badge and wire tint."""
        for item in self.nodes.values():
            item.set_badge(None)
        for e in self.edges.values():
            e.set_flow(None)


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
            place_badges(self.nodes.values())

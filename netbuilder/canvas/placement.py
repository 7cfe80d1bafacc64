"""Where cards go: a position for nodes that have none, a fresh layered layout when saved
positions would overlap, the automatic layout (undoable), and the scene rect around them all
(a mixin of CanvasScene)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF

from ..document import MoveNodes
from ..layout import layered_layout
from . import theme
from .node import repaint_where_drawn

if TYPE_CHECKING:
    from .scene import CanvasScene


class Placement:
    """Positions of the scene's cards."""

    def _grow_rect(self: CanvasScene) -> None:
        r = self.itemsBoundingRect()
        self.setSceneRect(r.adjusted(-3000, -3000, 3000, 3000))

    def place_unpositioned(self: CanvasScene) -> None:
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

    def _overlapping(self: CanvasScene) -> bool:
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

    def layout_positions(self: CanvasScene) -> dict[str, tuple[float, float]]:
        g = self.doc.graph
        sizes = {nid: (it.width, it.height) for nid, it in self.nodes.items()}
        return layered_layout(list(g.nodes), [(e.src, e.dst, e.port) for e in g.edges], sizes,
                              grid=theme.GRID if self.snap_enabled else None)

    def auto_layout(self: CanvasScene) -> bool:
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

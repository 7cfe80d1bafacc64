"""The canvas view: grid background, wheel zoom around the cursor, pan (middle mouse or
space + drag), fit, rubber-band selection and drops from the palette."""

from __future__ import annotations

import math

from PySide6.QtCore import QPoint, QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsView, QMenu, QWidget

from . import theme
from .scene import MIME_LAYER, CanvasScene

MIN_ZOOM, MAX_ZOOM = 0.08, 4.0
READABLE_ZOOM = 0.7  # below this the cards' titles get hard to read (9 pt → 8 px)
PREFERRED_ZOOM = 0.85  # what a graph too big to read whole is framed at
BADGE_ROOM = 150.0  # scene px right of the cards for the live training badges


class CanvasView(QGraphicsView):
    """Shows a CanvasScene; ``context_actions`` fill the right-click menu."""

    zoomed = Signal(float)

    def __init__(self, scene: CanvasScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.canvas = scene
        self.context_actions: list[QAction | None] = []
        self._pan_from: QPoint | None = None
        self._space = False
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setObjectName("canvas")

    # ----- zoom ----------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, z: float, anchor: QPointF | None = None) -> None:
        z = min(MAX_ZOOM, max(MIN_ZOOM, z))
        factor = z / self.zoom
        if anchor is None:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
            self.scale(factor, factor)
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        else:
            before = self.mapToScene(anchor.toPoint())
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
            self.scale(factor, factor)
            d = self.mapFromScene(before) - anchor.toPoint()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + d.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() + d.y())
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.zoomed.emit(self.zoom)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * 1.25)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / 1.25)

    def reset_zoom(self) -> None:
        self.set_zoom(1.0)

    def fit_all(self, max_zoom: float = 1.0) -> None:
        """Show every node (F); never zooms in past ``max_zoom``."""
        items = [*self.canvas.nodes.values(), *self.canvas.edges.values()]
        if not items:
            self.resetTransform()
            self.centerOn(0, 0)
            self.zoomed.emit(self.zoom)
            return
        r = QRectF()
        for it in items:
            r = r.united(it.sceneBoundingRect())
        r = r.adjusted(-30, -30, 30, 30)
        vp = self.viewport().rect()
        z = min(vp.width() / max(r.width(), 1.0), vp.height() / max(r.height(), 1.0))
        z = min(max_zoom, max(MIN_ZOOM, z))
        self.resetTransform()
        self.scale(z, z)
        self.centerOn(r.center())
        self.zoomed.emit(self.zoom)

    def cards_rect(self) -> QRectF:
        """Scene rectangle of the cards and wires, without the badges beside the cards."""
        r = QRectF()
        for n in self.canvas.nodes.values():
            r = r.united(QRectF(n.scenePos(), QSizeF(n.width, n.height)))
        for e in self.canvas.edges.values():
            r = r.united(e.sceneBoundingRect())
        return r

    def graph_rect(self) -> QRectF | None:
        """Scene rectangle of every node and wire, None for an empty graph."""
        items = [*self.canvas.nodes.values(), *self.canvas.edges.values()]
        if not items:
            return None
        r = QRectF()
        for it in items:
            r = r.united(it.sceneBoundingRect())
        return r

    def frame_readable(self, focus: QPointF | None = None, badges: bool = False) -> None:
        """Show the whole graph if it fits at READABLE_ZOOM or more; else zoom so that its
        width fits (between READABLE_ZOOM and PREFERRED_ZOOM) and show its top, or ``focus``.
        ``badges``: keep room right of the cards for the training badges; when there is room
        for the cards but not their badges, every card is shown whole (centred on ``focus``,
        a graph of two columns lost its left one, with the Input)."""
        r = self.graph_rect()
        if r is None:
            self.fit_all()
            return
        graph = self.cards_rect().adjusted(-30, -30, 30, 30)  # without the side badges
        if badges:  # room for them, if they are not there yet
            cards = max(n.scenePos().x() + n.width for n in self.canvas.nodes.values())
            r.setRight(max(r.right(), cards + BADGE_ROOM))
        r = r.adjusted(-30, -30, 30, 30)
        vp = self.viewport().rect()
        fit_w = vp.width() / max(r.width(), 1.0)
        fit = min(fit_w, vp.height() / max(r.height(), 1.0), 1.0)
        if fit >= READABLE_ZOOM:
            z = fit
            center = r.center()
        else:
            z = min(PREFERRED_ZOOM, max(READABLE_ZOOM, fit_w))
            seen_w, seen_h = vp.width() / z, vp.height() / z
            if r.width() <= seen_w:
                cx = r.center().x()
            elif graph.width() <= seen_w:  # every card whole, the right-hand badges cut
                cx = graph.left() + seen_w / 2
            elif focus is not None:
                cx = focus.x()
            else:
                cx = r.left() + seen_w / 2
            top, bottom = r.top() + seen_h / 2, max(r.top(), r.bottom() - seen_h / 2)
            cy = min(max(focus.y(), top), bottom) if focus is not None else top
            center = QPointF(cx, cy)
        self.resetTransform()
        self.scale(z, z)
        self.centerOn(center)
        self.viewport().update()
        self.zoomed.emit(self.zoom)

    def wheelEvent(self, ev) -> None:
        dy = ev.angleDelta().y() or ev.angleDelta().x()
        if not dy:
            return
        self.set_zoom(self.zoom * math.pow(1.0015, dy), ev.position())
        ev.accept()

    # ----- background ----------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, QColor(theme.BACKGROUND))
        g = theme.GRID
        z = self.zoom
        if z < 0.3:
            return
        # crisp lines, and the lines just outside ``rect`` too: a partial repaint must draw
        # the same pixels as a full one
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        rect = rect.adjusted(-2 / z, -2 / z, 2 / z, 2 / z)
        left = math.floor(rect.left() / g) * g
        top = math.floor(rect.top() / g) * g
        minor, major = [], []
        x = left
        while x < rect.right():
            (major if round(x / g) % 5 == 0 else minor).append((x, True))
            x += g
        y = top
        while y < rect.bottom():
            (major if round(y / g) % 5 == 0 else minor).append((y, False))
            y += g
        for lines, color in ((minor, theme.GRID_MINOR), (major, theme.GRID_MAJOR)):
            if lines is minor and z < 0.6:
                continue
            pen = QPen(QColor(color), 0)
            painter.setPen(pen)
            for v, vertical in lines:
                if vertical:
                    painter.drawLine(QPointF(v, rect.top()), QPointF(v, rect.bottom()))
                else:
                    painter.drawLine(QPointF(rect.left(), v), QPointF(rect.right(), v))

    # ----- panning -------------------------------------------------------------------------
    def _start_pan(self, pos: QPoint) -> None:
        self._pan_from = pos
        self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def mousePressEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.MiddleButton or (
                self._space and ev.button() == Qt.MouseButton.LeftButton):
            self._start_pan(ev.position().toPoint())
            ev.accept()
            return
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev) -> None:
        if self._pan_from is not None:
            d = ev.position().toPoint() - self._pan_from
            self._pan_from = ev.position().toPoint()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - d.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - d.y())
            ev.accept()
            return
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev) -> None:
        if self._pan_from is not None and ev.button() in (Qt.MouseButton.MiddleButton,
                                                          Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space
                                      else Qt.CursorShape.ArrowCursor)
            ev.accept()
            return
        super().mouseReleaseEvent(ev)

    def keyPressEvent(self, ev) -> None:
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            ev.accept()
            return
        if ev.key() == Qt.Key.Key_Escape:
            self.canvas.cancel_wiring()
            self.canvas.clearSelection()
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev) -> None:
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self._space = False
            if self._pan_from is None:
                self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            ev.accept()
            return
        super().keyReleaseEvent(ev)

    # ----- drops from the palette ----------------------------------------------------------
    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasFormat(MIME_LAYER):
            ev.setDropAction(Qt.DropAction.CopyAction)
            ev.accept()
        else:
            ev.ignore()

    def dragMoveEvent(self, ev) -> None:
        if ev.mimeData().hasFormat(MIME_LAYER):
            ev.setDropAction(Qt.DropAction.CopyAction)
            ev.accept()
        else:
            ev.ignore()

    def dropEvent(self, ev) -> None:
        data = ev.mimeData()
        if not data.hasFormat(MIME_LAYER):
            ev.ignore()
            return
        type_name = bytes(data.data(MIME_LAYER).data()).decode("utf-8", "replace")
        at = self.mapToScene(ev.position().toPoint())
        ev.setDropAction(Qt.DropAction.CopyAction)
        ev.accept()
        if self.canvas.add_layer(type_name, at):
            self.setFocus()

    def contextMenuEvent(self, ev) -> None:
        at = self.mapToScene(ev.pos())
        node = self.canvas.node_at(at)
        if node is not None and not node.isSelected():
            self.canvas.select_nodes([node.node_id])
        if not self.context_actions:
            return
        menu = QMenu(self)
        for a in self.context_actions:
            if a is None:
                menu.addSeparator()
            else:
                menu.addAction(a)
        menu.exec(ev.globalPos())

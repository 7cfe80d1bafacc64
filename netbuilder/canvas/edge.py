"""Wires: a labelled edge between two nodes, the rubber wire drawn while connecting, and the
transient label that says why a connection was refused."""

from __future__ import annotations

import itertools
import math

import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem, QWidget

from engine.graph import Edge

from . import theme
from .node import LOD_TEXT, NodeItem, repaint_where_drawn


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    """A smooth S-curve leaving ``a`` downwards and entering ``b`` from above."""
    dy = max(36.0, abs(b.y() - a.y()) * 0.5)
    if b.y() < a.y():
        dy = max(80.0, abs(b.y() - a.y()) * 0.6)
    p = QPainterPath(a)
    p.cubicTo(QPointF(a.x(), a.y() + dy), QPointF(b.x(), b.y() - dy), b)
    return p


def detour_path(a: QPointF, b: QPointF, x: float) -> QPainterPath:
    """Leave ``a`` downwards, run down at ``x`` beside the cards in the way, enter ``b``."""
    bend = 40.0
    p = QPainterPath(a)
    p.cubicTo(QPointF(a.x(), a.y() + bend), QPointF(x, a.y() + 2), QPointF(x, a.y() + bend * 1.5))
    p.lineTo(QPointF(x, b.y() - bend * 1.5))
    p.cubicTo(QPointF(x, b.y() - 2), QPointF(b.x(), b.y() - bend), b)
    return p


MIN_DETOUR_SPAN = 60.0
FLOW_LO, FLOW_HI = -7.0, 3.0  # log10 of the gradient norms at the two ends of the tint scale
FLOW_STOPS = ((0.0, (150, 170, 200)), (0.3, (47, 111, 219)), (0.65, (30, 158, 90)),
              (0.85, (217, 128, 26)), (1.0, (217, 48, 37)))


def flow_color(norm: float) -> QColor:
    """Tint of a wire carrying a gradient of L2 norm ``norm`` (log scale): grey-blue when
    vanishing (1e-7), blue (1e-4), green (about 0.3), orange (about 30), red when exploding
    (1e3 and more)."""
    if not math.isfinite(norm):
        return QColor(theme.ERROR)
    t = (math.log10(max(norm, 1e-30)) - FLOW_LO) / (FLOW_HI - FLOW_LO)
    t = min(1.0, max(0.0, t))
    for (t0, c0), (t1, c1) in itertools.pairwise(FLOW_STOPS):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            return QColor(*(round(a + (b - a) * f) for a, b in zip(c0, c1)))
    return QColor(*FLOW_STOPS[-1][1])


class EdgeItem(QGraphicsItem):
    """A wire from ``src``'s output to input ``port`` of ``dst``, labelled with its shape."""

    def __init__(self, edge: Edge, src: NodeItem, dst: NodeItem) -> None:
        super().__init__()
        self.edge = edge
        self.src = src
        self.dst = dst
        self.label = "?"
        self.flow: tuple[float, bool] | None = None  # live gradient norm, approximate?
        self._path = QPainterPath()
        self._label_rect = QRectF()
        self._shape_path = QPainterPath()
        self._bounds = QRectF()
        self.route_pending = False  # asked to re-plan while the scene deferred it
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(0)
        self.setAcceptHoverEvents(True)
        src.edges.append(self)
        dst.edges.append(self)
        self.update_path()

    def detach(self) -> None:
        for n in (self.src, self.dst):
            if self in n.edges:
                n.edges.remove(self)

    def set_label(self, text: str) -> None:
        if text != self.label:
            self.label = text
            self.update_path()

    def set_flow(self, norm: float | None, approx: bool = False) -> None:
        """Tint the wire by the gradient norm flowing back through it (None: plain)."""
        flow = None if norm is None else (float(norm), bool(approx))
        if flow == self.flow:
            return
        self.flow = flow
        self._update_tooltip()
        self.update()

    def _update_tooltip(self) -> None:
        tip = (f"{self.edge.src} → {self.edge.dst}"
               + (f" (input {self.edge.port})" if self.edge.port else "")
               + f"\ntensor per sample: {self.label}")
        if self.flow is not None:
            norm, approx = self.flow
            tip += (f"\ngradient flowing back: ‖∂L/∂x‖ = {norm:.3g}"
                    + (" (at the fused block's output)" if approx else ""))
        self.setToolTip(tip)

    def _obstacles(self, a: QPointF, b: QPointF) -> QRectF | None:
        """Bounding box of the node cards a straight wire from ``a`` to ``b`` would cross."""
        sc = self.scene()
        if sc is None or b.y() - a.y() < 2 * MIN_DETOUR_SPAN:
            return None
        corridor = QRectF(QPointF(min(a.x(), b.x()) - 8, a.y() + 12),
                          QPointF(max(a.x(), b.x()) + 8, b.y() - 12))
        box = QRectF()
        for it in sc.items(corridor, Qt.ItemSelectionMode.IntersectsItemBoundingRect):
            if isinstance(it, NodeItem) and it is not self.src and it is not self.dst:
                r = it.sceneBoundingRect()
                if r.intersects(corridor):
                    box = box.united(r.adjusted(4, 14, -10, -4))
        return box if not box.isNull() else None

    def update_path(self, repaint_old: bool = True) -> None:
        """Re-plan the wire (``repaint_old`` False: the caller repainted its old area). Not
        while the scene is in a batch edit: it re-plans every wire once at the end."""
        if getattr(self.scene(), "routes_deferred", False):
            self.route_pending = True
            return
        self.route_pending = False
        if repaint_old:
            repaint_where_drawn(self)
        self.prepareGeometryChange()
        a = self.src.out_port_pos()
        b = self.dst.in_port_pos(self.edge.port)
        box = self._obstacles(a, b)
        if box is None:
            self._path = wire_path(a, b)
        else:
            mid_x = (a.x() + b.x()) / 2
            x = box.right() + 26 if mid_x >= box.center().x() else box.left() - 26
            self._path = detour_path(a, b, x)
        f = theme.font(7.6, mono=True)
        fm = QFontMetrics(f)
        tw = fm.horizontalAdvance(self.label) + 10
        mid = self._path.pointAtPercent(0.5)
        self._label_rect = QRectF(mid.x() + 6, mid.y() - 8, tw, 16)
        # kept, not computed per call: the scene's index asks for it on every query
        self._bounds = self._path.boundingRect().united(self._label_rect).adjusted(-6, -6, 6, 6)
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        self._shape_path = stroker.createStroke(self._path)
        self._shape_path.addRect(self._label_rect)
        self._update_tooltip()
        self.update()

    def path(self) -> QPainterPath:
        """The wire as planned, in scene coordinates."""
        return QPainterPath(self._path)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._shape_path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        sel = self.isSelected()
        color = QColor(theme.WIRE_SELECTED if sel else theme.WIRE)
        width = 2.4 if sel else 1.6
        if self.flow is not None and not sel:
            color = flow_color(self.flow[0])
            width = 3.2
        painter.setPen(QPen(color, width))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        # arrow head into the input port
        b = self._path.pointAtPercent(1.0)
        head = QPainterPath(QPointF(b.x(), b.y() - 1))
        head.lineTo(b.x() - 4.5, b.y() - 9)
        head.lineTo(b.x() + 4.5, b.y() - 9)
        head.closeSubpath()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPath(head)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < LOD_TEXT:
            return
        # shape label
        painter.setPen(QPen(QColor(theme.WIRE_SELECTED if sel else "#D5DAE1"), 1.0))
        painter.setBrush(QColor(theme.LABEL_BG))
        painter.drawRoundedRect(self._label_rect, 8, 8)
        painter.setFont(theme.font(7.6, mono=True))
        painter.setPen(QColor(theme.TEXT_DIM if self.label == "?" else theme.TEXT))
        painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self.label)


class RubberWire(QGraphicsPathItem):
    """The dashed wire that follows the mouse while connecting."""

    def __init__(self, anchor: QPointF, from_output: bool) -> None:
        super().__init__()
        self.anchor = anchor
        self.from_output = from_output
        pen = QPen(QColor(theme.SELECT), 2.0, Qt.PenStyle.DashLine)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.setPen(pen)
        self.setZValue(10)
        self.move_to(anchor)

    def move_to(self, p: QPointF) -> None:
        a, b = (self.anchor, p) if self.from_output else (p, self.anchor)
        self.setPath(wire_path(a, b))


class Toast(QGraphicsItem):
    """A short message drawn on the canvas at a point (ignores zoom), gone after a while."""

    def __init__(self, text: str, error: bool = True, timeout_ms: int = 4500) -> None:
        super().__init__()
        self.text = text
        self.error = error
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(100)
        f = theme.font(8.5)
        fm = QFontMetrics(f)
        self._rect = QRectF(fm.boundingRect(0, 0, 360, 400, Qt.TextFlag.TextWordWrap, text))
        self._rect = self._rect.adjusted(-9, -6, 9, 6).translated(12, 12)
        self.timer = QTimer()
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.dismiss)
        self.timer.start(timeout_ms)

    def dismiss(self) -> None:
        if not shiboken6.isValid(self):
            return  # the scene went first and took the label with it
        self.timer.stop()
        if self.scene() is not None:
            self.scene().removeItem(self)

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        c = QColor(theme.ERROR if self.error else theme.SELECT)
        painter.setPen(QPen(c, 1.2))
        painter.setBrush(QColor(theme.ERROR_FILL if self.error else "#EAF2FD"))
        painter.drawRoundedRect(self._rect, 6, 6)
        painter.setFont(theme.font(8.5))
        painter.setPen(QColor(theme.TEXT))
        painter.drawText(self._rect.adjusted(9, 6, -9, -6), Qt.TextFlag.TextWordWrap, self.text)

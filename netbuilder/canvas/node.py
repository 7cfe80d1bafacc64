"""A node card on the canvas and its ports. Items only show the document; edits go through
the scene, which turns them into undoable commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

import engine

from ..analysis import NodeInfo, ReceptiveField, fmt_count, fmt_shape
from . import marks, theme

if TYPE_CHECKING:
    from .edge import EdgeItem


LOD_TEXT = 0.33  # below this zoom the cards draw no text


def repaint_where_drawn(*items: QGraphicsItem) -> None:
    """Repaint, now, the area the ``items`` (with their children) cover, before code moves
    or reshapes them.

    Qt repaints an item's old area later, in a queued pass, and takes that area from where
    the item was last painted. When the viewport paints before that pass (an update already
    pending, e.g. the toolbar button just clicked, paints the strip the view scrolled in), Qt
    records the item's new place as "last painted" and its old picture is never erased: the
    ghost cards and wires left by Automatic Layout. Marking the old area dirty at once, in
    view coordinates, keeps it right whatever paints first."""
    area = QRectF()
    sc = None
    for item in items:
        if item.scene() is not None:
            sc = item.scene()
            area |= item.mapRectToScene(item.boundingRect() | item.childrenBoundingRect())
    if sc is not None and not area.isEmpty():
        sc.update(area)


class PortItem(QGraphicsEllipseItem):
    """An input (top edge) or output (bottom edge) port of a node."""

    def __init__(self, node: NodeItem, kind: str, index: int = 0) -> None:
        r = theme.PORT_R
        super().__init__(-r, -r, 2 * r, 2 * r, node)
        self.node = node
        self.kind = kind
        self.index = index
        self.state = ""  # "", "ok" (may take the wire being drawn) or "no"
        self.hover = False
        self.setAcceptHoverEvents(True)
        self.setZValue(2)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self._restyle()

    @property
    def node_id(self) -> str:
        return self.node.node_id

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addEllipse(QPointF(0, 0), theme.PORT_R + 4, theme.PORT_R + 4)
        return p

    def boundingRect(self) -> QRectF:
        r = theme.PORT_R + 4
        return QRectF(-r, -r, 2 * r, 2 * r)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._restyle()

    def _restyle(self) -> None:
        base = theme.category_color(self.node.category)
        fill = QColor("#FFFFFF")
        pen = QPen(base.darker(110), 1.6)
        if self.state == "ok":
            fill, pen = QColor(theme.WIRE_OK), QPen(QColor(theme.WIRE_OK).darker(130), 1.6)
        elif self.state == "no":
            fill, pen = QColor("#E5E7EB"), QPen(QColor("#B8BEC8"), 1.2)
        elif self.hover:
            fill = base.lighter(170)
        self.setBrush(QBrush(fill))
        self.setPen(pen)
        scale = 1.35 if (self.hover or self.state == "ok") else 1.0
        self.setScale(scale)

    def hoverEnterEvent(self, event) -> None:
        self.hover = True
        self._restyle()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self.hover = False
        self._restyle()
        super().hoverLeaveEvent(event)


RIGHT, LEFT, OVER = "right", "left", "over"  # NodeItem.badge_side


class NodeItem(QGraphicsItem):
    """A layer as a card: coloured header (id, type), key params, output shape, size."""

    def __init__(self, node_id: str, type_name: str) -> None:
        super().__init__()
        cls = engine.get_layer_class(type_name, node_id)
        self.node_id = node_id
        self.type_name = type_name
        self.category = cls.category
        self.layer_cls = cls
        self.info = NodeInfo(node_id, type_name, cls.category)
        self.rf: ReceptiveField | None = None
        self.badge: tuple[str, str, str] | None = None  # live monitor: text, level, tooltip
        self.frozen = False  # trainable false: drawn cooler, with a snowflake
        self.lr_mult = 1.0
        self.carry: tuple[str, str] | None = None  # after an edit: kept / fresh / refused, why
        self.badge_side = RIGHT  # where the training and receptive-field badges go
        self.edges: list[EdgeItem] = []
        self.in_ports: list[PortItem] = []
        self.out_port: PortItem | None = None
        self._n_in = -1
        self._size = (theme.NODE_WIDTH, theme.HEADER_H + theme.LINE_H + 10)
        self._lines: list[tuple[str, str]] = []
        self.snap = None  # callable(QPointF) -> QPointF set by the scene
        self.defer_edges = False  # the scene re-routes all wires itself after a batch move
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        if cls.has_output_port:
            self.out_port = PortItem(self, "out")
        self.set_info(self.info, n_inputs=cls.min_inputs)

    # ----- content -------------------------------------------------------------------------
    @property
    def width(self) -> float:
        return self._size[0]

    @property
    def height(self) -> float:
        return self._size[1]

    def port_count_for(self, n_connected_max: int) -> int:
        """Ports to show: fixed for most layers; variadic ones get one free port extra."""
        cls = self.layer_cls
        if cls.max_inputs is None:
            return max(cls.min_inputs, n_connected_max + 1)
        return cls.max_inputs

    def set_info(self, info: NodeInfo, n_inputs: int | None = None,
                 rf: ReceptiveField | None = None) -> None:
        shape_text = "→ " + fmt_shape(info.out_shape)
        summary = info.summary
        if info.out_shape is not None and fmt_shape(info.out_shape) in summary.replace(" ", ""):
            summary = ""
        lines: list[tuple[str, str]] = [("main", summary), ("shape", shape_text)]
        if info.params:
            extra = f" · {fmt_count(info.macs)} MACs" if info.macs else ""
            lines.append(("size", f"{fmt_count(info.params)} params{extra}"))
        elif info.macs:
            lines.append(("size", f"{fmt_count(info.macs)} MACs"))
        changed_ports = n_inputs is not None and n_inputs != self._n_in
        if lines == self._lines and info.error == self.info.error and not changed_ports \
                and info.id == self.info.id:
            self.info = info
            return
        repaint_where_drawn(self)
        self.prepareGeometryChange()
        self.info = info
        self._lines = lines
        n_rows = 1 + (lines[-1][0] == "size")
        self._size = (theme.NODE_WIDTH, theme.HEADER_H + 8 + theme.LINE_H * n_rows)
        if n_inputs is not None and changed_ports:
            self._set_in_ports(n_inputs)
        self._place_ports()
        tip = f"<b>{self.type_name}</b> '{self.node_id}'<br>{self.layer_cls.help}"
        if info.error is not None:
            tip = f"<span style='color:{theme.ERROR}'><b>Problem:</b> {_html(info.error.message)}" \
                  f"</span><br><br>" + tip
        self._tip = tip
        self._update_tooltip()
        self.update()
        for e in self.edges:
            e.update_path()

    def set_node_id(self, node_id: str) -> None:
        self.node_id = node_id
        self.update()

    def _set_in_ports(self, n: int) -> None:
        while len(self.in_ports) > n:
            p = self.in_ports.pop()
            p.setParentItem(None)
            if p.scene() is not None:
                p.scene().removeItem(p)
        while len(self.in_ports) < n:
            self.in_ports.append(PortItem(self, "in", len(self.in_ports)))
        self._n_in = n
        names = self.layer_cls.input_names
        fixed = self.layer_cls.max_inputs is not None and len(names) > 1
        for p in self.in_ports:
            label = names[p.index] if fixed and p.index < len(names) else f"input {p.index}"
            p.setToolTip(f"input {p.index}" + (f" ({label})" if fixed else ""))

    def _place_ports(self) -> None:
        n = len(self.in_ports)
        for p in self.in_ports:
            p.setPos(self.width * (p.index + 1) / (n + 1), 0.0)
        if self.out_port is not None:
            self.out_port.setPos(self.width / 2, self.height)

    def in_port_pos(self, port: int) -> QPointF:
        """Scene position where a wire into ``port`` ends."""
        n = max(len(self.in_ports), port + 1)
        return self.scenePos() + QPointF(self.width * (port + 1) / (n + 1), 0.0)

    def out_port_pos(self) -> QPointF:
        return self.scenePos() + QPointF(self.width / 2, self.height)

    def set_rf(self, rf: ReceptiveField | None) -> None:
        if rf != self.rf:
            repaint_where_drawn(self)
            self.prepareGeometryChange()
            self.rf = rf
            self.update()

    def set_badge(self, text: str | None, level: str = "ok", tip: str = "") -> None:
        """The live training badge beside the card (None removes it). ``level``: ok, warn,
        bad (e.g. many dead units) or nan (the first node where NaN/Inf appeared)."""
        badge = None if text is None else (text, level, tip)
        if badge == self.badge:
            return
        repaint_where_drawn(self)
        self.prepareGeometryChange()
        self.badge = badge
        self._update_tooltip()
        self.update()

    def set_training(self, trainable: bool, lr_mult: float) -> None:
        """Draw the node frozen (``trainable`` false) and its learning-rate multiplier."""
        if (not trainable, lr_mult) == (self.frozen, self.lr_mult):
            return
        self.frozen, self.lr_mult = not trainable, lr_mult
        self._update_tooltip()
        self.update()

    def set_carry(self, kind: str | None, reason: str = "") -> None:
        """The mark of a graph edited while paused (marks.KEPT / FRESH / REFUSED, and why);
        None removes it."""
        carry = None if kind is None else (kind, reason)
        if carry == self.carry:
            return
        self.carry = carry
        self._update_tooltip()
        self.update()

    def _update_tooltip(self) -> None:
        tip = getattr(self, "_tip", "")
        if self.frozen:
            tip += "<br><br><b>Frozen:</b> its weights do not train (no weight gradient)"
        elif self.lr_mult != 1.0:
            tip += f"<br><br><b>Learning rate</b> × {self.lr_mult:g}"
        if self.carry is not None:
            tip += "<br><br><b>" + _html(marks.carry_tip(*self.carry)) + "</b>"
        if self.badge is not None and self.badge[2]:
            tip += "<br><br><b>Training:</b> " + _html(self.badge[2])
        self.setToolTip(tip)

    def badge_width(self) -> float:
        """Scene px the side badges take beside the card (0: none)."""
        w = 0.0
        if self.badge is not None:
            w = QFontMetrics(theme.font(7.6, mono=True)).horizontalAdvance(self.badge[0]) + 14
        if self.rf is not None:
            w = max(w, QFontMetrics(theme.font(7.8, bold=True)).horizontalAdvance(
                self.rf_text()) + 16)
        return w

    def set_badge_side(self, side: str) -> None:
        """RIGHT of the card, LEFT of it, or OVER its top right corner (both sides taken
        by cards next to it); see ``canvas.badges``."""
        if side != self.badge_side:
            repaint_where_drawn(self)
            self.prepareGeometryChange()
            self.badge_side = side
            self.update()

    def _side_rect(self, width: float, top: float, height: float, rf: bool) -> QRectF:
        """A badge ``width`` × ``height`` at ``top`` beside the card; OVER: the training
        badge above the card, the receptive field under it, both starting right of the
        centre port (the wires' ends)."""
        if self.badge_side == LEFT:
            return QRectF(-8 - width, top, width, height)
        if self.badge_side == OVER:  # right of the centre port, into the gap if need be
            y = self.height + 4 if rf else -height - 5
            return QRectF(self.width / 2 + theme.PORT_R + 6, y, width, height)
        return QRectF(self.width + 8, top, width, height)

    def _badge_rect(self) -> QRectF:
        assert self.badge is not None
        tw = QFontMetrics(theme.font(7.6, mono=True)).horizontalAdvance(self.badge[0])
        return self._side_rect(tw + 14, 1, 18, False)

    # ----- geometry and painting ---------------------------------------------------------
    def boundingRect(self) -> QRectF:
        r = QRectF(0, 0, self.width, self.height).adjusted(-6, -16, 12, 6)
        if self.rf is not None:
            r = r.united(self._rf_rect().adjusted(-2, -2, 2, 2))
        if self.badge is not None:
            r = r.united(self._badge_rect().adjusted(-2, -2, 2, 2))
        return r

    def shape(self) -> QPainterPath:
        p = QPainterPath()
        p.addRoundedRect(QRectF(0, 0, self.width, self.height), 6, 6)
        return p

    def rf_text(self) -> str:
        if self.rf is None:
            return ""
        if self.rf.whole:
            return f"RF whole {self.rf.image[0]}×{self.rf.image[1]} input"
        h, w = self.rf.size
        return f"RF {h}×{w} px"

    def _rf_rect(self) -> QRectF:
        tw = QFontMetrics(theme.font(7.8, bold=True)).horizontalAdvance(self.rf_text())
        top = self.height / 2 - 10
        if self.badge is not None:
            top = max(top, 22.0)  # under the training badge
        return self._side_rect(tw + 16, top, 20, True)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        w, h = self.width, self.height
        rect = QRectF(0, 0, w, h)
        color = theme.category_color(self.category)
        err = self.info.error is not None
        sel = self.isSelected()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # shadow and selection halo
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 30, 50, 28))
        painter.drawRoundedRect(rect.translated(1.5, 2.5), 7, 7)
        if sel:
            painter.setBrush(QColor(47, 128, 237, 60))
            painter.drawRoundedRect(rect.adjusted(-4, -4, 4, 4), 9, 9)
        # body
        painter.setBrush(QColor(theme.ERROR_FILL if err else
                                marks.FROZEN_FILL if self.frozen else theme.NODE_BODY))
        painter.drawRoundedRect(rect, 6, 6)
        # header
        head = QPainterPath()
        head.addRoundedRect(QRectF(0, 0, w, theme.HEADER_H + 6), 6, 6)
        clip = QPainterPath()
        clip.addRect(QRectF(0, 0, w, theme.HEADER_H))
        painter.setBrush(color)
        painter.drawPath(head.intersected(clip))
        # outline
        if err:
            pen = QPen(QColor(theme.ERROR), 2.2)
        elif sel:
            pen = QPen(QColor(theme.SELECT), 2.0)
        elif self.frozen:
            pen = QPen(QColor(marks.FROZEN_BORDER), 1.6)
        else:
            pen = QPen(QColor(theme.NODE_BORDER), 1.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 6, 6)
        if self.carry is not None:
            marks.paint_carry(painter, self.carry[0], rect)
        if self.badge is not None and self.badge[1] == "nan":
            painter.setPen(QPen(QColor(theme.ERROR), 3.0, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(-3, -3, 3, 3), 8, 8)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < LOD_TEXT:
            if err:
                self._paint_badge(painter, QPointF(w - 2, 0))
            return  # too small to read: colours and outlines only
        # header text: id (bold) left, type right
        painter.setPen(QColor("#FFFFFF"))
        f_id, f_type = theme.font(9.0, bold=True), theme.font(8.0)
        type_w = QFontMetrics(f_type).horizontalAdvance(self.type_name) + 10
        painter.setFont(f_id)
        id_rect = QRectF(9, 0, w - type_w - 14, theme.HEADER_H)
        painter.drawText(id_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         QFontMetrics(f_id).elidedText(self.node_id, Qt.TextElideMode.ElideRight,
                                                       int(id_rect.width())))
        painter.setFont(f_type)
        painter.setPen(QColor(255, 255, 255, 215))
        painter.drawText(QRectF(w - type_w - 4, 0, type_w, theme.HEADER_H),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         self.type_name)
        if self.frozen:
            marks.paint_frozen_header(painter, w - type_w - 2)
        elif self.lr_mult != 1.0:
            marks.paint_lr_mult(painter, w - type_w - 2, self.lr_mult)
        # body: key params left, output shape right; then size
        y = theme.HEADER_H + 4
        rows = dict(self._lines)
        f_shape, f_main = theme.font(8.2, mono=True), theme.font(8.5)
        shape_w = QFontMetrics(f_shape).horizontalAdvance(rows["shape"])
        painter.setFont(f_shape)
        painter.setPen(QColor(theme.ERROR if err and self.info.out_shape is None else theme.TEXT))
        r = QRectF(10, y, w - 20, theme.LINE_H)
        painter.drawText(r, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         rows["shape"])
        if rows["main"]:
            painter.setFont(f_main)
            painter.setPen(QColor(theme.TEXT))
            avail = int(w - 20 - shape_w - 10)
            painter.drawText(r, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             QFontMetrics(f_main).elidedText(rows["main"],
                                                             Qt.TextElideMode.ElideRight, avail))
        if "size" in rows:
            y += theme.LINE_H
            f = theme.font(7.8)
            painter.setFont(f)
            painter.setPen(QColor(theme.TEXT_DIM))
            painter.drawText(QRectF(10, y, w - 20, theme.LINE_H),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             rows["size"])

        self._paint_port_names(painter)
        if err:
            self._paint_badge(painter, QPointF(w - 2, 0))
        if self.rf is not None:
            self._paint_rf(painter)
        if self.badge is not None:
            self._paint_monitor_badge(painter)

    def _paint_monitor_badge(self, painter: QPainter) -> None:
        assert self.badge is not None
        text, level, _tip = self.badge
        fg, bg = theme.BADGE_COLORS.get(level, theme.BADGE_COLORS["ok"])
        r = self._badge_rect()
        painter.setPen(QPen(QColor(fg), 1.0))
        painter.setBrush(QColor(bg))
        painter.drawRoundedRect(r, 9, 9)
        painter.setFont(theme.font(7.6, mono=True))
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_port_names(self, painter: QPainter) -> None:
        """Names of the inputs of layers with several distinct inputs (e.g. image, theta)."""
        names = self.layer_cls.input_names
        if self.layer_cls.max_inputs is None or len(names) < 2:
            return
        painter.setFont(theme.font(7.0))
        painter.setPen(QColor(theme.TEXT_DIM))
        for p in self.in_ports:
            if p.index < len(names):
                painter.drawText(QRectF(p.pos().x() + 7, -15, 80, 12),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                 names[p.index])

    def _paint_badge(self, painter: QPainter, c: QPointF) -> None:
        painter.setPen(QPen(QColor("#FFFFFF"), 1.5))
        painter.setBrush(QColor(theme.ERROR))
        painter.drawEllipse(c, 9, 9)
        painter.setFont(theme.font(9.0, bold=True))
        painter.drawText(QRectF(c.x() - 9, c.y() - 9, 18, 18), Qt.AlignmentFlag.AlignCenter, "!")

    def _paint_rf(self, painter: QPainter) -> None:
        assert self.rf is not None
        r = self._rf_rect()
        text = self.rf_text()
        f = theme.font(7.8, bold=True)
        painter.setPen(QPen(QColor(theme.RF), 1.0))
        painter.setBrush(QColor("#F1ECFB"))
        painter.drawRoundedRect(r, 10, 10)
        painter.setFont(f)
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange:
            if not self.defer_edges:  # a batch move repaints the old area of all at once
                repaint_where_drawn(self)
            if self.snap:
                return self.snap(value)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            if not self.defer_edges:
                for e in self.edges:
                    e.update_path()
        elif change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setZValue(3 if value else 1)
        return super().itemChange(change, value)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

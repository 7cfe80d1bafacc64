"""A collapsed block on the canvas (one card, drawn as a stack, with a badge of its size) and
the frame around an expanded block's members. Double-click opens or folds the block."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneMouseEvent, QStyleOptionGraphicsItem, QWidget

from engine.graph import Node

from ..block_commands import CollapseBlock, ExpandBlock
from . import theme
from .node import NodeItem, repaint_where_drawn

FRAME_MARGIN = 18.0
FRAME_TITLE_H = 22.0


class BlockItem(NodeItem):
    """A Block node: the card of a layer, its ports the block's inputs, with the cards of a
    stack behind it and a badge "N layers". Double-click expands it in place."""

    def __init__(self, node_id: str, node: Node) -> None:
        super().__init__(node_id, node.type)
        self.node_ref = node
        self.layer_cls = node.layer_class()
        self.block_name = node.block.name if node.block else ""
        self.layer_total = node.block.layer_count() if node.block else 0
        self.set_info(self.info, n_inputs=self.layer_cls.min_inputs)

    def badge_text(self) -> str:
        n = self.layer_total
        return f"{n} layer{'s' if n != 1 else ''}"

    def _size_rect(self) -> QRectF:
        tw = QFontMetrics(theme.font(7.4, bold=True)).horizontalAdvance(self.badge_text())
        return QRectF(self.width - tw - 22, -11, tw + 14, 15)

    def boundingRect(self) -> QRectF:
        return super().boundingRect().adjusted(0, 0, 8, 8)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = theme.category_color("Blocks")
        for k in (2, 1):  # the cards of the stack behind
            painter.setPen(QPen(QColor(theme.NODE_BORDER), 1.0))
            painter.setBrush(QColor("#EEF2F7") if k == 2 else QColor("#F6F8FB"))
            painter.drawRoundedRect(QRectF(0, 0, self.width, self.height).translated(4 * k, 4 * k),
                                    6, 6)
        super().paint(painter, option, widget)
        r = self._size_rect()
        painter.setPen(QPen(color.darker(115), 1.0))
        painter.setBrush(QColor("#FFFFFF"))
        painter.drawRoundedRect(r, 7, 7)
        painter.setFont(theme.font(7.4, bold=True))
        painter.setPen(color)
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, self.badge_text())

    def mouseDoubleClickEvent(self, ev: QGraphicsSceneMouseEvent) -> None:
        sc = self.scene()
        if sc is not None and hasattr(sc, "run"):
            ev.accept()
            sc.run(ExpandBlock(self.node_id))
            return
        super().mouseDoubleClickEvent(ev)


class BlockFrame(QGraphicsItem):
    """The dashed frame around the members of an expanded block, titled with its name.
    Double-click the title bar to fold the block again."""

    def __init__(self, block_id: str, name: str) -> None:
        super().__init__()
        self.block_id = block_id
        self.name = name
        self.rect = QRectF()
        self.setZValue(-1)
        self.setToolTip(f"Block '{block_id}' ({name}), expanded: double-click the title to "
                        "collapse it")

    def set_rect(self, rect: QRectF) -> None:
        r = rect.adjusted(-FRAME_MARGIN, -FRAME_MARGIN - FRAME_TITLE_H, FRAME_MARGIN,
                          FRAME_MARGIN)
        if r != self.rect:
            repaint_where_drawn(self)
            self.prepareGeometryChange()
            self.rect = r
            self.update()

    def title_rect(self) -> QRectF:
        return QRectF(self.rect.left(), self.rect.top(), self.rect.width(), FRAME_TITLE_H)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-2, -2, 2, 2)

    def shape(self):
        from PySide6.QtGui import QPainterPath
        p = QPainterPath()
        p.addRect(self.title_rect())  # only the title takes clicks: the cards stay usable
        return p

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        color = theme.category_color("Blocks")
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fill = QColor(color)
        fill.setAlpha(14)
        painter.setBrush(fill)
        painter.setPen(QPen(color, 1.4, Qt.PenStyle.DashLine))
        painter.drawRoundedRect(self.rect, 10, 10)
        t = self.title_rect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(t.adjusted(0, 0, 0, 0), 10, 10)
        painter.drawRect(t.adjusted(0, FRAME_TITLE_H / 2, 0, 0))
        painter.setPen(QColor("#FFFFFF"))
        painter.setFont(theme.font(8.6, bold=True))
        painter.drawText(t.adjusted(10, 0, -10, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         f"▾ {self.name}  ·  {self.block_id}")
        painter.setFont(theme.font(7.6))
        painter.drawText(t.adjusted(10, 0, -10, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         "double-click to collapse")

    def mousePressEvent(self, ev: QGraphicsSceneMouseEvent) -> None:
        ev.accept()  # a press on the title is no rubber band

    def collapse(self) -> bool:
        """Fold the block (a double-click on the title, seen by the view's filter)."""
        sc = self.scene()
        return sc is not None and hasattr(sc, "run") and sc.run(CollapseBlock(self.block_id))

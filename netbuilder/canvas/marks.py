"""What a node card shows about its weights in a run: frozen (a snowflake and a cooler
tint), a learning-rate multiplier, and after a graph edited while paused whether the node
kept its weights or starts fresh (a corner badge and an outline, with the reason in the
tooltip). Drawn with paths, so no font needs the glyphs."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen

from . import theme

FROZEN_FILL = "#EAF2FB"
FROZEN_BORDER = "#6E98C8"
FROZEN_GLYPH = "#FFFFFF"
KEPT, FRESH, REFUSED = "kept", "fresh", "refused"
CARRY_COLORS = {KEPT: "#1E9E5A", FRESH: "#D9801A", REFUSED: theme.ERROR}
CARRY_WORDS = {KEPT: "Weights kept across the edit", FRESH: "Weights re-initialised",
               REFUSED: "The edit was refused here"}


def carry_tip(kind: str, reason: str) -> str:
    """The tooltip line of a carry mark: 'Weights re-initialised: units 120→240'."""
    return CARRY_WORDS[kind] + (f": {reason}" if reason else "")


def paint_snowflake(painter: QPainter, c: QPointF, r: float, color: str) -> None:
    """Six spokes with a tick on each: the frozen glyph."""
    painter.setPen(QPen(QColor(color), 1.4, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    for k in range(6):
        a = k * math.pi / 3
        dx, dy = math.cos(a), math.sin(a)
        tip = QPointF(c.x() + r * dx, c.y() + r * dy)
        painter.drawLine(c, tip)
        mid = QPointF(c.x() + 0.55 * r * dx, c.y() + 0.55 * r * dy)
        for s in (-1, 1):
            b = a + s * math.pi / 4
            painter.drawLine(mid, QPointF(mid.x() + 0.35 * r * math.cos(b),
                                          mid.y() + 0.35 * r * math.sin(b)))


def paint_frozen_header(painter: QPainter, right: float) -> None:
    """The snowflake at the right end of the header, left of the type name (``right``: its
    x in item coordinates)."""
    paint_snowflake(painter, QPointF(right - 8, theme.HEADER_H / 2), 6.0, FROZEN_GLYPH)


def paint_lr_mult(painter: QPainter, right: float, mult: float) -> None:
    """'lr×0.1' in the header, right-aligned at ``right``, left of the type name."""
    f = theme.font(7.4, bold=True)
    painter.setFont(f)
    painter.setPen(QColor(FROZEN_GLYPH))
    painter.drawText(QRectF(right - 60, 0, 58, theme.HEADER_H),
                     Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                     f"lr×{mult:g}")


def paint_carry(painter: QPainter, kind: str, rect: QRectF) -> None:
    """The carry mark of one card: an outline (dashed when the weights are fresh) and a
    badge on the top-left corner (a tick: kept; a circular arrow: fresh; '!' refused)."""
    color = QColor(CARRY_COLORS[kind])
    style = Qt.PenStyle.SolidLine if kind == KEPT else Qt.PenStyle.DashLine
    painter.setPen(QPen(color, 2.4, style))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(rect.adjusted(-3, -3, 3, 3), 8, 8)
    c = QPointF(rect.left() + 4, rect.top())
    painter.setPen(QPen(QColor("#FFFFFF"), 1.5))
    painter.setBrush(color)
    painter.drawEllipse(c, 8.5, 8.5)
    pen = QPen(QColor("#FFFFFF"), 1.8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    if kind == KEPT:
        path = QPainterPath(QPointF(c.x() - 4, c.y() + 0.5))
        path.lineTo(c.x() - 1, c.y() + 3.5)
        path.lineTo(c.x() + 4.5, c.y() - 3.5)
        painter.drawPath(path)
    elif kind == FRESH:
        box = QRectF(c.x() - 4.5, c.y() - 4.5, 9, 9)
        painter.drawArc(box, 60 * 16, 270 * 16)
        end = QPointF(c.x() + 4.5 * math.cos(math.radians(60)),
                      c.y() - 4.5 * math.sin(math.radians(60)))
        painter.drawLine(end, QPointF(end.x() + 3.2, end.y() - 0.6))
        painter.drawLine(end, QPointF(end.x() + 0.4, end.y() + 3.2))
    else:
        painter.drawLine(QPointF(c.x(), c.y() - 4), QPointF(c.x(), c.y() + 1))
        painter.drawPoint(QPointF(c.x(), c.y() + 3.8))

"""Icons drawn at run time with QPainter: one per layer type (category colour, and the
layer's ``glyph`` or its activation's ``icon_curve``, both from the engine's registry) and the
toolbar's."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

import engine

from .canvas import theme

CURVE_POINTS = 41  # samples of an activation's curve over x in [-3, 3]


def icon_art(type_name: str) -> tuple[str, np.ndarray | None]:
    """(glyph, curve y values at ``CURVE_POINTS`` x in [-3, 3] clipped to ±2.6, or None) of a
    layer type; an unknown type gets the first two letters of its name."""
    cls = engine.layer_types().get(type_name)
    if cls is not None and cls.icon_curve is not None:
        xs = np.linspace(-3.0, 3.0, CURVE_POINTS)
        return "", np.clip(np.asarray(cls.icon_curve(xs), np.float64), -2.6, 2.6)
    glyph = cls.glyph if cls is not None else ""
    return glyph or type_name[:2].upper(), None


def _canvas(size: int) -> tuple[QPixmap, QPainter]:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    return pm, p


@cache
def layer_icon(type_name: str, category: str, size: int = 32) -> QIcon:
    """A rounded square in the category colour with the layer's glyph or curve."""
    pm, p = _canvas(size)
    color = theme.category_color(category)
    r = QRectF(1, 1, size - 2, size - 2)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    p.drawRoundedRect(r, size * 0.22, size * 0.22)
    glyph, curve = icon_art(type_name)
    if curve is not None:
        p.setPen(QPen(QColor(255, 255, 255, 90), 1.0))
        c = size / 2
        p.drawLine(QPointF(5, c), QPointF(size - 5, c))
        p.drawLine(QPointF(c, 5), QPointF(c, size - 5))
        path = QPainterPath()
        for i, y in enumerate(curve):
            x = -3 + 6 * i / (len(curve) - 1)
            pt = QPointF(c + x * (size - 10) / 6, c - float(y) * (size - 10) / 6)
            if i == 0:
                path.moveTo(pt)
            else:
                path.lineTo(pt)
        p.setPen(QPen(QColor("#FFFFFF"), max(1.6, size / 14)))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
    else:
        f = theme.font(size * (0.36 if len(glyph) < 3 else 0.28), bold=True)
        p.setFont(f)
        p.setPen(QColor("#FFFFFF"))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, glyph)
    p.end()
    return QIcon(pm)


def _tool(draw: Callable[[QPainter, float], None], size: int = 32) -> QIcon:
    pm, p = _canvas(size)
    pen = QPen(QColor("#3C4350"), size / 14)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    draw(p, size)
    p.end()
    return QIcon(pm)


def _magnifier(sign: str) -> Callable[[QPainter, float], None]:
    def draw(p: QPainter, s: float) -> None:
        c = QPointF(s * 0.42, s * 0.42)
        p.drawEllipse(c, s * 0.26, s * 0.26)
        p.drawLine(QPointF(s * 0.62, s * 0.62), QPointF(s * 0.88, s * 0.88))
        p.drawLine(QPointF(s * 0.30, s * 0.42), QPointF(s * 0.54, s * 0.42))
        if sign == "+":
            p.drawLine(QPointF(s * 0.42, s * 0.30), QPointF(s * 0.42, s * 0.54))
    return draw


def _fit(p: QPainter, s: float) -> None:
    a, b = s * 0.14, s * 0.86
    k = s * 0.22
    for x, y, dx, dy in ((a, a, 1, 1), (b, a, -1, 1), (a, b, 1, -1), (b, b, -1, -1)):
        p.drawLine(QPointF(x, y), QPointF(x + dx * k, y))
        p.drawLine(QPointF(x, y), QPointF(x, y + dy * k))
    p.drawRect(QRectF(s * 0.36, s * 0.36, s * 0.28, s * 0.28))


def _layout(p: QPainter, s: float) -> None:
    boxes = [QRectF(s * 0.36, s * 0.1, s * 0.28, s * 0.18), QRectF(s * 0.1, s * 0.72, s * 0.28,
             s * 0.18), QRectF(s * 0.62, s * 0.72, s * 0.28, s * 0.18)]
    p.setBrush(QColor("#2F6FDB"))
    for r in boxes:
        p.drawRoundedRect(r, 2, 2)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawLine(QPointF(s * 0.5, s * 0.28), QPointF(s * 0.24, s * 0.72))
    p.drawLine(QPointF(s * 0.5, s * 0.28), QPointF(s * 0.76, s * 0.72))


def _arrow(direction: int) -> Callable[[QPainter, float], None]:
    def draw(p: QPainter, s: float) -> None:
        path = QPainterPath()
        if direction < 0:
            path.moveTo(s * 0.8, s * 0.72)
            path.cubicTo(s * 0.8, s * 0.35, s * 0.55, s * 0.3, s * 0.22, s * 0.38)
            p.drawPath(path)
            p.drawLine(QPointF(s * 0.22, s * 0.38), QPointF(s * 0.4, s * 0.2))
            p.drawLine(QPointF(s * 0.22, s * 0.38), QPointF(s * 0.42, s * 0.52))
        else:
            path.moveTo(s * 0.2, s * 0.72)
            path.cubicTo(s * 0.2, s * 0.35, s * 0.45, s * 0.3, s * 0.78, s * 0.38)
            p.drawPath(path)
            p.drawLine(QPointF(s * 0.78, s * 0.38), QPointF(s * 0.6, s * 0.2))
            p.drawLine(QPointF(s * 0.78, s * 0.38), QPointF(s * 0.58, s * 0.52))
    return draw


def _page(fold: bool) -> Callable[[QPainter, float], None]:
    def draw(p: QPainter, s: float) -> None:
        path = QPainterPath(QPointF(s * 0.24, s * 0.1))
        path.lineTo(s * 0.6, s * 0.1)
        path.lineTo(s * 0.78, s * 0.28)
        path.lineTo(s * 0.78, s * 0.9)
        path.lineTo(s * 0.24, s * 0.9)
        path.closeSubpath()
        p.drawPath(path)
        if fold:
            p.drawLine(QPointF(s * 0.36, s * 0.5), QPointF(s * 0.66, s * 0.5))
            p.drawLine(QPointF(s * 0.51, s * 0.35), QPointF(s * 0.51, s * 0.65))
    return draw


def _folder(p: QPainter, s: float) -> None:
    path = QPainterPath(QPointF(s * 0.1, s * 0.25))
    path.lineTo(s * 0.38, s * 0.25)
    path.lineTo(s * 0.46, s * 0.34)
    path.lineTo(s * 0.9, s * 0.34)
    path.lineTo(s * 0.9, s * 0.82)
    path.lineTo(s * 0.1, s * 0.82)
    path.closeSubpath()
    p.drawPath(path)


def _disk(p: QPainter, s: float) -> None:
    p.drawRoundedRect(QRectF(s * 0.14, s * 0.14, s * 0.72, s * 0.72), 3, 3)
    p.drawRect(QRectF(s * 0.3, s * 0.14, s * 0.4, s * 0.22))
    p.drawRect(QRectF(s * 0.28, s * 0.54, s * 0.44, s * 0.32))


def _trash(p: QPainter, s: float) -> None:
    p.drawLine(QPointF(s * 0.18, s * 0.26), QPointF(s * 0.82, s * 0.26))
    p.drawLine(QPointF(s * 0.4, s * 0.14), QPointF(s * 0.6, s * 0.14))
    path = QPainterPath(QPointF(s * 0.26, s * 0.26))
    path.lineTo(s * 0.32, s * 0.88)
    path.lineTo(s * 0.68, s * 0.88)
    path.lineTo(s * 0.74, s * 0.26)
    p.drawPath(path)
    p.drawLine(QPointF(s * 0.44, s * 0.4), QPointF(s * 0.45, s * 0.76))
    p.drawLine(QPointF(s * 0.56, s * 0.4), QPointF(s * 0.55, s * 0.76))


def _duplicate(p: QPainter, s: float) -> None:
    p.drawRoundedRect(QRectF(s * 0.12, s * 0.12, s * 0.5, s * 0.5), 3, 3)
    p.setBrush(QColor("#FFFFFF"))
    p.drawRoundedRect(QRectF(s * 0.38, s * 0.38, s * 0.5, s * 0.5), 3, 3)


def _build(p: QPainter, s: float) -> None:
    """Two stacked cards and a wire: the graph being built."""
    p.drawRoundedRect(QRectF(s * 0.16, s * 0.12, s * 0.68, s * 0.24), 3, 3)
    p.setBrush(QColor("#2F6FDB"))
    p.drawRoundedRect(QRectF(s * 0.16, s * 0.64, s * 0.68, s * 0.24), 3, 3)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawLine(QPointF(s * 0.5, s * 0.36), QPointF(s * 0.5, s * 0.64))


def _monitor(p: QPainter, s: float) -> None:
    """Axes and a falling loss curve."""
    p.drawLine(QPointF(s * 0.14, s * 0.12), QPointF(s * 0.14, s * 0.86))
    p.drawLine(QPointF(s * 0.14, s * 0.86), QPointF(s * 0.9, s * 0.86))
    path = QPainterPath(QPointF(s * 0.22, s * 0.2))
    path.cubicTo(s * 0.32, s * 0.62, s * 0.5, s * 0.7, s * 0.86, s * 0.72)
    p.setPen(QPen(QColor("#D9801A"), s / 12))
    p.drawPath(path)


TOOL_ICONS: dict[str, Callable[[QPainter, float], None]] = {
    "build": _build, "monitor": _monitor,
    "new": _page(True), "open": _folder, "save": _disk, "undo": _arrow(-1), "redo": _arrow(1),
    "delete": _trash, "duplicate": _duplicate, "zoom_in": _magnifier("+"),
    "zoom_out": _magnifier("-"), "fit": _fit, "layout": _layout,
}


@cache
def tool_icon(name: str) -> QIcon:
    return _tool(TOOL_ICONS[name])

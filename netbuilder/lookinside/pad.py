"""A drawing pad: the user paints with the mouse, the network reads it at its Input's size.

The pad keeps a square greyscale canvas of ``RES`` pixels (white ink on black); ``ink(h, w)``
averages it down to the Input's height and width (0..1, 1 = ink), inverted when ``inverted``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

RES = 224  # pixels of the pad's own canvas (a multiple of 28, 8 and 32 pools well)


class DrawingPad(QWidget):
    """Paint with the left button; ``changed`` after every stroke segment and on clear."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("drawingPad")
        self.image = QImage(RES, RES, QImage.Format.Format_Grayscale8)
        self.image.fill(0)
        self.brush = 18  # pad pixels
        self.inverted = False
        self._last: QPointF | None = None
        self.setMinimumSize(110, 110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw with the left mouse button, or drop an image file here")
        self.setAcceptDrops(True)

    # ----- geometry ------------------------------------------------------------------------
    def _square(self) -> QRectF:
        side = min(self.width(), self.height()) - 2
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _to_image(self, p: QPointF) -> QPointF:
        r = self._square()
        return QPointF((p.x() - r.left()) * RES / r.width(), (p.y() - r.top()) * RES / r.height())

    # ----- editing -------------------------------------------------------------------------
    def clear(self) -> None:
        self.image.fill(0)
        self.update()
        self.changed.emit()

    def set_inverted(self, on: bool) -> None:
        self.inverted = bool(on)
        self.update()
        self.changed.emit()

    def set_ink(self, ink: np.ndarray) -> None:
        """Show an image (h, w) in 0..1 (a dataset sample), scaled up to the pad."""
        a = np.clip(np.asarray(ink, dtype=np.float64), 0, 1)
        if self.inverted:
            a = 1.0 - a
        small = np.ascontiguousarray((a * 255).round().astype(np.uint8))
        h, w = small.shape
        img = QImage(small.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
        self.image = img.scaled(RES, RES, Qt.AspectRatioMode.IgnoreAspectRatio,
                                Qt.TransformationMode.FastTransformation)
        self.update()
        self.changed.emit()

    def load_image(self, path: str) -> bool:
        """Put an image file on the pad (greyscale, scaled to fill it); False if unreadable."""
        img = QImage(path)
        if img.isNull():
            return False
        img = img.convertToFormat(QImage.Format.Format_Grayscale8).scaled(
            RES, RES, Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        if self.inverted:
            img.invertPixels()
        self.image = img
        self.update()
        self.changed.emit()
        return True

    def dragEnterEvent(self, ev) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        urls = ev.mimeData().urls()
        if urls and self.load_image(urls[0].toLocalFile()):
            ev.acceptProposedAction()

    def stroke(self, a: QPointF, b: QPointF) -> None:
        """Paint a round line between two pad-image points."""
        p = QPainter(self.image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(255, 255, 255), self.brush, Qt.PenStyle.SolidLine,
                      Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        if a == b:
            p.drawPoint(a)
        else:
            p.drawLine(a, b)
        p.end()
        self.update()
        self.changed.emit()

    def ink(self, h: int, w: int) -> np.ndarray:
        """The drawing averaged down to (h, w), 0..1 with 1 = ink (after ``inverted``)."""
        ptr = self.image.constBits()
        a = np.frombuffer(ptr, dtype=np.uint8, count=self.image.sizeInBytes())
        a = a.reshape(RES, self.image.bytesPerLine())[:, :RES].astype(np.float64) / 255.0
        rows = np.linspace(0, RES, h + 1).astype(int)
        cols = np.linspace(0, RES, w + 1).astype(int)
        out = np.add.reduceat(np.add.reduceat(a, rows[:-1], axis=0), cols[:-1], axis=1)
        out /= np.outer(np.diff(rows), np.diff(cols))
        return 1.0 - out if self.inverted else out

    # ----- events --------------------------------------------------------------------------
    def mousePressEvent(self, ev: QMouseEvent) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            self._last = self._to_image(ev.position())
            self.stroke(self._last, self._last)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        if self._last is not None:
            p = self._to_image(ev.position())
            self.stroke(self._last, p)
            self._last = p

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        if self._last is not None:
            self.stroke(self._last, self._to_image(ev.position()))
        self._last = None

    def paintEvent(self, ev: QPaintEvent) -> None:
        p = QPainter(self)
        r = self._square()
        img = self.image
        if self.inverted:
            img = img.copy()
            img.invertPixels()
        p.drawImage(r, img)
        p.setPen(QPen(QColor("#8a94a6"), 1))
        p.drawRect(r)
        p.end()

"""The Try it inputs that are not drawings: a 2-D point picked on the model's decision
regions (``RegionPad``), and a sequence picked from the dataset or typed as tokens
(``SequenceInput``)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..canvas import theme
from ..session.probes import class_color
from .views import ImageView, heat_colors

Extent = tuple[float, float, float, float]  # x0, x1, y0, y1


class RegionPad(QWidget):
    """The decision regions of a 2-D input, the dataset's points over them and the point
    being tried (a ring). Pressing or dragging the left button moves the point:
    ``moved(x0, x1)`` in data coordinates."""

    moved = Signal(float, float)
    MARGIN_L, MARGIN_B, MARGIN = 40, 20, 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("regionPad")
        self.extent: Extent = (-1.0, 1.0, -1.0, 1.0)
        self.image: QImage | None = None
        self.points: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.point: tuple[float, float] | None = None
        self.setMinimumSize(180, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Click or drag to choose the input point")

    def sizeHint(self) -> QSize:
        return QSize(260, 240)

    def set_regions(self, rgb: np.ndarray | None, extent: Extent) -> None:
        """``rgb`` (res, res, 3) uint8 with row 0 at the lowest y, over ``extent``."""
        self.extent = extent
        if rgb is None:
            self.image = None
        else:
            a = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[::-1])
            h, w = a.shape[:2]
            self.image = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def set_points(self, points: np.ndarray | None, labels: np.ndarray | None) -> None:
        self.points, self.labels = points, labels
        self.update()

    def set_point(self, x0: float, x1: float) -> None:
        self.point = (x0, x1)
        self.update()

    # ----- geometry ------------------------------------------------------------------------
    def plot_rect(self) -> QRectF:
        m = self.MARGIN
        return QRectF(self.MARGIN_L, m, max(10, self.width() - self.MARGIN_L - m),
                      max(10, self.height() - self.MARGIN_B - m))

    def to_px(self, x0: float, x1: float) -> QPointF:
        """Data coordinates -> widget pixels."""
        r, (a, b, c, d) = self.plot_rect(), self.extent
        return QPointF(r.left() + (x0 - a) / (b - a) * r.width(),
                       r.bottom() - (x1 - c) / (d - c) * r.height())

    def to_data(self, p: QPointF) -> tuple[float, float]:
        """Widget pixels -> data coordinates, kept inside the extent."""
        r, (a, b, c, d) = self.plot_rect(), self.extent
        u = min(1.0, max(0.0, (p.x() - r.left()) / r.width()))
        v = min(1.0, max(0.0, (r.bottom() - p.y()) / r.height()))
        return a + u * (b - a), c + v * (d - c)

    # ----- events --------------------------------------------------------------------------
    def mousePressEvent(self, ev: QMouseEvent) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            self._move_to(ev.position())

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        if ev.buttons() & Qt.MouseButton.LeftButton:
            self._move_to(ev.position())

    def _move_to(self, pos: QPointF) -> None:
        x0, x1 = self.to_data(pos)
        self.set_point(x0, x1)
        self.moved.emit(x0, x1)

    def paintEvent(self, ev: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.plot_rect()
        p.fillRect(r, QColor("#f4f6f9"))
        if self.image is not None:
            p.drawImage(r, self.image)
        if self.points is not None:
            labels = self.labels if self.labels is not None else np.zeros(len(self.points))
            p.setPen(QPen(QColor(255, 255, 255, 200), 0.8))
            for (a, b), k in zip(self.points, labels):
                p.setBrush(QColor(*class_color(int(k))))
                p.drawEllipse(self.to_px(float(a), float(b)), 3.0, 3.0)
        p.setPen(QPen(QColor(theme.TEXT), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r)
        x0, x1, y0, y1 = self.extent
        fm = p.fontMetrics()
        p.drawText(QRectF(r.left() - 4, r.bottom() + 2, 80, 16), Qt.AlignmentFlag.AlignLeft,
                   f"{x0:.2g}")
        p.drawText(QRectF(r.right() - 80, r.bottom() + 2, 80, 16), Qt.AlignmentFlag.AlignRight,
                   f"{x1:.2g}")
        p.drawText(QRectF(r.center().x() - 40, r.bottom() + 2, 80, 16),
                   Qt.AlignmentFlag.AlignHCenter, "x₀")
        lw = self.MARGIN_L - 4
        p.drawText(QRectF(0, r.bottom() - fm.height(), lw, fm.height()),
                   Qt.AlignmentFlag.AlignRight, f"{y0:.2g}")
        p.drawText(QRectF(0, r.top(), lw, fm.height()), Qt.AlignmentFlag.AlignRight, f"{y1:.2g}")
        p.drawText(QRectF(0, r.center().y() - 8, lw, 16), Qt.AlignmentFlag.AlignRight, "x₁")
        if self.point is not None:
            c = self.to_px(*self.point)
            p.setPen(QPen(QColor("white"), 4))
            p.drawEllipse(c, 8, 8)
            p.setPen(QPen(QColor("black"), 2))
            p.drawEllipse(c, 8, 8)
            p.drawLine(c + QPointF(-13, 0), c + QPointF(-4, 0))
            p.drawLine(c + QPointF(4, 0), c + QPointF(13, 0))
            p.drawLine(c + QPointF(0, -13), c + QPointF(0, -4))
            p.drawLine(c + QPointF(0, 4), c + QPointF(0, 13))
        p.end()


def sequence_image(seq: np.ndarray) -> QImage:
    """One sample (T, F) or (T,) as a heat strip: time left to right, a row per feature,
    each feature scaled to its own range."""
    a = np.asarray(seq, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a.reshape(a.shape[0], -1)
    lo, hi = a.min(axis=0, keepdims=True), a.max(axis=0, keepdims=True)
    n = np.where(hi > lo, (a - lo) / np.where(hi > lo, hi - lo, 1), 0.5).T  # (F, T)
    rgb = np.ascontiguousarray(heat_colors(n))
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class StripView(ImageView):
    """A sequence's heat strip: as wide as the view, rows of at most 18 pixels."""

    def _refresh(self) -> None:
        if self.image is None:
            self.setPixmap(QPixmap())
            return
        h = min(max(16, self.height() - 4), 18 * self.image.height())
        self.setPixmap(QPixmap.fromImage(self.image).scaled(
            max(16, self.width() - 4), h, Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation))


class SequenceInput(QWidget):
    """Pick a dataset sample (``sample_chosen(i)``) or, for token inputs, type the tokens
    (``tokens_typed(text)`` when editing ends); shows the sequence tried as a heat strip."""

    sample_chosen = Signal(int)
    tokens_typed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sequenceInput")
        self.sample = QSpinBox()
        self.sample.setRange(0, 0)
        self.sample.setToolTip("Index of a dataset sample")
        self.show_btn = QPushButton("Show")
        self.show_btn.clicked.connect(lambda: self.sample_chosen.emit(self.sample.value()))
        row = QHBoxLayout()
        row.addWidget(QLabel("Sample"))
        row.addWidget(self.sample, 1)
        row.addWidget(self.show_btn)
        self.tokens = QLineEdit()
        self.tokens.setObjectName("tokens")
        self.tokens.setPlaceholderText("type tokens, e.g. 3 17 42 …")
        self.tokens.editingFinished.connect(lambda: self.tokens_typed.emit(self.tokens.text()))
        self.tokens_label = QLabel("Tokens")
        self.view = StripView()
        self.view.setMinimumSize(110, 40)
        self.view.setToolTip("The sequence tried: time runs left to right, a row per "
                             "feature (each scaled to its own range)")
        self.note = QLabel("")
        self.note.setObjectName("dim")
        self.note.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.tokens_label)
        lay.addWidget(self.tokens)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.note)

    def configure(self, n_samples: int, tokens: bool, vocab: int = 0) -> None:
        """``n_samples`` to pick from (0: none), a token field when ``tokens``."""
        self.sample.setRange(0, max(0, n_samples - 1))
        self.sample.setEnabled(n_samples > 0)
        self.show_btn.setEnabled(n_samples > 0)
        self.tokens.setVisible(tokens)
        self.tokens_label.setVisible(tokens)
        if tokens:
            self.tokens_label.setText(f"Tokens (ids 0 … {vocab - 1}; fewer than the Input's "
                                      f"steps keep the rest of the sequence)")
            self.tokens_label.setWordWrap(True)

    def show_sequence(self, seq: np.ndarray, text: str) -> None:
        self.view.set_image(sequence_image(seq))
        self.note.setText(text)

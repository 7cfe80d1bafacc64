"""Small views of the Look Inside tools: class probability bars and a heat map laid over an
input image."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from ..canvas import theme

# a perceptual dark-blue -> red -> yellow ramp (inferno-like), 0..1
_STOPS = np.array([[0.0, 0, 0, 4], [0.25, 87, 16, 110], [0.5, 188, 55, 84],
                   [0.75, 249, 142, 9], [1.0, 252, 255, 164]])


def heat_colors(v: np.ndarray) -> np.ndarray:
    """Values in 0..1 (any shape) -> RGB uint8 (..., 3) on the ramp."""
    v = np.clip(np.asarray(v, dtype=np.float64), 0, 1)
    out = np.stack([np.interp(v, _STOPS[:, 0], _STOPS[:, k]) for k in (1, 2, 3)], axis=-1)
    return out.round().astype(np.uint8)


def heat_color(v: float) -> QColor:
    r, g, b = heat_colors(np.array([v]))[0]
    return QColor(int(r), int(g), int(b))


def overlay_image(base: np.ndarray, heat: np.ndarray | None, size: int = 224,
                  alpha: float = 0.6) -> QImage:
    """An RGB image of ``size`` x ``size``: the input ``base`` (h, w) in 0..1 as grey, with
    ``heat`` (h, w) in 0..1 blended over it (``alpha`` where the heat is 1)."""
    g = np.clip(np.asarray(base, dtype=np.float64), 0, 1)
    rgb = np.repeat((g * 255)[..., None], 3, axis=-1)
    if heat is not None:
        h = np.clip(np.asarray(heat, dtype=np.float64), 0, 1)
        a = (alpha * np.sqrt(h))[..., None]
        rgb = rgb * (1 - a) + heat_colors(h) * a
    rgb = np.ascontiguousarray(rgb.round().astype(np.uint8))
    hh, ww = rgb.shape[:2]
    img = QImage(rgb.data, ww, hh, 3 * ww, QImage.Format.Format_RGB888).copy()
    return img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                      Qt.TransformationMode.FastTransformation)


class ImageView(QLabel):
    """Shows a QImage scaled to fit, pixels kept square and sharp."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.setMinimumSize(110, 110)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, img: QImage | None) -> None:
        self.image = img
        self._refresh()

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self._refresh()

    def _refresh(self) -> None:
        if self.image is None:
            self.setPixmap(QPixmap())
            return
        self.setPixmap(QPixmap.fromImage(self.image).scaled(
            max(16, self.width() - 4), max(16, self.height() - 4),
            Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))


class ProbBars(QWidget):
    """One bar per class: its name, the probability as a bar and in %; the top class bold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("probBars")
        self.names: list[str] = []
        self.probs = np.zeros(0)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_probs(self, probs: np.ndarray, names: list[str]) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)
        self.names = list(names)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(200, max(1, min(len(self.names), 20)) * 17 + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, max(1, min(len(self.names), 20)) * 12 + 4)

    def paintEvent(self, ev: QPaintEvent) -> None:
        p = QPainter(self)
        n = min(len(self.names), 20)
        if n == 0:
            p.end()
            return
        order = np.argsort(-self.probs)[:n] if len(self.names) > 20 else np.arange(n)
        top = int(np.argmax(self.probs))
        row = (self.height() - 4) / n
        name_w = max(28, min(110, max(p.fontMetrics().horizontalAdvance(self.names[k])
                                      for k in order) + 8))
        pct_w = p.fontMetrics().horizontalAdvance("100.0 %") + 6
        bar_w = max(10, self.width() - name_w - pct_w - 4)
        for i, k in enumerate(int(j) for j in order):
            y = 2 + i * row
            f = QFont(self.font())
            f.setBold(k == top)
            p.setFont(f)
            p.setPen(QColor(theme.TEXT))
            p.drawText(QRectF(0, y, name_w - 6, row), Qt.AlignmentFlag.AlignRight
                       | Qt.AlignmentFlag.AlignVCenter, self.names[k])
            p.fillRect(QRectF(name_w, y + 2, bar_w, row - 4), QColor("#e8ebf0"))
            p.fillRect(QRectF(name_w, y + 2, bar_w * float(self.probs[k]), row - 4),
                       QColor("#2f6fdf" if k == top else "#8fb0e8"))
            p.drawText(QRectF(name_w + bar_w + 4, y, pct_w, row), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignVCenter, f"{100 * self.probs[k]:.1f} %")
        p.end()


def activation_picture(act: np.ndarray) -> np.ndarray | None:
    """One sample's activation as a picture in 0..1: an image node's (C, H, W) mean
    |activation| over channels (H, W); a vector (N,) as one row (1, N); None otherwise."""
    a = np.abs(np.asarray(act, dtype=np.float64))
    if a.ndim == 3:
        a = a.mean(axis=0)
    elif a.ndim == 1:
        a = a[None, :]
    else:
        return None
    top = float(a.max(initial=0.0))
    return a / top if top > 0 else a

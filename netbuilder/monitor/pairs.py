"""Inputs beside what the network makes of them: a row of validation samples above their
SpatialTransformer output (the warped image) or their autoencoder reconstruction, each pair
on one colour scale, refreshed while training runs."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QComboBox, QSizePolicy, QToolTip, QWidget

from engine.text import plural

from ..session.probes import ImagePairs, ProbeData
from .common import DIM, TEXT, MonitorPanel, NodeChooser

GAP = 8  # px between pairs
GUTTER = 18  # px left of the grid for the row names
MAX_THUMB = 220  # px: a pair's images grow with the dock up to this size
AFTER_NAME = {"transform": "transformed", "reconstruction": "reconstruction"}
ROW_NAME = {"transform": "warped", "reconstruction": "rebuilt"}
NO_NODES = ("This model has no SpatialTransformer and no Output that learns its own input "
            "(target \"x\"), so there is nothing to compare here.")


def channel_view(a: np.ndarray) -> np.ndarray:
    """What is drawn of one (C, H, W) image: (H, W, 3) for three channels, else (H, W) of
    channel 0."""
    return np.moveaxis(a, 0, -1) if a.shape[0] == 3 else a[0]


def pair_rgb(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two (C, H, W) images as (H, W, 3) uint8 on one scale: the lowest value of either is
    black, the highest white (grey for one channel, RGB for three, else channel 0)."""
    b, a = channel_view(before), channel_view(after)
    vals = np.concatenate([b.reshape(-1), a.reshape(-1)])
    fin = vals[np.isfinite(vals)]
    lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0

    def rgb(t: np.ndarray) -> np.ndarray:
        n = np.clip(np.nan_to_num((t - lo) / span, nan=0.0), 0, 1)
        u8 = np.round(n * 255).astype(np.uint8)
        return np.ascontiguousarray(u8 if u8.ndim == 3 else np.repeat(u8[..., None], 3, 2))
    return rgb(b), rgb(a)


def qimage(rgb: np.ndarray) -> QImage:
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class PairsCanvas(QWidget):
    """Pairs of images, the input above its partner, with a caption (one or more lines)
    under each pair; the pairs wrap into as many rows as make the images largest."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: list[tuple[QImage, QImage]] = []
        self.captions: list[str] = []
        self.tips: list[str] = []
        self.rows_names = ("input", "output")
        self.cells: list[QRect] = []  # each pair's rectangle, from the last layout
        self.thumb = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 150)

    def set_pairs(self, images: list[tuple[QImage, QImage]], captions: list[str],
                  tips: list[str], names: tuple[str, str]) -> None:
        self.images, self.captions, self.tips, self.rows_names = images, captions, tips, names
        self.update()

    def _caption_height(self) -> int:
        lines = max((c.count("\n") + 1 for c in self.captions), default=1)
        return lines * self.fontMetrics().height() + 4

    def layout_cells(self) -> tuple[int, int, int]:
        """(thumb size, rows, columns) that make the images largest in this widget."""
        n = len(self.images)
        if not n:
            return 0, 0, 0
        w, h = self.width() - GUTTER - GAP, self.height() - GAP
        cap = self._caption_height()
        best = (0, 1, n)
        for cols in range(1, n + 1):
            rows = math.ceil(n / cols)
            s = min((w - (cols - 1) * GAP) // cols, (h - rows * (cap + GAP + 2)) // (2 * rows))
            s = min(s, MAX_THUMB)
            if s > best[0]:
                best = (s, rows, cols)
        return best

    def paintEvent(self, ev: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#FFFFFF"))
        s, rows, cols = self.layout_cells()
        self.thumb = s
        self.cells = []
        if s < 4:
            p.end()
            return
        cap = self._caption_height()
        cell_h = 2 * s + 2 + cap + GAP
        x0 = GUTTER + max(0, (self.width() - GUTTER - cols * s - (cols - 1) * GAP) // 2)
        small = p.font()
        small.setPointSizeF(max(7.5, small.pointSizeF() - 0.5))
        for i, (before, after) in enumerate(self.images):
            r, c = divmod(i, cols)
            x, y = x0 + c * (s + GAP), GAP // 2 + r * cell_h
            self._draw_image(p, before, QRect(x, y, s, s))
            self._draw_image(p, after, QRect(x, y + s + 2, s, s))
            p.setPen(QColor(TEXT))
            self._draw_caption(p, self.captions[i], QRect(x - GAP // 2, y + 2 * s + 2,
                                                          s + GAP, cap), small)
            self.cells.append(QRect(x, y, s, 2 * s + 2 + cap))
        self._draw_row_names(p, x0 - GUTTER, s, rows, cell_h)
        p.end()

    def _draw_caption(self, p: QPainter, text: str, box: QRect, font: QFont) -> None:
        """``text`` in ``box``, in a smaller font (down to 6.5 pt) where it is too wide."""
        f = QFont(font)
        lines = text.split("\n")
        while f.pointSizeF() > 6.5 and max(QFontMetrics(f).horizontalAdvance(t)
                                           for t in lines) > box.width():
            f.setPointSizeF(f.pointSizeF() - 0.5)
        p.setFont(f)
        fm = p.fontMetrics()
        p.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, "\n".join(
            fm.elidedText(t, Qt.TextElideMode.ElideRight, box.width()) for t in lines))

    def _draw_image(self, p: QPainter, img: QImage, box: QRect) -> None:
        iw, ih = img.width(), img.height()
        k = min(box.width() / iw, box.height() / ih)
        w, h = iw * k, ih * k
        target = QRectF(box.x() + (box.width() - w) / 2, box.y() + (box.height() - h) / 2, w, h)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, k < 3)
        p.drawImage(target, img)
        p.setPen(QPen(QColor("#C9CED6"), 1))
        p.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))

    def _draw_row_names(self, p: QPainter, x: int, s: int, rows: int, cell_h: int) -> None:
        f = QFont(p.font())
        f.setPointSizeF(max(7.5, f.pointSizeF() - 0.5))
        p.setFont(f)
        p.setPen(QColor(DIM))
        for r in range(rows):
            for k, name in enumerate(self.rows_names):
                y = GAP // 2 + r * cell_h + k * (s + 2)
                p.save()
                p.translate(x + 2, y + s)
                p.rotate(-90)
                p.drawText(QRect(0, 0, s, GUTTER - 4), Qt.AlignmentFlag.AlignCenter,
                           p.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, s))
                p.restore()

    def event(self, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.ToolTip:
            pos = ev.pos()
            hit = next((i for i, r in enumerate(self.cells) if r.contains(pos)), None)
            if hit is not None and hit < len(self.tips):
                QToolTip.showText(ev.globalPos(), self.tips[hit], self)
            else:
                QToolTip.hideText()
            return True
        return super().event(ev)


class PairsView(NodeChooser, MonitorPanel):
    """Probe samples above what ``node`` makes of them; ``node_chosen`` when the user picks
    another SpatialTransformer or reconstructing Output."""

    node_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Input vs output", parent)
        self.node: str | None = None
        self.kinds: dict[str, str] = {}
        self.pairs: ImagePairs | None = None
        self.one_input = True
        self.node_box = QComboBox()
        self.node_box.setToolTip("The SpatialTransformer or the Output that rebuilds the input "
                                 "whose results are shown (or select it on the canvas)")
        self.node_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.node_box.activated.connect(self._on_node_box)
        self.add_control(self.node_box)
        self.canvas = PairsCanvas()
        self.body.addWidget(self.canvas, 1)
        self.clear()

    # ----- model ---------------------------------------------------------------------------
    def set_nodes(self, kinds: dict[str, str]) -> None:
        """The nodes that may be shown: {id: "transform" or "reconstruction"}."""
        self.kinds = dict(kinds)
        self.one_input = True
        self.node_box.blockSignals(True)
        self.node_box.clear()
        for nid, kind in self.kinds.items():
            self.node_box.addItem(f"{nid}  ({AFTER_NAME[kind]})", nid)
        self.node_box.blockSignals(False)
        self.node_box.setVisible(len(self.kinds) > 1)
        if self.node in self.kinds:
            self.node_box.setCurrentIndex(list(self.kinds).index(self.node))
        else:
            self.node = None
            self.select_node(next(iter(self.kinds), None))
        if self.pairs is None or self.pairs.node != self.node:
            self.clear()

    def set_probe(self, probe: ProbeData | None) -> None:
        """The run's probe samples: without them (several Inputs) there is nothing to show."""
        self.one_input = probe is None or probe.x is not None
        if self.pairs is None:
            self.clear()

    def node_ids(self) -> list[str]:
        return list(self.kinds)

    # ----- updates -------------------------------------------------------------------------
    def show_pairs(self, pp: ImagePairs) -> None:
        if pp.node != self.node:
            return
        self.pairs = pp
        self.show_placeholder(None, self.canvas)
        images = [tuple(qimage(x) for x in pair_rgb(b, a)) for b, a in zip(pp.before, pp.after)]
        captions, tips = [], []
        for k, i in enumerate(pp.indices):
            label = pp.labels[k] if k < len(pp.labels) else ""
            tip = f"{pp.part} sample {int(i)}" + (f", label {label}" if label else "")
            if pp.errors is not None:
                err = float(pp.errors[k])
                captions.append("\n".join(t for t in (label, f"MSE {err:.2g}") if t))
                tip += f"<br>mean squared error {err:.4g}"
            else:
                captions.append(label or f"#{int(i)}")
            if pp.theta is not None:
                m = pp.theta[k]
                rows = "<br>".join("&nbsp;".join(f"{v:+.2f}" for v in row) for row in m)
                tip += f"<br>affine matrix (output → input coordinates):<br><tt>{rows}</tt>"
            tips.append(tip)
        self.canvas.set_pairs(images, captions, tips, ("input", ROW_NAME[pp.kind]))
        self.info.setText(self._describe(pp))
        self.info.setToolTip("Each pair shares one grey scale: black = the lowest value of the "
                             "two images, white = the highest. Hover a pair for details.")

    def _describe(self, pp: ImagePairs) -> str:
        c, h, w = pp.before.shape[1:]
        ho, wo = pp.after.shape[2:]
        n = len(pp.indices)
        ch = "" if c in (1, 3) else f" · channel 0 of {c}"
        if pp.kind == "transform":
            return f"<b>{pp.node}</b> · {plural(n, pp.part + ' sample')} · {h}×{w} → {ho}×{wo}{ch}"
        mean = float(np.mean(pp.errors)) if pp.errors is not None and len(pp.errors) else \
            math.nan
        return f"<b>{pp.node}</b> · {plural(n, pp.part + ' sample')}{ch} · mean MSE {mean:.3g}"

    def clear(self) -> None:
        self.pairs = None
        self.canvas.set_pairs([], [], [], self.canvas.rows_names)
        self.info.setText("")
        if not self.kinds:
            self.show_placeholder(NO_NODES, self.canvas)
        elif not self.one_input:
            self.show_placeholder("Inputs beside outputs are shown for models with one Input.",
                                  self.canvas)
        else:
            what = ("as the SpatialTransformer warps them" if self.kinds.get(self.node)
                    == "transform" else "as the network rebuilds them")
            self.show_placeholder(f"Start training: validation samples appear here above "
                                  f"{self.node}'s output, {what}.", self.canvas)

    # ----- export --------------------------------------------------------------------------
    def png_widget(self) -> QWidget:
        return self.canvas

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        pp = self.pairs
        if pp is None or pp.kind == "reconstruction":
            header = ["sample", "label", "mse"]
            if pp is None or pp.errors is None:
                return header, []
            return header, [[int(i), pp.labels[k] if k < len(pp.labels) else "",
                             float(pp.errors[k])] for k, i in enumerate(pp.indices)]
        header = ["sample", "label", "a11", "a12", "a13", "a21", "a22", "a23"]
        theta = pp.theta if pp.theta is not None else np.full((len(pp.indices), 2, 3), np.nan)
        return header, [[int(i), pp.labels[k] if k < len(pp.labels) else "",
                         *(float(v) for v in theta[k].reshape(-1))]
                        for k, i in enumerate(pp.indices)]

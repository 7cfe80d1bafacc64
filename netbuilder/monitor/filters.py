"""Filters: the weights of the selected Conv2D as image tiles, averaged over the input
channels, one row per filter with a tile per input channel, or as colour for RGB inputs;
blue is negative, red positive, white zero (each filter scaled on its own)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QWidget

from engine.text import plural

from .common import MonitorPanel, diverging_lut, image_plot, mosaic, to_rgb

MODES = (("mean", "mean over inputs"), ("each", "each input channel"), ("rgb", "RGB"))


def filter_tiles(w: np.ndarray, mode: str) -> tuple[np.ndarray, int | None]:
    """(out, in, kh, kw) weights -> tiles for ``mosaic`` and its column count (None: auto)."""
    o, i = w.shape[:2]
    if mode == "rgb" and i == 3:
        return np.moveaxis(w, 1, -1), None
    if mode == "each" and i > 1:
        return w.reshape(o * i, *w.shape[2:]), i
    return w.mean(axis=1), None


class FilterView(MonitorPanel):
    """Weights of ``conv`` (a Conv2D); ``conv_chosen`` when the user picks another."""

    conv_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Filters", parent)
        self.conv: str | None = None
        self.filters: np.ndarray | None = None
        self.tiles: np.ndarray | None = None
        self.conv_box = QComboBox()
        self.conv_box.setToolTip("The Conv2D whose weights are shown")
        self.conv_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.conv_box.activated.connect(self._on_conv_box)
        self.mode_box = QComboBox()
        for key, text in MODES:
            self.mode_box.addItem(text, key)
        self.mode_box.setToolTip("Average a filter over its input channels, show one tile per "
                                 "input channel, or colour for 3-channel inputs")
        self.mode_box.currentIndexChanged.connect(lambda _i: self._redraw())
        self.add_control(self.conv_box)
        self.add_control(self.mode_box)
        self.plot, self.img = image_plot()
        self.plot.setMinimumSize(200, 160)
        self.body.addWidget(self.plot, 1)
        self._convs: list[str] = []
        self.show_placeholder("The model has no Conv2D layer.", self.plot)

    @property
    def convs(self) -> list[str]:
        """The Conv2D nodes offered, in graph order."""
        return list(self._convs)

    @property
    def mode(self) -> str:
        return str(self.mode_box.currentData())

    def set_convs(self, convs: list[str]) -> None:
        self._convs = list(convs)
        self.conv_box.blockSignals(True)
        self.conv_box.clear()
        for c in convs:
            self.conv_box.addItem(c, c)
        self.conv_box.blockSignals(False)
        self.conv_box.setEnabled(bool(convs))
        if not convs:
            self.conv = None
            self.filters = None
            self.show_placeholder("The model has no Conv2D layer.", self.plot)
            return
        if self.conv not in convs:
            self.select_conv(convs[0], force=True)
        else:
            self.conv_box.setCurrentIndex(convs.index(self.conv))
        if self.filters is None:
            self.show_placeholder("Start training: the filters of this convolution appear "
                                  "here and change as it learns.", self.plot)

    def select_conv(self, conv: str | None, force: bool = False) -> None:
        if conv is None or conv not in self._convs or (conv == self.conv and not force):
            return
        self.conv = conv
        self.filters = None
        self.conv_box.setCurrentIndex(self._convs.index(conv))
        self.conv_chosen.emit(conv)

    def _on_conv_box(self, index: int) -> None:
        self.select_conv(self.conv_box.itemData(index))

    def show_filters(self, node: str, w: np.ndarray) -> None:
        if node != self.conv:
            return
        self.filters = w
        self._redraw()

    def _redraw(self) -> None:
        w = self.filters
        if w is None:
            return
        self.show_placeholder(None, self.plot)
        tiles, cols = filter_tiles(w, self.mode)
        self.tiles = tiles
        img, _, cols = mosaic(tiles, cols=cols, symmetric=True)
        self.img.setImage(to_rgb(img, diverging_lut(), background=(150, 156, 166)),
                          autoLevels=False)
        self.plot.getPlotItem().autoRange(padding=0.01)
        o, i, kh, kw = w.shape
        mode = dict(MODES)[self.mode] if not (self.mode == "rgb" and i != 3) else "mean"
        self.info.setText(f"<b>{self.conv}</b> · {plural(o, 'filter')} of {i}×{kh}×{kw} · {mode} · "
                          f"|w| ≤ {float(np.abs(w).max()):.3g}")

    def clear(self) -> None:
        self.filters = None
        self.info.setText("")
        if self._convs:
            self.show_placeholder("Start training: the filters of this convolution appear "
                                  "here and change as it learns.", self.plot)

    def png_widget(self) -> QWidget:
        return self.plot

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        w = self.filters
        if w is None:
            return ["filter", "input", "row", "col", "weight"], []
        return (["filter", "input", "row", "col", "weight"],
                [[*idx, float(v)] for idx, v in np.ndenumerate(w)])

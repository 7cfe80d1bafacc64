"""What each filter looks for: activation maximisation (``engine.explain``) of every
channel of a node, in a background thread, shown as a grid of synthesised inputs."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

import engine
from engine.errors import NetBuilderError
from engine.explain import ActivationMax, ExplainCancelledError, maximise_activation

from .views import ImageView, overlay_image

STEPS = 64


class MaximiseThread(QThread):
    """Runs the gradient ascent for all channels of ``node`` on its own network."""

    progressed = Signal(int, int)
    done = Signal(object)  # ActivationMax, or a str (why not)

    def __init__(self, net: engine.Network, node: str, steps: int = STEPS,
                 parent=None) -> None:
        super().__init__(parent)
        self.net, self.node, self.steps = net, node, steps
        self.cancel = False

    def run(self) -> None:
        try:
            self.done.emit(maximise_activation(self.net, self.node, steps=self.steps,
                                               progress=self.progressed.emit,
                                               cancelled=lambda: self.cancel))
        except ExplainCancelledError:
            self.done.emit("cancelled")
        except NetBuilderError as e:
            self.done.emit(e.message)


def display(image: np.ndarray) -> np.ndarray:
    """One synthesised input (C, H, W) as an (H, W) picture in 0..1 (channels averaged,
    stretched to its own range)."""
    a = np.asarray(image, dtype=np.float64)
    a = a.mean(axis=0) if a.ndim == 3 else a
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


class FilterGridDialog(QDialog):
    """A progress bar while the thread runs, then one picture per channel."""

    def __init__(self, net: engine.Network, node: str, source: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filterGridDialog")
        self.setWindowTitle(f"What {node} looks for")
        self.node = node
        self.result: ActivationMax | None = None
        self.views: list[ImageView] = []
        self.note = QLabel(f"Synthesising, for each channel of {node}, the input that "
                           f"excites it most: {STEPS} steps of gradient ascent from a small "
                           f"seeded noise, with a small L2 penalty ({source}).")
        self.note.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, STEPS)
        self.grid_box = QWidget()
        self.grid = QGridLayout(self.grid_box)
        self.grid.setSpacing(4)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.note)
        lay.addWidget(self.progress)
        lay.addWidget(self.grid_box, 1)
        lay.addWidget(buttons)
        self.resize(620, 520)
        self.thread = MaximiseThread(net, node, parent=self)
        self.thread.progressed.connect(lambda d, t: self.progress.setValue(d))
        self.thread.done.connect(self._on_done)
        self.thread.start()

    def _on_done(self, result: ActivationMax | str) -> None:
        self.progress.hide()
        if isinstance(result, str):
            self.note.setText(f"Stopped: {result}")
            return
        self.result = result
        k = len(result.channels)
        cols = int(np.ceil(np.sqrt(k)))
        for i, c in enumerate(result.channels):
            v = ImageView()
            v.setMinimumSize(48, 48)
            v.setFixedSize(104, 104)
            v.set_image(overlay_image(display(result.images[i]), None, 96))
            gain = result.history[-1, i] - result.history[0, i]
            v.setToolTip(f"channel {c}: mean activation {result.history[0, i]:.3g} → "
                         f"{result.history[-1, i]:.3g} (+{gain:.3g})")
            self.views.append(v)
            box = QVBoxLayout()
            box.addWidget(v)
            label = QLabel(f"channel {c}")
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            box.addWidget(label)
            self.grid.addLayout(box, i // cols, i % cols)
        self.note.setText(f"The input that most excites each channel of {self.node} "
                          f"(hover for how much its mean activation grew).")

    def done(self, r: int) -> None:  # closing: stop the thread first
        self.thread.cancel = True
        self.thread.wait(30_000)
        super().done(r)

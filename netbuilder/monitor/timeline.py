"""The timeline under the monitor: where in a run's flight recording the views are.

``TimelineModel`` holds the shown run's recording and the position: an epoch that was
recorded, or None for Live (the latest values, drawn as they arrive). The presenter follows
its ``moved`` signal and redraws every view from the recorded epoch; ``TimelineBar`` (the
slider with a tick per recorded epoch, play/pause and Live) follows ``changed`` and
``moved`` too and only asks the model to move: no view reaches into another."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from PySide6.QtCore import QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QWidget,
)

from engine.recorder import Recording

from ..session.recording import fmt_mib

PLAY_MS = 700  # per recorded epoch while playing
MIN_TICK_PX = 5  # between the slider's tick marks at least
LABEL_GAP = 24  # px of room around an epoch number


class TimelineModel(QObject):
    """The recording shown and the position in it. ``changed()``: other epochs recorded
    (or another recording); ``moved(epoch or None)``: the position changed (None: Live)."""

    changed = Signal()
    moved = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.recording: Recording | None = None
        self.running = False  # the run records on: Live follows it
        self.epoch: int | None = None

    @property
    def epochs(self) -> list[int]:
        return list(self.recording.epochs) if self.recording is not None else []

    @property
    def live(self) -> bool:
        return self.epoch is None

    def set_recording(self, recording: Recording | None, running: bool,
                      reset: bool = False) -> None:
        """Show ``recording`` (the same run's, grown, or with ``reset`` another run's: back
        to Live). A scrubbed position stays where it is; if thinning dropped its epoch, it
        moves to the nearest one kept."""
        self.recording = recording
        self.running = running
        self.changed.emit()
        if reset or recording is None or not recording.epochs:
            if self.epoch is not None:
                self.epoch = None
                self.moved.emit(None)
        elif self.epoch is not None and self.epoch not in recording.epochs:
            self.seek(self.epoch)

    def seek(self, epoch: int) -> None:
        """Show the recorded epoch nearest ``epoch``."""
        eps = self.epochs
        if not eps:
            return
        e = min(eps, key=lambda k: (abs(k - epoch), k))
        if e != self.epoch:
            self.epoch = e
            self.moved.emit(e)

    def go_live(self) -> None:
        if self.epoch is not None:
            self.epoch = None
            self.moved.emit(None)

    def advance(self) -> bool:
        """One recorded epoch on (from Live: the first one); False at the last."""
        eps = self.epochs
        if not eps:
            return False
        if self.epoch is None:
            self.seek(eps[0])
            return True
        later = [e for e in eps if e > self.epoch]
        if not later:
            return False
        self.seek(later[0])
        return True


class EpochSlider(QSlider):
    """A horizontal slider over the recorded epochs (one step each) that writes the epoch
    numbers under its ticks, as many as fit."""

    def __init__(self) -> None:
        super().__init__(Qt.Orientation.Horizontal)
        self.labels: list[int] = []
        self.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.setTickInterval(1)
        self.setPageStep(1)
        self.setMinimumHeight(36)

    def set_labels(self, epochs: list[int]) -> None:
        self.labels = list(epochs)
        self._space_ticks()
        self.update()

    def _geometry(self) -> tuple[int, int]:
        """(x of the first position, px from the first to the last)."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderHandle, self)
        return handle.width() // 2, self.width() - handle.width()

    def _x(self, i: int) -> int:
        x0, span = self._geometry()
        n = len(self.labels)
        return x0 + (round(span * i / (n - 1)) if n > 1 else 0)

    def _space_ticks(self) -> None:
        """A tick every k positions, k the first nice step that leaves them MIN_TICK_PX
        apart at the present width (a tick per epoch of a long run drew a solid bar); set
        with the labels, each recorded epoch (from a resize event, it crashed Qt while a
        dock state was being restored)."""
        n = len(self.labels)
        each = self._geometry()[1] / max(1, n - 1)
        self.setTickInterval(next(k for k in nice_steps() if k * each >= MIN_TICK_PX))

    def label_rects(self) -> list[tuple[QRect, str]]:
        """Where the epoch numbers go: those of the first nice step (1, 2, 5, 10, 20, 25,
        50, …) whose labels do not touch, the first and last epoch always (the last takes
        the place of a label it would touch)."""
        n = len(self.labels)
        if not n:
            return []
        fm = self.fontMetrics()
        y, h = self.height() - fm.height(), fm.height()

        def rect(i: int) -> QRect:
            w = fm.horizontalAdvance(str(self.labels[i])) + LABEL_GAP
            return QRect(min(max(0, self._x(i) - w // 2), self.width() - w), y, w, h)

        def apart(a: QRect, b: QRect) -> bool:
            return a.right() < b.left() or b.right() < a.left()

        for step in nice_steps():
            keep = [i for i, e in enumerate(self.labels) if e % step == 0 or i == 0]
            rects = [rect(i) for i in keep]
            if all(apart(a, b) for a, b in itertools.pairwise(rects)):
                break
        if keep[-1] != n - 1:
            last = rect(n - 1)
            while len(keep) > 1 and not apart(rects[-1], last):
                keep.pop()
                rects.pop()
            keep.append(n - 1)
            rects.append(last)
        return [(r, str(self.labels[i])) for i, r in zip(keep, rects)]

    def paintEvent(self, ev) -> None:
        super().paintEvent(ev)
        if not self.labels:
            return
        p = QPainter(self)
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        for r, text in self.label_rects():
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)
        p.end()


def nice_steps() -> Iterator[int]:
    """1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, …"""
    base = 1
    while True:
        yield from (base, 2 * base) + ((25 * base // 10,) if base >= 10 else ()) + (5 * base,)
        base *= 10


class TimelineBar(QWidget):
    """Play/pause, the epoch slider, where it is, and Live. Follows ``model``; moving the
    slider or pressing a button only moves the model."""

    def __init__(self, model: TimelineModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        lay.setSpacing(8)
        self.title = QLabel("<b>Timeline</b>")
        self.play_button = QPushButton("▶ Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Step through the recorded epochs, one every "
                                    f"{PLAY_MS / 1000:g} s (from the first if Live)")
        self.slider = EpochSlider()
        self.slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.slider.setToolTip("Drag back to any recorded epoch: every monitor view shows "
                               "the run as it was then")
        self.where = QLabel()
        self.where.setMinimumWidth(150)
        self.live_button = QPushButton("● Live")
        self.live_button.setCheckable(True)
        self.live_button.setToolTip("Back to the latest values (they follow a running run)")
        for w in (self.title, self.play_button, self.slider, self.where, self.live_button):
            lay.addWidget(w, 1 if w is self.slider else 0)
        self.timer = QTimer(self)
        self.timer.setInterval(PLAY_MS)
        self.timer.timeout.connect(self._tick)
        self.slider.valueChanged.connect(self._on_slider)
        self.play_button.toggled.connect(self._on_play)
        self.live_button.clicked.connect(self._on_live)
        model.changed.connect(self._sync)
        model.moved.connect(lambda _e: self._sync())
        self._sync()

    # ----- following the model -------------------------------------------------------------
    def _sync(self) -> None:
        m = self.model
        eps = m.epochs
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(eps) - 1))
        self.slider.set_labels(eps)
        if eps:
            self.slider.setValue(eps.index(m.epoch) if m.epoch in eps else len(eps) - 1)
        self.slider.blockSignals(False)
        has = bool(eps)
        for w in (self.slider, self.play_button):
            w.setEnabled(has)
        self.live_button.setChecked(m.live)
        self.live_button.setEnabled(has and not m.live)
        rec = m.recording
        if not has:
            self.where.setText("no recording" if rec is None or not m.running
                               else "recording…")
            self.setToolTip("")
        elif m.live:
            self.where.setText("Live" if m.running else f"latest (epoch {eps[-1]})")
        else:
            self.where.setText(f"epoch {m.epoch} of {eps[-1]} · recorded")
        if rec is not None:
            self.setToolTip(f"{len(eps)} epochs recorded, {fmt_mib(rec.total_bytes())} of a "
                            f"{fmt_mib(rec.budget)} budget")
        if not has and self.play_button.isChecked():
            self.play_button.setChecked(False)

    # ----- the user ------------------------------------------------------------------------
    def _on_slider(self, i: int) -> None:
        eps = self.model.epochs
        if 0 <= i < len(eps):
            self.model.seek(eps[i])

    def _on_live(self) -> None:
        self.play_button.setChecked(False)
        self.model.go_live()

    def _on_play(self, on: bool) -> None:
        self.play_button.setText("❚❚ Pause" if on else "▶ Play")
        if on:
            eps = self.model.epochs
            if self.model.live or self.model.epoch == (eps[-1] if eps else None):
                self.model.seek(eps[0] if eps else 0)  # from the start
            self.timer.start()
        else:
            self.timer.stop()

    def _tick(self) -> None:
        if not self.model.advance():
            self.play_button.setChecked(False)  # at the last recorded epoch: stay there

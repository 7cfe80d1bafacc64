"""Reading and writing the model's ``training`` section from the panels: every change is one
undoable SetTraining command; keys still at the engine's default are left out of the file
unless they were already there."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QDoubleSpinBox, QScrollArea, QVBoxLayout, QWidget

from engine.errors import NetBuilderError

from ..document import Command, Document, SetTraining

DEFAULTS: dict[str, Any] = {
    "epochs": 10, "batch_size": 32, "optimizer": {"type": "sgd", "lr": 0.01}, "schedule": "none",
    "seed": 0, "val_split": 0.1, "test_split": 0.1, "early_stopping": 0, "restore_best": True,
    "clip_norm": 0.0, "weight_decay": 0.0, "normalize": "none", "augment": None,
    "shuffle": True, "limit": 0,
}


def merged(old: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``old`` with ``updates``; a key equal to its default is dropped unless ``old`` had it,
    a None value removes the key."""
    new = copy.deepcopy(old)
    for k, v in updates.items():
        if v is None:
            new.pop(k, None)
        elif k in old or DEFAULTS.get(k, object()) != v:
            new[k] = copy.deepcopy(v)
    return new


def scrolling_body(panel: QWidget) -> QVBoxLayout:
    """Fill ``panel`` with a frameless scroll area and return the layout of its body (the
    side panels' common frame: 10 px margins, 6 px between rows)."""
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    body = QWidget()
    body.setObjectName("inspectorBody")
    scroll.setWidget(body)
    outer.addWidget(scroll)
    lay = QVBoxLayout(body)
    lay.setContentsMargins(10, 8, 10, 8)
    lay.setSpacing(6)
    return lay


class SectionWriter:
    """Pushes changes of the training section through ``push`` (the undo stack)."""

    def __init__(self, doc: Document, push: Callable[[Command], None],
                 report: Callable[[str, bool], None]) -> None:
        self.doc = doc
        self.push = push
        self.report = report

    @property
    def section(self) -> dict[str, Any]:
        return self.doc.graph.training

    def update(self, text: str, **updates: Any) -> bool:
        old = self.section
        new = merged(old, updates)
        if new == old:
            return False
        try:
            self.push(SetTraining(old, new, text))
        except NetBuilderError as exc:
            self.report(exc.message, True)
            return False
        return True


class SciSpinBox(QDoubleSpinBox):
    """A positive number shown with 3 significant digits (1e-05, 0.002, 0.1); the arrows
    multiply or divide by about 2. A typed number outside the range goes to
    ``out_of_range(value)`` (to say why it was not taken) instead of silently reverting."""

    def __init__(self, lo: float = 1e-8, hi: float = 100.0, parent: QWidget | None = None,
                 zero_text: str = "") -> None:
        super().__init__(parent)
        self.out_of_range: Callable[[float], None] | None = None
        self.setDecimals(12)
        self.setRange(0.0 if zero_text else lo, hi)
        self._lo = lo
        if zero_text:
            self.setSpecialValueText(zero_text)
        self.setKeyboardTracking(False)

    def textFromValue(self, v: float) -> str:
        return f"{v:.3g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        t = text.strip().replace(",", ".")
        if t == self.specialValueText() and t:
            return QValidator.State.Acceptable, text, pos
        if t in ("", ".", "-", "e", "1e", "1e-"):
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            ok = all(c in "0123456789.eE-+" for c in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def fixup(self, text: str) -> str:
        try:
            v = float(text.strip().replace(",", "."))
        except ValueError:
            v = None
        if v is not None and self.out_of_range is not None \
                and not self.minimum() <= v <= self.maximum():
            self.out_of_range(v)
        return super().fixup(text)

    def stepBy(self, steps: int) -> None:
        v = self.value()
        if v <= 0:
            v = self._lo * 1000 if steps > 0 else 0.0
        else:
            v = v * (2.0 ** steps)
            if v < self._lo:
                v = 0.0 if self.specialValueText() else self._lo
        self.setValue(float(f"{v:.3g}"))

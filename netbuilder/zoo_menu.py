"""File ▸ New from Template: start a model from the zoo (``engine.zoo``). The new model is
untitled; each entry's tooltip says what it is and what was measured for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from engine.zoo import TEMPLATES

if TYPE_CHECKING:
    from .mainwindow import MainWindow


class TemplateMenu:
    """The submenu, placed after File ▸ New."""

    def __init__(self, window: MainWindow) -> None:
        self.w = window
        self.menu = QMenu("New from &Template", window)
        self.actions: dict[str, QAction] = {}
        for t in TEMPLATES.values():
            act = self.menu.addAction(t.title, lambda name=t.name: self.new_from(name))
            tip = f"{t.summary}. " + (f"Measured: {t.expected()}." if t.expected() else "")
            act.setToolTip(tip)
            act.setStatusTip(tip)
            self.actions[t.name] = act
        self.menu.setToolTipsVisible(True)
        file_menu = window.file_menu
        acts = file_menu.actions()
        at = acts.index(window.act_new) + 1 if window.act_new in acts else 0
        file_menu.insertMenu(acts[at] if at < len(acts) else None, self.menu)

    def new_from(self, name: str) -> bool:
        """Replace the model with template ``name`` (asks to save changes first)."""
        t = TEMPLATES[name]
        if not self.w.maybe_save():
            return False
        self.w.load_graph(t.graph(), None)
        note = f" Measured: {t.expected()}." if t.expected() else ""
        self.w.show_status(f"New model from the template {t.title}: {t.summary}.{note}")
        return True

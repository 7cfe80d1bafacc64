"""What a user can read in a window: the text of every label, button, field, combo-box entry,
tree row, dock and tab title, and the words drawn inside the plots."""

from __future__ import annotations

import re

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QDockWidget,
    QGraphicsView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QTabBar,
    QTreeWidget,
    QWidget,
)


def _dock_of(w: QWidget, top: QWidget) -> QDockWidget | None:
    d = w
    while d is not None and not isinstance(d, QDockWidget) and d is not top:
        d = d.parentWidget()
    return d if isinstance(d, QDockWidget) else None


def _shown(w: QWidget, top: QWidget) -> bool:
    """``w`` is not hidden inside its dock (a dock behind another tab still counts: one
    click shows it)."""
    dock = _dock_of(w, top)
    host = dock.widget() if dock is not None else top
    return w is host or (host is not None and w.isVisibleTo(host))


def _plot_texts(view: QGraphicsView) -> list[str]:
    out = []
    for item in view.scene().items() if view.scene() is not None else []:
        if not item.isVisible():
            continue
        if isinstance(item, pg.LabelItem):
            out.append(item.text)
        elif isinstance(item, pg.TextItem):
            out.append(item.textItem.toPlainText())
    return out


def visible_texts(window: QMainWindow) -> dict[str, list[str]]:
    """{"dock title: widget type": [texts]} for every readable thing in ``window`` (its
    canvas excepted)."""
    out: dict[str, list[str]] = {"window title": [window.windowTitle()]}
    for w in window.findChildren(QWidget):
        if w is window.view or not _shown(w, window):
            continue
        dock = _dock_of(w, window)
        name = f"{dock.windowTitle() if dock is not None else 'window'}: {type(w).__name__}"
        texts: list[str] = []
        if isinstance(w, QLabel | QAbstractButton):
            texts.append(w.text())
        elif isinstance(w, QLineEdit):
            texts += [w.text(), w.placeholderText()]
        elif isinstance(w, QComboBox):
            texts += [w.itemText(i) for i in range(w.count())]
        elif isinstance(w, QDockWidget):
            texts.append(w.windowTitle())
        elif isinstance(w, QTabBar):
            texts += [w.tabText(i) for i in range(w.count())]
        elif isinstance(w, QTreeWidget):
            for i in range(w.topLevelItemCount()):
                it = w.topLevelItem(i)
                texts += [it.text(c) for c in range(w.columnCount())]
        elif isinstance(w, QGraphicsView):
            texts += _plot_texts(w)
        texts = [t for t in texts if t]
        if texts:
            out.setdefault(name, []).extend(texts)
    return out


def naming(texts: dict[str, list[str]], words: set[str]) -> dict[str, list[str]]:
    """The entries of ``texts`` that contain any of ``words`` (as a whole word)."""
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(w)}(?!\w)" for w in words))
    hits: dict[str, list[str]] = {}
    for where, items in texts.items():
        bad = [t for t in items if pattern.search(t)]
        if bad:
            hits[where] = bad
    return hits

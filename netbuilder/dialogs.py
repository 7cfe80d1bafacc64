"""The main window's modal dialogs, kept apart so tests can replace the window's hooks."""

from __future__ import annotations

import html
import platform
from pathlib import Path

import PySide6
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

import netbuilder

FILE_FILTER = "NetBuilder models (*.json *.nbmodel);;ONNX models (*.onnx);;All files (*)"

MOUSE = [  # gestures on the canvas (the keys come from the menus' actions)
    ("Wheel", "zoom around the cursor"), ("Middle drag / Space+drag", "pan"),
    ("Drag output → input port", "connect; drag a wired input away to rewire"),
    ("Drag on empty canvas", "select the nodes in the rectangle"),
]


def _keys(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText)
                     for k in action.shortcuts() if not k.isEmpty())


def shortcut_table(window: QMainWindow) -> list[tuple[str, str, str]]:
    """(menu, keys, what) for every action with a shortcut, read from the window's menus
    (so the list cannot drift from what the keys do), then the canvas's mouse gestures."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def walk(menu: QMenu, path: str) -> None:
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu(), f"{path} ▸ {a.menu().title().replace('&', '')}")
            elif not a.isSeparator() and _keys(a) and id(a) not in seen:
                seen.add(id(a))
                rows.append((path, _keys(a), a.text().replace("&", "").rstrip("…")))

    for a in window.menuBar().actions():
        if a.menu() is not None:
            walk(a.menu(), a.menu().title().replace("&", ""))
    for a in window.findChildren(QAction):
        if _keys(a) and id(a) not in seen and a.isVisible():
            seen.add(id(a))
            rows.append(("Canvas", _keys(a), a.text().replace("&", "")))
    rows += [("Mouse", k, v) for k, v in MOUSE]
    return rows


def ask_save_changes(parent: QWidget, title: str) -> str:
    """'save', 'discard' or 'cancel'."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved changes")
    box.setText(f"Save the changes to {title}?")
    box.setInformativeText("Your changes are lost if you don't save them.")
    box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                           | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    r = QMessageBox.StandardButton(box.exec())
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(r, "cancel")


def ask_save_runs(parent: QWidget, names: list[str]) -> str:
    """Quitting with trained runs not saved: 'save' (a bundle each), 'discard' or 'cancel'."""
    n = len(names)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved trained models")
    box.setText(f"Save the trained weights of {', '.join(names)} before quitting?"
                if n <= 3 else f"Save the trained weights of {n} runs before quitting?")
    box.setInformativeText(("Each run is saved as a .nbmodel bundle (model, weights and "
                            "curves). ") + ("Its" if n == 1 else "Their")
                           + " training is lost if you don't save.")
    box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                           | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    r = QMessageBox.StandardButton(box.exec())
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(r, "cancel")


def ask_restore(parent: QWidget, what: str) -> bool:
    r = QMessageBox.question(
        parent, "Restore unsaved work?",
        f"NetBuilder did not close cleanly last time. Restore the unsaved work?\n\n{what}",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes)
    return r == QMessageBox.StandardButton.Yes


def choose_open_path(parent: QWidget, start: Path) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Open model", str(start), FILE_FILTER)
    return path or None


def choose_dataset_files(parent: QWidget, title: str, name_filter: str, start: str) -> list[str]:
    """Files of a standard dataset the user downloaded elsewhere (several at once)."""
    paths, _ = QFileDialog.getOpenFileNames(parent, title, start, name_filter)
    return list(paths)


def choose_save_path(parent: QWidget, start: Path) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Save model", str(start), FILE_FILTER)
    return path or None


def shortcuts_html(window: QMainWindow) -> str:
    out, section = ["<table cellspacing='0' cellpadding='2'>"], None
    for menu, keys, what in shortcut_table(window):
        if menu != section:
            section = menu
            out.append(f"<tr><td colspan='2'><br><b>{html.escape(menu)}</b></td></tr>")
        out.append(f"<tr><td><code>{html.escape(keys)}</code>&nbsp;&nbsp;&nbsp;</td>"
                   f"<td>{html.escape(what)}</td></tr>")
    return "".join(out) + "</table>"


def show_shortcuts(window: QMainWindow) -> None:
    box = QMessageBox(window)
    box.setObjectName("shortcutsDialog")
    box.setWindowTitle("Keyboard shortcuts")
    box.setText(shortcuts_html(window))
    box.exec()


def about_html() -> str:
    return (f"<b>NetBuilder {html.escape(netbuilder.__version__)}</b><br>"
            "Design neural networks by hand, train them on your CPU and watch them learn."
            f"<br><br><small>PySide6 {PySide6.__version__} · Python "
            f"{platform.python_version()}</small>")


def about(parent: QWidget) -> None:
    QMessageBox.about(parent, "About NetBuilder", about_html())

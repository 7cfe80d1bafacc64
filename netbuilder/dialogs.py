"""The main window's modal dialogs, kept apart so tests can replace the window's hooks."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

FILE_FILTER = "NetBuilder models (*.json *.nbmodel);;ONNX models (*.onnx);;All files (*)"

SHORTCUTS = [
    ("Delete / Backspace", "delete the selection"), ("Ctrl+Z, Ctrl+Shift+Z", "undo, redo"),
    ("Ctrl+C, Ctrl+V, Ctrl+D", "copy, paste, duplicate"),
    ("Ctrl+N, Ctrl+O, Ctrl+S", "new, open, save"), ("F", "fit the graph"),
    ("Ctrl+L", "automatic layout"), ("F8", "go to the next problem"),
    ("Wheel", "zoom around the cursor"), ("Middle drag / Space+drag", "pan"),
    ("Drag output → input port", "connect; drag a wired input away to rewire"),
]


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


def choose_save_path(parent: QWidget, start: Path) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Save model", str(start), FILE_FILTER)
    return path or None


def show_shortcuts(parent: QWidget) -> None:
    html = "<table>" + "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>"
                               for k, v in SHORTCUTS) + "</table>"
    QMessageBox.information(parent, "Keyboard shortcuts", html)


def about(parent: QWidget) -> None:
    QMessageBox.about(parent, "About NetBuilder",
                      "<b>NetBuilder</b><br>Design neural networks by hand, train them on your "
                      "CPU and watch them learn.")

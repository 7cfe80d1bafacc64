"""Files from the window: New, Open (model files, trained bundles, ONNX), Open Recent,
Examples, Save and Save As, and asking before unsaved changes are lost (a mixin of
MainWindow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

import engine
from engine.errors import NetBuilderError

from .. import settings
from ..docklayout import BUILD
from ..document import Document

if TYPE_CHECKING:
    from ..mainwindow import MainWindow


class WindowFiles:
    """The File menu's commands."""

    def maybe_save(self: MainWindow) -> bool:
        """True if the current document may be replaced (saved or discarded)."""
        if not self.document.dirty:
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def load_graph(self: MainWindow, graph: engine.Graph, path: str | Path | None,
                   dirty: bool = False) -> None:
        """Show ``graph`` (history cleared)."""
        self.scene.clearSelection()
        self.undo_stack.clear()
        self.document.reset(graph, path, dirty)
        self.undo_stack.setClean()
        self._autosaved = -1
        self.layouts.set_mode(BUILD)
        QTimer.singleShot(0, self.view, self.frame_canvas)
        self.frame_canvas()
        self.document_replaced.emit()

    def new_file(self: MainWindow) -> bool:
        if not self.maybe_save():
            return False
        self.load_graph(engine.Graph("untitled"), None)
        self.show_status("New model: drag layers from the palette onto the canvas")
        return True

    def read_model(self: MainWindow, path: str | Path) -> engine.Graph | None:
        """Read a model file; on failure show one message and return None."""
        try:
            return Document.read(path)
        except NetBuilderError as exc:
            name = Path(path).name
            self.show_error("Cannot open model",
                            f"{name} could not be opened:\n\n{exc.message}\n\n"
                            "The model you were working on is unchanged.")
            return None

    def open_file(self: MainWindow, path: str | Path | None = None) -> bool:
        if path is None:
            path = self.choose_open_path()
            if not path:
                return False
        if Path(path).suffix.lower() == ".onnx":
            return self.exports.import_onnx(path)
        graph = self.read_model(path)
        if graph is None or not self.maybe_save():
            return False
        if Path(path).suffix.lower() == ".json":
            self.load_graph(graph, Path(path))
            self.show_status(f"Opened {Path(path).name}")
        else:  # a trained bundle: edit its model as a new file, the bundle stays as it is
            self.load_graph(graph, None)
            self.show_status(f"Opened the model of {Path(path).name}: Save As to keep changes")
        settings.add_recent_file(path)
        self.file_opened.emit(str(path))
        return True

    def open_example(self: MainWindow, path: str | Path) -> bool:
        """Open an example as a new, untitled model (saving asks where)."""
        graph = self.read_model(path)
        if graph is None or not self.maybe_save():
            return False
        self.load_graph(graph, None)
        self.show_status(f"Example '{short_name(graph.name or Path(path).stem)}': Save As to keep "
                         "your changes")
        return True

    def save(self: MainWindow) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self: MainWindow, path: str | Path | None = None) -> bool:
        if path is None:
            path = self.choose_save_path()
            if not path:
                return False
        return self._save_to(Path(path))

    def _save_to(self: MainWindow, path: Path) -> bool:
        try:
            target = self.document.save(path)
        except NetBuilderError as exc:
            self.show_error("Cannot save", exc.message)
            return False
        except OSError as exc:
            self.show_error("Cannot save", f"{path} could not be written: "
                                           f"{exc.strerror or exc}")
            return False
        self.undo_stack.setClean()
        settings.add_recent_file(target)
        self.recovery.clear_model()
        self.show_status(f"Saved {target}")
        return True

    def _fill_recent(self: MainWindow) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        for f in files:
            a = self.recent_menu.addAction(Path(f).name)
            a.setToolTip(f)
            a.setStatusTip(f)
            a.triggered.connect(lambda _=False, f=f: self.open_file(f))
        if not files:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", settings.clear_recent_files)

    def example_files(self: MainWindow) -> list[tuple[str, Path]]:
        """(the model's name, file) of every example; the name may be a whole sentence."""
        out = []
        for p in sorted(self.examples_dir.glob("*.json")):
            name = p.stem
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
                if isinstance(doc, dict) and isinstance(doc.get("name"), str) and doc["name"]:
                    name = doc["name"]
            except (OSError, ValueError):
                pass
            out.append((name, p))
        return out

    def _fill_examples(self: MainWindow) -> None:
        """Short names in the menu; the whole description as tooltip and status tip."""
        self.examples_menu.clear()
        self.examples_menu.setToolTipsVisible(True)
        examples = self.example_files()
        for name, p in examples:
            a = self.examples_menu.addAction(short_name(name))
            tip = f"{name} ({p.name})"
            a.setToolTip(tip)
            a.setStatusTip(tip)
            a.triggered.connect(lambda _=False, p=p: self.open_example(p))
        if not examples:
            self.examples_menu.addAction("(no examples found)").setEnabled(False)


def short_name(name: str, limit: int = 40) -> str:
    """A model's name fit for a title or a menu: what comes before a ": " explanation, cut
    at a word to ``limit`` characters."""
    head = name.split(": ", 1)[0].strip() or name.strip()
    if len(head) <= limit:
        return head
    cut = head[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:—- ")
    return (cut or head[:limit - 1]) + "…"

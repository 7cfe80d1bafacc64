"""File ▸ Export (ONNX, PyTorch script) and File ▸ Import ONNX for the main window.

Importing (File ▸ Import ONNX, or File ▸ Open on an .onnx file) shows the engine's import
report in an ``ImportReportDialog``: what each ONNX node became, what was folded, what was
refused and why.

The export carries the weights of the newest run of the model on the canvas when one has
them (and the model was not changed since); otherwise the freshly initialised weights, which
the status bar says."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QFileDialog, QMenu

import engine
from engine import NetBuilderError
from engine.text import plural

from .session.runs import RunRecord, model_key
from .settings import save_folder

if TYPE_CHECKING:
    from .mainwindow import MainWindow


class ExportActions:
    """Adds the export and import entries to a window's File menu."""

    def __init__(self, window: MainWindow, file_menu: QMenu, before: Any) -> None:
        self.w = window
        menu = QMenu("&Export", window)
        self.act_onnx = menu.addAction("As &ONNX…", lambda: self.export("onnx"))
        self.act_pytorch = menu.addAction("As &PyTorch script…", lambda: self.export("pytorch"))
        file_menu.insertMenu(before, menu)
        self.act_import = file_menu.addAction("&Import ONNX…", lambda: self.import_onnx())
        file_menu.insertAction(before, self.act_import)
        file_menu.insertSeparator(before)
        self.choose_path = self._choose_path
        self.report_dialog: Any = None  # the last import report's dialog

    def _choose_path(self, fmt: str) -> str | None:
        filt = "ONNX model (*.onnx)" if fmt == "onnx" else "Python script (*.py)"
        stem = self.w.document.graph.name.replace(" ", "_") or "model"
        start = save_folder(self.w.document.path) / f"{stem}.{'onnx' if fmt == 'onnx' else 'py'}"
        path, _ = QFileDialog.getSaveFileName(self.w, "Export model", str(start), filt)
        return path or None

    def trained_run(self) -> RunRecord | None:
        """The newest run of exactly this model that has weights."""
        key = model_key(self.w.document.graph)
        runs = [r for r in self.w.training.store.runs if r.weights is not None and r.model_key == key]
        return runs[-1] if runs else None

    def model(self) -> tuple[engine.Network, str]:
        net = engine.compile(self.w.document.graph)
        run = self.trained_run()
        if run is None:
            return net, "untrained (freshly initialised) weights"
        net.load_state_dict(run.weights)
        return net, f"the weights of {run.name}"

    def export(self, fmt: str, path: str | Path | None = None) -> Path | None:
        """Write the model on the canvas as ``fmt`` ("onnx" or "pytorch"); None if refused."""
        from engine.export import export_onnx, export_pytorch

        if path is None:
            path = self.choose_path(fmt)
            if not path:
                return None
        try:
            net, which = self.model()
            if fmt == "onnx":
                report = export_onnx(net, path)
                out = Path(report["path"])
            else:
                report = export_pytorch(net, path)
                out = Path(report["script"])
        except NetBuilderError as exc:
            self.w.show_error("Cannot export", exc.message)
            return None
        except OSError as exc:
            self.w.show_error("Cannot export", f"{path}: {exc.strerror or exc}")
            return None
        self.w.show_status(f"Exported {out.name} with {which}")
        return out

    def import_onnx(self, path: str | Path | None = None) -> bool:
        """Open an ONNX file as a new model; its weights become a run, ready to export. The
        import report is shown either way (``self.report_dialog``)."""
        from engine.export import import_onnx_report

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.w, "Import ONNX",
                                                  str(save_folder(self.w.document.path)),
                                                  "ONNX model (*.onnx)")
            if not path:
                return False
        report = import_onnx_report(path)
        if not report.ok:
            if getattr(self.w, "smoke_test", None) is not None:  # --quit-after: to stderr
                self.w.show_error("Cannot import", report.text())
            else:
                self.show_report(report)
            return False
        if not self.w.maybe_save():
            return False
        graph, state = report.graph, report.state
        assert graph is not None and state is not None
        self.w.load_graph(graph, None)
        store = self.w.training.store
        run = RunRecord(store.next_number(), graph.name, model_key(graph), graph.copy(), {},
                        status="imported", weights=state, source=Path(path))
        run.message = f"weights imported from {Path(path).name}"
        store.add(run)
        self.w.show_status(f"Imported {Path(path).name}: {plural(len(graph.nodes), 'node')} with their "
                           "weights (Export or save a bundle from Runs to keep them)")
        self.show_report(report)
        return True

    def show_report(self, report: Any) -> None:
        """The import report in a window-modal dialog that does not block (the model is
        already on the canvas behind it)."""
        from .import_report import ImportReportDialog

        if self.report_dialog is not None:  # the previous report goes
            self.report_dialog.close()
            self.report_dialog.deleteLater()
        self.report_dialog = ImportReportDialog(report, self.w)
        self.report_dialog.open()

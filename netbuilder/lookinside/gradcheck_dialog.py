"""The dialog of Check Gradients: one node's float64 finite-difference check
(``engine.nodecheck``), the worst relative error per input and parameter, pass or fail.

The check runs in a ``GradcheckThread`` on its own copy of the network, so the window stays
live (and a training run goes on) while it works; the dialog shows its progress and a Cancel
button until the report arrives."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

import engine
from engine.errors import NetBuilderError
from engine.nodecheck import CheckCancelledError, NodeCheck, check_node

from ..canvas import theme

PASS_COLOR = "#1E9E5A"


def tensor_meaning(name: str) -> str:
    if name.startswith("x") and name[1:].isdigit():
        return f"gradient of input {name[1:]}"
    return f"gradient of parameter '{name}'"


class GradcheckThread(QThread):
    """Runs ``check_node(net, node)`` off the GUI thread; ``net`` must be its own copy.
    ``progressed(done, total)`` as it goes, ``done(report | error text | None)`` at the end
    (None: cancelled)."""

    progressed = Signal(int, int)
    done = Signal(object)

    def __init__(self, net: engine.Network, node: str, parent: Any = None) -> None:
        super().__init__(parent)
        self.net, self.node = net, node
        self.cancel = False

    def run(self) -> None:
        try:
            result: Any = check_node(self.net, self.node, progress=self.progressed.emit,
                                     cancelled=lambda: self.cancel)
        except CheckCancelledError:
            result = None
        except NetBuilderError as e:
            result = e.message
        self.done.emit(result)


class GradcheckDialog(QDialog):
    """Shows a ``NodeCheck``: a verdict line and a row per tensor. Built with ``report``
    None while the check runs (a progress bar and Cancel), then ``set_report``."""

    cancel_requested = Signal()

    def __init__(self, report: NodeCheck | None, source: str, parent: QWidget | None = None,
                 node: str = "") -> None:
        super().__init__(parent)
        self.report: NodeCheck | None = None
        self.node = report.node if report is not None else node
        self.setObjectName("gradcheckDialog")
        self.setWindowTitle(f"Gradient check · {self.node}")
        self.verdict = QLabel()
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setFormat("%v of %m perturbed forwards")
        self.table = QTreeWidget()
        self.table.setObjectName("gradcheckTable")
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["Tensor", "What", "Worst rel. error", "Result"])
        how = QLabel(f"Float64 central differences (ε = 1e-6) of the node alone, in the "
                     f"model's current state ({source}), on the inputs a random batch brings "
                     f"it; at most 200 sampled entries per tensor. A training run is not "
                     f"touched: the check runs on a copy, in the background.")
        how.setObjectName("dim")
        how.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.verdict)
        lay.addWidget(self.progress)
        lay.addWidget(self.table, 1)
        lay.addWidget(how)
        lay.addWidget(self.buttons)
        self.resize(560, 300)
        if report is not None:
            self.set_report(report)
        else:
            self.verdict.setText(f"Checking the gradients of <b>{self.node}</b>…")

    @property
    def running(self) -> bool:
        return self.report is None and not self.progress.isHidden()

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def reject(self) -> None:
        if self.running:
            self.cancel_requested.emit()
            self.set_failed("Cancelled: no verdict.")
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        """The title bar's close button cancels a check under way and closes at once (the
        Cancel button stays to stop a check and still read why)."""
        if self.running:
            self.cancel_requested.emit()
            self.set_failed("Cancelled: no verdict.")
        super().closeEvent(event)

    def set_failed(self, text: str) -> None:
        """The check could not finish (``text`` says why): no table, a Close button."""
        self.progress.hide()
        self.verdict.setText(f"<span style='color:{theme.ERROR}'>{text}</span>")
        self._closable()

    def _closable(self) -> None:
        self.buttons.setStandardButtons(QDialogButtonBox.StandardButton.Close)

    def set_report(self, report: NodeCheck) -> None:
        """Show the verdict and a row per tensor."""
        self.report = report
        self.progress.hide()
        self._closable()
        if not report.errors:
            text, color = (f"<b>{report.node}</b> ({report.type_name}) has no gradient to "
                           "check: nothing flows into it and it has no parameters."), theme.TEXT
        elif report.passed:
            text, color = (f"<b>PASS</b> · {report.node} ({report.type_name}): every gradient "
                           f"matches central differences (worst relative error "
                           f"{report.worst:.1e} &lt; {report.tol:.0e})."), PASS_COLOR
        else:
            bad = ", ".join(tensor_meaning(n) for n in report.failing())
            text, color = (f"<b>FAIL</b> · {report.node} ({report.type_name}): {bad} "
                           f"disagree{'s' if len(report.failing()) == 1 else ''} with central "
                           f"differences (worst relative error {report.worst:.1e}, tolerance "
                           f"{report.tol:.0e}). The layer's backward is wrong."), theme.ERROR
        self.verdict.setText(f"<span style='color:{color}'>{text}</span>")
        self.table.clear()
        for name, err in report.errors.items():
            ok = err < report.tol
            it = QTreeWidgetItem([name, tensor_meaning(name), f"{err:.2e}",
                                  "pass" if ok else "FAIL"])
            it.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            it.setForeground(3, QBrush(QColor(PASS_COLOR if ok else theme.ERROR)))
            self.table.addTopLevelItem(it)
        for c in range(4):
            self.table.resizeColumnToContents(c)

    def results(self) -> dict[str, str]:
        """Tensor name -> "pass" / "FAIL", as the table shows them."""
        return {self.table.topLevelItem(i).text(0): self.table.topLevelItem(i).text(3)
                for i in range(self.table.topLevelItemCount())}

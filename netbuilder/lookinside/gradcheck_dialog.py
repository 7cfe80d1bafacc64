"""The dialog of Check Gradients: one node's float64 finite-difference check
(``engine.nodecheck``), the worst relative error per input and parameter, pass or fail."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.nodecheck import NodeCheck

from ..canvas import theme

PASS_COLOR = "#1E9E5A"


def tensor_meaning(name: str) -> str:
    if name.startswith("x") and name[1:].isdigit():
        return f"gradient of input {name[1:]}"
    return f"gradient of parameter '{name}'"


class GradcheckDialog(QDialog):
    """Shows a ``NodeCheck``: a verdict line and a row per tensor."""

    def __init__(self, report: NodeCheck, source: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setObjectName("gradcheckDialog")
        self.setWindowTitle(f"Gradient check · {report.node}")
        self.verdict = QLabel()
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
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
        self.table = QTreeWidget()
        self.table.setObjectName("gradcheckTable")
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["Tensor", "What", "Worst rel. error", "Result"])
        for name, err in report.errors.items():
            ok = err < report.tol
            it = QTreeWidgetItem([name, tensor_meaning(name), f"{err:.2e}",
                                  "pass" if ok else "FAIL"])
            it.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            it.setForeground(3, QBrush(QColor(PASS_COLOR if ok else theme.ERROR)))
            self.table.addTopLevelItem(it)
        for c in range(4):
            self.table.resizeColumnToContents(c)
        how = QLabel(f"Float64 central differences (ε = 1e-6) of the node alone, in the "
                     f"model's current state ({source}), on the inputs a random batch brings "
                     f"it; at most 200 sampled entries per tensor. A training run is not "
                     f"touched: the check runs on a copy.")
        how.setObjectName("dim")
        how.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.verdict)
        lay.addWidget(self.table, 1)
        lay.addWidget(how)
        lay.addWidget(buttons)
        self.resize(560, 300)

    def results(self) -> dict[str, str]:
        """Tensor name -> "pass" / "FAIL", as the table shows them."""
        return {self.table.topLevelItem(i).text(0): self.table.topLevelItem(i).text(3)
                for i in range(self.table.topLevelItemCount())}

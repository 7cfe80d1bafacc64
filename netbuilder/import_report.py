"""The dialog File ▸ Open / Import ONNX shows after reading an .onnx file: the engine's
``ImportReport`` (what each ONNX node became, what was folded or rewritten, what was refused
and why), laid out for reading. It does not block: the imported model is already on the
canvas behind it."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.export import ImportReport

# Section title -> (colour of its heading, what it means, for the reader)
SECTIONS = {
    "Refused": ("#b3261e", "NetBuilder has no layer for these; the file was not imported."),
    "Mapped": ("#1f5fa8", "Each ONNX node and the NetBuilder node it became."),
    "Folded and rewritten": ("#3b7d3b", "Exporter arithmetic computed on import, and forms "
                                        "rewritten into the ones the layers read."),
}


def _mapped_table(report: ImportReport) -> str:
    """Mapped as a table: ONNX node | NetBuilder node(s)."""
    rows = ["<table cellspacing='0' cellpadding='2'><tr><th align='left'>ONNX node</th>"
            "<th></th><th align='left'>NetBuilder node</th></tr>"]
    for m in report.mapped:
        if m.nodes:
            made = ", ".join(f"<b>{html.escape(t)}</b> {html.escape(nid)}" for nid, t in m.nodes)
        elif m.part_of:
            made = f"<i>part of the layer for {html.escape(m.part_of)}</i>"
        else:
            made = "<i>no layer of its own (moves or views data)</i>"
        rows.append(f"<tr><td><b>{html.escape(m.op)}</b> {html.escape(m.name)}</td>"
                    f"<td>&nbsp;→&nbsp;</td><td>{made}</td></tr>")
    return "".join(rows) + "</table>"


def report_html(report: ImportReport) -> str:
    """The report's sections as HTML (headings, a line per entry; Mapped as a table)."""
    out = []
    for title, lines in report.sections():
        colour, what = SECTIONS.get(title, ("#000000", ""))
        out.append(f"<h3 style='color:{colour}; margin-bottom:2px'>{html.escape(title)} "
                   f"<span style='color:#666; font-weight:normal'>({len(lines)})</span></h3>")
        out.append(f"<p style='color:#555; margin-top:0'>{html.escape(what)}</p>")
        if title == "Mapped":
            out.append(_mapped_table(report))
        else:
            out.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in lines) + "</ul>")
    return "".join(out)


class ImportReportDialog(QDialog):
    """Shows one ImportReport: a headline, then the sections in a scrolling view."""

    def __init__(self, report: ImportReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setObjectName("importReportDialog")
        self.setWindowTitle(f"Import ONNX: {report.name}")
        lay = QVBoxLayout(self)
        self.headline = QLabel(report.headline())
        self.headline.setObjectName("importHeadline")
        self.headline.setWordWrap(True)
        font = self.headline.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.headline.setFont(font)
        lay.addWidget(self.headline)
        if report.ok:
            hint = QLabel("The model is on the canvas; its weights are a run in the Runs panel "
                          "(export it, or save it as a bundle, to keep them).")
        else:
            hint = QLabel("The model you were working on is unchanged.")
        hint.setWordWrap(True)
        self.hint = hint
        lay.addWidget(hint)
        self.body = QTextBrowser()
        self.body.setObjectName("importReport")
        self.body.setOpenLinks(False)
        self.body.setHtml(report_html(report))
        lay.addWidget(self.body, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.resize(760, 520)

    def text(self) -> str:
        """What the user reads: the headline, the line under it and the report's body."""
        return f"{self.headline.text()}\n{self.hint.text()}\n\n{self.body.toPlainText()}"

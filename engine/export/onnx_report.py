"""What an ONNX import did, for the person who asked for it: each ONNX node and the
NetBuilder node(s) it became, what the rewrite pass folded or rewrote, and what was refused
and why. Qt-free: the app shows ``ImportReport.sections()`` in a dialog, and the text is the
same wherever it is shown (``ImportReport.text()``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import NetBuilderError
from ..graph import Graph
from ..text import plural
from .onnx_import import import_with_importer
from .onnx_import_ops import Mapped


@dataclass
class ImportReport:
    """The outcome of ``import_onnx_report``: ``graph`` and ``state`` (None when refused),
    ``mapped`` node by node, ``notes`` (one line per fold or rewrite) and ``refused``
    (the reasons; empty when the import succeeded)."""

    source: str
    graph: Graph | None = None
    state: dict[str, np.ndarray] | None = None
    onnx_nodes: int = 0
    mapped: list[Mapped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.graph is not None and not self.refused

    @property
    def name(self) -> str:
        return os.path.basename(self.source) or self.source

    def headline(self) -> str:
        """One sentence: what came in and what it became (or that it was refused)."""
        if not self.ok:
            return f"{self.name} could not be imported."
        assert self.graph is not None and self.state is not None
        weights = sum(int(np.size(a)) for a in self.state.values())
        return (f"{self.name}: {plural(self.onnx_nodes, 'ONNX node')} became "
                f"{plural(len(self.graph.nodes), 'NetBuilder node')} with "
                f"{weights:,} weight{'' if weights == 1 else 's'}.")

    def sections(self) -> list[tuple[str, list[str]]]:
        """(title, lines) for Refused, Folded and rewritten, and Mapped (the longest, last),
        empty ones left out."""
        out: list[tuple[str, list[str]]] = []
        if self.refused:
            out.append(("Refused", list(self.refused)))
        if self.notes:
            out.append(("Folded and rewritten", list(self.notes)))
        if self.mapped:
            out.append(("Mapped", [m.line() for m in self.mapped]))
        return out

    def text(self) -> str:
        parts = [self.headline()]
        for title, lines in self.sections():
            parts.append("\n".join([f"{title}:", *(f"  {s}" for s in lines)]))
        return "\n\n".join(parts)


def import_onnx_report(source: Any, name: str | None = None) -> ImportReport:
    """Import ``source`` (a path, bytes or ModelProto) and say what happened. Never raises a
    NetBuilderError: a refusal is in ``report.refused`` (the model is then None)."""
    label = os.fspath(source) if isinstance(source, str | os.PathLike) else "model"
    report = ImportReport(label)
    try:
        graph, state, importer = import_with_importer(source, name)
    except NetBuilderError as exc:  # the dialog names the file already: not again per line
        msg = exc.message
        report.refused.append(msg[len(label) + 2:] if msg.startswith(f"{label}: ") else msg)
        return report
    report.graph, report.state = graph, state
    report.onnx_nodes = len(importer.model.graph.node)
    report.mapped = list(importer.mapped)
    report.notes = list(importer.notes)
    return report


__all__ = ["ImportReport", "Mapped", "import_onnx_report"]

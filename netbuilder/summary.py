"""The model summary panel: one row per layer (output shape, parameters, multiply-adds) and
the totals, like Keras' ``model.summary()``, kept live."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

import engine
from engine.graph import fmt_bytes
from engine.train_settings import TrainSettings

from .analysis import Analysis, fmt_count, fmt_shape
from .canvas import theme
from .icons import layer_icon

DEFAULT_BATCH = TrainSettings().batch_size  # what training uses when the file says nothing


def batch_size_of(graph: engine.Graph) -> int:
    """The batch size training will use: the model's setting, the engine's default when it
    has none (or an unreadable one), 0 for the whole training part at once."""
    b = graph.training.get("batch_size", DEFAULT_BATCH) if isinstance(graph.training, dict) \
        else DEFAULT_BATCH
    if isinstance(b, str) and b.lower() in ("all", "full"):
        return 0
    return b if isinstance(b, int) and not isinstance(b, bool) and b >= 0 else DEFAULT_BATCH


def activations_text(an: Analysis, batch: int) -> str:
    """'3.1 MB activations (batch 32)'; per sample for full-batch training (batch 0)."""
    if batch == 0:
        return f"{fmt_bytes(an.activation_bytes(1))} activations per sample (full batch)"
    return f"{fmt_bytes(an.activation_bytes(batch))} activations (batch {batch})"


def summary_text(an: Analysis, batch: int) -> str:
    """'61.7 k params · 429 k MACs/sample · 3.1 MB activations (batch 32)'."""
    approx = "" if an.complete else "≥ "
    return (f"{approx}{fmt_count(an.total_params)} params · {approx}{fmt_count(an.total_macs)} "
            f"MACs/sample · {activations_text(an, batch)}")


class SummaryPanel(QWidget):
    """Layer table + totals. ``node_clicked(id)`` when a row is clicked."""

    node_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTreeWidget()
        self.table.setObjectName("summaryTable")
        self.table.setHeaderLabels(["Node", "Output", "Params", "MACs", "Type"])
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setUniformRowHeights(True)
        self.totals = QLabel()
        self.totals.setObjectName("totals")
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.table)
        lay.addWidget(self.totals)
        self.table.itemClicked.connect(lambda it, _c: self.node_clicked.emit(it.text(0)))

    def update_from(self, graph: engine.Graph, an: Analysis) -> None:
        self.table.setUpdatesEnabled(False)
        self.table.clear()
        try:
            order = graph.topological_order()
        except engine.NetBuilderError:
            order = list(graph.nodes)
        red = QBrush(QColor(theme.ERROR))
        for nid in order:
            info = an.nodes.get(nid)
            if info is None:
                continue
            it = QTreeWidgetItem([nid, fmt_shape(info.out_shape),
                                  "" if info.params is None else f"{info.params:,}",
                                  "" if info.macs is None else fmt_count(info.macs), info.type])
            it.setIcon(0, layer_icon(info.type, info.category, 16))
            for c in (2, 3):
                it.setTextAlignment(c, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if info.error is not None:
                for c in range(5):
                    it.setForeground(c, red)
                it.setToolTip(0, info.error.message)
            self.table.addTopLevelItem(it)
        for c in range(5):
            self.table.resizeColumnToContents(c)
        self.table.setUpdatesEnabled(True)
        batch = batch_size_of(graph)
        self.totals.setText(
            f"<b>{an.total_params:,}</b> trainable parameters "
            f"({fmt_bytes(4 * an.total_params)})<br>"
            f"<b>{fmt_count(an.total_macs)}</b> multiply-adds per sample<br>"
            + (f"<b>{fmt_bytes(an.activation_bytes(batch))}</b> activations per batch of {batch} "
               if batch else f"<b>{fmt_bytes(an.activation_bytes(1))}</b> activations per "
               "sample (full batch) ")
            + "(forward, float32)"
            + ("" if an.complete else "<br><i>Totals leave out layers whose shape is unknown.</i>"))

"""The Runs panel: every training run of the session with its settings and result; tick runs
to overlay their curves, save a run's trained weights as a bundle, export its curves as CSV,
or put its settings back into the model."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QGridLayout,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..monitor.common import run_color
from ..session.runs import RunRecord, RunsStore

COLUMNS = ("Run", "Status", "Settings", "Loss", "Val acc")


class RunsPanel(QWidget):
    """List of runs; ``run_selected`` when the user picks one to show."""

    run_selected = Signal(object)  # RunRecord
    save_requested = Signal(object)
    csv_requested = Signal(object)
    reuse_requested = Signal(object)

    def __init__(self, store: RunsStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 4)
        lay.setSpacing(4)
        self.tree = QTreeWidget()
        self.tree.setObjectName("runsTable")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setToolTip("Tick runs to draw their curves (dashed) behind the current one")
        for i, w in enumerate((70, 80, 230, 60, 60)):
            self.tree.setColumnWidth(i, w)
        lay.addWidget(self.tree, 1)
        row = QGridLayout()  # two by two: the panel fits a narrow column
        row.setContentsMargins(6, 0, 6, 0)
        row.setSpacing(4)
        self.save_button = QPushButton("Save Trained Model…")
        self.save_button.setToolTip("Save the model with this run's weights and curves as a "
                                    ".nbmodel bundle (open it again with File ▸ Open)")
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setToolTip("The run's loss, accuracy and learning rate per batch")
        self.reuse_button = QPushButton("Use Settings")
        self.reuse_button.setToolTip("Put this run's training settings back into the model")
        self.remove_button = QPushButton("Remove")
        for i, b in enumerate((self.save_button, self.csv_button, self.reuse_button,
                               self.remove_button)):
            row.addWidget(b, i // 2, i % 2)
        lay.addLayout(row)
        self.items: dict[int, QTreeWidgetItem] = {}
        self._filling = False
        store.added.connect(self._add)
        store.changed.connect(self._update)
        store.removed.connect(self._remove)
        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.save_button.clicked.connect(lambda: self._emit(self.save_requested))
        self.csv_button.clicked.connect(lambda: self._emit(self.csv_requested))
        self.reuse_button.clicked.connect(lambda: self._emit(self.reuse_requested))
        self.remove_button.clicked.connect(self._remove_current)
        self._update_buttons()

    def current(self) -> RunRecord | None:
        it = self.tree.currentItem()
        return self.store.by_number(it.data(0, Qt.ItemDataRole.UserRole)) if it else None

    def select(self, run: RunRecord) -> None:
        it = self.items.get(run.number)
        if it is not None:
            self.tree.setCurrentItem(it)

    def _emit(self, signal) -> None:
        run = self.current()
        if run is not None:
            signal.emit(run)

    def _add(self, run: RunRecord) -> None:
        self._filling = True
        it = QTreeWidgetItem()
        it.setData(0, Qt.ItemDataRole.UserRole, run.number)
        it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        it.setCheckState(0, Qt.CheckState.Unchecked)
        it.setForeground(0, QBrush(QColor(run_color(run.number))))
        self.tree.addTopLevelItem(it)
        self.items[run.number] = it
        self._filling = False
        self._update(run)
        self.tree.setCurrentItem(it)

    def _update(self, run: RunRecord) -> None:
        it = self.items.get(run.number)
        if it is None:
            return
        self._filling = True
        m = run.last_metrics()
        loss = m.get("val_loss") if m.get("val_loss") is not None else m.get("train_loss")
        acc = m.get("val_accuracy")
        it.setText(0, run.name)
        it.setText(1, run.status.replace("_", " "))
        it.setText(2, run.describe_settings())
        it.setText(3, "" if loss is None else f"{loss:.4g}")
        it.setText(4, "" if acc is None else f"{100 * acc:.1f} %" + (
            "" if m.get("val_iou") is None else f" · IoU {m['val_iou']:.3f}"))
        tip = f"{run.name} of {run.model_name}: {run.describe_settings()}"
        if run.message:
            tip += f"\n{run.message}"
        for c in range(len(COLUMNS)):
            it.setToolTip(c, tip)
        it.setForeground(1, QBrush(QColor("#B3261E" if run.status == "failed" else "#3C4350")))
        self._filling = False
        self._update_buttons()

    def _remove(self, run: RunRecord) -> None:
        it = self.items.pop(run.number, None)
        if it is not None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(it))

    def _remove_current(self) -> None:
        run = self.current()
        if run is not None:
            self.store.remove(run)

    def _on_current(self, *_args) -> None:
        self._update_buttons()
        run = self.current()
        if run is not None and not self._filling:
            self.run_selected.emit(run)

    def _on_item_changed(self, it: QTreeWidgetItem, col: int) -> None:
        if self._filling or col != 0:
            return
        number = it.data(0, Qt.ItemDataRole.UserRole)
        self.store.set_overlay(number, it.checkState(0) == Qt.CheckState.Checked)

    def _update_buttons(self) -> None:
        run = self.current()
        has = run is not None
        self.save_button.setEnabled(has and run.weights is not None and not run.active)
        self.csv_button.setEnabled(has and len(run.steps) > 0)
        self.reuse_button.setEnabled(has and not run.active)
        self.remove_button.setEnabled(has and not run.active)

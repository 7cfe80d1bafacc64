"""The Runs panel: every training run of the session as a tree (a run branched from another
run's checkpoint is its child) with its settings, result and graph changes against its
parent; tick runs to overlay their curves, save a run's trained weights as a bundle, export
its curves as CSV, put its settings back into the model, branch a new run from any epoch
a run kept, or replay a run to check its weights bit for bit (the context menu)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor
from PySide6.QtWidgets import (
    QGridLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..monitor.common import run_color
from ..session.runs import RunRecord, RunsStore

COLUMNS = ("Run", "Status", "Settings", "Loss", "Val acc", "Changes")
WIDTHS = (104, 80, 230, 60, 60, 260)


def ask_epoch(parent: QWidget, run: RunRecord) -> int | None:
    """Which of ``run``'s kept checkpoints to branch from (None: cancelled)."""
    epochs = [str(e) for e in sorted(run.checkpoints)]
    text, ok = QInputDialog.getItem(
        parent, "Branch from here", f"Start a new run from {run.name}'s weights and optimizer "
        "state after epoch:", epochs, len(epochs) - 1, False)
    return int(text) if ok and text else None


class RunsPanel(QWidget):
    """The tree of runs; ``run_selected`` when the user picks one to show."""

    run_selected = Signal(object)  # RunRecord
    save_requested = Signal(object)
    csv_requested = Signal(object)
    reuse_requested = Signal(object)
    branch_requested = Signal(object, int)  # run, epoch of its checkpoint
    replay_requested = Signal(object)

    def __init__(self, store: RunsStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        # asked when branching (tests replace it): (panel, run) -> epoch or None
        self.ask_epoch: Callable[[QWidget, RunRecord], int | None] = ask_epoch
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 4)
        lay.setSpacing(4)
        self.tree = QTreeWidget()
        self.tree.setObjectName("runsTable")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(14)
        self.tree.setAlternatingRowColors(True)
        self.tree.setToolTip("Tick runs to draw their curves (dashed) behind the current one; "
                             "a branch sits under the run it started from. Right-click a run "
                             "to branch from one of its epochs or to replay it")
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        for i, w in enumerate(WIDTHS):
            self.tree.setColumnWidth(i, w)
        lay.addWidget(self.tree, 1)
        self.details = QLabel()
        self.details.setObjectName("runDetails")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setContentsMargins(6, 0, 6, 0)
        lay.addWidget(self.details)
        row = QGridLayout()  # two by two: the panel fits a narrow column
        row.setContentsMargins(6, 0, 6, 0)
        row.setSpacing(4)
        self.save_button = QPushButton("Save Trained Model…")
        self.save_button.setToolTip("Save the model with this run's weights and curves (and "
                                    "the runs it branched from) as a .nbmodel bundle")
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
        self.tree.customContextMenuRequested.connect(self._show_menu)
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

    # ----- the context menu ----------------------------------------------------------------
    def context_menu(self, run: RunRecord) -> QMenu:
        """The menu of ``run``: Branch from here…, Replay, and the buttons' commands."""
        menu = QMenu(self)
        branch = QAction("Branch from Here…", menu)
        branch.setObjectName("branchAction")
        kept = sorted(run.checkpoints)
        branch.setEnabled(bool(kept) and not run.active)
        branch.setToolTip("Start a new run of the model as it is now from this run's weights "
                          "and optimizer state after one of its epochs" if kept else
                          "This run kept no checkpoints")
        branch.triggered.connect(lambda: self.branch_from(run))
        menu.addAction(branch)
        replay = QAction("Replay", menu)
        replay.setObjectName("replayAction")
        replay.setEnabled(run.replay is not None and run.weights is not None and not run.active)
        replay.triggered.connect(lambda: self.replay_requested.emit(run))
        menu.addAction(replay)
        menu.addSeparator()
        for text, sig, ok in (("Save Trained Model…", self.save_requested,
                               run.weights is not None and not run.active),
                              ("Export CSV…", self.csv_requested, len(run.steps) > 0),
                              ("Use Settings", self.reuse_requested, not run.active)):
            act = QAction(text, menu)
            act.setEnabled(ok)
            act.triggered.connect(lambda _=False, s=sig: s.emit(run))
            menu.addAction(act)
        menu.setToolTipsVisible(True)
        return menu

    def _show_menu(self, pos: QPoint) -> None:
        it = self.tree.itemAt(pos)
        if it is None:
            return
        self.tree.setCurrentItem(it)
        run = self.current()
        if run is not None:
            self.context_menu(run).exec(self.tree.viewport().mapToGlobal(pos))

    def branch_from(self, run: RunRecord) -> None:
        """Ask which kept epoch, then ``branch_requested(run, epoch)``."""
        if not run.checkpoints:
            return
        epoch = self.ask_epoch(self, run)
        if epoch is not None:
            self.branch_requested.emit(run, epoch)

    # ----- rows -------------------------------------------------------------------------------
    def _add(self, run: RunRecord) -> None:
        self._filling = True
        it = QTreeWidgetItem()
        it.setData(0, Qt.ItemDataRole.UserRole, run.number)
        it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        it.setCheckState(0, Qt.CheckState.Unchecked)
        it.setForeground(0, QBrush(QColor(run_color(run.number))))
        parent = self.items.get(run.parent_run.number) if run.parent_run is not None else None
        if parent is not None and self.store.by_number(run.parent_run.number) is run.parent_run:
            parent.addChild(it)
            parent.setExpanded(True)
        else:
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
        diff = "; ".join(t for t in (run.provenance_text(), run.diff_text()) if t)
        it.setText(0, run.name)
        it.setText(1, run.status.replace("_", " "))
        it.setText(2, run.describe_settings())
        it.setText(3, "" if loss is None else f"{loss:.4g}")
        it.setText(4, "" if acc is None else f"{100 * acc:.1f} %" + (
            "" if m.get("val_iou") is None else f" · IoU {m['val_iou']:.3f}"))
        it.setText(5, diff)
        tip = f"{run.name} of {run.model_name}: {run.describe_settings()}"
        if diff:
            tip += f"\n{diff}"
        if run.message:
            tip += f"\n{run.message}"
        if run.replay_result:
            tip += f"\n{run.replay_result}"
        for c in range(len(COLUMNS)):
            it.setToolTip(c, tip)
        it.setForeground(1, QBrush(QColor("#B3261E" if run.status == "failed" else "#3C4350")))
        self._filling = False
        self._update_buttons()
        if run is self.current():
            self._show_details(run)

    def _show_details(self, run: RunRecord | None) -> None:
        if run is None:
            self.details.setText("")
            return
        lines = [f"<b>{run.name}</b>: {run.describe_settings()}"]
        m = run.last_metrics()
        if m:
            parts = [f"epoch {m['epoch']}"]
            if m.get("train_loss") is not None:
                parts.append(f"loss {m['train_loss']:.4g}")
            if m.get("val_accuracy") is not None:
                parts.append(f"val acc {100 * m['val_accuracy']:.1f} %")
            lines.append("final: " + ", ".join(parts))
        if run.provenance_text():
            lines.append(run.provenance_text())
        if run.diff_text():
            lines.append(run.diff_text())
        if run.checkpoints:
            lines.append("checkpoints: epochs " + ", ".join(map(str, sorted(run.checkpoints))))
        if run.replay_result:
            lines.append(run.replay_result)
        self.details.setText("<br>".join(lines))

    def _remove(self, run: RunRecord) -> None:
        it = self.items.pop(run.number, None)
        if it is None:
            return
        holder = it.parent()
        kids = it.takeChildren()  # a removed run's branches move up a level
        if holder is not None:
            holder.removeChild(it)
            holder.addChildren(kids)
        else:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(it))
            self.tree.addTopLevelItems(kids)

    def _remove_current(self) -> None:
        run = self.current()
        if run is not None:
            self.store.remove(run)

    def _on_current(self, *_args) -> None:
        self._update_buttons()
        run = self.current()
        self._show_details(run)
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

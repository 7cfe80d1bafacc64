"""Editing a paused run and freezing nodes, in the window: the model unlocks while a run is
paused (Resume hands the edited graph to the session, which keeps the weights it can); the
canvas marks which nodes kept their weights and which start fresh; the Inspector's
Trainable box and learning-rate multiplier; Freeze, Thaw and Start as Identity on the
right-click menu and the Edit menu; what freezing saves in the Model Summary. The logic
lives in ``netbuilder.session`` (the carry-over) and ``netbuilder.freezing`` (Qt-free)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QCheckBox, QFormLayout, QFrame, QLabel

from engine.carry import ADDED, KEPT, REINITIALISED, CarryReport
from engine.errors import NetBuilderError
from engine.text import plural

from .canvas import marks
from .document import Change
from .freezing import freeze_command, graph_cost, has_weights, identity_command, lr_mult_command
from .inspector import SciSpinBox
from .monitor.presenter import LOCK_MESSAGE
from .session.messages import EditOutcome
from .session.runs import RunRecord
from .session.state import RunState

if TYPE_CHECKING:
    from .mainwindow import MainWindow

MAX_LR_MULT = 1e6


def carry_marks(report: CarryReport) -> dict[str, tuple[str, str]]:
    """The canvas marks of a carry-over: nodes with weights that kept them, and those that
    start fresh (changed or new), with the report's reason."""
    out = {}
    for n in report.nodes:
        if not n.weights:
            continue
        if n.fate == KEPT:
            out[n.node_id] = (marks.KEPT, n.reason)
        elif n.fate in (REINITIALISED, ADDED):
            out[n.node_id] = (marks.FRESH, n.reason)
    return out


def carry_text(report: CarryReport) -> str:
    """'Resumed with the edited model: 4 nodes kept their weights; f5 starts fresh (units
    120→240)'."""
    kept = report.kept
    fresh = [n for n in report.nodes if n.weights and n.fate in (REINITIALISED, ADDED)]
    text = f"Edited model: {plural(len(kept), 'node')} kept their weights"
    if fresh:
        text += "; fresh weights for " + ", ".join(
            f"{n.node_id} ({n.reason})" if n.reason else n.node_id for n in fresh)
    return text


class TrainingFields(QFrame):
    """The Inspector's Trainable box and learning-rate multiplier of the shown node."""

    def __init__(self, edits: RunEdits) -> None:
        super().__init__()
        self.edits = edits
        self.setObjectName("nodeTraining")
        form = QFormLayout(self)
        form.setContentsMargins(0, 4, 0, 0)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.trainable = QCheckBox("Trainable")
        self.trainable.setObjectName("trainable")
        self.trainable.setToolTip("Untick to freeze this node: its weights stay as they are and "
                                  "no weight gradient is computed for it (applies on Resume "
                                  "while a run is paused)")
        self.trainable.toggled.connect(self._toggled)
        self.lr_mult = SciSpinBox()
        self.lr_mult.setObjectName("lr_mult")
        self.lr_mult.setRange(0.0, MAX_LR_MULT)
        self.lr_mult.setSingleStep(0.1)
        self.lr_mult.setKeyboardTracking(False)
        self.lr_mult.setToolTip("This node learns at the run's learning rate times this "
                                "(0 to 1e6; 1: the run's rate)")
        self.lr_mult.valueChanged.connect(self._mult_changed)
        self.note = QLabel()
        self.note.setObjectName("dim")
        self.note.setWordWrap(True)
        form.addRow("Training", self.trainable)
        form.addRow("LR multiplier", self.lr_mult)
        form.addRow(self.note)

    def load(self, node_id: str | None) -> None:
        """Show ``node_id``'s training keys (hidden for a node without weights)."""
        doc = self.edits.w.document
        ok = node_id is not None and has_weights(doc, node_id)
        self.setVisible(ok)
        if not ok:
            return
        node = doc.graph.nodes[node_id]
        for w in (self.trainable, self.lr_mult):
            w.blockSignals(True)
        self.trainable.setChecked(node.trainable)
        self.lr_mult.setValue(node.lr_mult)
        self.lr_mult.setEnabled(node.trainable)
        for w in (self.trainable, self.lr_mult):
            w.blockSignals(False)
        self.note.setText("Frozen: its weights stay put." if not node.trainable else "")
        self.note.setVisible(not node.trainable)

    def _toggled(self, on: bool) -> None:
        nid = self.edits.w.inspector.node_id
        if nid is not None:
            self.edits.push(freeze_command(self.edits.w.document, [nid], on))
        self.load(self.edits.w.inspector.node_id)

    def _mult_changed(self, value: float) -> None:
        nid = self.edits.w.inspector.node_id
        if nid is not None:
            self.edits.push(lr_mult_command(self.edits.w.document, nid, float(value)))
        self.load(self.edits.w.inspector.node_id)


class RunEdits:
    """The window's side of editing paused runs and freezing nodes (see the module note)."""

    def __init__(self, window: MainWindow) -> None:
        self.w = window
        self.session = window.training.session
        self._showed_inspector = False  # the Inspector was shown for a pause
        m = window.menuBar()

        def act(text: str, slot: Any, tip: str) -> QAction:
            a = QAction(text, window)
            a.setStatusTip(tip)
            a.setToolTip(tip)
            a.triggered.connect(slot)
            return a
        self.act_freeze = act("&Freeze", lambda: self.freeze_selection(False),
                              "Keep the selected nodes' weights as they are while training")
        self.act_thaw = act("T&haw", lambda: self.freeze_selection(True),
                            "Let the selected nodes' weights train again")
        self.act_identity = act("Start as &Identity", self.identity_selection,
                                "Make the selected Dense or Conv2D pass its input through "
                                "unchanged at first (inserted into a trained chain, the loss "
                                "does not jump)")
        self.act_dismiss = act("Clear &Weight Marks", self.clear_marks,
                               "Remove the marks of which nodes kept their weights")
        acts = [self.act_freeze, self.act_thaw, self.act_identity, self.act_dismiss]
        edit = next((a.menu() for a in m.actions()
                     if a.menu() is not None and a.text() == "&Edit"), None)
        if edit is not None:
            edit.addSeparator()
            edit.addActions(acts)
        window.view.context_actions += [None, *acts]
        tc = window.training
        self.act_apply = act("&Apply Edits, Stay Paused", tc.apply_edits,
                             "Swap the model edited while paused into the run now: the "
                             "canvas marks which nodes keep their weights; Resume goes on")
        self.act_apply.setEnabled(False)
        tc.menu.insertAction(tc.act_stop, self.act_apply)

        self.fields = TrainingFields(self)
        window.inspector.add_node_widget(self.fields)
        self.saving = QLabel()
        self.saving.setObjectName("frozenCost")
        self.saving.setWordWrap(True)
        window.summary.layout().addWidget(self.saving)

        window.selection_changed.connect(self._on_selection)
        window.document.subscribe(self._on_doc_change)
        window.scene.analysed.connect(lambda _an: self._show_cost())
        self.session.state_changed.connect(self._on_state)
        self.session.started.connect(lambda _run: self._on_state(None, self.session.state))
        self.session.edited.connect(self._on_edited)
        self._on_selection(window.selected_node_ids())
        self._show_cost()

    # ----- commands ------------------------------------------------------------------------
    def push(self, cmd: Any) -> bool:
        """Push a command (None: nothing to do); a refusal goes to the status bar."""
        if cmd is None:
            return False
        try:
            self.w.push(cmd)
        except NetBuilderError as exc:
            self.w.show_status(exc.message, True)
            return False
        return True

    def freeze_selection(self, trainable: bool) -> bool:
        """Freeze (``trainable`` false) or thaw the selected nodes that have weights."""
        ids = self.w.selected_node_ids()
        cmd = freeze_command(self.w.document, ids, trainable)
        if cmd is None:
            self.w.show_status("Nothing to " + ("thaw" if trainable else "freeze") +
                               ": select nodes with weights", True)
            return False
        done = self.push(cmd)
        if done and self.session.state == RunState.PAUSED:
            self.w.show_status(f"{cmd.text}: applies when the run resumes")
        return done

    def identity_selection(self) -> bool:
        ids = self.w.selected_node_ids()
        if len(ids) != 1:
            self.w.show_status("Select one Dense or Conv2D to start as the identity", True)
            return False
        try:
            cmd = identity_command(self.w.document, ids[0])
        except NetBuilderError as exc:
            self.w.show_status(exc.message, True)
            return False
        return self.push(cmd)

    def clear_marks(self) -> None:
        self.w.scene.set_carry_marks({})

    # ----- following the window and the run ------------------------------------------------
    def _on_selection(self, ids: list[str]) -> None:
        self.fields.load(self.w.inspector.node_id)
        doc = self.w.document
        g = doc.graph
        ids = [n for n in ids if n in g.nodes]  # the scene may still hold a deleted card
        weighted = [n for n in ids if has_weights(doc, n)]
        self.act_freeze.setEnabled(any(g.nodes[n].trainable for n in weighted))
        self.act_thaw.setEnabled(any(not g.nodes[n].trainable for n in weighted))
        self.act_identity.setEnabled(len(ids) == 1 and g.nodes[ids[0]].type in
                                     ("Dense", "Conv2D"))
        self.act_dismiss.setEnabled(bool(self.w.scene.carry_marks()))

    def _on_doc_change(self, ch: Change) -> None:
        if ch.structure or ch.params or ch.renamed or ch.frozen or ch.reset:
            self.clear_marks()  # the next edit: the marks described the previous graph
        if ch.frozen or ch.reset or ch.structure:
            self._on_selection(self.w.selected_node_ids())
        if ch.frozen or ch.training:
            self._show_cost()

    def _show_cost(self) -> None:
        cost = graph_cost(self.w.document.graph)
        if cost is None:
            self.saving.setText("")
            return
        text = (f"<b>{cost.backward:,}</b> backward multiply-adds per sample "
                f"(forward {cost.forward:,})")
        if cost.frozen:
            full = cost.backward + cost.saved
            share = 100.0 * cost.saved / (cost.forward + full) if cost.forward + full else 0.0
            an = self.w.document.analysis
            held = sum(an.nodes[n].params or 0 for n in cost.frozen if n in an.nodes)
            text += (f"<br>Frozen {', '.join(cost.frozen)} ({held:,} parameters): saves "
                     f"<b>{cost.saved:,}</b> ({share:.0f} % of a training step)")
        self.saving.setText(text)

    def _on_state(self, _old: RunState | None, new: RunState) -> None:
        """The model unlocks while a run is paused; Resume applies the edits."""
        self.act_apply.setEnabled(new == RunState.PAUSED)
        dock = self.w.inspector_dock
        if new == RunState.PAUSED:
            self.w.set_edit_lock(None)
            if not dock.toggleViewAction().isChecked():  # stepped aside while it ran
                dock.show()
                self._showed_inspector = True
            return
        if new in (RunState.COMPILING, RunState.RUNNING, RunState.STOPPING):
            self.w.set_edit_lock(LOCK_MESSAGE)
        if self._showed_inspector:
            self._showed_inspector = False
            dock.hide()

    def _on_edited(self, run: RunRecord, out: EditOutcome) -> None:
        if self.session.detached:
            return
        scene = self.w.scene
        panel = self.w.training.panel
        word = "paused" if self.session.state == RunState.PAUSED else "resuming"
        panel.show_phase(f"{word} · " + ("the edited model is in" if out.ok else
                                        "the edit was refused"), out.step, run.total_steps)
        if out.ok:
            assert out.report is not None
            scene.set_carry_marks(carry_marks(out.report))
            self.w.training.presenter.set_model_nodes()
            self.w.show_status(carry_text(out.report))
        else:
            if out.node:
                scene.set_carry_marks({out.node: (marks.REFUSED, out.error)})
            self.w.training.presenter.show_refusal(
                f"The run cannot take the edited model: {out.error}. It is still paused "
                "on the model it had.", out.node)
        self.act_dismiss.setEnabled(bool(scene.carry_marks()))

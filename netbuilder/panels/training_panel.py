"""The Training panel: optimizer and its settings, learning rate and schedule, batch size,
epochs, seed, clipping, weight decay (read from and saved into the model's ``training``
section); Start, Pause / Resume, Stop and Step; progress with epoch, batch, samples/s and
ETA. While a run is active only the learning rate can change (effective at the next batch).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.optim import OPTIMIZERS
from engine.recorder import DEFAULT_BUDGET
from engine.threads import max_threads

from .. import settings
from ..document import Change
from .section import SciSpinBox, SectionWriter, scrolling_body

OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSProp",
                   "adagrad": "AdaGrad"}
DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001, "rmsprop": 0.001, "adagrad": 0.01}
EXTRA = {"momentum": ("sgd",), "nesterov": ("sgd",), "beta1": ("adam", "adamw"),
         "beta2": ("adam", "adamw"), "alpha": ("rmsprop",)}
EXTRA_DEFAULT = {"momentum": 0.0, "nesterov": False, "beta1": 0.9, "beta2": 0.999, "alpha": 0.99}


THREADS_KEY = "engine/threads"
# Any positive learning rate trains (a huge one diverges, and the run says where); the box
# takes up to a million so that a typo is not taken for a wish.
LR_RANGE = (1e-7, 1e6)


def threads_box() -> QComboBox:
    """CPU threads for training: auto, or a fixed count (a preference of this computer, kept
    in the application settings, not in the model)."""
    box = QComboBox()
    most = max_threads()
    box.addItem(f"auto ({most}; 1 when busy)" if most > 1 else "auto (1)", "auto")
    for n in range(1, most + 1):
        box.addItem(f"{n}", n)
    box.setToolTip("Threads for the engine's kernels. Auto uses every core and moves to one "
                   "thread while another program keeps a core busy; the results are the same "
                   "either way")
    saved = str(settings.get_value(THREADS_KEY, "auto"))
    i = box.findData(int(saved) if saved.isdigit() else saved)
    box.setCurrentIndex(max(0, i))
    return box


RECORD_KEY = "monitor/record_budget_mib"
RECORD_CHOICES = (0, 1, 2, 4, 8, 16, 32, 64)  # MiB; 0: no recording


def record_box() -> QComboBox:
    """The flight recording's budget per run (a preference of this computer, kept in the
    application settings): MiB of per-epoch snapshots the timeline can scrub back through."""
    box = QComboBox()
    for mib in RECORD_CHOICES:
        box.addItem(f"{mib} MiB" if mib else "off", mib)
    box.setToolTip("Bytes each run may keep for its per-epoch snapshots (filters, feature "
                   "maps, histograms, confusion, badges) that the timeline under the monitor "
                   "scrubs back through; over the budget, epochs in the middle are dropped. "
                   "Takes effect at the next Start")
    saved = str(settings.get_value(RECORD_KEY, DEFAULT_BUDGET // 2**20))
    i = box.findData(int(saved) if saved.isdigit() else -1)
    box.setCurrentIndex(i if i >= 0 else box.findData(DEFAULT_BUDGET // 2**20))
    return box


STEP_TIP = "Train exactly one batch (starts a paused run if none)"


def fmt_time(s: float) -> str:
    s = max(0, round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _spin(lo: int, hi: int, special: str = "", tip: str = "") -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setKeyboardTracking(False)
    if special:
        w.setSpecialValueText(special)
    w.setToolTip(tip)
    return w


def _dspin(lo: float, hi: float, step: float, decimals: int, tip: str = "",
           special: str = "") -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setDecimals(decimals)
    w.setKeyboardTracking(False)
    w.setToolTip(tip)
    if special:
        w.setSpecialValueText(special)
    return w


class TrainingPanel(QWidget):
    """Settings and controls of training; the controller connects the request signals."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    step_requested = Signal()
    live_lr_changed = Signal(float)

    def __init__(self, writer: SectionWriter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.writer = writer
        self.state = "idle"  # idle, starting, running, paused, stopping
        self._loading = False
        self._refusal = False  # the message says why Start was refused
        self.data_wait: str | None = None  # why Start waits for the data (a download)
        lay = scrolling_body(self)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        self.start_button = QPushButton("▶ Start")
        self.start_button.setToolTip("Train the model on the chosen data (F5)")
        self.pause_button = QPushButton("❚❚ Pause")
        self.pause_button.setToolTip("Pause after the current batch; Resume carries on")
        self.stop_button = QPushButton("■ Stop")
        self.stop_button.setToolTip("End the run after the current batch, keeping its weights")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip(STEP_TIP)
        for b in (self.start_button, self.pause_button, self.stop_button, self.step_button):
            b.setMinimumHeight(28)
            buttons.addWidget(b)
        self.start_button.setObjectName("startButton")
        self.start_button.setStyleSheet(
            "QPushButton#startButton:enabled { background: #1E9E5A; color: white; "
            "font-weight: bold; border: 1px solid #17804A; border-radius: 4px; padding: 3px 8px;}"
            "QPushButton#startButton:disabled { color: #9AA1AC; }")
        self.start_button.clicked.connect(self.start_requested)
        self.pause_button.clicked.connect(self._pause_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        self.step_button.clicked.connect(self.step_requested)
        lay.addLayout(buttons)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p %")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        lay.addWidget(self.progress)
        self.status = QLabel("Ready")
        self.status.setObjectName("trainingStatus")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #3C4350;")
        lay.addWidget(self.status)
        self.message = QLabel()
        self.message.setObjectName("trainingMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        lay.addWidget(self.message)
        self.init_from = QCheckBox()
        self.init_from.setObjectName("startFromWeights")
        self.init_from.setToolTip(
            "Fine-tune: the next run starts from the weights of the trained model you opened. "
            "Nodes whose ids and weight shapes are unchanged keep them (freeze them to keep them "
            "as they are); a new or reshaped node, such as a new head, starts fresh; the "
            "optimizer starts afresh. The run records where its weights came from.")
        self.init_from.hide()
        lay.addWidget(self.init_from)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(5)
        self.form = form
        self.optimizer = QComboBox()
        for key in OPTIMIZERS:
            self.optimizer.addItem(OPTIMIZER_NAMES.get(key, key), key)
        self.optimizer.setToolTip("How the weights follow their gradients")
        self.lr = SciSpinBox(*LR_RANGE)
        self.lr.setToolTip("Learning rate. While training, a change takes effect at the next "
                           "batch (and is not written into the model file)")
        self.lr.out_of_range = lambda v: self._refuse_value(
            "learning rate", v, LR_RANGE, self.lr.value())
        self.momentum = _dspin(0.0, 0.999, 0.05, 3, "Momentum: share of the last update "
                               "carried into the next (0 = plain SGD)")
        self.nesterov = QCheckBox("Nesterov momentum")
        self.beta1 = _dspin(0.0, 0.9999, 0.01, 4, "Adam β1: decay of the mean gradient")
        self.beta2 = _dspin(0.0, 0.99999, 0.001, 5, "Adam β2: decay of the squared gradient")
        self.alpha = _dspin(0.0, 0.9999, 0.01, 4, "RMSProp α: decay of the squared gradient")
        self.schedule = QComboBox()
        for key, text in (("none", "constant"), ("step", "step decay"), ("cosine", "cosine")):
            self.schedule.addItem(text, key)
        self.schedule.setToolTip("How the learning rate changes during the run")
        self.step_size = _spin(1, 100000, tip="Multiply the learning rate by γ every this "
                               "many epochs")
        self.step_size.setSuffix(" epochs")
        self.step_size.valueChanged.connect(  # "every 1 epoch", "every 5 epochs"
            lambda v: self.step_size.setSuffix(" epoch" if v == 1 else " epochs"))
        self.gamma = _dspin(0.0, 1.0, 0.05, 3, "Factor applied at each step")
        self.min_lr = SciSpinBox(1e-9, 1e3, zero_text="0")
        self.min_lr.setToolTip("Learning rate reached at the end of the run")
        self.batch = _spin(0, 1_000_000, "all (full batch)", "Samples per update; 0 = the "
                           "whole training part at once")
        self.epochs = _spin(1, 1_000_000, tip="Passes over the training part")
        self.seed = _spin(0, 2**31 - 1, tip="Seed of initial weights, shuffling, splits and "
                          "augmentation: the same seed repeats a run exactly")
        self.clip = SciSpinBox(1e-6, 1e6, zero_text="off")
        self.clip.setToolTip("Rescale the gradients when their global L2 norm exceeds this "
                             "(0 = off)")
        self.decay = SciSpinBox(1e-8, 10.0, zero_text="off")
        self.decay.setToolTip("L2 weight decay (decoupled for AdamW); 0 = off")
        for box, what in ((self.min_lr, "final learning rate"), (self.clip, "gradient clip"),
                          (self.decay, "weight decay")):
            box.out_of_range = lambda v, box=box, what=what: self._refuse_value(
                what, v, (0.0, box.maximum()), box.value())
        self.early = _spin(0, 100000, "off", "Stop after this many epochs without a better "
                           "validation loss")
        # short enough for the side column (with the longest label, "Recording budget"):
        # a wider field made the whole panel scroll sideways and hid the Stop button
        self.restore_best = QCheckBox("keep the best validation weights")
        self.restore_best.setToolTip("End a finished run with the weights of its epoch of "
                                     "best validation loss")
        self.threads = threads_box()
        rows = [("Optimizer", self.optimizer), ("Learning rate", self.lr),
                ("Momentum", self.momentum), ("", self.nesterov), ("β1", self.beta1),
                ("β2", self.beta2), ("α", self.alpha), ("Schedule", self.schedule),
                ("Step every", self.step_size), ("γ", self.gamma), ("Final lr", self.min_lr),
                ("Batch size", self.batch), ("Epochs", self.epochs), ("Seed", self.seed),
                ("Gradient clip", self.clip), ("Weight decay", self.decay),
                ("Early stopping", self.early), ("", self.restore_best),
                ("CPU threads", self.threads)]
        for label, w in rows:
            form.addRow(label, w)
        self.record_budget_box = record_box()
        self.record_used = QLabel()
        self.record_used.setObjectName("recordUsed")
        self.record_used.setWordWrap(True)
        record_row = QHBoxLayout()
        record_row.addWidget(self.record_budget_box)
        record_row.addWidget(self.record_used, 1)
        form.addRow("Recording budget", record_row)
        self.record_budget_box.activated.connect(lambda _i: settings.set_value(
            RECORD_KEY, str(self.record_budget_box.currentData())))
        lay.addLayout(form)
        self.data_note = QLabel()
        self.data_note.setWordWrap(True)
        self.data_note.setObjectName("dataNote")
        lay.addWidget(self.data_note)
        lay.addStretch(1)

        self.settings_widgets: list[QWidget] = [w for _, w in rows]
        self.optimizer.activated.connect(lambda _i: self._optimizer_changed())
        self.schedule.activated.connect(lambda _i: self._commit("schedule"))
        self.lr.valueChanged.connect(self._lr_changed)
        for w, key in ((self.momentum, "momentum"), (self.beta1, "beta1"), (self.beta2, "beta2"),
                       (self.alpha, "alpha")):
            w.valueChanged.connect(lambda _v, k=key: self._commit(k))
        self.nesterov.toggled.connect(lambda _v: self._commit("nesterov"))
        for w, key in ((self.step_size, "schedule"), (self.gamma, "schedule"),
                       (self.min_lr, "schedule"), (self.batch, "batch size"),
                       (self.epochs, "epochs"), (self.seed, "seed"), (self.clip, "clip_norm"),
                       (self.decay, "weight_decay"), (self.early, "early_stopping")):
            w.valueChanged.connect(lambda _v, k=key: self._commit(k))
        self.restore_best.toggled.connect(lambda _v: self._commit("restore_best"))
        self.threads.activated.connect(
            lambda _i: settings.set_value(THREADS_KEY, str(self.threads.currentData())))
        writer.doc.subscribe(self._on_doc_change)
        self.load()
        self.set_state("idle")

    # ----- the model's training section ----------------------------------------------------
    def _on_doc_change(self, ch: Change) -> None:
        if ch.reset:
            self.show_ready()
        elif self._refusal and (ch.affects_shapes or ch.training):
            self.show_message("")  # it was about the model or settings as they were
        if ch.training or ch.reset:
            self.load()

    def load(self) -> None:
        """Show the document's training section."""
        t = self.writer.section
        opt = t.get("optimizer", {"type": "sgd", "lr": 0.01})
        if isinstance(opt, str):
            opt = {"type": opt}
        kind = str(opt.get("type", "sgd")).lower()
        sched = t.get("schedule", "none")
        if isinstance(sched, str):
            sched = {"type": sched}
        self._loading = True
        try:
            i = self.optimizer.findData(kind)
            self.optimizer.setCurrentIndex(max(0, i))
            self.lr.setValue(float(opt.get("lr", DEFAULT_LR.get(kind, 0.01))))
            for key in EXTRA:
                w = getattr(self, key)
                v = opt.get(key, EXTRA_DEFAULT[key])
                if isinstance(w, QCheckBox):
                    w.setChecked(bool(v))
                else:
                    w.setValue(float(v))
            self.schedule.setCurrentIndex(max(0, self.schedule.findData(sched.get("type",
                                                                                   "none"))))
            self.step_size.setValue(int(sched.get("step_size", 10)))
            self.gamma.setValue(float(sched.get("gamma", 0.1)))
            self.min_lr.setValue(float(sched.get("min_lr", 0.0)))
            bs = t.get("batch_size", 32)
            self.batch.setValue(0 if isinstance(bs, str) else int(bs))
            self.epochs.setValue(int(t.get("epochs", 10)))
            self.seed.setValue(int(t.get("seed", 0)))
            self.clip.setValue(float(t.get("clip_norm", 0.0)))
            self.decay.setValue(float(t.get("weight_decay", 0.0)))
            self.early.setValue(int(t.get("early_stopping", 0)))
            self.restore_best.setChecked(bool(t.get("restore_best", True)))
        except (TypeError, ValueError):
            pass  # a hand-edited file with odd values: Start reports them precisely
        finally:
            self._loading = False
        self._show_rows()

    def _show_rows(self) -> None:
        kind = self.optimizer.currentData()
        for key, kinds in EXTRA.items():
            self.form.setRowVisible(getattr(self, key), kind in kinds)
        sched = self.schedule.currentData()
        self.form.setRowVisible(self.step_size, sched == "step")
        self.form.setRowVisible(self.gamma, sched == "step")
        self.form.setRowVisible(self.min_lr, sched == "cosine")

    def optimizer_section(self) -> dict[str, Any]:
        kind = str(self.optimizer.currentData())
        old = self.writer.section.get("optimizer", {})
        old = {"type": old} if isinstance(old, str) else dict(old or {})
        opt: dict[str, Any] = {"type": kind, "lr": float(self.lr.value())}
        for key, kinds in EXTRA.items():
            if kind not in kinds:
                continue
            w = getattr(self, key)
            v: Any = w.isChecked() if isinstance(w, QCheckBox) else float(w.value())
            if v != EXTRA_DEFAULT[key] or key in old:
                opt[key] = v
        for key in ("eps",):
            if key in old and old.get("type") == kind:
                opt[key] = old[key]
        return opt

    def schedule_section(self) -> Any:
        kind = self.schedule.currentData()
        if kind == "step":
            return {"type": "step", "step_size": self.step_size.value(),
                    "gamma": float(self.gamma.value())}
        if kind == "cosine":
            return {"type": "cosine", "min_lr": float(self.min_lr.value())} \
                if self.min_lr.value() else {"type": "cosine"}
        return "none"

    def _optimizer_changed(self) -> None:
        kind = self.optimizer.currentData()
        self._loading = True
        self.lr.setValue(DEFAULT_LR.get(kind, 0.01))
        self._loading = False
        self._commit("optimizer")

    def _lr_changed(self, value: float) -> None:
        if self._loading:
            return
        if self.state in ("running", "paused", "starting"):
            self.live_lr_changed.emit(float(value))
            return
        self._commit("learning rate")

    def _commit(self, what: str) -> None:
        if self._loading or self.state != "idle":
            return
        self._show_rows()
        self.writer.update(f"Set training {what}", optimizer=self.optimizer_section(),
                           schedule=self.schedule_section(), batch_size=self.batch.value(),
                           epochs=self.epochs.value(), seed=self.seed.value(),
                           clip_norm=float(self.clip.value()),
                           weight_decay=float(self.decay.value()),
                           early_stopping=self.early.value(),
                           restore_best=self.restore_best.isChecked())

    def _refuse_value(self, what: str, value: float, allowed: tuple[float, float],
                      kept: float) -> None:
        """A typed value the box cannot take: say so in the panel and the status bar."""
        text = (f"The {what} must be between {allowed[0]:g} and {allowed[1]:g}; {value:g} is "
                f"not, so it stays {kept:.3g}")
        self.show_refusal(text)
        self.writer.report(text, True)

    # ----- run state -----------------------------------------------------------------------
    def _pause_clicked(self) -> None:
        if self.state == "paused":
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def set_state(self, state: str) -> None:
        """idle, starting, running, paused or stopping: enables the right buttons."""
        self.state = state
        active = state != "idle"
        self._enable_start()
        self.pause_button.setEnabled(state in ("running", "paused", "starting"))
        self.pause_button.setText("▶ Resume" if state == "paused" else "❚❚ Pause")
        self.stop_button.setEnabled(state in ("running", "paused", "starting"))
        for w in self.settings_widgets:
            w.setEnabled(not active or w is self.lr)
        self.init_from.setEnabled(not active)
        if not active:
            self.load()

    def set_data_wait(self, reason: str | None) -> None:
        """Start (and Step) wait for the data while ``reason`` is given: disabled, the
        reason in their tooltips and in the status line."""
        self.data_wait = reason
        self._enable_start()

    def _enable_start(self) -> None:
        idle, wait = self.state == "idle", self.data_wait
        self.start_button.setEnabled(idle and not wait)
        self.step_button.setEnabled((idle and not wait) or self.state == "paused")
        self.start_button.setToolTip(f"Waiting for the data: {wait}" if wait and idle
                                     else "Train the model on the chosen data (F5)")
        self.step_button.setToolTip(f"Waiting for the data: {wait}" if wait and idle
                                    else STEP_TIP)
        if not idle:
            return
        if wait:
            self.status.setText(f"Waiting for the data: {wait}")
        elif self.status.text().startswith("Waiting for the data"):
            self.status.setText("Ready")

    def offer_weights(self, text: str | None) -> None:
        """Offer to start the next run from trained weights (``text`` names them: "digits.nbmodel,
        epoch 20"), ticked; None withdraws the offer."""
        self.init_from.setVisible(text is not None)
        self.init_from.setChecked(text is not None)
        self.init_from.setText(f"Start from the weights of {text}" if text else "")

    def start_from_weights(self) -> bool:
        """Whether the next run starts from the offered weights (``offer_weights``)."""
        return self.init_from.isChecked() and not self.init_from.isHidden()

    def record_budget(self) -> int | None:
        """Bytes of flight recording for the next run, or None for none."""
        mib = int(self.record_budget_box.currentData())
        return mib * 2**20 if mib else None

    def show_recording_used(self, text: str, error: bool = False) -> None:
        """What the shown run's recording takes ("used 2.3 MiB by Run 1 …"), or why not."""
        self.record_used.setText(text)
        self.record_used.setStyleSheet("color: #B3261E;" if error else "")

    def threads_choice(self) -> int | str:
        """``"auto"`` or a fixed number of CPU threads."""
        return self.threads.currentData()

    def show_phase(self, text: str, done: int = 0, total: int = 0) -> None:
        """A phase before the first batch (preparing data, compiling kernels): a busy bar, or
        ``done`` of ``total`` steps when known."""
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        else:
            self.progress.setRange(0, 0)
        self.status.setText(text)

    def show_stopping(self) -> None:
        """Stop was asked for: the run ends after the batch it is training."""
        self.status.setText("stopping after this batch…")

    def show_progress(self, ev: Any, total_steps: int) -> None:
        """From a BatchEvent."""
        if self.progress.maximum() != total_steps:
            self.progress.setRange(0, max(1, total_steps))
        self.progress.setValue(ev.step)
        sps = f"{ev.samples_per_s:,.0f} samples/s" if ev.samples_per_s else ""
        threads = getattr(ev, "threads", 0)
        parts = [f"epoch {ev.epoch}/{ev.epochs}", f"batch {ev.batch}/{ev.batches}", sps,
                 f"ETA {fmt_time(ev.eta)}", f"lr {ev.lr:.3g}",
                 f"{threads} thread{'s' if threads > 1 else ''}" if threads else ""]
        if self.state == "paused":
            parts.insert(0, "paused")
        self.status.setText(" · ".join(p for p in parts if p))

    def show_ready(self) -> None:
        """Nothing run yet for this model: no message, an empty bar, "Ready"."""
        self.show_message("")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText("Ready")
        self._enable_start()  # or why it waits for the data

    def show_refusal(self, text: str) -> None:
        """Why Start was refused; it goes away with the next edit of the model or settings."""
        self.show_message(text, True)
        self._refusal = True

    def show_message(self, text: str, error: bool = False) -> None:
        self._refusal = False
        if not text:
            self.message.hide()
            return
        self.message.setText(text)
        self.message.setStyleSheet(
            "color: #B3261E; background: #FDECEA; border: 1px solid #F4C7C3; border-radius: "
            "5px; padding: 6px;" if error else
            "color: #1E6B45; background: #E8F5EE; border: 1px solid #BFE3CF; border-radius: "
            "5px; padding: 6px;")
        self.message.show()

    def finish_progress(self, text: str) -> None:
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.status.setText(text)

    def set_data_note(self, text: str, error: bool) -> None:
        self.data_note.setText(text)
        self.data_note.setStyleSheet("color: #B3261E;" if error else "color: #5E6673;")

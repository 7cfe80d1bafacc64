"""Training runs of this session: each keeps its settings, its curves, its final weights and
how it ended, so runs of one model can be compared, exported and saved as bundles. No Qt:
the store announces changes through plain ``Event``s."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine.bundle import load_bundle, save_bundle
from engine.errors import NetBuilderError
from engine.lineage import graph_diff, new_run_id
from engine.optim import make_optimizer
from engine.recorder import Recording, read_recording
from engine.replay import Checkpoint, ReplayLog
from engine.text import plural
from engine.train_settings import TrainSettings

from .events import Event


def model_key(graph: engine.Graph) -> str:
    """Identifies a model's architecture (nodes, params, wires; not positions or training)."""
    d = graph.to_dict()
    core = {"nodes": d.get("nodes"), "edges": d.get("edges")}
    return hashlib.sha1(json.dumps(core, sort_keys=True).encode()).hexdigest()[:16]


class Series:
    """A growing float series kept in a numpy buffer (amortised appends)."""

    def __init__(self, dtype: Any = np.float64) -> None:
        self._a = np.empty(256, dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        need = self.n + len(values)
        if need > len(self._a):
            grown = np.empty(max(need, 2 * len(self._a)), self._a.dtype)
            grown[:self.n] = self._a[:self.n]
            self._a = grown
        self._a[self.n:need] = values
        self.n = need

    @property
    def values(self) -> np.ndarray:
        return self._a[:self.n]

    def __len__(self) -> int:
        return self.n


@dataclass
class EpochRow:
    epoch: int
    step: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    time: float
    train_iou: float | None = None  # mean IoU over classes (segmentation runs)
    val_iou: float | None = None


@dataclass
class RunRecord:
    """One training run (live, finished, or read back from a bundle)."""

    number: int
    model_name: str
    model_key: str
    graph: engine.Graph
    settings: dict[str, Any]
    started: float = field(default_factory=time.time)
    status: str = "starting"
    message: str = ""
    error_node: str | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    normalizer: dict[str, Any] | None = None
    total_steps: int = 0
    steps: Series = field(default_factory=lambda: Series(np.int64))
    losses: Series = field(default_factory=Series)
    lrs: Series = field(default_factory=Series)
    accuracies: Series = field(default_factory=Series)
    epochs: list[EpochRow] = field(default_factory=list)
    grad_norm_steps: list[int] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    weights: dict[str, np.ndarray] | None = None
    history: dict[str, Any] | None = None
    source: Path | None = None  # the file its weights came from (a bundle, an ONNX import)
    saved_to: Path | None = None  # the bundle it was last saved as
    edits: list[Any] = field(default_factory=list)  # EditOutcomes: graphs edited while paused
    recording: Recording | None = None  # per-epoch snapshots of the monitor (the timeline)
    recording_error: str = ""  # why it has no (or an incomplete) recording
    # its place in the tree of runs and what replays it (engine.replay, session.lineage)
    run_id: str = field(default_factory=new_run_id)
    parent_run: RunRecord | None = None  # the run it branched from (None: a root)
    parent_id: str | None = None  # that run's id (kept when the parent is not loaded)
    parent_epoch: int | None = None  # the parent's checkpoint it started from
    parent_step: int = 0  # the parent's step count there: its curves continue from it
    replay: ReplayLog | None = None
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    start: Checkpoint | None = None
    replay_result: str = ""  # what the last replay found, in words
    weights_from: dict[str, Any] | None = None  # fine-tuning: {"file", "run_id", "epoch"}

    @property
    def step_offset(self) -> int:
        """Steps its parents trained before it branched (0 for a root): where its curves
        start when drawn with theirs."""
        return sum(r.parent_step for r in [self, *self.lineage()])

    @property
    def epoch_offset(self) -> int:
        """Epochs its parents trained before it branched (0 for a root)."""
        return sum(r.parent_epoch or 0 for r in [self, *self.lineage()])

    def lineage(self) -> list[RunRecord]:
        """Its ancestors, the root first."""
        out: list[RunRecord] = []
        r = self.parent_run
        while r is not None and r not in out:
            out.insert(0, r)
            r = r.parent_run
        return out

    def provenance_text(self) -> str:
        """``"weights from digits.nbmodel (run 2026…, epoch 8)"`` for a run that started
        from a trained bundle's weights (fine-tuning), else ""."""
        w = self.weights_from
        if not w:
            return ""
        where = [f"run {w['run_id']}"] if w.get("run_id") else []
        if w.get("epoch") is not None:
            where.append(f"epoch {w['epoch']}")
        name = Path(w["file"]).name if w.get("file") else "a bundle"
        return f"weights from {name}" + (f" ({', '.join(where)})" if where else "")

    def diff_text(self) -> str:
        """``"from Run 1 at epoch 1: changed f5: units 84→120"`` for a branch, else ""."""
        parent = self.parent_run
        if self.parent_epoch is None and parent is None:
            return ""
        name = parent.name if parent is not None else f"run {self.parent_id or '?'}"
        where = f"from {name} at epoch {self.parent_epoch}"
        if parent is None:
            return where
        return f"{where}: {graph_diff(parent.graph, self.graph).summary()}"

    @property
    def unsaved(self) -> bool:
        """Trained weights that exist nowhere but in this session."""
        return self.weights is not None and not self.active and self.source is None \
            and self.saved_to is None

    @property
    def name(self) -> str:
        return f"Run {self.number}"

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "paused")

    def describe_settings(self) -> str:
        """'adam, lr 0.01, batch 32, 30 epochs': the settings the run trained with, the
        engine's defaults filled in."""
        s = self.settings
        opt = s.get("optimizer") or {}
        if isinstance(opt, str):
            opt = {"type": opt}
        try:
            lr = f"{make_optimizer(opt).lr:g}"
        except NetBuilderError:
            lr = str(opt.get("lr", "?"))
        parts = [str(opt.get("type", "sgd")), f"lr {lr}"]
        sched = s.get("schedule")
        if isinstance(sched, dict):
            parts.append(str(sched.get("type", "")))
        elif sched and sched != "none":
            parts.append(str(sched))
        defaults = TrainSettings()
        parts.append(f"batch {s.get('batch_size', defaults.batch_size)}")
        parts.append(plural(s.get("epochs", defaults.epochs), "epoch"))
        if s.get("seed"):
            parts.append(f"seed {s['seed']}")
        ds = s.get("dataset")
        name = ds.get("name") or ds.get("path") if isinstance(ds, dict) else ds
        if name:
            parts.append(f"on {name}")
        return ", ".join(parts)

    def last_metrics(self) -> dict[str, float | None]:
        if not self.epochs:
            return {}
        e = self.epochs[-1]
        return {"epoch": e.epoch, "train_loss": e.train_loss, "train_accuracy": e.train_accuracy,
                "val_loss": e.val_loss, "val_accuracy": e.val_accuracy,
                "train_iou": e.train_iou, "val_iou": e.val_iou}

    def add_grad_norms(self, step: int, norms: dict[str, float]) -> None:
        k = len(self.grad_norm_steps)
        self.grad_norm_steps.append(step)
        for nid, v in norms.items():
            series = self.grad_norms.setdefault(nid, [math.nan] * k)
            series.append(v)
        for series in self.grad_norms.values():
            if len(series) < k + 1:
                series.append(math.nan)

    def history_json(self) -> dict[str, Any]:
        """engine.training.History's layout, plus per-batch lr and accuracy."""
        h: dict[str, Any] = dict(self.history or {})
        if not h:
            h = {"epoch": [e.epoch for e in self.epochs],
                 "train_loss": [e.train_loss for e in self.epochs],
                 "train_accuracy": [e.train_accuracy for e in self.epochs],
                 "val_loss": [e.val_loss for e in self.epochs],
                 "val_accuracy": [e.val_accuracy for e in self.epochs],
                 "lr": [e.lr for e in self.epochs], "time": [e.time for e in self.epochs],
                 "heads": {}, "train_iou": [e.train_iou for e in self.epochs],
                 "val_iou": [e.val_iou for e in self.epochs]}
        h["batch_step"] = [int(v) for v in self.steps.values]
        h["batch_loss"] = [float(v) for v in self.losses.values]
        h["batch_lr"] = [float(v) for v in self.lrs.values]
        h["batch_accuracy"] = [None if math.isnan(v) else float(v) for v in self.accuracies.values]
        h["epoch_step"] = [e.step for e in self.epochs]
        return h

    # ----- files ---------------------------------------------------------------------------
    def save_bundle(self, path: str | Path) -> Path:
        """Write the model with this run's weights and curves as a ``.nbmodel`` bundle."""
        if self.weights is None:
            raise engine.BundleError(f"{self.name} has no trained weights to save")
        from .lineage import lineage_manifest, tree_of

        graph = self.graph.copy()
        graph.training = dict(self.settings)
        meta: dict[str, Any] = {}
        m = self.last_metrics()
        rec = self.recording
        if rec is not None and rec.epochs:
            meta["recorder"] = rec.describe()
        members = dict(tree_of(self))
        if rec is not None and "recorder" in meta:
            members.update(rec.members())
        return save_bundle(path, graph, self.weights, self.history_json(), extra=members,
                           **meta, preprocess=self.normalizer, dataset=self.dataset,
                           training=self.settings, metrics={"status": self.status, **m},
                           run={"status": self.status, "message": self.message,
                                "steps": len(self.steps), **lineage_manifest(self)})

    def write_csv(self, path: str | Path, per: str = "batch") -> Path:
        """The curves as CSV: one row per batch (``per="batch"``) or per epoch."""
        p = Path(path)
        with open(p, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if per == "batch":
                w.writerow(["step", "loss", "accuracy", "lr"])
                for s, loss, a, lr in zip(self.steps.values, self.losses.values,
                                          self.accuracies.values, self.lrs.values):
                    w.writerow([int(s), f"{loss:.8g}", "" if math.isnan(a) else f"{a:.6g}",
                                f"{lr:.8g}"])
            else:
                w.writerow(["epoch", "step", "train_loss", "train_accuracy", "val_loss",
                            "val_accuracy", "lr", "time_s"])
                for e in self.epochs:
                    w.writerow([e.epoch, e.step, _num(e.train_loss), _num(e.train_accuracy),
                                _num(e.val_loss), _num(e.val_accuracy), _num(e.lr),
                                _num(e.time)])
        return p


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.8g}"


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def run_from_bundle(path: str | Path, number: int, store: RunsStore | None = None
                    ) -> RunRecord:
    """A finished run read back from a bundle (its curves, settings and weights, its replay
    log and checkpoints); the ancestors the bundle keeps join ``store`` first, linked."""
    from .lineage import attach_tree

    b = load_bundle(path)
    man = b.manifest
    settings = man.get("training") if isinstance(man.get("training"), dict) else \
        dict(b.graph.training)
    run = RunRecord(number, b.graph.name, model_key(b.graph), b.graph, settings or {},
                    status=str(_as_dict(man.get("run")).get("status", "saved")),
                    dataset=man.get("dataset") if isinstance(man.get("dataset"), dict) else {},
                    normalizer=b.preprocess, weights=b.weights, source=Path(path))
    run.message = f"opened from {Path(path).name}"
    try:
        run.recording = read_recording(path)
    except engine.BundleError as exc:  # the weights and curves are still worth showing
        run.recording_error = exc.message
    fill_curves(run, b.history or {})
    wf = _as_dict(man.get("run")).get("weights_from")
    if isinstance(wf, dict):
        run.weights_from = {k: wf.get(k) for k in ("file", "run_id", "epoch")}
    rid = _as_dict(man.get("run")).get("run_id")
    attach_tree(run, path, store, rid if isinstance(rid, str) else None)
    return run


def fill_curves(run: RunRecord, h: dict[str, Any]) -> None:
    """Put a bundle's history (``RunRecord.history_json``'s layout) into ``run``."""
    run.history = {k: v for k, v in h.items() if not k.startswith("batch_") and k != "epoch_step"}
    bs = _floats(h.get("batch_step"))
    if bs is not None:
        n = len(bs)
        run.steps.extend(bs.astype(np.int64))
        for key, series in (("batch_loss", run.losses), ("batch_lr", run.lrs),
                            ("batch_accuracy", run.accuracies)):
            vals = _floats(h.get(key))
            series.extend(vals[:n] if vals is not None and len(vals) >= n else np.full(n, np.nan))
    epochs = h.get("epoch") or []
    steps = h.get("epoch_step") or []
    for i, ep in enumerate(epochs):
        def at(key: str, i: int = i) -> Any:
            vals = h.get(key) or []
            return vals[i] if i < len(vals) else None
        step = steps[i] if i < len(steps) else (i + 1) * max(1, len(run.steps) //
                                                              max(1, len(epochs)))
        run.epochs.append(EpochRow(int(ep), int(step), at("train_loss"), at("train_accuracy"),
                                   at("val_loss"), at("val_accuracy"), at("lr") or 0.0,
                                   at("time") or 0.0, at("train_iou"), at("val_iou")))
    run.total_steps = len(run.steps)


def _floats(v: Any) -> np.ndarray | None:
    if not isinstance(v, list):
        return None
    return np.array([math.nan if x is None else x for x in v], np.float64)


class RunsStore:
    """The session's runs, newest last. Events: ``added(run)``, ``changed(run)`` (status,
    metrics), ``removed(run)``, ``overlay_changed()``."""

    def __init__(self) -> None:
        self.added = Event("run added")
        self.changed = Event("run changed")
        self.removed = Event("run removed")
        self.overlay_changed = Event("overlay changed")
        self.runs: list[RunRecord] = []
        self.overlay: set[int] = set()  # numbers of runs drawn behind the current one
        self._next = 1

    def next_number(self) -> int:
        n = self._next
        self._next += 1
        return n

    def add(self, run: RunRecord) -> RunRecord:
        self.runs.append(run)
        self.added.emit(run)
        return run

    def notify_changed(self, run: RunRecord) -> None:
        """Announce that ``run``'s status or metrics changed (``changed``)."""
        self.changed.emit(run)

    def remove(self, run: RunRecord) -> None:
        if run in self.runs and not run.active:
            self.runs.remove(run)
            self.overlay.discard(run.number)
            self.removed.emit(run)

    def set_overlay(self, number: int, on: bool) -> None:
        if on:
            self.overlay.add(number)
        else:
            self.overlay.discard(number)
        self.overlay_changed.emit()

    def by_run_id(self, run_id: str | None) -> RunRecord | None:
        return next((r for r in self.runs if r.run_id == run_id), None) if run_id else None

    def by_number(self, number: int) -> RunRecord | None:
        return next((r for r in self.runs if r.number == number), None)

    def latest(self) -> RunRecord | None:
        return self.runs[-1] if self.runs else None

    def overlaid(self, key: str | None = None, shown: RunRecord | None = None
                 ) -> list[RunRecord]:
        """The ticked runs of the model ``key`` (any model when None), and every ticked run
        of the tree of ``shown`` (a branch may have another graph), then ``shown``'s
        ancestors: its curves continue theirs."""
        family = set() if shown is None else {id(r) for r in [shown, *shown.lineage()]}
        out = [r for r in self.runs if r.number in self.overlay
               and (key is None or r.model_key == key or id(r) in family)]
        if shown is not None:
            out += [r for r in shown.lineage() if r in self.runs and r not in out]
        return out

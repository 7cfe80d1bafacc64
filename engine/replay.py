"""Bit-exact replay of a training run, and the per-epoch checkpoints a run can branch from.

    tape = RunTape(trainer, graph, start=None)      # records while the trainer runs
    ... tape.edit(edited_graph) between two batches (carry-over, engine.carry)
    log = tape.log                                  # JSON-ready: what replay needs
    tape.checkpoints[3]                             # weights + optimizer state after epoch 3
    net, trainer = replay(log, dataset, start)      # train again the same way
    mismatch = compare(expected_weights, net.state_dict())   # None: bit for bit

A ``ReplayLog`` holds the model the run started with, its training settings (the seed, the
data, the optimizer...), the kernel thread count, a digest of the prepared training data,
a digest of each epoch's data order, the graph edits (at which step and epoch, and the graph
after each), the learning-rate changes made while it ran (at which step), the number of
steps trained and, for a branch, the checkpoint it started from
(its run id, epoch and step; the arrays themselves travel beside the log). Replay compiles
the same graph with the same seed, restores the start checkpoint, runs the same number of
threads without the thread tuner, applies each edit before the step it came before, and
stops where the run stopped. The data order is checked as it goes, so a replay on other
data says so rather than reporting a weight that differs.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .carry import CarryReport, carry_over
from .data import Dataset, load_dataset
from .errors import BundleError, TrainingError, short_repr
from .graph import Graph
from .network import Network
from .optim import Optimizer
from .threads import get_num_threads, max_threads, set_num_threads
from .train_settings import TrainSettings
from .training import BatchEvent, EpochEvent, Trainer

DEFAULT_CHECKPOINT_BUDGET = 64 * 2**20  # bytes of per-epoch checkpoints kept for one run
LOG_VERSION = 1


def digest_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """A short sha256 over the names, dtypes, shapes and bytes of ``arrays`` (sorted)."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _order_digest(order: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(order, np.int64).tobytes()).hexdigest()[:16]


# ----- checkpoints ----------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A run's state after an epoch: ``weights`` (every parameter and buffer by full name),
    the optimizer's ``opt_state`` (slot name -> key -> array, as ``Optimizer.state``) and
    step count ``opt_t``; ``step`` counts the run's batches so far."""

    epoch: int
    step: int
    weights: dict[str, np.ndarray]
    opt_state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    opt_t: int = 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.weights.values()) + sum(
            a.nbytes for slots in self.opt_state.values() for a in slots.values())

    @classmethod
    def of(cls, trainer: Trainer) -> Checkpoint:
        """Copies of the trainer's network and optimizer state now."""
        opt = trainer.opt
        return cls(trainer.epoch, trainer.step, trainer.net.state_dict(),
                   {s: {k: v.copy() for k, v in d.items()} for s, d in opt.state.items()},
                   int(opt.t))

    def restore(self, net: Network, opt: Optimizer) -> None:
        """Put these weights into ``net`` and this state into ``opt`` (copies)."""
        net.load_state_dict(self.weights)
        opt.state = {s: {k: v.copy() for k, v in d.items()} for s, d in self.opt_state.items()}
        opt.t = self.opt_t

    def pack(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON index, two flat arrays ``w`` and ``o``): the form bundles keep."""
        index: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "opt_t": self.opt_t}
        arrays: dict[str, np.ndarray] = {}
        for tag, items in (("w", list(self.weights.items())),
                           ("o", [(f"{s}|{k}", v) for s, d in self.opt_state.items()
                                  for k, v in d.items()])):
            entries, at = [], 0
            for name, a in items:
                entries.append([name, a.dtype.str, list(a.shape), at])
                at += a.size
            dtype = np.result_type(*[a.dtype for _, a in items]) if items else np.float32
            flat = np.concatenate([a.ravel().astype(dtype) for _, a in items]) if items \
                else np.zeros(0, np.float32)
            index[tag] = entries
            arrays[tag] = flat
        return index, arrays

    @classmethod
    def unpack(cls, index: Any, arrays: Mapping[str, np.ndarray], where: str) -> Checkpoint:
        """Read back what ``pack`` wrote; BundleError when it does not fit together."""
        if not isinstance(index, dict):
            raise BundleError(f"{where} must be an object, got {short_repr(index)}")
        out: dict[str, dict[str, np.ndarray]] = {}
        for tag in ("w", "o"):
            flat, entries = arrays.get(tag), index.get(tag)
            if flat is None or flat.ndim != 1 or not isinstance(entries, list):
                raise BundleError(f"{where}: the arrays of the checkpoint are missing")
            got: dict[str, np.ndarray] = {}
            for e in entries:
                ok = isinstance(e, list) and len(e) == 4 and isinstance(e[0], str) \
                    and isinstance(e[1], str) and isinstance(e[2], list) \
                    and all(isinstance(d, int) and d >= 0 for d in e[2]) \
                    and isinstance(e[3], int) and e[3] >= 0
                if not ok:
                    raise BundleError(f"{where}: a checkpoint entry is damaged: {short_repr(e)}")
                size = math.prod(e[2])
                if e[3] + size > flat.size:
                    raise BundleError(f"{where}: the checkpoint is shorter than its index")
                try:
                    dtype = np.dtype(e[1])
                except TypeError:
                    raise BundleError(f"{where}: unknown array type {short_repr(e[1])}") from None
                if dtype.kind != "f":
                    raise BundleError(f"{where}: checkpoint arrays must be floating point")
                got[e[0]] = flat[e[3]:e[3] + size].astype(dtype).reshape(e[2])
            out[tag] = got
        opt_state: dict[str, dict[str, np.ndarray]] = {}
        for name, a in out["o"].items():
            slot, _, key = name.rpartition("|")
            opt_state.setdefault(slot, {})[key] = a
        ints = [index.get(k) for k in ("epoch", "step", "opt_t")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
            raise BundleError(f"{where}: epoch, step and opt_t must be whole numbers")
        return cls(ints[0], ints[1], out["w"], opt_state, ints[2])


def thin(checkpoints: dict[int, Checkpoint], budget: int) -> None:
    """Drop checkpoints (not the first nor the last) where the kept epochs lie closest
    together until the rest take at most ``budget`` bytes (in place)."""
    while len(checkpoints) > 2 and sum(c.nbytes for c in checkpoints.values()) > budget:
        eps = sorted(checkpoints)
        gaps = [(eps[i + 1] - eps[i - 1], eps[i]) for i in range(1, len(eps) - 1)]
        del checkpoints[min(gaps)[1]]


# ----- the log --------------------------------------------------------------------------------
@dataclass
class GraphEdit:
    """The graph became ``graph`` (a model-file dict) before step ``step + 1``, in ``epoch``
    (1-based: the epoch that step belongs to)."""

    step: int
    epoch: int
    graph: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "graph": self.graph}


@dataclass
class ReplayLog:
    """What a run needs to be trained again bit for bit (see the module note)."""

    graph: dict[str, Any]
    settings: dict[str, Any]
    threads: int
    seed: int = 0
    data_digest: str | None = None
    orders: list[str] = field(default_factory=list)
    edits: list[GraphEdit] = field(default_factory=list)
    steps: int = 0
    status: str = ""
    start: dict[str, Any] | None = None  # {"run_id", "epoch", "step"} of a branch's start
    lr_changes: list[tuple[int, float]] = field(default_factory=list)  # (step, base lr)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy({
            "version": LOG_VERSION, "graph": self.graph, "settings": self.settings,
            "threads": self.threads, "seed": self.seed, "data_digest": self.data_digest,
            "orders": self.orders, "edits": [e.to_dict() for e in self.edits],
            "steps": self.steps, "status": self.status, "start": self.start,
            "lr_changes": [list(c) for c in self.lr_changes]})

    @classmethod
    def from_dict(cls, d: Any, where: str = "replay log") -> ReplayLog:
        if not isinstance(d, dict) or not isinstance(d.get("graph"), dict) \
                or not isinstance(d.get("settings"), dict):
            raise BundleError(f"{where} must be an object with a graph and settings")
        if isinstance(d.get("version"), int) and d["version"] > LOG_VERSION:
            raise BundleError(f"{where} is of a newer NetBuilder (version {d['version']})")
        nums = {k: d.get(k, 0) for k in ("threads", "seed", "steps")}
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in nums.values()):
            raise BundleError(f"{where}: threads, seed and steps must be whole numbers")
        orders, edits = d.get("orders", []), d.get("edits", [])
        if not isinstance(orders, list) or not all(isinstance(o, str) for o in orders):
            raise BundleError(f"{where}: orders must be a list of digests")
        if not isinstance(edits, list) or not all(
                isinstance(e, dict) and isinstance(e.get("step"), int)
                and isinstance(e.get("epoch"), int) and isinstance(e.get("graph"), dict)
                for e in edits):
            raise BundleError(f"{where}: an edit is damaged")
        start = d.get("start")
        if start is not None and not isinstance(start, dict):
            raise BundleError(f"{where}: start must be an object")
        digest = d.get("data_digest")
        lrs = d.get("lr_changes", [])
        if not isinstance(lrs, list) or not all(
                isinstance(c, list) and len(c) == 2 and isinstance(c[0], int)
                and isinstance(c[1], int | float) and not isinstance(c[1], bool) for c in lrs):
            raise BundleError(f"{where}: lr_changes must be [step, learning rate] pairs")
        return cls(d["graph"], d["settings"], nums["threads"], nums["seed"],
                   digest if isinstance(digest, str) else None, list(orders),
                   [GraphEdit(e["step"], e["epoch"], e["graph"]) for e in edits],
                   nums["steps"], str(d.get("status", "")), start,
                   [(int(c[0]), float(c[1])) for c in lrs])


def data_digest(trainer: Trainer) -> str:
    """The digest of the trainer's prepared training part (after the split and the
    normalisation: what the batches are cut from)."""
    return digest_arrays(trainer.splits.train.arrays)


class RunTape:
    """Records ``trainer``'s run as it goes (a callback on the trainer): the data order of
    each epoch, a checkpoint after each epoch (within ``budget`` bytes, see ``thin``), and the
    graph edits made through ``edit``. ``graph``: the model as the run started;
    ``start``: the checkpoint a branch started from (already restored into the trainer) and
    ``start_ref`` its ``{"run_id", "epoch", "step"}``."""

    def __init__(self, trainer: Trainer, graph: Graph, threads: int | None = None,
                 budget: int = DEFAULT_CHECKPOINT_BUDGET, start: Checkpoint | None = None,
                 start_ref: Mapping[str, Any] | None = None) -> None:
        self.trainer = trainer
        self.budget = budget
        self.start = start
        ref = dict(start_ref or {})
        if start is not None:
            ref.setdefault("epoch", start.epoch)
            ref.setdefault("step", start.step)
        self.log = ReplayLog(graph.to_dict(), trainer.settings.to_dict(),
                             int(threads if threads is not None else get_num_threads()),
                             trainer.net.seed, data_digest(trainer),
                             start=ref if start is not None else None)
        self.checkpoints: dict[int, Checkpoint] = {}
        self._base_lr = trainer.base_lr
        trainer.callbacks.insert(0, self._on_event)

    def _on_event(self, ev: Any) -> None:
        tr = self.trainer
        if isinstance(ev, BatchEvent):
            self.log.steps = ev.step
            if tr.base_lr != self._base_lr:  # the learning rate was changed while it ran
                self._base_lr = tr.base_lr
                self.log.lr_changes.append((ev.step - 1, tr.base_lr))
            if ev.batch == 1 and tr.epoch_order is not None:
                self.log.orders.append(_order_digest(tr.epoch_order))
        elif isinstance(ev, EpochEvent):
            self.checkpoints[ev.epoch] = Checkpoint.of(tr)
            thin(self.checkpoints, self.budget)
        else:  # RunResult
            self.log.status = ev.status

    def edit(self, graph: Graph) -> CarryReport:
        """Switch the paused run to ``graph`` between two batches: compile it with the run's
        seed, carry the weights and optimizer state over (``engine.carry``), go on with it,
        and log the edit. Returns the carry report."""
        tr = self.trainer
        report = tr.replace_network(Network(graph, seed=self.log.seed))
        self.log.edits.append(GraphEdit(tr.step, tr.epoch + 1, graph.to_dict()))
        return report


# ----- replay ---------------------------------------------------------------------------------
class ReplayError(TrainingError):
    """The replay could not follow the log (other data, a different data order)."""


def replay(log: ReplayLog, dataset: Dataset | None = None, start: Checkpoint | None = None,
           base_dir: str | Path | None = None) -> tuple[Network, Trainer]:
    """Train again as ``log`` says, from ``start`` (a branch's checkpoint; required when the
    log has one) on ``dataset`` (default: loaded from the settings' dataset); returns the
    network and trainer after the last logged step. ReplayError when the data or its order
    differ from the run's."""
    if log.start is not None and start is None:
        raise ReplayError("this run is a branch: its replay needs the checkpoint it started "
                          "from, which is not here")
    settings = TrainSettings.from_dict(log.settings)
    if dataset is None:
        if settings.dataset is None:
            raise ReplayError("the run's settings name no dataset to replay on")
        dataset = load_dataset(settings.dataset, base_dir=base_dir)
    before = get_num_threads()
    set_num_threads(min(max(1, log.threads), max_threads()))
    try:
        net = Network(Graph.from_dict(log.graph), seed=log.seed)
        trainer = Trainer(net, dataset, settings)
        if start is not None:
            start.restore(net, trainer.opt)
        if log.data_digest is not None and data_digest(trainer) != log.data_digest:
            raise ReplayError("the training data differ from the run's (another file, split "
                              "or normalisation): the replay cannot match")
        seen: list[str] = []

        def check(ev: Any) -> None:
            if isinstance(ev, BatchEvent) and ev.batch == 1 and trainer.epoch_order is not None:
                seen.append(_order_digest(trainer.epoch_order))
                i = len(seen) - 1
                if i < len(log.orders) and seen[i] != log.orders[i]:
                    raise ReplayError(f"the data order of epoch {i + 1} differs from the run's")

        trainer.callbacks.append(check)
        edits = sorted(log.edits, key=lambda e: e.step)
        lrs = sorted(log.lr_changes)
        while not trainer.finished and trainer.step < log.steps:
            while lrs and lrs[0][0] <= trainer.step:
                trainer.base_lr = lrs.pop(0)[1]
            while edits and edits[0].step <= trainer.step:
                graph = Graph.from_dict(edits.pop(0).graph)
                trainer.replace_network(Network(graph, seed=log.seed))
            trainer.step_once()
        return trainer.net, trainer
    finally:
        set_num_threads(before)


@dataclass(frozen=True)
class Mismatch:
    """The first tensor (in the expected weights' order) that differs: ``name``, how
    (``"values differ"``, ``"missing"``, ``"shape (3,)→(4,)"``), the largest difference."""

    name: str
    what: str
    max_abs: float = math.nan
    count: int = 0

    def text(self) -> str:
        if self.what == "values differ":
            return (f"{self.name}: {self.count:,} values differ (largest by "
                    f"{self.max_abs:.3g})")
        return f"{self.name}: {self.what}"


def compare(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]
            ) -> Mismatch | None:
    """None when ``got`` holds exactly ``expected``'s tensors bit for bit; else the first
    that differs."""
    for name, a in expected.items():
        if name not in got:
            return Mismatch(name, "missing from the replay")
        a, b = np.asarray(a), np.asarray(got[name])
        if a.shape != b.shape:
            return Mismatch(name, f"shape {a.shape}→{b.shape}")
        if a.tobytes() != b.astype(a.dtype).tobytes():
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
            return Mismatch(name, "values differ", float(np.nanmax(diff)), int(bad.sum()))
    extra = [k for k in got if k not in expected]
    return Mismatch(extra[0], "not in the run's weights") if extra else None


def branch_checkpoint(parent_graph: Graph, ck: Checkpoint, child_graph: Graph, seed: int,
                      same_optimizer: bool = True) -> tuple[Checkpoint, CarryReport]:
    """The start of a branch: ``ck`` (a checkpoint of a run of ``parent_graph``) carried
    onto ``child_graph`` (compiled with ``seed``) through ``engine.carry``: nodes that keep
    their ids and shapes keep their weights and optimizer state, the others start fresh.
    ``same_optimizer`` False (the branch trains with another optimizer type): the optimizer
    state starts empty. Returns the child's start checkpoint and the carry report."""
    old = Network(parent_graph, seed=seed)
    old.load_state_dict(ck.weights)
    new = Network(child_graph, seed=seed)
    holder = Optimizer(1.0)
    holder.state = {s: {k: v.copy() for k, v in d.items()} for s, d in ck.opt_state.items()}
    holder.t = ck.opt_t
    report = carry_over(old, new, holder)
    if not same_optimizer:
        holder.state, holder.t = {}, 0
    return Checkpoint(ck.epoch, ck.step, new.state_dict(), holder.state, holder.t), report

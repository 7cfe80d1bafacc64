"""Trainer: epochs of shuffled mini-batches with events, schedules, early stopping, best-weights
checkpoints, pause / resume / stop / single steps from another thread, and NaN safety.

A model file's ``training`` section (all keys optional)::

    dataset         built-in name, path, or {"name"|"path": ..., <loader settings>}
    epochs          int ≥ 1 (10)
    batch_size      int ≥ 1, or 0 / "all" for the whole training set in one batch (32)
    optimizer       {"type": "sgd"|"adam"|"adamw"|"rmsprop"|"adagrad", "lr": ..., ...}
    schedule        "none" | {"type": "step", "step_size": epochs, "gamma": 0.1}
                    | {"type": "cosine", "min_lr": 0.0}   (cosine decays per batch)
    seed            int (0): shuffling, splits and augmentation
    val_split       fraction held out for validation (0.1)
    test_split      fraction held out for the final test (0.1; ignored when the data ships
                    its own test part)
    early_stopping  patience in epochs without a better validation loss; 0 = off
    restore_best    bool (true): end a finished run with the best validation weights
    clip_norm       global gradient-norm clip, 0 = off
    weight_decay    L2 (decoupled for adamw), 0 = off
    normalize       "none" | "scale" | "standardize" (statistics of the training part)
    augment         {"shift": 0.1, "rotation": 10, "scale": 0.1} for images
    shuffle         bool (true)
    limit           use at most this many samples (quick trials); 0 = all

Same seed and data give the same loss curve bit for bit. Events are plain dataclasses
(BatchEvent, EpochEvent, RunResult) passed to every callback, on the training thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .carry import CarryReport, carry_over
from .data import Augmenter, Dataset, Splits, check_dataset
from .errors import ParamError, TrainingError
from .losses import iou_counts, mean_iou
from .network import Network
from .optim import Optimizer, flat_norm
from .threads import ThreadTuner
from .train_settings import Schedule, TrainSettings, prepare_data

SNAPSHOT_EVERY_STEP_MAX = 4_000_000


# ----- events -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchEvent:
    """After each optimizer step. ``epoch``/``batch``/``step`` count from 1; times in s;
    ``threads``: the kernel threads the tuner settled on (0 when not tuned)."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    step: int
    loss: float
    losses: dict[str, float]
    accuracy: float | None
    metrics: dict[str, dict[str, float]]
    lr: float
    samples_per_s: float
    grad_norm: float
    elapsed: float
    eta: float
    threads: int = 0


@dataclass(frozen=True)
class EpochEvent:
    """After each epoch: training means over its batches, validation on the held-out part.
    ``heads`` per Output: train_loss, train_accuracy, val_loss, val_accuracy (when known)."""

    epoch: int
    epochs: int
    step: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    heads: dict[str, dict[str, float]]
    lr: float
    elapsed: float
    epoch_time: float
    eta: float
    samples_per_s: float
    improved: bool
    train_iou: float | None = None
    val_iou: float | None = None


@dataclass(frozen=True)
class RunResult:
    """The end of a run. ``status``: completed, early_stopped, stopped or failed."""

    status: str
    epochs_done: int
    steps: int
    elapsed: float
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    best_epoch: int | None
    best_val_loss: float | None
    restored_best: bool
    error: str | None = None
    error_node: str | None = None


@dataclass
class History:
    """Curves of one run, JSON-ready (saved in bundles)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    heads: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    batch_step: list[int] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    train_iou: list[float | None] = field(default_factory=list)
    val_iou: list[float | None] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evaluation:
    """Mean loss over a dataset, accuracy (mean over classification heads) and per head;
    ``iou``: mean IoU over the classes (mean over segmentation heads; None without one)."""

    loss: float
    accuracy: float | None
    heads: dict[str, dict[str, float]]
    n: int
    iou: float | None = None


def batch_arrays(net: Network, arrays: dict[str, np.ndarray], idx: Any
                 ) -> tuple[Any, dict[str, np.ndarray]]:
    """(inputs, targets) of the samples at ``idx``: x as one array (one Input) or by Input id."""
    if len(net.input_ids) == 1:
        x: Any = arrays["x"][idx]
    else:
        x = {iid: arrays[iid][idx] for iid in net.input_ids}
    ys = {k: v[idx] for k, v in arrays.items() if k != "x" and k not in net.input_ids}
    return x, ys


def _mean_accuracy(metrics: dict[str, dict[str, float]], key: str = "accuracy"
                   ) -> float | None:
    accs = [m[key] for m in metrics.values() if key in m]
    return float(np.mean(accs)) if accs else None


EvalWatch = Callable[[int, dict[str, np.ndarray]], None]


def evaluate(net: Network, ds: Dataset, batch_size: int = 256,
             on_batch: EvalWatch | None = None) -> Evaluation:
    """Loss and accuracy of ``net`` (inference mode) over every sample of ``ds``.
    ``on_batch(start, outputs)``: after each batch's forward, the index of its first sample
    and {output id: (batch, ...) array} (the network's own buffers: copy what you keep), so
    a monitor can measure more on the same forward (a confusion matrix) instead of a second."""
    n = len(ds)
    sums: dict[str, float] = {}
    accs: dict[str, float] = {}
    total = 0.0
    seg = [oid for oid in net.output_ids if net.layers[oid].p["loss"] == "pixel_cross_entropy"]
    counts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, batch_size):
        idx = slice(start, min(n, start + batch_size))
        x, ys = batch_arrays(net, ds.arrays, idx)
        m = idx.stop - idx.start
        net.forward(x, train=False)
        if on_batch is not None:
            on_batch(start, {oid: net.acts[oid] for oid in net.output_ids})
        loss, _ = net.loss(ys, x)
        if seg:  # IoU over the whole set: per-class pixel counts summed over its batches
            targets = net.targets_for(ys, x)
            for oid in seg:
                scores = net.acts[net.loss_logits.get(oid, oid)]
                inter, union = iou_counts(scores.argmax(axis=1), targets[oid], scores.shape[1])
                c = counts.setdefault(oid, [inter * 0, union * 0])
                c[0] += inter
                c[1] += union
        total += loss * m
        for oid, v in net.last_losses.items():
            sums[oid] = sums.get(oid, 0.0) + v * m
        for oid, met in net.last_metrics.items():
            if "accuracy" in met:
                accs[oid] = accs.get(oid, 0.0) + met["accuracy"] * m
    n = max(n, 1)
    heads = {oid: {"loss": s / n} for oid, s in sums.items()}
    for oid, a in accs.items():
        heads[oid]["accuracy"] = a / n
    for oid, (inter, union) in counts.items():
        heads[oid]["iou"] = mean_iou(inter, union)
    return Evaluation(total / n, _mean_accuracy(heads), heads, len(ds),
                      _mean_accuracy(heads, "iou"))


class _FiniteGuard:
    """Wraps the optimizer: refuses to update when any gradient holds NaN or Inf."""

    def __init__(self, opt: Optimizer) -> None:
        self.opt = opt

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
             flat: tuple[np.ndarray, np.ndarray] | None = None,
             segments: list[tuple[int, int, float]] | None = None) -> None:
        norm = None
        if flat is not None:
            norm = flat_norm(flat[1])
            if not math.isfinite(norm):
                self._refuse(grads)  # unless a float64 gradient overflowed the squares
                norm = None
        else:
            for name, g in grads.items():
                if not math.isfinite(float(np.sum(g, dtype=np.float64))):
                    self._refuse({name: g})
        if segments:
            self.opt.step(params, grads, flat, norm, segments=segments)
        else:
            self.opt.step(params, grads, flat, norm)

    @staticmethod
    def _refuse(grads: dict[str, np.ndarray]) -> None:
        for name, g in grads.items():
            if not np.isfinite(g).all():
                raise TrainingError(f"the gradient of {name} became NaN or Inf",
                                    name.rsplit(".", 1)[0])


Callback = Callable[[Any], None]


class Trainer:
    """Trains ``net`` on ``data`` (a Dataset, split and normalised here per ``settings``, or
    ready Splits). Call ``run()`` (blocking; on a worker thread for a GUI) or ``step_once()``.
    ``pause()``, ``resume()``, ``stop()``, ``request_step()`` and ``set_lr()`` are safe to
    call from any thread; everything else belongs to the training thread.

    Callbacks run on the training thread right after each step, so a BatchEvent's callback
    may read that batch's ``net.acts`` and ``net.grads`` (copy what it keeps).
    ``idle_callbacks`` (no arguments) run on the training thread about every 50 ms while
    ``run()`` is paused, e.g. to look at the network on request. ``val_callbacks`` see each
    batch of the end-of-epoch validation (``evaluate``'s ``on_batch``), before the
    EpochEvent.

    ``tune_threads``: switch between all kernel threads and one as the machine's load
    changes (``engine.threads.ThreadTuner``; results do not depend on it)."""

    def __init__(self, net: Network, data: Dataset | Splits,
                 settings: TrainSettings | dict[str, Any] | None = None,
                 callbacks: Callback | Iterable[Callback] | None = None,
                 optimizer: Optimizer | None = None, tune_threads: bool = False) -> None:
        if not isinstance(settings, TrainSettings):
            settings = TrainSettings.from_dict(settings)
        self.settings = s = settings
        self.net = net
        self.splits = data if isinstance(data, Splits) else prepare_data(data, net, s)
        if isinstance(data, Splits):
            for part in (self.splits.train, self.splits.val):
                if part is not None:
                    check_dataset(part, net)
        if callable(callbacks):
            callbacks = [callbacks]
        self.callbacks: list[Callback] = list(callbacks or [])
        self.idle_callbacks: list[Callable[[], None]] = []  # called while paused in run()
        self.val_callbacks: list[EvalWatch] = []  # each batch of the per-epoch validation
        self.opt = optimizer or s.make_optimizer()
        self._guard = _FiniteGuard(self.opt)
        self.tuner = ThreadTuner() if tune_threads else None
        self.base_lr = self.opt.lr
        self.augmenter = Augmenter.from_config(s.augment)
        masks = [o for o in net.output_ids if net.layers[o].p["loss"] == "pixel_cross_entropy"]
        if self.augmenter is not None and self.augmenter.active and masks:
            raise ParamError(f"augmentation moves the images but not the per-pixel labels "
                             f"Output '{masks[0]}' learns: turn augmentation off")
        n = len(self.splits.train)
        self.batch_size = n if s.batch_size == 0 else min(s.batch_size, n)
        self.batches_per_epoch = math.ceil(n / self.batch_size)
        self.total_steps = self.batches_per_epoch * s.epochs
        self._shuffle_rng = np.random.default_rng([s.seed & 0xFFFFFFFF, 22])
        self._aug_rng = np.random.default_rng([s.seed & 0xFFFFFFFF, 33])
        self.history = History()
        self.epoch = 0
        self.batch = 0
        self.step = 0
        self.finished = False
        self.status = "ready"
        self.result: RunResult | None = None
        self.best_state: dict[str, np.ndarray] | None = None
        self.best_epoch: int | None = None
        self.best_loss = math.inf
        self._wait = 0
        self._order: np.ndarray | None = None
        self._acc: dict[str, float] = {}
        self._pending_lr: float | None = None
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._step_req = threading.Event()
        self._wake = threading.Event()
        state = {**net.params, **net.buffers}
        size = sum(a.size for a in state.values())
        self._snap_every = 1 if size <= SNAPSHOT_EVERY_STEP_MAX else 25
        self._snap = {k: v.copy() for k, v in net.buffers.items()}
        self._snap_flat = net.flat_params.copy()
        self._train_time = 0.0
        self._sps: float = 0.0

    # ----- control (any thread) ----------------------------------------------------------
    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_step(self) -> None:
        """While paused inside ``run()``: train exactly one more batch."""
        self._step_req.set()
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def set_lr(self, lr: float) -> None:
        """Make the next batch use learning rate ``lr``; a schedule carries on from there."""
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) \
                or lr <= 0:
            raise ParamError(f"learning rate must be a positive number, got {lr!r}")
        self._pending_lr = float(lr)

    @property
    def epoch_order(self) -> np.ndarray | None:
        """The training samples' order in the current epoch (indices into the training part),
        or None between epochs; read it from a BatchEvent callback (``engine.replay``)."""
        return self._order

    @property
    def lr(self) -> float:
        return self.settings.schedule.lr(self.base_lr, self.epoch, self.step, self.total_steps)

    def replace_network(self, net: Network) -> CarryReport:
        """Train ``net`` (an edited graph's network) from the next batch on, keeping what
        the current network learned where ``engine.carry`` can: weights, optimizer state and
        buffers of every node whose id and shapes are unchanged. Call it on the training
        thread between steps (while paused). DataError if the data does not fit ``net``:
        then nothing changes. The best weights kept for ``restore_best`` belong to the old
        graph and are dropped (the best loss still counts for early stopping)."""
        for part in (self.splits.train, self.splits.val):
            if part is not None:
                check_dataset(part, net)
        report = carry_over(self.net, net, self.opt)
        self.net = net
        size = sum(a.size for a in (*net.params.values(), *net.buffers.values()))
        self._snap_every = 1 if size <= SNAPSHOT_EVERY_STEP_MAX else 25
        self._snap = {k: v.copy() for k, v in net.buffers.items()}
        self._snap_flat = net.flat_params.copy()
        self.best_state = None
        return report

    # ----- running -----------------------------------------------------------------------
    def _emit(self, event: Any) -> None:
        for cb in self.callbacks:
            cb(event)

    def run(self) -> RunResult:
        """Train until the epochs are done, early stopping triggers, or ``stop()``. Emits and
        returns the RunResult; a NaN/Inf raises TrainingError after emitting a failed result
        (the last good weights are in the net)."""
        while not self.finished:
            if self._stop.is_set():
                return self._finish("stopped")
            if self._pause.is_set():
                self.status = "paused"
                if self._step_req.is_set():
                    self._step_req.clear()
                    self._train_batch()
                    continue
                self._wake.wait(0.05)
                self._wake.clear()
                for cb in self.idle_callbacks:
                    cb()
                continue
            self.status = "running"
            self._train_batch()
        assert self.result is not None
        return self.result

    def step_once(self) -> BatchEvent | None:
        """Train one batch now (on the calling thread); None when the run is over."""
        if self.finished:
            return None
        return self._train_batch()

    def _finish(self, status: str, error: TrainingError | None = None) -> RunResult:
        if self.tuner is not None:
            self.tuner.finish()
        restored = False
        if status in ("completed", "early_stopped") and self.settings.restore_best:
            restored = self.restore_best()
        h = self.history

        def last(xs: list) -> Any:
            return xs[-1] if xs else None
        self.finished = True
        self.status = status
        self.result = RunResult(
            status, len(h.epoch), self.step, self._train_time, last(h.train_loss),
            last(h.train_accuracy), last(h.val_loss), last(h.val_accuracy), self.best_epoch,
            self.best_loss if self.best_state is not None and math.isfinite(self.best_loss)
            else None, restored, error.message if error else None,
            error.node_id if error else None)
        self._emit(self.result)
        return self.result

    def restore_best(self) -> bool:
        """Load the weights of the epoch with the best validation loss, if there was one."""
        if self.best_state is None or self.splits.val is None:
            return False
        self.net.load_state_dict(self.best_state)
        return True

    def _snapshot(self) -> None:
        np.copyto(self._snap_flat, self.net.flat_params)
        for k, v in self.net.buffers.items():
            np.copyto(self._snap[k], v)

    def _restore_snapshot(self) -> None:
        np.copyto(self.net.flat_params, self._snap_flat)
        for k, v in self.net.buffers.items():
            np.copyto(v, self._snap[k])

    def _nonfinite_param(self) -> str | None:
        if math.isfinite(flat_norm(self.net.flat_params)):
            return None
        for k, v in self.net.params.items():
            if not np.isfinite(v).all():
                return k
        return None  # finite float64 weights whose squares overflow

    def _fail(self, message: str, node: str | None) -> None:
        self._restore_snapshot()
        age = "" if self._snap_every == 1 else " (from a few steps earlier)"
        err = TrainingError(f"training stopped at step {self.step + 1} (epoch {self.epoch + 1}): "
                            f"{message}. The last good weights{age} are kept; try a lower "
                            "learning rate or gradient clipping", node, self.step + 1)
        self._finish("failed", err)
        raise err

    def _train_batch(self) -> BatchEvent:
        s = self.settings
        train = self.splits.train
        t0 = time.perf_counter()
        if self._order is None:
            n = len(train)
            self._order = self._shuffle_rng.permutation(n) if s.shuffle else np.arange(n)
            self._acc = {}
            self._epoch_t0 = self._train_time
        lo = self.batch * self.batch_size
        idx = self._order[lo:lo + self.batch_size]
        x, ys = batch_arrays(self.net, train.arrays, idx)
        if self.augmenter is not None and not isinstance(x, dict):
            x = self.augmenter(x, self._aug_rng)
        if self._pending_lr is not None:
            want, self._pending_lr = self._pending_lr, None
            now = s.schedule.lr(1.0, self.epoch, self.step, self.total_steps)
            self.base_lr = want / now if now > 0 else want
        lr = self.lr
        self.opt.lr = lr
        if self.step % self._snap_every == 0:
            self._snapshot()
        tuner = self.tuner
        if tuner is not None:
            tuner.before_step()
        t_step = time.perf_counter()
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss = self.net.train_step(x, ys, self._guard)
                bad = self._nonfinite_param()
        except TrainingError as exc:
            self._fail(exc.message, exc.node_id)
        if bad is not None:
            self._fail(f"the update made {bad} NaN or Inf", bad.rsplit(".", 1)[0])
        now = time.perf_counter()
        threads = 0
        if tuner is not None:
            tuner.after_step(now - t_step)
            threads = tuner.choice
        dt = now - t0
        self._train_time += dt
        m = len(idx)
        self.step += 1
        self.batch += 1
        acc = self._acc
        acc["n"] = acc.get("n", 0) + m
        acc["loss"] = acc.get("loss", 0.0) + loss * m
        metrics = {k: dict(v) for k, v in self.net.last_metrics.items()}
        losses = dict(self.net.last_losses)
        for oid, v in losses.items():
            acc[f"{oid}/loss"] = acc.get(f"{oid}/loss", 0.0) + v * m
        for oid, met in metrics.items():
            for key in ("accuracy", "iou"):
                if key in met:
                    acc[f"{oid}/{key}"] = acc.get(f"{oid}/{key}", 0.0) + met[key] * m
        sps = m / dt if dt > 0 else 0.0
        self._sps = sps if self.step == 1 else 0.8 * self._sps + 0.2 * sps
        self.history.batch_step.append(self.step)
        self.history.batch_loss.append(loss)
        event = BatchEvent(self.epoch + 1, s.epochs, self.batch, self.batches_per_epoch,
                           self.step, loss, losses, _mean_accuracy(metrics), metrics, lr,
                           self._sps, self.opt.last_grad_norm, self._train_time,
                           self._eta(), threads)
        self._emit(event)
        if self.batch >= self.batches_per_epoch:
            self._end_epoch()
        return event

    def _eta(self) -> float:
        left = self.total_steps - self.step
        per_step = self._train_time / max(1, self.step)
        return max(0.0, left * per_step)

    def _end_epoch(self) -> None:
        s = self.settings
        acc = self._acc
        n = max(1, acc.get("n", 1))
        heads: dict[str, dict[str, float]] = {}
        for key, v in acc.items():
            if "/" in key:
                oid, what = key.split("/", 1)
                heads.setdefault(oid, {})[f"train_{what}"] = v / n
        train_acc_heads = {o: {k: h[f"train_{k}"] for k in ("accuracy", "iou")
                               if f"train_{k}" in h} for o, h in heads.items()}
        train_loss = acc.get("loss", 0.0) / n
        t0 = time.perf_counter()
        watch = self._val_batch if self.val_callbacks else None
        val = evaluate(self.net, self.splits.val, on_batch=watch) \
            if self.splits.val is not None else None
        self._train_time += time.perf_counter() - t0
        if val is not None:
            for oid, h in val.heads.items():
                heads.setdefault(oid, {}).update({f"val_{k}": v for k, v in h.items()})
        monitor = val.loss if val is not None else train_loss
        improved = math.isfinite(monitor) and monitor < self.best_loss
        if improved:
            self.best_loss = monitor
            self.best_epoch = self.epoch + 1
            self.best_state = self.net.state_dict()
            self._wait = 0
        else:
            self._wait += 1
        lr = self.opt.lr
        h = self.history
        h.epoch.append(self.epoch + 1)
        h.train_loss.append(train_loss)
        h.train_accuracy.append(_mean_accuracy(train_acc_heads))
        h.val_loss.append(val.loss if val else None)
        h.val_accuracy.append(val.accuracy if val else None)
        h.train_iou.append(_mean_accuracy(train_acc_heads, "iou"))
        h.val_iou.append(val.iou if val else None)
        h.lr.append(lr)
        h.time.append(self._train_time)
        for oid, vals in heads.items():
            slot = h.heads.setdefault(oid, {})
            for k, v in vals.items():
                slot.setdefault(k, [None] * (len(h.epoch) - 1)).append(v)
        epoch_time = self._train_time - self._epoch_t0
        self.epoch += 1
        self.batch = 0
        self._order = None
        stop_early = bool(s.early_stopping) and self._wait >= s.early_stopping
        event = EpochEvent(self.epoch, s.epochs, self.step, train_loss, h.train_accuracy[-1],
                           h.val_loss[-1], h.val_accuracy[-1], heads, lr, self._train_time,
                           epoch_time, (s.epochs - self.epoch) * self._train_time / self.epoch,
                           n / epoch_time if epoch_time > 0 else 0.0, improved,
                           h.train_iou[-1], h.val_iou[-1])
        self._emit(event)
        if self.epoch >= s.epochs:
            self._finish("completed")
        elif stop_early:
            self._finish("early_stopped")

    def _val_batch(self, start: int, outputs: dict[str, np.ndarray]) -> None:
        for cb in self.val_callbacks:
            cb(start, outputs)

    def evaluate(self, ds: Dataset | None = None) -> Evaluation:
        """Evaluate on ``ds`` (default: the test part, else validation)."""
        ds = ds or self.splits.test or self.splits.val or self.splits.train
        return evaluate(self.net, ds)


def train(net: Network, data: Dataset, settings: dict[str, Any] | TrainSettings | None = None,
          callbacks: Callback | Iterable[Callback] | None = None) -> tuple[RunResult, Trainer]:
    """Train in one call (a script's or notebook's shortcut); returns (result, trainer)."""
    trainer = Trainer(net, data, settings, callbacks)
    return trainer.run(), trainer


__all__ = ["BatchEvent", "EpochEvent", "EvalWatch", "Evaluation", "History", "RunResult", "Schedule",
           "TrainSettings", "Trainer", "evaluate", "prepare_data", "train"]

"""The training loop (no Qt): builds the network and the Trainer from a job, runs it, and
posts throttled copies of what the monitor shows as messages (``post(kind, payload)``):
``phase`` (text, done, total), ``info`` (RunInfo), ``snapshot`` (Snapshot), ``recorded``
(the flight recording so far: the initial weights once the kernels are ready, then after
each epoch, when the job has a ``record_budget``; ``session.recording``), ``epoch``
(EpochReport) and, last, ``done`` (RunOutcome).

``run()`` is called on the thread that trains; only that thread calls the network. A runner
(``session.runner.ThreadRunner``, or the Qt adapter ``netbuilder.training.worker``) carries
the messages to the session's thread. The session controls the loop with ``pause``,
``resume``, ``stop``, ``step`` and ``set_lr`` (thread-safe, never blocking) and says what it
wants to see by replacing ``request`` (a frozen MonitorRequest; one attribute store)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

import engine
from engine.data import Dataset, load_dataset
from engine.errors import NetBuilderError, TrainingError
from engine.profile import Profile, StepTimer
from engine.replay import RunTape
from engine.threads import max_threads
from engine.training import BatchEvent, EpochEvent, Trainer

from . import kernel_service, probes
from .messages import (
    EditOutcome,
    EpochReport,
    RunInfo,
    RunOutcome,
    Snapshot,
    TrainingJob,
    compile_text,
    measure_images,
)
from .probes import Head, MonitorRequest, ProbeData
from .recording import MonitorRecorder

Post = Callable[[str, Any], None]

FLUSH_INTERVAL = 0.05  # s: batch scalars reach the GUI at most 20 times per second
PROBE_SAMPLES = 64  # samples offered for the feature-map view
MAX_POINTS = 2000  # points drawn over decision regions
MAX_VOCAB_NAMES = 100_000  # token names kept for the axes of the attention maps
MAX_ANALYSIS = 1000  # samples in a confusion matrix measured apart (no validation part)
ANALYSIS_INTERVAL = 2.0  # s: short epochs get a confusion matrix every 2 s at most


def _drop(kind: str, payload: Any) -> None:
    """Where messages go until a runner sets ``RunLoop.post``."""


class RunLoop:
    """Runs one TrainingJob (``run()``, on the training thread); messages carry copies."""

    def __init__(self, job: TrainingJob, request: MonitorRequest | None = None) -> None:
        self.job = job
        self.post: Post = _drop  # set by the runner before run()
        self._request = request or MonitorRequest()
        self._request_new = False
        self.trainer: Trainer | None = None
        self.net: engine.Network | None = None
        self._stop_early = False
        self._paused_early = job.start_paused
        self._step_early = 0
        self._lr_early: float | None = None
        self._edit: engine.Graph | None = None  # an edited graph to swap in
        self._then = ""  # after the swap: "resume", "step" or "" (stay paused)
        self._reset_buffers()
        self._last_flush = self._last_stats = self._last_image = -1e9
        self._last_analysis = -1e9
        self._analysed_epoch = 0
        self._epoch_event: EpochEvent | None = None
        self.monitor_time = 0.0  # s the training thread spent measuring for the monitor
        self._dt = 0.0
        self._t_prev: float | None = None
        self._first = True
        self.head: Head | None = None
        self.probe = ProbeData()
        self.recorder: probes.GradFlowRecorder | None = None
        self.timer: StepTimer | None = None  # live profiling, armed every few steps
        self._profile: Profile | None = None  # the latest, for the next snapshot
        self.flight: MonitorRecorder | None = None  # the run's flight recording
        self.record_time = 0.0  # s of monitor_time spent keeping the flight recording
        self.analyser: probes.EpochAnalyser | None = None  # fed by the epoch's validation
        self._analysis: tuple[int, probes.EpochAnalysis] | None = None  # the last, by epoch
        self.tape: RunTape | None = None  # the replay log and checkpoints (engine.replay)

    # ----- control (session thread) -------------------------------------------------------
    @property
    def request(self) -> MonitorRequest:
        """What the GUI wants to see (replace it whole: one attribute store)."""
        return self._request

    @request.setter
    def request(self, req: MonitorRequest) -> None:
        self._request = req
        self._request_new = True

    def pause(self) -> None:
        self._paused_early = True
        self._then = ""  # an edit on its way stays paused
        if self.trainer is not None:
            self.trainer.pause()

    def resume(self) -> None:
        self._paused_early = False
        if self.trainer is not None:
            self.trainer.resume()

    def stop(self) -> None:
        self._stop_early = True
        if self.trainer is not None:
            self.trainer.stop()

    def step(self) -> None:
        """One more batch while paused."""
        if self.trainer is not None:
            self.trainer.request_step()
        else:
            self._step_early += 1

    def edit(self, graph: engine.Graph, then: str = "resume") -> None:
        """While paused: train ``graph`` (an edited copy) from the next batch on, its
        weights carried over from the current network (``engine.carry``); ``then``:
        "resume", "step" (one batch) or "" (stay paused). The loop answers with an
        ``edit`` message (EditOutcome) before that batch."""
        self._then = then
        self._edit = graph

    def set_lr(self, lr: float) -> None:
        """Learning rate of the next batch on (ParamError if not a positive number)."""
        if self.trainer is not None:
            self.trainer.set_lr(lr)
        else:
            if not lr > 0:
                raise engine.ParamError(f"learning rate must be a positive number, got {lr!r}")
            self._lr_early = float(lr)

    # ----- the thread ----------------------------------------------------------------------
    def run(self) -> None:
        try:
            outcome = self._run()
        except TrainingError as exc:
            outcome = self._outcome("failed", exc.message, exc.node_id)
        except NetBuilderError as exc:
            outcome = self._outcome("failed", exc.message, exc.node_id)
        except MemoryError:
            outcome = self._outcome("failed", "out of memory: use a smaller batch or model")
        except Exception as exc:
            outcome = self._outcome("failed", f"unexpected error in training: "
                                    f"{type(exc).__name__}: {exc}", None,
                                    traceback.format_exc())
        if self.flight is not None:
            self.flight.detach()
        self.post("done", outcome)

    def _outcome(self, status: str, message: str, node: str | None = None,
                 details: str = "") -> RunOutcome:
        tr, net = self.trainer, self.net
        result = tr.result if tr is not None else None
        trained = net is not None and tr is not None and tr.step > 0
        tape = self.tape
        return RunOutcome(status, message, result, node, details,
                          net.state_dict() if trained else None,
                          tr.history.to_json() if tr is not None else None,
                          tape.log if tape is not None and trained else None,
                          dict(tape.checkpoints) if tape is not None else {})

    def _run(self) -> RunOutcome:
        job = self.job
        self.post("phase", ("preparing data…", 0, 0))
        settings = engine.TrainSettings.from_dict(job.settings)
        ds = job.dataset
        if ds is None:
            if settings.dataset is None:
                raise engine.DataError("no dataset chosen: pick one in the Data panel")
            ds = load_dataset(settings.dataset, base_dir=job.base_dir)
        self.net = net = engine.Network(job.graph, seed=settings.seed)
        auto = not isinstance(job.threads, int)
        engine.set_num_threads(max_threads() if auto else min(max(1, job.threads), max_threads()))
        trainer = Trainer(net, ds, settings, callbacks=[self._on_event], tune_threads=auto)
        if job.start is not None:  # a branch: its parent's checkpoint, carried onto this graph
            job.start.restore(net, trainer.opt)
        self.tape = RunTape(trainer, job.graph, start=job.start, start_ref=job.start_ref)
        trainer.idle_callbacks.append(self._on_idle)
        self.head = Head.of(net)
        self.probe = self._probe_data(trainer, ds)
        self.analyser = self._analyser(trainer)
        trainer.val_callbacks.append(self._on_val_batch)
        self.recorder = probes.GradFlowRecorder(net)
        self.recorder.armed = self.request.graph  # the first batch is probed
        self.timer = StepTimer(net)
        if self._lr_early is not None:
            trainer.set_lr(self._lr_early)
        self.trainer = trainer
        if self._paused_early:
            trainer.pause()
        for _ in range(self._step_early):
            trainer.request_step()
        if self._stop_early:
            trainer.stop()
        self.post("info", self._run_info(trainer, ds, settings))
        doc = {**job.graph.to_dict(), "training": dict(job.settings)}
        try:
            kernel_service.service().ensure_model(
                doc, lambda f: self.post("phase", (compile_text(f), f.done, f.total)),
                lambda: self._stop_early)
        except engine.WarmupCancelledError:
            return self._outcome("stopped", "stopped while the kernels were compiling, before "
                                 "the first batch: nothing was trained")
        self._take_edit()  # edited while the kernels compiled
        if job.record_budget:
            self.flight = MonitorRecorder(self.net, self.probe, self.head, self._val_xy(trainer),
                                          job.record_budget)
            self._record(0)  # the initial weights: where the filters start from
        try:
            result = trainer.run()
        except TrainingError as exc:
            self._flush(time.perf_counter())
            return self._outcome("failed", exc.message, exc.node_id)
        self._flush(time.perf_counter())
        text = {"completed": "finished", "early_stopped": "stopped early: the validation loss "
                "stopped improving", "stopped": "stopped"}.get(result.status, result.status)
        return self._outcome(result.status, text)

    def _probe_data(self, trainer: Trainer, ds: Dataset) -> ProbeData:
        sp = trainer.splits
        part, name = (sp.val, "validation") if sp.val is not None and len(sp.val) else \
            (sp.train, "training")
        pd = ProbeData(part=name)
        names = [ds.class_name(k) for k in range(ds.n_classes or 0)]
        pd.labels = names
        vocab = ds.meta.get("vocab")
        if isinstance(vocab, int) and 0 < vocab <= MAX_VOCAB_NAMES:
            words = ds.meta.get("words")
            pd.vocab = [str(w) for w in words] if isinstance(words, list | tuple) and \
                len(words) == vocab else [str(k) for k in range(vocab)]
        if len(self.net.input_ids) == 1:
            pd.x = np.ascontiguousarray(part.x[:PROBE_SAMPLES])
            y = part.y
            pd.y = None if y is None else np.array(y[:PROBE_SAMPLES], copy=True)
        head = self.head
        tr = sp.train
        shape = tr.sample_shape
        if head is not None and len(self.net.input_ids) == 1 and tr.y is not None:
            if head.kind != "regression" and shape == (2,):
                pd.kind = "regions"
                pd.points = np.array(tr.x[:MAX_POINTS], np.float64)
                pd.point_labels = np.asarray(tr.y[:MAX_POINTS]).reshape(len(pd.points), -1)[:, 0]
                pd.extent = probes.point_extent(pd.points)
            elif head.kind == "regression" and shape == (1,) and \
                    np.prod(self.net.shapes[head.output]) == 1:
                pd.kind = "curve"
                pd.points = np.array(tr.x[:MAX_POINTS, 0], np.float64)
                pd.point_labels = np.asarray(tr.y[:MAX_POINTS], np.float64).reshape(
                    len(pd.points), -1)[:, 0]
                lo, hi = float(pd.points.min()), float(pd.points.max())
                pad = 0.05 * (hi - lo + 1e-6)
                pd.extent = (lo - pad, hi + pad, 0.0, 0.0)
        return pd

    def _run_info(self, trainer: Trainer, ds: Dataset,
                  settings: engine.TrainSettings) -> RunInfo:
        net = self.net
        assert net is not None
        sp = trainer.splits
        return RunInfo(
            settings.to_dict(), ds.describe(), ds.task,
            [ds.class_name(k) for k in range(ds.n_classes or 0)], ds.sample_shape,
            sp.sizes(), trainer.batch_size, trainer.batches_per_epoch, trainer.total_steps,
            trainer.opt.name, float(trainer.opt.lr), net.param_count(), dict(net.shapes),
            self.probe, sp.normalizer.to_json() if sp.normalizer is not None else None,
            {"name": ds.name, "task": ds.task, "class_names": ds.class_names,
             "sample_shape": list(ds.sample_shape), "sizes": sp.sizes(),
             "spec": settings.dataset if isinstance(settings.dataset, str | dict) else
             str(settings.dataset)})

    # ----- callbacks (training thread) -----------------------------------------------------
    def _reset_buffers(self) -> None:
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._lrs: list[float] = []
        self._accs: list[float] = []
        self._event: BatchEvent | None = None

    def _on_event(self, ev: Any) -> None:
        t0 = time.perf_counter()
        if isinstance(ev, BatchEvent):
            self._on_batch(ev)
        elif isinstance(ev, EpochEvent):
            self._on_epoch(ev)
        self.monitor_time += time.perf_counter() - t0

    def _on_batch(self, ev: BatchEvent) -> None:
        timer = self.timer
        if timer is not None and timer.armed:
            prof = timer.take(self.trainer.batch_size if self.trainer is not None else 0)
            if prof is not None:
                self._profile = prof
        now = time.perf_counter()
        if self._t_prev is not None:
            self._dt = 0.7 * self._dt + 0.3 * (now - self._t_prev) if self._dt else \
                now - self._t_prev
        self._t_prev = now
        self._steps.append(ev.step)
        self._losses.append(ev.loss)
        self._lrs.append(ev.lr)
        self._accs.append(np.nan if ev.accuracy is None else ev.accuracy)
        self._event = ev
        tr = self.trainer
        paused = tr is not None and tr.paused
        req = self.request
        stats_due = req.graph and (paused or now - self._last_stats >= req.stats_interval)
        image_due = paused or now - self._last_image >= req.image_interval
        wants_images = req.feature_maps or req.filters or req.histograms or req.regions \
            or req.pairs or req.attention
        if paused or self._first or stats_due or (image_due and wants_images) or \
                now - self._last_flush >= FLUSH_INTERVAL:
            self._first = False
            snap = self._take_scalars(now)
            if stats_due:
                self._probe_graph(snap, ev)
                self._last_stats = now
            if image_due and wants_images:
                self._probe_images(snap, req)
                self._last_image = now
            self.post("snapshot", snap)
        rec = self.recorder
        if rec is not None and not rec.armed:  # record the backward of the step before a probe
            rec.armed = bool(req.graph) and (
                paused or now + 2 * self._dt - self._last_stats >= req.stats_interval)
        every = req.profile_every
        if timer is not None and every > 0 and (ev.step + 1) % every == 0:
            timer.arm()  # last: the probes above run the network, the next step is timed

    def _on_idle(self) -> None:
        """Paused: when the GUI asks for something new (another node, sample, view), measure
        it on the paused network; an edited graph replaces the network (``edit``)."""
        self._take_edit()
        ev = self._epoch_event
        if ev is not None and self._analysed_epoch < ev.epoch and self.request.epoch_report:
            kept = self._analysis  # the last epoch ended between two analyses: measured?
            analysis = kept[1] if kept is not None and kept[0] == ev.epoch else self._analyse(ev)
            self._analysed_epoch = ev.epoch
            if analysis is not None:
                self.post("epoch", EpochReport(ev, analysis, repeat=True))
        if not self._request_new or self.net is None:
            return
        self._request_new = False
        req = self.request
        snap = self._take_scalars(time.perf_counter())
        self._probe_images(snap, req)
        self._last_image = time.perf_counter()
        self.post("snapshot", snap)

    def _take_edit(self) -> None:
        """Apply an edit asked for with ``edit`` (training thread, between batches)."""
        graph, self._edit = self._edit, None
        tr = self.trainer
        if graph is None or tr is None:
            return
        assert self.tape is not None  # made with the trainer, before any edit is taken
        try:
            doc = {**graph.to_dict(), "training": dict(self.job.settings)}
            kernel_service.service().ensure_model(
                doc, lambda f: self.post("phase", (compile_text(f), f.done, f.total)),
                lambda: self._stop_early)
            report = self.tape.edit(graph)  # swapped in and logged for replay
        except engine.WarmupCancelledError:
            return
        except NetBuilderError as exc:
            self._then = ""  # refused: the old network waits, paused
            self.post("edit", EditOutcome(graph, None, exc.message, exc.node_id, tr.step,
                                          tr.epoch))
            return
        new = self.net = tr.net
        self.job.graph = graph
        self.head = Head.of(new)
        self.analyser = self._analyser(tr)
        self.recorder = probes.GradFlowRecorder(new)
        self.recorder.armed = self.request.graph
        if self.flight is not None:  # the recording goes on with the edited network
            self.flight.follow(new, self.head)
        self._request_new = True  # the views see the new network at once
        self.post("edit", EditOutcome(graph, report, "", None, tr.step, tr.epoch))
        then, self._then = self._then, ""
        if then == "resume":
            self.resume()
        elif then == "step":
            tr.request_step()

    def _take_scalars(self, now: float) -> Snapshot:
        snap = Snapshot(np.asarray(self._steps, np.int64), np.asarray(self._losses, np.float64),
                        np.asarray(self._lrs, np.float64), np.asarray(self._accs, np.float64),
                        self._event, profile=self._profile)
        self._profile = None
        self._reset_buffers()
        self._last_flush = now
        return snap

    def _flush(self, now: float) -> None:
        if self._steps:
            self.post("snapshot", self._take_scalars(now))

    def _probe_graph(self, snap: Snapshot, ev: BatchEvent) -> None:
        net = self.net
        assert net is not None
        snap.stats = probes.node_stats(net)
        snap.layer_norms = (ev.step, probes.layer_grad_norms(net))
        rec = self.recorder
        if rec is not None and rec.available:
            norms, approx = rec.take()
            rec.armed = False
            if norms:
                snap.wires = (norms, approx)

    def _probe_images(self, snap: Snapshot, req: MonitorRequest) -> None:
        assert self.net is not None
        self._request_new = False
        measure_images(self.net, self.probe, self.head, req, snap)

    def _on_epoch(self, ev: EpochEvent) -> None:
        self._flush(time.perf_counter())
        self._epoch_event = ev
        tr = self.trainer
        now = time.perf_counter()
        an = self.analyser
        measured = an.result() if an is not None else None  # from the validation's forward
        if measured is not None:
            self._analysis = (ev.epoch, measured)
        due = ev.epoch >= ev.epochs or now - self._last_analysis >= ANALYSIS_INTERVAL or \
            (tr is not None and (tr.paused or tr.stopping))
        analysis = None
        if due and self.request.epoch_report:
            analysis = measured or self._analyse(ev)
            self._last_analysis, self._analysed_epoch = now, ev.epoch
        t0 = time.perf_counter()
        self._record(ev.epoch, measured or analysis)
        self.record_time += time.perf_counter() - t0
        self.post("epoch", EpochReport(ev, analysis))

    def _analyser(self, trainer: Trainer) -> probes.EpochAnalyser | None:
        """What turns the end-of-epoch validation's outputs into the confusion matrix and
        the gallery of mistakes (None without a validation part or a classification head)."""
        head, net, sp = self.head, self.net, trainer.splits
        if head is None or head.kind == "regression" or net is None \
                or len(net.input_ids) != 1 or sp.val is None or not len(sp.val):
            return None
        y = sp.val.arrays.get(net.layers[head.output].p["target"])
        return None if y is None else probes.EpochAnalyser(head, sp.val.x, y, "validation")

    def _on_val_batch(self, start: int, outputs: dict[str, np.ndarray]) -> None:
        """A batch of the end-of-epoch validation: its outputs feed the confusion matrix;
        the first batch begins with the recorded samples (the probe's first)."""
        t0 = time.perf_counter()
        an = self.analyser
        wanted = self.flight is not None or self.request.epoch_report
        if an is not None and wanted and an.head.output in outputs:
            an.batch(start, outputs)
        if start == 0 and self.flight is not None and self.net is not None:
            t1 = time.perf_counter()
            self.flight.capture(self.net.acts)
            self.record_time += time.perf_counter() - t1
        self.monitor_time += time.perf_counter() - t0

    def _val_xy(self, trainer: Trainer) -> tuple[np.ndarray, np.ndarray] | None:
        """Inputs and labels of the part the confusion matrix is measured on."""
        head, net, sp = self.head, self.net, trainer.splits
        if head is None or net is None or len(net.input_ids) != 1:
            return None
        part = sp.val if sp.val is not None and len(sp.val) else sp.train
        y = part.arrays.get(net.layers[head.output].p["target"])
        return None if y is None else (part.x, y)

    def _record(self, epoch: int, analysis: probes.EpochAnalysis | None = None) -> None:
        """Add ``epoch`` to the flight recording and post it (a budget too small for one
        snapshot ends the recording, and says so); ``analysis``: the epoch's, if measured."""
        fl = self.flight
        if fl is None:
            return
        try:
            self.post("recorded", fl.record(epoch, analysis))
        except engine.ParamError as exc:
            fl.detach()
            self.flight = None
            self.post("recorded", exc.message)

    def _analyse(self, ev: EpochEvent) -> probes.EpochAnalysis | None:
        """Confusion matrix and confident mistakes on the validation part (if asked for)."""
        head, tr, net = self.head, self.trainer, self.net
        if not self.request.epoch_report or head is None or head.kind == "regression" \
                or tr is None or net is None or len(net.input_ids) != 1:
            return None
        self._last_analysis = time.perf_counter()
        self._analysed_epoch = ev.epoch
        sp = tr.splits
        part, name = (sp.val, "validation") if sp.val is not None and len(sp.val) else \
            (sp.train, "training")
        y = part.arrays.get(net.layers[head.output].p["target"])
        if y is None:
            return None
        n = min(len(part), MAX_ANALYSIS)
        return probes.epoch_analysis(net, part.x[:n], y[:n], head, name)

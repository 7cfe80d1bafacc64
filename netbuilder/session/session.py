"""The run session: one run at a time of a model, its record among the session's runs, and
the events views subscribe to. No Qt; the GUI, a script and the tests drive it alike.

    session = RunSession()
    session.any.connect(lambda kind, payload: print(kind))
    run = session.start(graph, graph.training)
    session.run_until_done(timeout_s=60)      # without an event loop: deliver messages here
    run.losses.values, session.state          # the per-batch curve, RunState.FINISHED

The loop trains on another thread (a runner, ``session.runner``); its messages reach the
session on the session's thread through ``deliver`` and become, in this order for each:
the record's new data, a state change if any (``state_changed(old, new)``), then the event
(``phase``, ``info_ready``, ``snapshot``, ``recorded``, ``epoch``, ``ended``). ``any(kind, payload)``
follows every one of them, ``state`` included. After ``ended`` the store announces the
finished record (``store.changed``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import engine
from engine.data import Dataset
from engine.recorder import DEFAULT_BUDGET, Recording
from engine.replay import Checkpoint

from .events import Event
from .loop import RunLoop
from .messages import EditOutcome, EpochReport, RunInfo, RunOutcome, Snapshot, TrainingJob
from .probes import MonitorRequest, ProbeData
from .runner import Runner, Spawn, spawn_thread
from .runs import EpochRow, RunRecord, RunsStore, model_key
from .state import RunState, StateMachine


class RunSession:
    """Runs of one window (or script). ``active``: the record of the run going on;
    ``final_net`` / ``final_probe``: the last run's network and probe samples, kept for
    inspection until the model changes."""

    def __init__(self, store: RunsStore | None = None, spawn: Spawn = spawn_thread) -> None:
        self.machine = StateMachine()
        self.store = store if store is not None else RunsStore()
        self.spawn = spawn
        self.loop: RunLoop | None = None
        self.runner: Runner | None = None
        self.active: RunRecord | None = None
        self.info: RunInfo | None = None
        self.last_outcome: RunOutcome | None = None
        self.final_net: engine.Network | None = None
        self.final_probe: ProbeData | None = None
        self.detached = False  # the active run is of a model no longer shown
        self._request = MonitorRequest()
        self.any = Event("any")  # (kind, payload) after every event below
        self.state_changed = self.machine.changed  # (old, new)
        self.started = Event("started")  # (run)
        self.phase = Event("phase")  # (text, done, total)
        self.info_ready = Event("info")  # (RunInfo)
        self.snapshot = Event("snapshot")  # (Snapshot)
        self.epoch = Event("epoch")  # (EpochReport)
        self.recorded = Event("recorded")  # (run): its flight recording grew (run.recording)
        self.ended = Event("ended")  # (run, RunOutcome, detached)
        self.edited = Event("edited")  # (run, EditOutcome): a graph edited while paused
        self.machine.changed.connect(lambda old, new: self.any.emit("state", (old, new)))

    # ----- state ---------------------------------------------------------------------------
    @property
    def state(self) -> RunState:
        return self.machine.state

    @property
    def running(self) -> bool:
        """A run is going on (from start to its outcome)."""
        return self.loop is not None

    @property
    def request(self) -> MonitorRequest:
        """What the views want measured; a new one reaches the running loop at once."""
        return self._request

    @request.setter
    def request(self, req: MonitorRequest) -> None:
        self._request = req
        if self.loop is not None:
            self.loop.request = req

    def _emit(self, kind: str, event: Event, *args: Any) -> None:
        event.emit(*args)
        self.any.emit(kind, args[0] if len(args) == 1 else args)

    # ----- control -------------------------------------------------------------------------
    def start(self, graph: engine.Graph, settings: dict[str, Any], dataset: Dataset | None = None,
              base_dir: Path | None = None, paused: bool = False,
              threads: int | str = "auto",
              record_budget: int | None = DEFAULT_BUDGET, start: Checkpoint | None = None,
              parent: RunRecord | None = None,
              weights_from: dict[str, Any] | None = None) -> RunRecord:
        """Start a run of ``graph`` (copied) with its ``training`` section ``settings``; the
        data is ``dataset`` or loaded by the loop from ``settings['dataset']``. ``paused``:
        train one batch, then wait. ``record_budget``: bytes for the run's flight recording
        (``run.recording``), None for none. ``start``/``parent``: a branch, starting from
        that checkpoint (already fitted to ``graph``, ``engine.replay.branch_checkpoint``)
        of ``parent``; ``weights_from``: where those weights were read, when the run
        fine-tunes a trained bundle (``lineage.fine_tune_start``). Returns the run's record
        (already in ``store``)."""
        if self.loop is not None:
            raise RuntimeError("a run is already going on: stop it first")
        graph = graph.copy()
        settings = dict(settings)
        run = RunRecord(self.store.next_number(), graph.name or "model", model_key(graph),
                        graph, settings)
        start_ref = None
        if start is not None:
            run.parent_run, run.parent_epoch, run.parent_step = parent, start.epoch, start.step
            start_ref = {"run_id": parent.run_id if parent else None, "epoch": start.epoch,
                         "step": start.step}
        run.start = start
        run.weights_from = dict(weights_from) if weights_from else None
        self.active = run
        self.last_outcome = None
        self.final_net = self.final_probe = None
        self.info = None
        self.detached = False
        job = TrainingJob(graph, settings, dataset, base_dir, start_paused=paused,
                          threads=threads, record_budget=record_budget, start=start,
                          start_ref=start_ref)
        loop = RunLoop(job, self._request)
        self.loop = loop
        self.store.add(run)
        self.machine.to(RunState.COMPILING)
        if paused:
            self.machine.to(RunState.PAUSED)
        self._emit("started", self.started, run)
        loop.request = self._request  # what the views asked for while they got ready
        self.runner = self.spawn(loop, self.deliver)
        if paused:
            loop.step()
        return run

    def pause(self) -> bool:
        """Pause after the current batch; False if there is nothing to pause."""
        if self.loop is None or self.state not in (RunState.RUNNING, RunState.COMPILING):
            return False
        self.loop.pause()
        self.machine.to(RunState.PAUSED)
        return True

    def resume(self, graph: engine.Graph | None = None) -> bool:
        """Carry on training; with ``graph`` (the model edited while paused), train that
        from the next batch on, keeping the weights, optimizer state and running statistics
        of every node whose id and shapes are unchanged (``edited`` follows, with the
        carry-over report). NetBuilderError, and the run stays paused, when ``graph`` is
        invalid. False if there is nothing to resume."""
        if self.loop is None or self.state != RunState.PAUSED:
            return False
        if self._send_edit(graph, "resume"):
            self.machine.to(RunState.RUNNING)
            return True
        self.loop.resume()
        self.machine.to(RunState.RUNNING)
        return True

    def step(self, graph: engine.Graph | None = None) -> bool:
        """One more batch while paused (of ``graph``, when edited: see ``resume``)."""
        if self.loop is None or self.state != RunState.PAUSED:
            return False
        if not self._send_edit(graph, "step"):
            self.loop.step()
        return True

    def edit(self, graph: engine.Graph | None) -> bool:
        """While paused, swap in the edited ``graph`` now and stay paused (``edited``
        follows); NetBuilderError if it is invalid. False if not paused or unchanged."""
        if self.loop is None or self.state != RunState.PAUSED:
            return False
        return self._send_edit(graph, "")

    def is_edited(self, graph: engine.Graph) -> bool:
        """Whether ``graph`` differs from the model the active run trains (its layers,
        parameters, wires, frozen nodes; not positions or the training section)."""
        run = self.active
        return run is not None and model_key(graph) != model_key(run.graph)

    def _send_edit(self, graph: engine.Graph | None, then: str) -> bool:
        """Hand an edited graph to the loop (validated here first); False if unchanged."""
        if graph is None or not self.is_edited(graph):
            return False
        graph = graph.copy()
        graph.validate()  # NetBuilderError naming the node: nothing sent, still paused
        assert self.loop is not None
        self.loop.edit(graph, then)
        return True

    def stop(self) -> bool:
        """Stop after the current batch (a first kernel compile is cancelled at once)."""
        if self.loop is None:
            return False
        self.loop.stop()
        if self.state != RunState.STOPPING:
            self.machine.to(RunState.STOPPING)
        return True

    def set_lr(self, lr: float) -> bool:
        """The learning rate from the next batch on (ParamError if not a positive number);
        False if no run is going on."""
        if self.loop is None:
            return False
        self.loop.set_lr(lr)
        return True

    def detach(self) -> None:
        """The model of the active run is no longer shown: its messages still reach its
        record, and its network is not kept when it ends."""
        if self.loop is not None:
            self.detached = True

    def forget_final(self) -> None:
        """Drop the last run's network (the model it was trained from changed)."""
        self.final_net = self.final_probe = None

    # ----- without an event loop -----------------------------------------------------------
    def process_events(self, timeout_s: float = 0.0) -> int:
        """Deliver the loop's queued messages here (runners that deliver by themselves: 0)."""
        r = self.runner
        return r.process(timeout_s) if r is not None else 0

    def run_until_done(self, timeout_s: float = 120.0) -> bool:
        """Deliver messages until the run has ended; False if it still goes after
        ``timeout_s`` seconds."""
        end = time.monotonic() + timeout_s
        while self.loop is not None and time.monotonic() < end:
            self.process_events(0.05)
        return self.loop is None

    # ----- messages from the loop (session thread) -----------------------------------------
    def deliver(self, loop: RunLoop, kind: str, payload: Any) -> None:
        """A message of ``loop``; ignored when it is not the current loop's (a late one)."""
        if loop is not self.loop or self.active is None:
            return
        getattr(self, f"_on_{kind}")(payload)

    def _on_phase(self, payload: tuple[str, int, int]) -> None:
        self._emit("phase", self.phase, *payload)

    def _on_info(self, info: RunInfo) -> None:
        run = self.active
        assert run is not None
        self.info = info
        run.total_steps = info.total_steps
        run.dataset = info.dataset_meta
        run.normalizer = info.normalizer
        self._emit("info", self.info_ready, info)

    def _on_snapshot(self, snap: Snapshot) -> None:
        run = self.active
        assert run is not None
        if len(snap.steps):
            run.steps.extend(snap.steps)
            run.losses.extend(snap.losses)
            run.lrs.extend(snap.lrs)
            run.accuracies.extend(snap.accuracies)
        if snap.layer_norms is not None:
            run.add_grad_norms(*snap.layer_norms)
        if snap.event is not None and self.state == RunState.COMPILING:
            self.machine.to(RunState.RUNNING)
            run.status = "running"
        self._emit("snapshot", self.snapshot, snap)

    def _on_recorded(self, payload: Recording | str) -> None:
        """The recording so far, or why the recording ended (a budget too small)."""
        run = self.active
        assert run is not None
        if isinstance(payload, str):
            run.recording_error = payload
        else:
            run.recording = payload
        self._emit("recorded", self.recorded, run)

    def _on_epoch(self, rep: EpochReport) -> None:
        run = self.active
        assert run is not None
        e = rep.event
        if not rep.repeat:
            run.epochs.append(EpochRow(e.epoch, e.step, e.train_loss, e.train_accuracy,
                                       e.val_loss, e.val_accuracy, e.lr, e.elapsed,
                                       e.train_iou, e.val_iou))
        self._emit("epoch", self.epoch, rep)

    def _on_edit(self, out: EditOutcome) -> None:
        run = self.active
        assert run is not None
        if out.ok:
            run.graph = out.graph.copy()
            run.model_key = model_key(run.graph)
            run.edits.append(out)
        elif self.state == RunState.RUNNING:
            self.machine.to(RunState.PAUSED)  # the old network waits, nothing lost
        self._emit("edited", self.edited, run, out)

    def _on_done(self, out: RunOutcome) -> None:
        run, loop = self.active, self.loop
        assert run is not None and loop is not None
        self.last_outcome = out
        run.status = out.status
        run.message = out.message
        run.error_node = out.error_node
        run.weights = out.weights
        run.history = out.history
        run.replay = out.replay
        run.checkpoints = out.checkpoints
        self.loop = None
        self.runner = None
        self.active = None
        detached, self.detached = self.detached, False
        self.final_net = None if detached else loop.net
        self.final_probe = None if detached else loop.probe
        self.machine.to(RunState.FAILED if out.status == "failed" else RunState.FINISHED)
        self._emit("ended", self.ended, run, out, detached)
        self.store.notify_changed(run)  # last: the run's files are kept when it is announced

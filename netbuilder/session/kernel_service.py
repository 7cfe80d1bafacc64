"""The first compile of the engine's kernels on a computer, shared by the whole application:
the start-up compile of every kernel (``compile_everything``, the open model's kernels first)
and runs that need their own model's kernels now (``ensure_model``). One child process
compiles at a time (``engine.warmup.compile_in_subprocess``), so Stop or closing the window
kills it at once; a run's model jumps the queue: the start-up compile starts again with that
model first (what is compiled stays in the cache). A run waits only for its own kernels.

Progress is counted in kernels (``engine.kernel_progress``): done / to do, with a time
estimate from the rate measured so far. No Qt here; callbacks run on the caller's thread.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import engine
from engine.kernel_progress import CompileProgress, cached_kernels, kernel_dispatchers, model_kernels
from engine.warmup import FIRST_READY, POLL_INTERVAL, cache_is_warm, compile_in_subprocess, model_doc

REPORT_INTERVAL = 0.5  # s between progress reports while compiling


@dataclass(frozen=True)
class CompileFigures:
    """Kernels done of ``total`` (0: not known yet), seconds left (None: not known yet)."""

    done: int
    total: int
    seconds_left: float | None


Report = Callable[[CompileFigures], None]
Cancelled = Callable[[], bool]


def kernels_key(doc: dict[str, Any]) -> str:
    """What decides a model's kernels: its nodes, wires and training batch size."""
    batch = (doc.get("training") or {}).get("batch_size")
    core = json.dumps([model_doc(doc), batch], sort_keys=True, default=str)
    return hashlib.sha1(core.encode()).hexdigest()[:16]


class _Tracker:
    """Turns the cache's state into CompileFigures for a set of kernels, at most every
    REPORT_INTERVAL seconds."""

    def __init__(self, report: Report | None, needed: set[str] | None) -> None:
        self.report = report
        self.dispatchers = kernel_dispatchers()
        self.progress: CompileProgress | None = None
        self.last = -1e9
        if needed is not None:
            self.set_needed(needed)

    def set_needed(self, needed: set[str]) -> None:
        self.progress = CompileProgress.begin(needed, cached_kernels(self.dispatchers))
        self.last = -1e9

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.report is None or (not force and now - self.last < REPORT_INTERVAL):
            return
        self.last = now
        if self.progress is None:
            self.report(CompileFigures(0, 0, None))
            return
        done, total, left = self.progress.figures(cached_kernels(self.dispatchers), now)
        self.report(CompileFigures(done, total, left))


class KernelService:
    """Which kernels are ready in the cache, and the one compile child at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._all_ready = False
        self._ready: set[str] = set()  # kernels_key of models whose kernels are cached
        self._wishes: dict[str, dict[str, Any]] = {}  # models runs wait for, latest last
        self._runner: int | None = None  # thread ident of the one running a child
        self._plan: str | None = None  # key of the model the running child does first
        self.error = ""  # a compile child failed: runs compile what they need themselves

    # ----- state ----------------------------------------------------------------------------
    def all_ready(self) -> bool:
        """Every kernel is in the cache (a complete warm-up ran, here or before)."""
        if not self._all_ready and cache_is_warm():
            self._all_ready = True
        return self._all_ready

    def model_ready(self, doc: dict[str, Any]) -> bool:
        """Nothing to wait for before training ``doc``."""
        return self._ready_key(kernels_key(doc))

    def _ready_key(self, key: str) -> bool:
        return bool(self.error) or key in self._ready or self.all_ready()

    def _take_runner(self) -> bool:
        with self._cond:
            if self._runner is not None:
                return False
            self._runner = threading.get_ident()
            return True

    def _release_runner(self) -> None:
        with self._cond:
            self._runner = None
            self._plan = None
            self._cond.notify_all()

    def _mark_ready(self, key: str | None) -> None:
        with self._cond:
            if key is not None:
                self._ready.add(key)
            self._cond.notify_all()

    def _wait(self) -> None:
        with self._cond:
            self._cond.wait(POLL_INTERVAL)

    # ----- a run ----------------------------------------------------------------------------
    def ensure_model(self, doc: dict[str, Any], report: Report | None = None,
                     cancelled: Cancelled | None = None) -> None:
        """Return once the kernels that training ``doc`` calls are in the cache: at once when
        they are, else after the running compile got to them (it is told to do them first)
        or after a child compiled them. ``report`` gets the figures for this model's kernels;
        ``cancelled()`` (polled) raises engine.WarmupCancelledError, killing a child started
        for this run."""
        key = kernels_key(doc)
        if self._ready_key(key):
            return
        cancelled = cancelled or (lambda: False)
        with self._cond:
            self._wishes.pop(key, None)
            self._wishes[key] = doc
            self._cond.notify_all()
        tracker = _Tracker(report, None)
        found: list[set[str] | None] = []
        threading.Thread(target=lambda: found.append(model_kernels(doc)), daemon=True,
                         name="kernel list").start()

        def poll() -> bool:
            if found and tracker.progress is None and found[0] is not None:
                tracker.set_needed(found[0])
            tracker.tick()
            return cancelled()

        tracker.tick(force=True)
        try:
            while not self._ready_key(key):
                if poll():
                    raise engine.WarmupCancelledError("stopped while waiting for the kernel "
                                                      "compile")
                if not self._take_runner():
                    self._wait()
                    continue
                try:
                    self._plan = key
                    ok = compile_in_subprocess(
                        lambda _i, _n, name: self._mark_ready(key) if name == FIRST_READY
                        else None, poll, first=doc, rest=False)
                finally:
                    self._release_runner()
                if ok:
                    self._mark_ready(key)
                else:
                    self.error = "the kernel compile process failed"
        finally:
            with self._cond:
                self._wishes.pop(key, None)
                self._cond.notify_all()

    # ----- the start-up compile -------------------------------------------------------------
    def compile_everything(self, first: dict[str, Any] | None = None,
                           report: Report | None = None,
                           cancelled: Cancelled | None = None) -> None:
        """Compile every kernel into the cache, the kernels of ``first`` (the open model)
        first, and those of a model a run waits for before anything else. Returns when all
        are cached (or a child failed: ``error``); ``cancelled()`` (polled) kills the child
        and raises engine.WarmupCancelledError."""
        cancelled = cancelled or (lambda: False)
        tracker = _Tracker(report, set(kernel_dispatchers()))
        tracker.tick(force=True)
        try:
            self._compile_everything(first, tracker, cancelled)
        finally:  # the runner held when a child was killed or failed to start
            with self._cond:
                if self._runner == threading.get_ident():
                    self._runner = None
                    self._plan = None
                    self._cond.notify_all()

    def _compile_everything(self, first: dict[str, Any] | None, tracker: _Tracker,
                            cancelled: Cancelled) -> None:
        held = False  # this thread runs the children (kept from a killed child to the next)
        while not self.all_ready():
            if cancelled():
                raise engine.WarmupCancelledError("kernel compilation stopped")
            if not held and not self._take_runner():
                tracker.tick()
                self._wait()
                continue
            held = True
            with self._cond:
                waiting = [(k, d) for k, d in self._wishes.items() if k not in self._ready]
            if waiting:
                key, doc = waiting[-1]
            elif first is not None and kernels_key(first) not in self._ready:
                key, doc = kernels_key(first), first
            else:
                key, doc = None, None
            self._plan = key

            def poll(plan: str | None = key) -> bool:
                tracker.tick()
                return cancelled() or self._jumped(plan)

            def on_task(_i: int, _n: int, name: str, plan: str | None = key) -> None:
                if name == FIRST_READY:
                    self._mark_ready(plan)

            try:
                ok = compile_in_subprocess(on_task, poll, first=doc, rest=True)
            except engine.WarmupCancelledError:
                if cancelled():
                    raise
                # A run's model jumped the queue: start again with it first, keeping the
                # runner, so that the waiting run does not start a child of its own between
                # the two (one child at a time, and the same children however loaded the
                # machine is).
                continue
            self._release_runner()
            held = False
            if not ok:
                self.error = "the kernel compile process failed"
                return
            with self._cond:
                self._all_ready = True
                self._cond.notify_all()
            tracker.tick(force=True)

    def _jumped(self, plan: str | None) -> bool:
        """A run waits for a model other than the one the child does first, and the child
        may not have compiled its kernels yet."""
        with self._cond:
            return any(k != plan and k not in self._ready for k in self._wishes)


SERVICE = KernelService()


def service() -> KernelService:
    """The process's KernelService (a module attribute, so tests can give a fresh one)."""
    return SERVICE

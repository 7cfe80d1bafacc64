"""Pressing Stop while the kernels compile for the first time on a machine: the compile runs in
a child process that Stop kills at once; the run ends with a message, the window keeps
answering, and the weights of the previous run stay the ones that count. A run waits only for
its own model's kernels, counted as kernels done / to do with the time left; the start-up
compile does the open model first and lets a run's model jump the queue."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from monitorkit import click, example, open_model, wait_idle
from PySide6.QtCore import QTimer

from engine.kernel_progress import kernel_dispatchers, model_kernels
from netbuilder.session import kernel_service

warmup = sys.modules["engine.warmup"]
WAITING = "compiling the kernels this model needs (once on this computer)"


def compile_children(children: list[subprocess.Popen]) -> list[subprocess.Popen]:
    """The kernel-compile processes among the processes started (not the kernel listing)."""
    return [c for c in children if "engine.warmup" in c.args]


@pytest.fixture
def cold_machine(tmp_path, monkeypatch):
    """cold_machine() -> the list of processes started from then on, on a machine that never
    compiled: an empty kernel cache and a fresh kernel service in this process."""

    def make() -> list[subprocess.Popen]:
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-cache"))
        monkeypatch.setattr(kernel_service, "SERVICE", kernel_service.KernelService())
        children: list[subprocess.Popen] = []
        real_popen = subprocess.Popen

        def popen(*args, **kwargs):
            children.append(real_popen(*args, **kwargs))
            return children[-1]
        monkeypatch.setattr(warmup.subprocess, "Popen", popen)
        return children
    return make


def test_stop_during_the_first_compile_ends_at_once_and_keeps_the_last_good_weights(
        make_window, qtbot, cold_machine):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    first = tc.store.latest()
    assert first.status == "completed" and first.weights is not None
    kept = {k: v.copy() for k, v in first.weights.items()}

    children = cold_machine()
    needed = model_kernels(example("xor_mlp", epochs=3))

    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: WAITING in tc.panel.status.text()
                    and tc.panel.progress.maximum() == len(needed), timeout=60_000)
    assert re.search(rf": \d+/{len(needed)} · (about .* left|time left not known yet)",
                     tc.panel.status.text()), tc.panel.status.text()
    before = len(ticks)
    qtbot.wait(500)  # the child compiles; the GUI thread keeps serving events
    assert len(ticks) - before >= 5
    assert tc.panel.stop_button.isEnabled()
    click(qtbot, tc.panel.stop_button)
    assert tc.state == "stopping"
    wait_idle(qtbot, tc, timeout=10_000)
    timer.stop()

    (child,) = compile_children(children)
    assert child.returncode is not None and child.returncode != 0  # killed mid-compile
    assert not warmup.cache_is_warm()
    assert not kernel_service.service().model_ready(example("xor_mlp", epochs=3))
    second = tc.store.latest()
    assert second is not first and second.status == "stopped"
    assert "compiling" in second.message and "nothing was trained" in second.message
    assert second.weights is None and len(second.steps) == 0
    assert tc.panel.message.isVisible() and "nothing was trained" in tc.panel.message.text()
    assert tc.panel.start_button.isEnabled() and drv.w.edit_lock is None
    assert drv.errors == []
    assert drv.w.exports.trained_run() is first
    for k, v in first.weights.items():
        assert np.array_equal(v, kept[k]), k


def test_closing_the_window_during_the_first_compile_kills_the_compile(
        make_window, qtbot, monkeypatch, cold_machine):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    children = cold_machine()
    monkeypatch.setattr(drv.w, "maybe_save", lambda: True)
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: WAITING in tc.panel.status.text(), timeout=60_000)
    wk = tc.worker
    assert drv.w.close()
    assert wk.isFinished()  # shutdown waited for the thread: no running QThread is destroyed
    (child,) = compile_children(children)
    assert child.returncode is not None and child.returncode != 0


def test_a_first_start_compiles_in_the_background_with_a_bar(make_window, qtbot, monkeypatch):
    _drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    monkeypatch.setattr(kernel_service, "SERVICE", kernel_service.KernelService())
    monkeypatch.setattr(kernel_service, "cache_is_warm", lambda: False)
    seen = []
    tc.prep.follow = lambda *a: seen.append(a)
    assert tc.prep.start()
    assert tc.prep.bar.isVisible()
    qtbot.waitUntil(lambda: not tc.prep.running, timeout=300_000)
    qtbot.waitUntil(lambda: not tc.prep.bar.isVisible(), timeout=5_000)
    assert kernel_service.service().all_ready() and tc.prep.thread.error == ""
    n = len(kernel_dispatchers())
    assert seen[-1] == (n, n, 0.0)  # every kernel is in the cache
    assert not tc.prep.start()  # once per process


def test_the_bar_counts_kernels_and_the_time_left(make_window, qtbot, cold_machine):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    cold_machine()
    assert tc.prep.start()
    n = len(kernel_dispatchers())
    qtbot.waitUntil(lambda: tc.prep.bar.maximum() == n and tc.prep.bar.value() >= 1,
                    timeout=120_000)
    qtbot.waitUntil(lambda: "about" in tc.prep.bar.format(), timeout=60_000)
    assert re.fullmatch(rf"kernels \d+/{n} · about \d+(:\d\d| s) left",
                        tc.prep.bar.format()), tc.prep.bar.format()
    assert "Compiling NetBuilder's kernels" in tc.prep.bar.toolTip()
    drv.w.close()


def test_a_run_started_during_the_background_compile_waits_and_stops_at_once(
        make_window, qtbot, monkeypatch, cold_machine):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    cold_machine()
    assert tc.prep.start(first=example("lenet5"))  # a slow model first: the run must wait
    qtbot.waitUntil(lambda: tc.prep.bar.maximum() > 0 and tc.prep.bar.value() >= 1,
                    timeout=60_000)
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: WAITING in tc.panel.status.text()
                    and tc.panel.progress.maximum() > 0, timeout=60_000)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc, timeout=10_000)
    run = tc.store.latest()
    assert run.status == "stopped" and "compiling" in run.message and run.weights is None
    assert tc.prep.running  # the start-up compile goes on for the next run
    monkeypatch.setattr(drv.w, "maybe_save", lambda: True)
    assert drv.w.close()
    assert not tc.prep.running and tc.prep.thread.isFinished()
    assert not kernel_service.service().all_ready()


def test_start_trains_as_soon_as_its_models_kernels_are_ready_while_the_rest_compiles(
        make_window, qtbot, monkeypatch, cold_machine):
    """The start-up compile began with another model (LeNet-5, slow to compile); Start on
    xor_mlp makes it start again with xor_mlp's kernels first, and the run trains as soon as
    those are in the cache, long before every kernel is."""
    drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    children = cold_machine()
    assert tc.prep.start(first=example("lenet5"))
    qtbot.waitUntil(lambda: tc.prep.bar.value() >= 1, timeout=60_000)
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: WAITING in tc.panel.status.text(), timeout=60_000)
    wait_idle(qtbot, tc, timeout=240_000)
    run = tc.store.latest()
    assert run.status == "completed" and run.weights is not None and len(run.steps) > 0
    assert tc.prep.running and not kernel_service.service().all_ready()  # the rest goes on
    compiles = compile_children(children)
    assert len(compiles) == 2 and compiles[0].returncode not in (None, 0)  # restarted
    assert compiles[1].returncode is None  # ... and still compiling the rest
    monkeypatch.setattr(drv.w, "maybe_save", lambda: True)
    assert drv.w.close()
    assert compiles[1].returncode is not None and not tc.prep.running

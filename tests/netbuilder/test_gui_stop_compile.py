"""Pressing Stop while the kernels compile for the first time on a machine: the compile runs in
a child process that Stop kills at once; the run ends with a message, the window keeps
answering, and the weights of the previous run stay the ones that count."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from monitorkit import click, example, open_model, wait_idle
from PySide6.QtCore import QTimer

from netbuilder.training import worker as worker_module

warmup = sys.modules["engine.warmup"]


@pytest.fixture
def cold_machine(tmp_path, monkeypatch):
    """cold_machine() -> the list of compile processes started from then on, on a machine
    that never compiled: an empty kernel cache and nothing loaded in this process."""

    def make() -> list[subprocess.Popen]:
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-cache"))
        monkeypatch.setattr(worker_module, "_warmed", False)
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

    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    click(qtbot, tc.panel.start_button)
    long_task = [n for n, _f in warmup.warmup_tasks()].index("fused convolution")
    qtbot.waitUntil(lambda: f"{long_task}/" in tc.panel.status.text(), timeout=60_000)
    assert "compiling kernels" in tc.panel.status.text()
    assert tc.panel.progress.maximum() == len(warmup.warmup_tasks())
    before = len(ticks)
    qtbot.wait(500)  # the child compiles; the GUI thread keeps serving events
    assert len(ticks) - before >= 5
    assert tc.panel.stop_button.isEnabled()
    click(qtbot, tc.panel.stop_button)
    assert tc.state == "stopping"
    wait_idle(qtbot, tc, timeout=10_000)
    timer.stop()

    (child,) = children
    assert child.returncode is not None and child.returncode != 0  # killed mid-compile
    assert not warmup.cache_is_warm() and worker_module._warmed is False
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
    qtbot.waitUntil(lambda: "compiling kernels" in tc.panel.status.text(), timeout=60_000)
    wk = tc.worker
    assert drv.w.close()
    assert wk.isFinished()  # shutdown waited for the thread: no running QThread is destroyed
    (child,) = children
    assert child.returncode is not None and child.returncode != 0


def test_a_first_start_compiles_in_the_background_with_a_bar(make_window, qtbot, monkeypatch):
    from netbuilder.training import kernel_prep

    _drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    monkeypatch.setattr(kernel_prep, "cache_is_warm", lambda: False)
    monkeypatch.setattr(worker_module, "_warmed", False)
    seen = []
    tc.prep.follow = lambda *a: seen.append(a)
    assert tc.prep.start()
    assert tc.prep.bar.isVisible()
    qtbot.waitUntil(lambda: not tc.prep.running, timeout=120_000)
    qtbot.waitUntil(lambda: not tc.prep.bar.isVisible(), timeout=5_000)
    assert worker_module.kernels_ready() and tc.prep.thread.error == ""
    n = len(warmup.warmup_tasks())
    assert seen[-1][:2] == (n, n)
    assert not tc.prep.start()  # once per process


def test_a_run_started_during_the_background_compile_waits_and_stops_at_once(
        make_window, qtbot, monkeypatch, cold_machine):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    cold_machine()
    assert tc.prep.start()
    qtbot.waitUntil(lambda: tc.prep.bar.maximum() > 0 and tc.prep.bar.value() >= 1,
                    timeout=60_000)
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: "compiling kernels for this computer" in tc.panel.status.text()
                    and tc.panel.progress.maximum() > 0, timeout=60_000)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc, timeout=10_000)
    run = tc.store.latest()
    assert run.status == "stopped" and "compiling" in run.message and run.weights is None
    assert tc.prep.running  # the start-up compile goes on for the next run
    monkeypatch.setattr(drv.w, "maybe_save", lambda: True)
    assert drv.w.close()
    assert not tc.prep.running and tc.prep.thread.isFinished()
    assert not worker_module.kernels_ready()

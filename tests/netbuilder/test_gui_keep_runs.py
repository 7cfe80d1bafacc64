"""Trained runs are never lost without a word: quitting asks to save them (Save / Discard /
Cancel), and a killed session's runs come back with its model after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
from guidocs import small_doc
from monitorkit import click, example, open_model, wait_idle, wait_steps
from PySide6.QtCore import Qt

import engine


def quit_by_keyboard(drv, qtbot):
    """Ctrl+Q, as the user presses it (in the active window: a window of an earlier test
    going away may have left none active)."""
    drv.w.activateWindow()
    qtbot.waitUntil(drv.w.isActiveWindow)
    drv.view.setFocus()
    qtbot.keyClick(drv.view, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.wait(20)


def trained(make_window, qtbot, epochs=2):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=epochs))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "completed"
    return drv, tc


def test_quitting_with_an_unsaved_run_asks_and_cancel_keeps_the_window(make_window, qtbot):
    drv, _tc = trained(make_window, qtbot)
    drv.runs_answer = "cancel"
    quit_by_keyboard(drv, qtbot)
    assert drv.runs_asked == [["Run 1"]]
    assert drv.w.isVisible()
    drv.runs_answer = "discard"  # let the test's teardown close the window


def test_save_writes_a_bundle_per_run_then_quits(make_window, qtbot, tmp_path):
    drv, tc = trained(make_window, qtbot)
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    asked = []
    tc.choose_bundle_path = lambda run: asked.append(run.name) or str(
        tmp_path / f"xor_{run.number}.nbmodel")
    drv.runs_answer = "save"
    quit_by_keyboard(drv, qtbot)
    assert drv.runs_asked == [["Run 1", "Run 2"]] and asked == ["Run 1", "Run 2"]
    assert not drv.w.isVisible()
    for n, run in ((1, tc.store.runs[0]), (2, tc.store.runs[1])):
        b = engine.load_bundle(tmp_path / f"xor_{n}.nbmodel")
        for k, v in run.weights.items():
            assert np.array_equal(b.net.state_dict()[k], v)


def test_cancelling_the_save_dialog_cancels_the_quit(make_window, qtbot):
    drv, tc = trained(make_window, qtbot)
    tc.choose_bundle_path = lambda run: None
    drv.runs_answer = "save"
    drv.w.act_quit.trigger()
    assert drv.w.isVisible() and drv.runs_asked == [["Run 1"]]
    drv.runs_answer = "discard"  # let the test's teardown close the window


def test_discard_quits_and_saved_runs_are_not_asked_about(make_window, qtbot, tmp_path):
    drv, tc = trained(make_window, qtbot)
    tc.choose_bundle_path = lambda run: str(tmp_path / "kept.nbmodel")
    click(qtbot, tc.runs_panel.save_button)
    assert (tmp_path / "kept.nbmodel").is_file()
    drv.w.act_quit.trigger()
    assert drv.runs_asked == [] and not drv.w.isVisible()  # nothing left to lose

    drv2, _tc2 = trained(make_window, qtbot)
    drv2.runs_answer = "discard"
    drv2.w.act_quit.trigger()
    assert drv2.runs_asked == [["Run 1"]] and not drv2.w.isVisible()


def test_a_run_still_training_stops_and_is_saved(make_window, qtbot, tmp_path):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=5000))
    click(qtbot, tc.panel.start_button)
    wait_steps(qtbot, tc, 20)
    tc.choose_bundle_path = lambda run: str(tmp_path / "live.nbmodel")
    drv.runs_answer = "save"
    drv.w.act_quit.trigger()
    assert drv.runs_asked == [["Run 1 (still training: it stops)"]]
    assert not drv.w.isVisible()
    run = tc.store.latest()
    assert run.status == "stopped" and run.saved_to == tmp_path / "live.nbmodel"
    assert engine.load_bundle(run.saved_to).history["batch_step"][-1] == int(run.steps.values[-1])


# ----- crash recovery ---------------------------------------------------------------------
# The child trains the model, then edits it without saving, and is killed once both the run
# and the edit are in its recovery folder.
CHILD = r"""
import json, sys
from PySide6.QtWidgets import QApplication
import engine
from netbuilder.document import Document, SetParams
from netbuilder.mainwindow import MainWindow
from netbuilder.recovery import RecoveryStore

doc, rec, examples = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
app = QApplication([])
w = MainWindow(Document(engine.Graph.from_dict(doc, validate=False)),
               recovery=RecoveryStore(rec), examples_dir=examples, autosave_ms=10**9)
w.show()
tc = w.training


def done(run):
    if run.status != "completed":
        return
    weights = {k: v.tolist() for k, v in run.weights.items()}
    w.push(SetParams("hidden", w.document.graph.nodes["hidden"].params, {"units": 9}))
    w.autosave()
    print("trained " + json.dumps({"weights": weights, "steps": len(run.steps)}), flush=True)


tc.store.changed.connect(done)
assert tc.data.wait_loaded(60)
tc.start()
app.exec()
"""


def _train_and_kill(rec, examples) -> dict:
    doc = example("xor_mlp", epochs=3)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(doc), str(rec),
                             str(examples)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 600  # a first start compiles the kernels
        while not any(ln.startswith("trained ") for ln in lines):
            assert proc.poll() is None, "the child window died on its own"
            assert time.monotonic() < deadline, "the child did not finish training"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(10)
        proc.stdout.close()
    line = next(ln for ln in lines if ln.startswith("trained "))
    return json.loads(line.partition(" ")[2])


def test_a_killed_sessions_runs_come_back_with_its_model(make_window, qtbot, tmp_path):
    rec, examples = tmp_path / "rec", tmp_path / "examples"
    examples.mkdir()
    child = _train_and_kill(rec, examples)
    assert len(list(rec.glob("session-*-run1.nbmodel"))) == 1
    drv = make_window(recovery_dir=rec)
    offered = []
    drv.w.ask_restore = lambda entry: offered.append(entry.describe()) or True
    assert drv.w.check_recovery()
    assert "1 trained run not saved yet" in offered[0] and "(5 nodes)" in offered[0]
    assert drv.graph.nodes["hidden"].params == {"units": 9}  # the unsaved edit
    tc = drv.w.training
    (run,) = tc.store.runs
    assert run.status == "completed" and len(run.steps) == child["steps"]
    for k, v in child["weights"].items():
        assert np.allclose(run.weights[k], np.array(v, np.float32))
    assert tc.runs_panel.tree.topLevelItemCount() == 1
    assert tc.runs_panel.save_button.isEnabled() or tc.runs_panel.current() is None
    assert "trained run" in drv.w.status_message.text()
    # the restored work is protected again, under this session; the old files are gone
    assert sorted(p.name for p in rec.iterdir()) == sorted(
        [drv.w.recovery.file.name, drv.w.recovery.run_file(run.number).name])
    # quitting now asks about the restored run: it exists nowhere else
    drv.w.act_quit.trigger()
    assert drv.runs_asked == [[run.name]]


def test_runs_of_a_saved_model_are_restored_without_replacing_the_canvas(make_window, qtbot,
                                                                            tmp_path):
    from netbuilder.recovery import RecoveryStore

    rec = tmp_path / "rec"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    drv, tc = open_model(make_window, example("xor_mlp", epochs=2))
    drv.w.recovery = RecoveryStore(rec, dead.pid)  # this session's files, as if it died
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert drv.w.recovery.run_file(1).is_file() and not drv.w.recovery.file.exists()
    weights = tc.store.latest().weights
    drv.w.recovery = RecoveryStore(tmp_path / "elsewhere")  # the "crash": files stay

    doc = small_doc([("a", "Input", {"shape": [3]}), ("b", "Output", {"loss": "mse"})],
                    [("a", "b", 0)])
    nxt = make_window(doc, recovery_dir=rec)
    offered = []
    nxt.w.ask_restore = lambda entry: offered.append(entry.describe()) or True
    assert not nxt.w.check_recovery()  # no model to restore: the canvas stays as it is
    assert set(nxt.graph.nodes) == {"a", "b"}
    assert offered and offered[0].startswith("1 trained run not saved yet")
    (run,) = nxt.w.training.store.runs
    for k, v in weights.items():
        assert np.array_equal(run.weights[k], v)

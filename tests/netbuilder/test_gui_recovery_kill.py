"""A NetBuilder window killed (SIGKILL) with unsaved work: the next window offers the recovery
file and restores exactly the work last written to it, at any moment of the kill."""

from __future__ import annotations

import difflib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
from guidocs import small_doc

DOC = small_doc(
    [("in", "Input", {"shape": [1, 8, 8]}), ("c", "Conv2D", {"filters": 3, "kernel_size": 3}),
     ("fl", "Flatten", {}), ("d", "Dense", {"units": 4}), ("out", "Output", {})],
    [("in", "c", 0), ("c", "fl", 0), ("fl", "d", 0), ("d", "out", 0)], name="crashy")

# The child edits its document every 30 ms and writes the recovery file after each edit;
# it announces each state ("about") before writing it and confirms ("done") after.
CHILD = r"""
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import engine
from netbuilder.document import AddNodes, Document, NodeSpec, SetParams
from netbuilder.mainwindow import MainWindow
from netbuilder.recovery import RecoveryStore

doc, rec, examples = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
app = QApplication([])
w = MainWindow(Document(engine.Graph.from_dict(doc, validate=False)),
               recovery=RecoveryStore(rec), examples_dir=examples, autosave_ms=10**9)
w.show()
step = [0]


def edit():
    step[0] += 1
    if step[0] % 3 == 0:  # a new card, well away from the others
        w.push(AddNodes([NodeSpec(f"relu{step[0]}", "ReLU", {}, (400.0 + 300 * step[0], 0.0))]))
    else:
        old = dict(w.document.graph.nodes["d"].params)
        w.push(SetParams("d", old, {**old, "units": 4 + step[0]}))
    state = json.dumps(w.document.graph.to_dict())
    print("about " + state, flush=True)
    w.autosave()
    print("done " + state, flush=True)


timer = QTimer()
timer.timeout.connect(edit)
timer.start(30)
app.exec()
"""


def _run_and_kill(rec, examples, delay: float) -> tuple[list[dict], int]:
    """Start the child, kill it ``delay`` s after its first recovery write; return the states
    it announced in order and the index of the last one confirmed written."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(DOC), str(rec),
                             str(examples)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(ln.startswith("done ") for ln in lines) and time.monotonic() < deadline:
            assert proc.poll() is None, "the child window died on its own"
            time.sleep(0.01)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(10)
        proc.stdout.close()
    lines = [ln.rstrip("\n") for ln in lines]
    announced, done = [], -1
    for ln in lines:
        kind, _, state = ln.partition(" ")
        if kind == "about":
            announced.append(json.loads(state))
        elif kind == "done" and state:
            assert json.loads(state) == announced[-1]
            done = len(announced) - 1
    return announced, done


def test_killed_window_work_is_restored(make_window, tmp_path):
    rng = np.random.default_rng(7)
    examples = tmp_path / "examples"
    examples.mkdir()
    most = -1
    for trial, delay in enumerate([0.6, *rng.uniform(0.0, 1.0, 2)]):
        rec = tmp_path / f"rec{trial}"
        announced, done = _run_and_kill(rec, examples, float(delay))
        most = max(most, done)
        files = list(rec.glob("session-*.json"))
        assert len(files) == 1
        nxt = make_window(recovery_dir=rec)
        offered = []
        nxt.w.ask_restore = lambda entry, offered=offered: offered.append(entry) or True
        assert nxt.w.check_recovery()
        restored = nxt.graph.to_dict()
        # the last state confirmed written, or one announced after it (killed mid-write)
        if restored not in announced[max(done, 0):]:
            want = json.dumps(announced[done], indent=1, sort_keys=True).splitlines()
            got = json.dumps(restored, indent=1, sort_keys=True).splitlines()
            raise AssertionError("\n".join(difflib.unified_diff(want, got, lineterm="")))
        assert "crashy" in offered[0].describe()
        assert set(nxt.w.scene.nodes) == set(nxt.graph.nodes)
        assert nxt.w.isWindowModified()
        assert not files[0].exists() and nxt.w.recovery.file.is_file()
        nxt.w.recovery.clear()
    assert most >= 3, "the child should have written several recovery files before the kill"

"""The run session without Qt: a whole run driven through ``RunSession`` in an interpreter
where PySide6 cannot be imported, the state machine's transitions, and pause / step /
resume / stop / a NaN driven through a real training loop (no QApplication)."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from monitorkit import example, relu_xor

import engine
from netbuilder.session import RunSession, RunState, StateMachine, TransitionError
from netbuilder.session.events import Event
from netbuilder.session.state import TRANSITIONS

ROOT = Path(__file__).resolve().parents[2]
SESSION = ROOT / "netbuilder" / "session"

HEADLESS_RUN = r"""
import json, sys
sys.modules["PySide6"] = None  # any import of Qt fails
import engine
from netbuilder.session import RunSession

doc = json.loads(sys.argv[1])
graph = engine.Graph.from_dict(doc)
session = RunSession()
seen = []
def note(kind, payload):
    if kind == "state":
        seen.append("state:" + str(payload[1]))
    elif kind == "snapshot":
        seen.append("snapshot:" + ",".join(str(int(s)) for s in payload.steps))
    elif kind == "epoch":
        seen.append("epoch:%d" % payload.event.epoch)
    else:
        seen.append(kind)
session.any.connect(note)
run = session.start(graph, graph.training)
done = session.run_until_done(timeout_s=300)
qt = sorted(m for m, v in sys.modules.items() if m.startswith(("PySide6", "shiboken"))
            and v is not None)
print(json.dumps({"done": done, "state": str(session.state), "status": run.status,
                  "losses": [float(v) for v in run.losses.values],
                  "steps": [int(v) for v in run.steps.values],
                  "total_steps": run.total_steps, "epochs": len(run.epochs),
                  "weights": run.weights is not None, "in_store": session.store.runs == [run],
                  "events": seen, "qt": qt}))
"""


def run_headless(doc: dict) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", HEADLESS_RUN, json.dumps(doc)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_whole_run_goes_through_the_session_without_qt():
    r = run_headless(example("xor_mlp", epochs=20))
    assert r["qt"] == []
    assert r["done"] and r["state"] == "finished" and r["status"] == "completed"
    assert r["in_store"] and r["weights"]
    # the loss falls: the last batches are far below the first ones
    losses = r["losses"]
    assert len(losses) == r["total_steps"] == len(r["steps"]) > 40
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert r["steps"] == list(range(1, r["total_steps"] + 1))  # every batch, once, in order
    # the events, in order: start, the run's facts, then batches and epochs, then the end
    ev = r["events"]
    assert ev[:2] == ["state:compiling", "started"]
    assert ev[-2:] == ["state:finished", "ended"]
    first_snap = next(i for i, e in enumerate(ev) if e.startswith("snapshot:"))
    assert ev.index("info") < first_snap
    assert ev[first_snap - 1] == "state:running"
    epochs = [int(e.split(":")[1]) for e in ev if e.startswith("epoch:")]
    assert epochs == list(range(1, r["epochs"] + 1)) and r["epochs"] == 20
    snapped = [int(s) for e in ev if e.startswith("snapshot:") for s in e.split(":")[1].split(",")
               if s]
    assert snapped == r["steps"]  # the snapshots carried each batch once, in order


def test_the_session_package_imports_neither_qt_nor_the_views():
    for path in sorted(SESSION.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                assert not name.startswith(("PySide6", "shiboken6", "pyqtgraph")), (path, name)
                assert not name.startswith(("..", "netbuilder")), (path, name)  # only itself


# ----- the state machine -------------------------------------------------------------------
def test_the_state_machine_allows_the_run_lifecycle_and_reports_each_change():
    m = StateMachine()
    seen = []
    m.changed.connect(lambda old, new: seen.append((str(old), str(new))))
    for s in ("compiling", "running", "paused", "running", "stopping", "finished",
              "compiling", "paused", "failed", "idle"):
        m.to(RunState(s))
    assert seen[0] == ("idle", "compiling") and seen[-1] == ("failed", "idle")
    assert len(seen) == 10 and m.state == RunState.IDLE


@pytest.mark.parametrize("old,new", [("idle", "running"), ("idle", "paused"),
                                     ("idle", "finished"), ("running", "compiling"),
                                     ("stopping", "running"), ("stopping", "paused"),
                                     ("finished", "running"), ("failed", "paused")])
def test_the_state_machine_refuses_what_cannot_follow(old, new):
    m = StateMachine()
    m.state = RunState(old)
    seen = []
    m.changed.connect(lambda *a: seen.append(a))
    with pytest.raises(TransitionError, match=f"from {old} to {new}"):
        m.to(RunState(new))
    assert m.state == RunState(old) and seen == []


def test_every_state_has_a_way_on_and_only_active_states_are_active():
    assert set(TRANSITIONS) == set(RunState)
    assert all(TRANSITIONS[s] for s in RunState)
    assert {s for s in RunState if s.active} == {RunState.COMPILING, RunState.RUNNING,
                                                 RunState.PAUSED, RunState.STOPPING}


def test_events_call_their_callbacks_in_order_until_disconnected():
    ev = Event("x")
    got = []
    off = ev.connect(lambda v: got.append(("a", v)))
    ev.connect(lambda v: got.append(("b", v)))
    ev.emit(1)
    off()
    ev.emit(2)
    assert got == [("a", 1), ("b", 1), ("b", 2)] and len(ev) == 1
    with pytest.raises(TypeError):
        ev.connect(42)


# ----- a real loop, driven through the session ---------------------------------------------
def pump_until(session: RunSession, cond, timeout_s: float = 120.0) -> None:
    """Deliver the loop's messages until ``cond()`` (a wait, not a timing assertion)."""
    import time
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, "the session never got there"
        session.process_events(0.02)


def start(doc: dict, paused: bool = False) -> tuple[RunSession, object, list]:
    g = engine.Graph.from_dict(doc)
    s = RunSession()
    states: list[str] = []
    s.state_changed.connect(lambda old, new: states.append(str(new)))
    run = s.start(g, g.training, paused=paused)
    return s, run, states


def test_pause_step_resume_and_stop_through_the_session():
    s, run, states = start(example("xor_mlp", epochs=10_000))
    pump_until(s, lambda: s.state == RunState.RUNNING and len(run.steps) >= 3)
    assert s.pause() and s.state == RunState.PAUSED
    pump_until(s, lambda: s.loop.trainer.status == "paused")
    s.process_events(0.05)
    n = len(run.steps)
    assert n == s.loop.trainer.step  # every trained batch reached the record
    assert not s.pause() and s.state == RunState.PAUSED  # pausing twice: nothing to do
    assert s.step()
    pump_until(s, lambda: len(run.steps) == n + 1)
    assert s.state == RunState.PAUSED
    assert s.resume() and s.state == RunState.RUNNING
    pump_until(s, lambda: len(run.steps) > n + 3)
    assert s.stop() and s.state == RunState.STOPPING
    assert s.run_until_done(120)
    assert states == ["compiling", "running", "paused", "running", "stopping", "finished"]
    assert run.status == "stopped" and s.last_outcome.status == "stopped"
    assert run.weights is not None and s.active is None and s.loop is None
    assert s.final_net is not None and s.final_probe is not None
    assert not s.resume() and not s.stop() and not s.step()  # no run: nothing to control


def test_a_paused_start_trains_one_batch_and_waits():
    s, run, states = start(example("xor_mlp", epochs=50), paused=True)
    assert states == ["compiling", "paused"]
    pump_until(s, lambda: len(run.steps) == 1 and s.loop.trainer.status == "paused")
    assert s.state == RunState.PAUSED
    with pytest.raises(RuntimeError, match="already"):
        s.start(engine.Graph.from_dict(example("xor_mlp")), {})
    s.stop()
    assert s.run_until_done(120) and s.state == RunState.FINISHED and len(run.steps) >= 1


def test_a_nan_fails_the_run_and_keeps_the_last_good_weights():
    doc = relu_xor(optimizer={"type": "sgd", "lr": 1e10, "momentum": 0.9})
    s, run, states = start(doc)
    ended, order = [], []
    s.ended.connect(lambda r, out, detached: ended.append((r, out.status, detached)))
    s.ended.connect(lambda *a: order.append("ended"))
    s.store.changed.connect(lambda r: order.append(f"store:{r.status}"))
    assert s.run_until_done(120)
    assert states[-1] == "failed" and s.state == RunState.FAILED
    assert ended == [(run, "failed", False)]
    assert order == ["ended", "store:failed"]  # the store announces the record last
    out = s.last_outcome
    assert run.status == "failed" and "nan" in out.message.lower()
    assert out.error_node in doc_ids(doc) and run.error_node == out.error_node
    assert run.weights is not None and all(np.isfinite(w).all() for w in run.weights.values())
    # a new run may start after a failure
    s.start(engine.Graph.from_dict(example("xor_mlp", epochs=1)), example("xor_mlp",
                                                                           epochs=1)["training"])
    assert s.state == RunState.COMPILING
    assert s.run_until_done(120) and s.state == RunState.FINISHED


def test_messages_of_a_run_no_longer_current_are_ignored():
    s, run, _ = start(example("xor_mlp", epochs=1))
    old = s.loop
    assert s.run_until_done(120)
    steps = len(run.steps)
    s.deliver(old, "done", s.last_outcome)  # a late message of the finished run
    s.deliver(old, "snapshot", None)
    assert s.state == RunState.FINISHED and len(run.steps) == steps and s.active is None


def test_a_detached_run_keeps_recording_but_not_its_network():
    s, run, _ = start(example("xor_mlp", epochs=10_000))
    pump_until(s, lambda: len(run.steps) >= 2)
    s.detach()
    s.stop()
    got = []
    s.ended.connect(lambda r, out, detached: got.append(detached))
    assert s.run_until_done(120)
    assert got == [True] and not s.detached
    assert run.status == "stopped" and run.weights is not None
    assert s.final_net is None and s.final_probe is None


def doc_ids(doc: dict) -> set[str]:
    return {n["id"] for n in doc["nodes"]}

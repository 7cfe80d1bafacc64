"""A process killed at a random moment while saving leaves the old or the new file, whole."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

import engine

WRITER = r"""
import sys, engine
from graphdocs import chain_doc
path = sys.argv[1]
docs = [chain_doc([8], [("Dense", {"units": 16 + i})] * 40) for i in range(2)]
graphs = [engine.Graph.from_dict(d) for d in docs]
for g, tag in zip(graphs, "ab"):
    g.name = tag
    g.training = {"note": tag * 400000}   # big enough that a write takes a while
print("ready", flush=True)
i = 0
while True:
    engine.save_graph(graphs[i % 2], path)
    i += 1
"""


def test_killed_saves_leave_a_whole_file(tmp_path):
    path = tmp_path / "model.json"
    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = np.random.default_rng(0)
    names_seen = set()
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.005, 0.2)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not path.exists():
            continue
        doc = json.loads(path.read_text())          # never a torn file
        g = engine.Graph.from_dict(doc)
        assert g.training["note"] == g.name * 400000
        names_seen.add(g.name)
    assert names_seen, "the writer never finished a save"


def test_a_later_save_removes_temp_files_a_killed_save_left(tmp_path):
    path = tmp_path / "model.json"
    stale = tmp_path / ".model.json.abc123.tmp"
    fresh = tmp_path / ".model.json.def456.tmp"
    stale.write_text("half a file")
    fresh.write_text("a save under way elsewhere")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    engine.save_graph(engine.Graph.from_dict(
        {"format": "netbuilder.graph", "version": 1, "nodes": [], "edges": []},
        validate=False), path)
    assert not stale.exists()
    assert fresh.exists()

"""A process killed at a random moment while saving a bundle leaves the old or the new bundle,
whole: its manifest, model and weights always belong to the same save."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

import engine

WRITER = r"""
import os, sys, time, numpy as np, engine
from graphdocs import chain_doc
path = sys.argv[1]
real_fdopen = os.fdopen


class SlowDisk:
    # writes land 64 KB at a time, so that kills often fall inside the file write
    def __init__(self, fh):
        self.fh = fh

    def write(self, data):
        view = memoryview(data)
        for i in range(0, len(view), 65536):
            self.fh.write(view[i:i + 65536])
            self.fh.flush()
            time.sleep(0.001)
        return len(view)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.fh.__exit__(*exc)


os.fdopen = lambda fd, *a, **k: SlowDisk(real_fdopen(fd, *a, **k))
nets = []
for tag, seed in (("a", 1), ("b", 2)):
    g = engine.Graph.from_dict(chain_doc([256], [("Dense", {"units": 256})] * 12))
    g.name = tag
    net = engine.compile(g, seed=seed)
    state = net.state_dict()
    nets.append((net, tag, float(sum(np.float64(v).sum() for v in state.values()))))
print("ready", flush=True)
i = 0
while True:
    net, tag, checksum = nets[i % 2]
    engine.save_bundle(path, net, tag=tag, checksum=checksum, saves=i)
    print(f"saved {i}", flush=True)
    i += 1
"""


def test_killed_bundle_saves_leave_a_whole_bundle(tmp_path):
    path = tmp_path / "model.nbmodel"
    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(14):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        # wait for a few whole saves first, so that a loaded machine still sees several
        # different ones; the kill then lands at a random moment of a later save
        for _ in range(int(rng.integers(1, 4))):
            assert proc.stdout.readline().startswith("saved ")
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if not path.exists():
            continue
        b = engine.load_bundle(path)  # never a torn zip, never a mixture of two saves
        tag = b.manifest["tag"]
        assert b.graph.name == tag and b.name == tag
        total = float(sum(np.float64(v).sum() for v in b.weights.values()))
        assert total == b.manifest["checksum"]
        seen.add((tag, b.manifest["saves"]))
    assert len(seen) >= 2, f"too few completed saves were seen: {seen}"
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(n.startswith(".model.nbmodel.") and n.endswith(".tmp") for n in leftovers)

"""Where a cold first training step spends its compile time, function by function.

    python benchmarks/profile_compile.py [--example lenet5] [--batch 64] [--passes]

Runs, in a fresh interpreter whose user cache folder is a new empty temporary folder (the
user's caches are left alone), the first training step of a shipped example (SGD with
momentum) and prints every function Numba compiled on the way, nested under the function whose
compile asked for it, with its CPU seconds inclusive and exclusive of those nested compiles
(a parallel kernel's exclusive time holds its parfor lowering, which compiles and links its
loop body and everything that body calls again). ``--passes`` adds, for each kernel of
``engine.kernels``, Numba's pipeline times by pass (wall seconds, so they include the
machine's load and the nested compiles). Compiling is single-threaded: the CPU seconds are
what a quiet machine would wait; the load average is printed beside them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, machine_description

clean_environment()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
root, example, batch, passes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
sys.path.insert(0, root)
import engine
from numba.core import event
rows, stack = [], []

class Timer(event.Listener):
    def on_start(self, ev):
        stack.append([time.process_time(), 0.0])
        rows.append(None)
        stack[-1].append(len(rows) - 1)

    def on_end(self, ev):
        start, inner, slot = stack.pop()
        dt = time.process_time() - start
        d = ev.data["dispatcher"]
        rows[slot] = (len(stack), f"{d.py_func.__module__}.{d.py_func.__qualname__}", dt,
                      dt - inner, ", ".join(str(a) for a in ev.data["args"])[:110])
        if stack:
            stack[-1][1] += dt

event.register("numba:compile", Timer())
import numpy as np
from engine.resources import example_path
net = engine.compile(engine.load_graph(str(example_path(example))))
from engine.gradcheck import random_batch
xs, ys = random_batch(net, batch, np.random.default_rng(0))
xs = {k: v.astype(np.float32) for k, v in xs.items()}
t1 = time.perf_counter()
net.train_step(xs, ys, engine.SGD(lr=0.01, momentum=0.9))
t2 = time.perf_counter()
out = {"launch": t1 - t0, "step": t2 - t1, "cpu": time.process_time(), "rows": rows,
       "passes": []}
if passes:
    from engine.kernel_progress import kernel_dispatchers
    for name, d in kernel_dispatchers().items():
        for sig in d.signatures:
            for pipe, times in d.get_metadata(sig).get("pipeline_times", {}).items():
                top = sorted(((k.split("_", 1)[-1], v.run) for k, v in times.items()),
                             key=lambda kv: -kv[1])[:4]
                out["passes"].append([name, pipe, sum(v.run for v in times.values()), top])
print(json.dumps(out))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--example", default="lenet5", help="a shipped example's name")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--passes", action="store_true", help="Numba's time per pass, per kernel")
    ap.add_argument("--root", type=Path, default=ROOT, help="the source tree to measure")
    args = ap.parse_args(argv)
    home = tempfile.mkdtemp(prefix="nb-cache-")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = home
    load = os.getloadavg()[0]
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(args.root), args.example,
                               str(args.batch), "1" if args.passes else "0"],
                              env=env, capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"# {machine_description()}; load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"# {args.example}, batch {args.batch}, empty caches: launch to model "
          f"{r['launch']:.1f} s, first step {r['step']:.1f} s wall, {r['cpu']:.1f} s CPU")
    print(f"{'function (nested under the compile that needed it)':<66} {'incl s':>7} "
          f"{'excl s':>7}  argument types")
    for depth, name, incl, excl, sig in r["rows"]:
        if incl >= 0.05 or name.startswith("engine."):
            print(f"{'  ' * depth + name:<66} {incl:7.2f} {excl:7.2f}  {sig}")
    top = [row for row in r["rows"] if row[0] == 0]
    print(f"\ncompile CPU s, sum over top-level kernels: {sum(row[2] for row in top):.1f}")
    for name, pipe, total, passes in r["passes"]:
        print(f"{name} [{pipe}] {total:.2f} s: "
              + ", ".join(f"{k} {v:.2f}" for k, v in passes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

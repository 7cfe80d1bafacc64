"""Start-up cost of the Numba kernels: cold (empty caches) and warm (cached), each in a fresh
process, with its own temporary cache folders (the user's caches are left alone).

    python benchmarks/bench_startup.py [--runs 3] [--modes step,app,warmup] [--root DIR ...]

Each run starts a fresh interpreter whose user cache folder (``XDG_CACHE_HOME``, where
``engine.cachedir`` puts the Numba cache) is a new empty temporary folder, and times it from
launch to the end of the first LeNet-5 training step (batch 64, SGD with momentum): cold,
then warm (the same folder again, filled by the cold run). Modes: ``step`` compiles each
kernel in the process on its first call; ``app`` first runs the compile child the app starts
for the open model (``engine.warmup.compile_in_subprocess(first=doc, rest=False)``: the
model's steps, an evaluation pass, every optimizer; ``engine.compile_ahead`` on an empty
cache), then the step, which loads its kernels; ``warmup`` times ``engine.warmup()`` (every
kernel). Printed per source tree: the median and
range over ``--runs`` runs of the wall time and of the CPU time of the process and its
children (compiling is
single-threaded: the CPU time is what a quiet machine would wait, the wall time includes the
load of the moment), the kernel variants compiled and loaded, and the kernels that took the
most CPU to compile (exclusive of the kernels they call, summed over the runs' median). A
warm process must compile none.

``--root`` (repeatable) measures other source trees (e.g. an export of an older commit) in the
same rounds, alternating with this one, so before and after come from the same conditions.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, machine_description

clean_environment()

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
root, mode = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
import engine  # first: it points Numba at the cache folder before Numba reads its settings
t_import = time.perf_counter() - t0
from numba.core import event
slowest = {}
stack = []

class Timer(event.Listener):  # exclusive CPU seconds per compiled function
    def on_start(self, ev):
        stack.append([time.process_time(), 0.0])

    def on_end(self, ev):
        start, inner = stack.pop()
        dt = time.process_time() - start
        d = ev.data["dispatcher"]
        name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
        slowest[name] = slowest.get(name, 0.0) + dt - inner
        if stack:
            stack[-1][1] += dt

event.register("numba:compile", Timer())
import numpy as np
if mode == "app":  # as the app: a child compiles the open model's kernels, then the step
    from engine.warmup import compile_in_subprocess
    with open(root + "/resources/examples/lenet5.json", encoding="utf-8") as fh:
        compile_in_subprocess(first=json.load(fh), rest=False)
if mode in ("step", "app"):
    net = engine.compile(engine.load_graph(root + "/resources/examples/lenet5.json"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    net.train_step(x, y, engine.SGD(lr=0.01, momentum=0.9))
else:
    engine.warmup()
t_total = time.perf_counter() - t0
from engine.warmup import kernel_cache_stats
hits, misses = kernel_cache_stats()
ru = resource.getrusage(resource.RUSAGE_SELF)
rc = resource.getrusage(resource.RUSAGE_CHILDREN)  # the compile children, when waited for
kernels = {k: v for k, v in slowest.items() if k.startswith("engine.")}
print(json.dumps({"import": t_import, "total": t_total, "hits": hits, "misses": misses,
                  "cpu": ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime,
                  "kernels": kernels}))
"""


def run(root: Path, mode: str, cache_home: str) -> dict:
    """The child in a fresh interpreter; wall time includes interpreter start-up."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = cache_home
    env["NETBUILDER_SERIAL_FIRST"] = "1"  # as a user's launch (benchmarks turn it off)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], env=env,
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "wall": wall}


def spread(values: list[float]) -> str:
    return (f"{statistics.median(values):7.1f} ({min(values):.1f}–{max(values):.1f})"
            if values else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="step,app",
                    help="comma-separated: step (in this process, compiled on first call), "
                         "app (a compile child first, as the app does), warmup (every kernel)")
    ap.add_argument("--root", action="append", default=[], type=Path,
                    help="another source tree to measure in the same rounds")
    ap.add_argument("--top", type=int, default=6, help="slowest kernels to list")
    args = ap.parse_args(argv)
    roots = [ROOT, *args.root]
    modes = [m.strip() for m in args.modes.split(",")]
    print(f"# {datetime.date.today()} · {machine_description()}")
    print(f"# load average at start: {os.getloadavg()[0]:.2f} (1 min)")
    results: dict[tuple[str, str, str], list[dict]] = {}
    for _ in range(args.runs):
        for mode in modes:
            for root in roots:
                home = tempfile.mkdtemp(prefix="nb-cache-")
                try:
                    for state in ("cold", "warm"):
                        r = run(root, mode, home)
                        results.setdefault((str(root), mode, state), []).append(r)
                        print(f"# {root.name} {mode} {state}: {r['wall']:.1f} s wall, "
                              f"{r['cpu']:.1f} s CPU, {r['misses']} compiled, "
                              f"{r['hits']} loaded", flush=True)
                finally:
                    shutil.rmtree(home, ignore_errors=True)
    print(f"# load average at end: {os.getloadavg()[0]:.2f} (1 min)\n")
    names = {"step": "first LeNet-5 step", "app": "step after child",
             "warmup": "engine.warmup()"}
    print(f"| {'tree':<24} | {'launch to end of':<18} | {'cache':<5} | "
          f"{'wall s median (range)':>22} | {'CPU s median (range)':>22} | compiled | loaded |")
    print(f"|{'-' * 26}|{'-' * 20}|{'-' * 7}|{'-' * 24}|{'-' * 24}|{'-' * 10}|{'-' * 8}|")
    for (root, mode, state), rs in results.items():
        print(f"| {Path(root).name:<24} | {names[mode]:<18} | {state:<5} | "
              f"{spread([r['wall'] for r in rs]):>22} | {spread([r['cpu'] for r in rs]):>22} | "
              f"{rs[0]['misses']:>8} | {rs[0]['hits']:>6} |")
    for (root, mode, state), rs in results.items():
        if state != "cold":
            continue
        keys = {k for r in rs for k in r["kernels"]}
        med = {k: statistics.median(r["kernels"].get(k, 0.0) for r in rs) for k in keys}
        top = sorted(med.items(), key=lambda kv: -kv[1])[:args.top]
        print(f"\n{Path(root).name}, {names[mode]}, cold: compile CPU s per function "
              "(exclusive, median): " + ", ".join(f"{k.split('.', 2)[-1]} {v:.1f}"
                                                  for k, v in top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

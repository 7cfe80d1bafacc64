"""Start-up cost of the Numba kernels: cold (empty cache) and warm (cached), each in a fresh
process, with its own temporary cache folder (the user's cache is left alone).

    python benchmarks/bench_startup.py

Prints the time from launching the interpreter to the end of the first LeNet-5 training step
(batch 64), and to the end of ``engine.warmup()`` (every kernel), each with an empty (cold) and
a filled (warm) cache, with how many kernel variants each process compiled and loaded; a warm
process must compile none.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, machine_description

clean_environment()

import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, ROOT)
import numpy as np
import engine
t_import = time.perf_counter() - t0
mode = sys.argv[1]
if mode == "step":
    net = engine.compile(engine.load_graph(ROOT + "/resources/examples/lenet5.json"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    net.train_step(x, y, engine.SGD(lr=0.01, momentum=0.9))
else:
    engine.warmup()
t_total = time.perf_counter() - t0
from engine.warmup import kernel_cache_stats
hits, misses = kernel_cache_stats()
print(json.dumps({"import": t_import, "total": t_total, "hits": hits, "misses": misses}))
"""


def run(mode: str, cache: str) -> dict[str, float]:
    """Run the child in a fresh interpreter; wall time includes interpreter start-up."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    code = CHILD.replace("ROOT", repr(str(ROOT)), 2).replace("ROOT +", repr(str(ROOT)) + " +")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, mode], env=env, capture_output=True,
                         text=True, check=True)
    wall = time.perf_counter() - t0
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "wall": wall}


def main() -> int:
    print(f"# {datetime.date.today()} · {machine_description()}")
    print(f"# load average: {os.getloadavg()[0]:.2f} (1 min)")
    print()
    print(f"| {'from launch to the end of':<42} | {'cache':<5} | {'seconds':>7} | {'compiled':>8} | "
          f"{'loaded':>6} |")
    print(f"|{'-' * 44}|{'-' * 7}|{'-' * 9}|{'-' * 10}|{'-' * 8}|")
    names = {"step": "the first LeNet-5 training step",
             "warmup": "engine.warmup() (every kernel)"}
    for mode in ("step", "warmup"):
        cache = tempfile.mkdtemp(prefix="nb-numba-")
        try:
            for state in ("cold", "warm"):
                r = run(mode, cache)
                print(f"| {names[mode]:<42} | {state:<5} | {r['wall']:>7.2f} | "
                      f"{r['misses']:>8} | {r['hits']:>6} |", flush=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

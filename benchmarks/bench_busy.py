"""Training while another program keeps a core busy: fixed thread counts against ``auto``.

    python benchmarks/bench_busy.py [--seconds 6] [--model lenet5]

Trains an example model (random data, batch 64, SGD with momentum) through ``Trainer`` for
``--seconds`` per case, on idle cores and then with a busy-looping child process, with the
engine on all threads, on one thread, and on ``auto`` (``engine.threads.ThreadTuner``).
Prints samples/s per case and each case's share of the best one under the same load.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment

clean_environment()

import argparse  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine_description  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.data import Dataset  # noqa: E402
from engine.threads import max_threads  # noqa: E402


def random_data(net: engine.Network, n: int = 4096) -> Dataset:
    rng = np.random.default_rng(0)
    shape = net.shapes[net.input_ids[0]]
    classes = int(np.prod(net.shapes[net.output_ids[0]]))
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return Dataset({"x": x, "y": y}, "random", class_names=[str(k) for k in range(classes)])


def rate(graph: engine.Graph, data: Dataset, threads: int | str, seconds: float) -> tuple:
    auto = threads == "auto"
    engine.set_num_threads(max_threads() if auto else int(threads))
    net = engine.Network(graph, seed=0)
    settings = {"epochs": 10_000, "batch_size": 64, "val_split": 0, "test_split": 0,
                "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9}}
    tr = engine.Trainer(net, data, settings, tune_threads=auto)
    for _ in range(5):
        tr.step_once()
    t0 = time.perf_counter()
    steps = 0
    while time.perf_counter() - t0 < seconds:
        tr.step_once()
        steps += 1
    sps = steps * 64 / (time.perf_counter() - t0)
    if tr.tuner is not None:
        tr.tuner.finish()
        on = tr.tuner.steps_on
        share = {k: f"{100 * v / max(1, sum(on.values())):.0f}%" for k, v in sorted(on.items())}
        return sps, f"steps on 1/2 threads: {share}"
    return sps, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--model", default="lenet5", help="an example in resources/examples")
    args = ap.parse_args(argv)
    graph = engine.load_graph(ROOT / "resources" / "examples" / f"{args.model}.json")
    data = random_data(engine.Network(graph))
    most = max_threads()
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} · {machine_description()}")
    print(f"# {args.model}, batch 64, {args.seconds:.0f} s per case; "
          f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}")
    print()
    print(f"| {'load':<22} | {'threads':>7} | {'samples/s':>10} | {'of best':>7} | note")
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 12}|{'-' * 9}|------")
    for busy in (False, True):
        hog = None
        if busy:
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        try:
            rows = [(t, *rate(graph, data, t, args.seconds)) for t in (most, 1, "auto")]
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
        best = max(r[1] for r in rows)
        label = "one core busy (a loop)" if busy else "idle"
        for t, sps, note in rows:
            print(f"| {label:<22} | {t!s:>7} | {sps:>10,.0f} | {100 * sps / best:>6.0f}% | {note}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

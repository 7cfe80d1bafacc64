"""A training step on a worker thread against the same step on the main thread.

    python benchmarks/bench_worker_thread.py [--threads 2] [--rounds 8] [--window 0.5]
                                             [--only lenet5 mlp resnet8] [--no-main-blas]

The app trains on a ``threading.Thread`` while the main thread has set the thread count and
used BLAS (as a GUI does); a step there must take as long as on the main thread. Per network
this sets ``engine.set_num_threads`` on the main thread, runs one numpy matrix product there
(unless ``--no-main-blas``), then times ``--rounds`` rounds of one window of training steps
on the main thread and one on a long-lived worker thread (order reversed every other round).
It prints the median step time of each, the worker/main ratio per round as median and range
(1.0 is the goal), and the BLAS thread counts a kernel sees during a step on the worker
(1 for every library: BLAS called from the kernels' parallel slices must not start threads).
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
import queue  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench_train  # noqa: E402

import engine  # noqa: E402
from engine.threads import blas_threads  # noqa: E402


class Worker:
    """A long-lived thread that runs the callables it is given, one at a time."""

    def __init__(self) -> None:
        self.jobs: queue.Queue = queue.Queue()
        self.done: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="bench-worker", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            fn = self.jobs.get()
            if fn is None:
                return
            try:
                self.done.put((True, fn()))
            except BaseException as exc:  # handed back to the main thread
                self.done.put((False, exc))

    def run(self, fn: Callable[[], object]) -> object:
        self.jobs.put(fn)
        ok, value = self.done.get()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()


def window(step: Callable[[], None], seconds: float) -> float:
    """Median seconds per step over a window of ``seconds`` (after one untimed step)."""
    step()
    times = []
    t_end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if t1 >= t_end and len(times) >= 3:
            return statistics.median(times)


def blas_seen_in_step(net: engine.Network, step: Callable[[], None]) -> dict[str, int | None]:
    """BLAS thread counts read from a forward hook during one step (where kernels run)."""
    seen: dict[str, int | None] = {}

    def on_forward(nid: str, out: np.ndarray) -> None:
        if not seen:
            seen.update(blas_threads())

    handle = net.add_hook(on_forward, None)
    try:
        step()
    finally:
        handle.remove()
    return seen


def cell(values: list[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    v = [x * scale for x in values]
    return f"{statistics.median(v):{fmt}} ({min(v):{fmt}}–{max(v):{fmt}})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--window", type=float, default=0.5, help="seconds per timed window")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--only", nargs="+", choices=sorted(bench_train.NETS),
                    default=["lenet5", "mlp", "resnet8"])
    ap.add_argument("--no-main-blas", action="store_true",
                    help="do not run a numpy matrix product on the main thread first")
    args = ap.parse_args(argv)
    if args.rounds < 5:
        ap.error("--rounds must be at least 5")
    engine.set_num_threads(args.threads)
    if not args.no_main_blas:
        a = np.ones((512, 512), np.float32)
        a @ a
    one, five, _ = os.getloadavg()
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} · {args.threads} threads · batch "
          f"{args.batch} · load average {one:.2f} (1 min), {five:.2f} (5 min)")
    print("| network | main thread ms/step | worker thread ms/step | worker / main: median "
          "(range) | BLAS threads inside a worker step |")
    print("|---|---|---|---|---|")
    worker = Worker()
    rng = np.random.default_rng(0)
    try:
        for name in args.only:
            graph = bench_train.NETS[name]()
            step, net, _x, _y = bench_train.engine_step(graph, args.batch, rng)
            worker.run(step)  # the worker thread's first step (its OpenMP team starts)
            main_t: list[float] = []
            work_t: list[float] = []
            for r in range(args.rounds):
                order = ("main", "worker") if r % 2 == 0 else ("worker", "main")
                for where in order:
                    time.sleep(0.05)
                    if where == "main":
                        main_t.append(window(step, args.window))
                    else:
                        work_t.append(worker.run(lambda s=step: window(s, args.window)))
            ratios = [w / m for w, m in zip(work_t, main_t)]
            seen = worker.run(lambda n=net, s=step: blas_seen_in_step(n, s))
            counts = sorted({v for v in seen.values()}, key=str)
            print(f"| {graph.name} | {cell(main_t, 1e3)} | {cell(work_t, 1e3)} | "
                  f"**{cell(ratios)}×** | {', '.join(map(str, counts))} |", flush=True)
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

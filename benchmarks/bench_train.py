"""Training throughput of the engine beside its strongest CPU peers, measured in the same run.

    python benchmarks/bench_train.py [--threads 2] [--quick] [--only NET ...] [--rounds 8]
                                     [--no-compile] [--no-jax] [--scaling]

Per network: the samples/s of the engine and of every peer that runs here (``_peers``:
PyTorch eager, PyTorch channels_last + foreach SGD, torch.compile (inductor), a jax.jit
train step), each as the median over ``--rounds`` rounds with the range; the engine's ratio
to the best peer (the one with the highest median), as the median and range of the per-round
ratios; and GFLOP/s of executed work only (``_peers.executed_macs``) beside a large-matmul
roof measured in the same run. One training step = forward + backward + SGD-momentum update,
float32, softmax cross-entropy, a fixed batch.

A round times every run of every network once for ``--window`` s, the engine and the peers
of one network back to back (their order reversed every other round), so a slow spell of a
shared machine falls on neighbouring windows of every library alike.

``--scaling`` prints instead how the engine's and PyTorch eager's rates grow from one thread
to ``--threads``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, import_torch_first

clean_environment()
import_torch_first()

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    best_rate,
    blas_description,
    machine_description,
    matmul_roof,
    try_torch,
)
from _topology import describe_round_trip  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _nets  # noqa: E402
import _peers  # noqa: E402

import engine  # noqa: E402


def chain(name, input_shape, layers):
    nodes = [{"id": "in", "type": "Input", "params": {"shape": list(input_shape)}}]
    for i, (t, p) in enumerate(layers):
        nodes.append({"id": f"{t.lower()}{i}", "type": t, "params": p})
    nodes.append({"id": "out", "type": "Output", "params": {"loss": "cross_entropy"}})
    edges = [{"src": a["id"], "dst": b["id"]} for a, b in itertools.pairwise(nodes)]
    return engine.Graph.from_dict({"format": "netbuilder.graph", "version": 1, "name": name,
                                   "nodes": nodes, "edges": edges})


def lenet5():
    return chain("LeNet-5", (1, 28, 28), [
        ("Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}), ("ReLU", {}),
        ("MaxPool2D", {"pool_size": 2}),
        ("Conv2D", {"filters": 16, "kernel_size": 5}), ("ReLU", {}),
        ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}),
        ("Dense", {"units": 120}), ("ReLU", {}), ("Dense", {"units": 84}), ("ReLU", {}),
        ("Dense", {"units": 10})])


def widecnn():
    return chain("WideCNN", (1, 28, 28), [
        ("Conv2D", {"filters": 32, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("MaxPool2D", {"pool_size": 2}),
        ("Conv2D", {"filters": 64, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}),
        ("Dense", {"units": 128}), ("ReLU", {}), ("Dense", {"units": 10})])


def mlp():
    return chain("MLP 784-256-256-10", (784,), [
        ("Dense", {"units": 256}), ("ReLU", {}), ("Dense", {"units": 256}), ("ReLU", {}),
        ("Dense", {"units": 10})])


def digits_cnn():
    g = engine.load_graph(ROOT / "resources" / "examples" / "digits_cnn.json")
    g.name = "digits_cnn (1x8x8)"
    return g


def resnet8():
    return engine.Graph.from_dict(_nets.resnet8())


def resnet20():
    """The shipped example file, so the benchmark runs what users open."""
    g = engine.load_graph(_nets.EXAMPLE)
    g.name = "ResNet-20"
    return g


def vgg_bn():
    return engine.Graph.from_dict(_nets.vgg_bn())


NETS = {"lenet5": lenet5, "widecnn": widecnn, "mlp": mlp, "digits_cnn": digits_cnn,
        "resnet8": resnet8, "resnet20": resnet20, "vgg_bn": vgg_bn}


def dataset(shape, batch, rng):
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return x, y


def engine_step(graph, batch, rng):
    net = engine.compile(graph, seed=0)
    x, y = dataset(net.shapes[net.input_ids[0]], batch, rng)
    opt = engine.SGD(lr=_peers.LR, momentum=_peers.MOMENTUM)
    return (lambda: net.train_step(x, y, opt)), net, x, y


class Run:
    """One training step to time, with what must be set before each of its windows."""

    def __init__(self, name: str, step: Callable[[], None], batch: int,
                 prepare: Callable[[], None] = lambda: None) -> None:
        self.name, self.step, self.batch, self.prepare = name, step, batch, prepare
        self.rates: list[float] = []  # samples/s, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def cell(self) -> str:
        """'median (min-max)' in samples/s."""
        r = self.rates
        return f"{self.median:,.0f} ({min(r):,.0f}–{max(r):,.0f})"


def measure(groups: list[list[Run]], rounds: int, window: float) -> None:
    """``rounds`` times over: every group (one network's engine and peers) back to back, each
    run for one window of ``window`` s (after one untimed step), the order within a group
    reversed every other round."""
    for r in range(rounds):
        for runs in groups:
            for run in (runs if r % 2 == 0 else runs[::-1]):
                run.prepare()
                time.sleep(0.05)  # let the other library's spinning threads go to sleep
                run.rates.append(best_rate(run.step, run.batch, min_time=window, warmup=1,
                                           repeats=1))


def paired(ours: Run, ref: Run) -> tuple[float, float, float]:
    """Median, min and max over rounds of ours/ref (each round's windows back to back)."""
    r = [a / b for a, b in zip(ours.rates, ref.rates)]
    return statistics.median(r), min(r), max(r)


def scaling_table(torch, cases, threads: int, rounds: int, window: float) -> None:
    """Samples/s on 1 thread and on ``threads`` for the engine and PyTorch eager."""
    rng = np.random.default_rng(0)
    t = threads
    rows = []
    for make, batch in cases:
        graph = make()
        runs = []
        for n in (1, t):
            engine.set_num_threads(n)
            estep, net, x, y = engine_step(graph, batch, rng)
            runs.append(Run(f"engine {n}", estep, batch,
                            lambda n=n: engine.set_num_threads(n)))
        if torch is not None:
            tstep = _peers.torch_step(torch, net, x, y)
            runs += [Run(f"torch {n}", tstep, batch, lambda n=n: torch.set_num_threads(n))
                     for n in (1, t)]
        rows.append((graph.name, batch, runs))
    measure([runs for *_, runs in rows], rounds, window)
    head = (f"| {'network':<20} | {'batch':>5} | {'engine 1':>9} | {f'engine {t}':>9} | "
            f"{'speed-up':>8} | {'torch 1':>9} | {f'torch {t}':>9} | {'speed-up':>8} |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, batch, runs in rows:
        e1, et = runs[0].median, runs[1].median
        if torch is not None:
            t1, tt = runs[2].median, runs[3].median
            tshow = f"{t1:>9,.0f} | {tt:>9,.0f} | {tt / t1:>7.2f}×"
        else:
            tshow = f"{'-':>9} | {'-':>9} | {'-':>8}"
        print(f"| {name:<20} | {batch:>5} | {e1:>9,.0f} | {et:>9,.0f} | "
              f"{et / e1:>7.2f}× | {tshow} |")
    engine.set_num_threads(t)
    if torch is not None:
        torch.set_num_threads(t)


PEER_ORDER = ("torch eager", "torch channels_last", "torch.compile", "jax.jit")


def ratio_table(torch, cases, roof: float, rounds: int, window: float, compile_torch: bool,
                use_jax: bool) -> None:
    """Per network: engine and peer samples/s, the ratio to the best peer, GFLOP/s."""
    rng = np.random.default_rng(0)
    rows = []
    for make, batch in cases:
        graph = make()
        estep, net, x, y = engine_step(graph, batch, rng)
        print(f"# setting up the peers for {graph.name}", file=sys.stderr, flush=True)
        peers = _peers.make_peers(torch, net, x, y, compile_torch, use_jax)
        runs = [Run("engine", estep, batch)]
        runs += [Run(name, step, batch) for name, step in peers.items()]
        rows.append((graph.name, batch, net, runs))
    measure([runs for *_, runs in rows], rounds, window)
    present = [p for p in PEER_ORDER if any(r.name == p for *_, runs in rows for r in runs)]
    head = ["network", "batch", "engine /s", *[f"{p} /s" for p in present], "best peer",
            "ratio to best: median (range)", "GFLOP/s executed", "% roof"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for name, batch, net, runs in rows:
        eng, peers = runs[0], {r.name: r for r in runs[1:]}
        gflops = eng.median * 2 * _peers.executed_macs(net) / 1e9
        cells = [name, str(batch), eng.cell()]
        cells += [peers[p].cell() if p in peers else "–" for p in present]
        if peers:
            best = max(peers.values(), key=lambda r: r.median)
            m, lo, hi = paired(eng, best)
            cells += [best.name, f"**{m:.2f}×** ({lo:.2f}–{hi:.2f})"]
        else:
            cells += ["–", "–"]
        cells += [f"{gflops:.1f}", f"{100 * gflops / roof:.1f} %"]
        print("| " + " | ".join(cells) + " |", flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


CASES = [(lenet5, 64), (widecnn, 64), (mlp, 64), (digits_cnn, 64), (resnet8, 64),
         (resnet20, 64), (vgg_bn, 64)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="LeNet-5 at batch 64 only")
    ap.add_argument("--only", nargs="+", choices=sorted(NETS), help="measure these networks")
    ap.add_argument("--batch", type=int, nargs="+", help="batch sizes (default 64)")
    ap.add_argument("--rounds", type=int, default=8,
                    help="time every run once per round, this many rounds (medians and "
                         "ranges over them; at least 5)")
    ap.add_argument("--window", type=float, default=0.4, help="seconds per timed window")
    ap.add_argument("--no-compile", action="store_true", help="leave out torch.compile")
    ap.add_argument("--no-jax", action="store_true", help="leave out jax.jit")
    ap.add_argument("--scaling", action="store_true",
                    help="samples/s on 1 thread and on --threads, engine and torch")
    args = ap.parse_args(argv)
    if args.rounds < 5:
        ap.error("--rounds must be at least 5 (medians of at least 5 runs)")
    import numba

    engine.set_num_threads(args.threads)
    torch = try_torch(args.threads)
    cases = CASES
    if args.quick:
        cases = [(lenet5, 64)]
    if args.only:
        cases = [(NETS[n], 64) for n in args.only]
    if args.batch:
        cases = [(make, b) for make, _ in cases for b in args.batch]
    if not args.no_jax:
        # XLA's CPU backend sizes its pool by the CPUs this process may run on
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    roof = matmul_roof(args.threads)
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} · {machine_description()}")
    print(f"# BLAS: {blas_description()}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    jax_v = "not installed"
    if not args.no_jax:
        try:
            import jax
            jax_v = f"{jax.__version__} (XLA CPU, {cpus} CPUs usable)"
        except ImportError:
            pass
    print(f"# threads: {args.threads} · numba {numba.__version__} "
          f"({numba.threading_layer() if hasattr(numba, 'threading_layer') else '?'}) · "
          f"torch {torch.__version__ if torch else 'not installed'} · jax {jax_v}")
    print(f"# large-matmul roof (2048³ sgemm, numpy): {roof:.0f} GFLOP/s")
    print(f"# {load()}, {describe_round_trip()} at start", flush=True)
    print()
    if args.scaling:
        scaling_table(torch, cases, args.threads, args.rounds, args.window)
    else:
        ratio_table(torch, cases, roof, args.rounds, args.window, not args.no_compile,
                    not args.no_jax)
    print()
    print(f"# {load()}, {describe_round_trip()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

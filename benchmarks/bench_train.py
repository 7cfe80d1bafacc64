"""Training throughput of the engine beside PyTorch CPU, measured in the same run.

    python benchmarks/bench_train.py [--threads 2] [--quick] [--only NET ...] [--scaling]

Prints one table: network, batch, engine samples/s, PyTorch samples/s, the ratio, and the
engine's achieved GFLOP/s beside a large-matmul roof measured in the same run. One training
step = forward + backward + SGD update, float32, softmax cross-entropy.

``--scaling`` prints instead how each library's rate grows from one thread to ``--threads``:
both thread counts measured in alternating windows of the same run.
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


NETS = {"lenet5": lenet5, "widecnn": widecnn, "mlp": mlp, "digits_cnn": digits_cnn}


def torch_model(torch, graph: engine.Graph, net: engine.Network):
    """A torch.nn.Sequential mirroring a chain graph, with the engine's initial weights."""
    nn = torch.nn
    mods = []
    for nid in net.order:
        layer = net.layers[nid]
        t, p, ins = layer.type_name, layer.p, layer.in_shapes
        if t in ("Input", "Output"):
            continue
        if t == "Conv2D":
            pad = p["padding"]
            m = nn.Conv2d(ins[0][0], p["filters"], p["kernel_size"], p["stride"],
                          padding=pad if pad != "valid" else 0, bias=p["bias"])
        elif t == "Dense":
            m = nn.Linear(ins[0][-1], p["units"], bias=p["bias"])
        elif t == "ReLU":
            m = nn.ReLU()
        elif t == "MaxPool2D":
            m = nn.MaxPool2d(p["pool_size"], p["stride"] or p["pool_size"])
        elif t == "AvgPool2D":
            m = nn.AvgPool2d(p["pool_size"], p["stride"] or p["pool_size"])
        elif t == "Flatten":
            m = nn.Flatten()
        elif t == "Dropout":
            m = nn.Dropout(p["rate"])
        elif t == "BatchNorm":
            m = (nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d)(ins[0][0])
        else:
            raise NotImplementedError(f"benchmark has no torch mirror for {t}")
        with torch.no_grad():
            for name, param in m.named_parameters():
                param.copy_(torch.from_numpy(net.params[f"{nid}.{name}"]))
        mods.append(m)
    return nn.Sequential(*mods)


def dataset(shape, batch, rng):
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return x, y


def engine_step(graph, batch, rng):
    net = engine.compile(graph, seed=0)
    x, y = dataset(net.shapes[net.input_ids[0]], batch, rng)
    opt = engine.SGD(lr=0.01, momentum=0.9)
    return (lambda: net.train_step(x, y, opt)), net


def torch_step(torch, graph, net, batch, rng):
    model = torch_model(torch, graph, net)
    x, y = dataset(net.shapes[net.input_ids[0]], batch, rng)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()

    return step


class Run:
    """One training step to time, with what must be set before each of its windows."""

    def __init__(self, step: Callable[[], None], batch: int,
                 prepare: Callable[[], None] = lambda: None) -> None:
        self.step, self.batch, self.prepare = step, batch, prepare
        self.rates: list[float] = []  # samples/s, one per round

    @property
    def best(self) -> float:
        return max(self.rates)


def measure(runs: list[Run], rounds: int, window: float) -> None:
    """Time every run for ``window`` s, one run after another, ``rounds`` times over.

    Each round passes once over all runs (of every network), so a slow spell of a shared
    machine (other jobs; a host that slows one core for several seconds) costs each run only
    the windows it overlaps; a run's best window is its rate."""
    for _ in range(rounds):
        for run in runs:
            run.prepare()
            time.sleep(0.1)  # let the other library's spinning threads go to sleep
            run.rates.append(best_rate(run.step, run.batch, min_time=window, repeats=1))


def paired_ratios(ours: Run, ref: Run) -> str:
    """Median (min-max) over rounds of ours/ref, each round's windows taken back to back."""
    r = sorted(a / b for a, b in zip(ours.rates, ref.rates))
    return f"{r[len(r) // 2]:.2f} ({r[0]:.2f}-{r[-1]:.2f})"


def scaling_table(torch, cases, threads: int, rounds: int, window: float) -> None:
    """Samples/s on 1 thread and on ``threads`` for the engine and (if installed) PyTorch."""
    rng = np.random.default_rng(0)
    t = threads
    rows = []
    for make, batch in cases:
        graph = make()
        runs = []
        for n in (1, t):
            engine.set_num_threads(n)
            estep, net = engine_step(graph, batch, rng)
            runs.append(Run(estep, batch, lambda n=n: engine.set_num_threads(n)))
        if torch is not None:
            tstep = torch_step(torch, graph, net, batch, rng)
            runs += [Run(tstep, batch, lambda n=n: torch.set_num_threads(n)) for n in (1, t)]
        rows.append((graph.name, batch, runs))
    measure([run for _, _, runs in rows for run in runs], rounds, window)
    head = (f"| {'network':<20} | {'batch':>5} | {'engine 1':>9} | {f'engine {t}':>9} | "
            f"{'speed-up':>8} | {'torch 1':>9} | {f'torch {t}':>9} | {'speed-up':>8} |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, batch, runs in rows:
        e1, et = runs[0].best, runs[1].best
        if torch is not None:
            t1, tt = runs[2].best, runs[3].best
            tshow = f"{t1:>9,.0f} | {tt:>9,.0f} | {tt / t1:>7.2f}×"
        else:
            tshow = f"{'-':>9} | {'-':>9} | {'-':>8}"
        print(f"| {name:<20} | {batch:>5} | {e1:>9,.0f} | {et:>9,.0f} | "
              f"{et / e1:>7.2f}× | {tshow} |")
    engine.set_num_threads(t)
    if torch is not None:
        torch.set_num_threads(t)


def ratio_table(torch, cases, roof: float, rounds: int, window: float) -> None:
    """Engine and PyTorch samples/s, their ratio and the engine's GFLOP/s beside ``roof``."""
    rng = np.random.default_rng(0)
    rows = []
    for make, batch in cases:
        graph = make()
        estep, net = engine_step(graph, batch, rng)
        runs = [Run(estep, batch)]
        if torch is not None:
            runs.append(Run(torch_step(torch, graph, net, batch, rng), batch))
        rows.append((graph.name, batch, net, runs))
    measure([run for *_, runs in rows for run in runs], rounds, window)
    per_round = "per round: median (range)"
    head = f"| {'network':<20} | {'batch':>5} | {'engine /s':>10} | {'torch /s':>10} | " \
           f"{'ratio':>6} | {per_round} | {'GFLOP/s':>8} | {'% roof':>6} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, batch, net, runs in rows:
        rate = runs[0].best
        flops = 2 * 3 * net.macs()  # forward + two backward products per multiply-add
        gflops = rate * flops / 1e9
        if torch is not None:
            trate = runs[1].best
            tshow = f"{trate:>10,.0f} | {rate / trate:>5.2f}× | " \
                    f"{paired_ratios(runs[0], runs[1]):<{len(per_round)}}"
        else:
            tshow = f"{'-':>10} | {'-':>6} | {'-':<{len(per_round)}}"
        print(f"| {name:<20} | {batch:>5} | {rate:>10,.0f} | {tshow} | "
              f"{gflops:>8.1f} | {100 * gflops / roof:>5.1f}% |")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="LeNet-5 at batch 64 only")
    ap.add_argument("--only", nargs="+", choices=sorted(NETS), help="measure these networks")
    ap.add_argument("--rounds", type=int, default=8,
                    help="time every network's engine and torch steps in windows of --window s, "
                         "one after another, this many times over; the best window of each "
                         "counts (a shared machine slows some windows down)")
    ap.add_argument("--window", type=float, default=0.3)
    ap.add_argument("--scaling", action="store_true",
                    help="samples/s on 1 thread and on --threads, engine and torch")
    args = ap.parse_args(argv)
    import numba

    engine.set_num_threads(args.threads)
    torch = try_torch(args.threads)
    cases = [(lenet5, 32), (lenet5, 64), (lenet5, 128), (widecnn, 64), (mlp, 64),
             (digits_cnn, 64)]
    if args.quick:
        cases = [(lenet5, 64)]
    if args.only:
        cases = [(make, b) for make, b in cases if make in {NETS[n] for n in args.only}]
    roof = matmul_roof(args.threads)
    print(f"# {datetime.datetime.now():%Y-%m-%d %H:%M} · {machine_description()}")
    print(f"# BLAS: {blas_description()}")
    print(f"# threads: {args.threads} · numba {numba.__version__} "
          f"({numba.threading_layer() if hasattr(numba, 'threading_layer') else '?'}) · "
          f"torch {torch.__version__ if torch else 'not installed'}")
    print(f"# large-matmul roof (2048³ sgemm, numpy): {roof:.0f} GFLOP/s")
    print(f"# {load()}, {describe_round_trip()} at start", flush=True)
    print()
    if args.scaling:
        scaling_table(torch, cases, args.threads, args.rounds, args.window)
    else:
        ratio_table(torch, cases, roof, args.rounds, args.window)
    print()
    print(f"# {load()}, {describe_round_trip()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where a training step's time goes: forward and backward milliseconds per step of the
execution plan (a node, or a fused chain of nodes), read through the network's hooks.

    python benchmarks/profile_nodes.py [--net resnet20] [--batch 64] [--threads 2]
                                       [--steps 30] [--out FILE.md]

A forward hook stamps the time after every node's output (a fused step's time goes to the
step, whose nodes are published together), a backward hook after every backward step; a
step's time is the gap since the previous stamp. The table gives the median over ``--steps``
training steps (after 3 untimed ones) per step of the plan, and the fastest of them (on a
machine that other programs load, the fastest is close to what the step costs on idle
cores: a parallel loop whose thread waits for a busy core only ever adds time), then the
totals by layer type (a fused step counts under its first node's type, its kind in brackets). The hooks cost a
few microseconds per step; the loss and the optimizer update are timed as their own rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment

clean_environment()

import argparse  # noqa: E402
import datetime  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench_train  # noqa: E402

import engine  # noqa: E402
from engine.kernels.conv import OneThreadBlas  # noqa: E402


def step_label(net: engine.Network, st) -> str:
    kind = type(st).__name__
    return " → ".join(st.ids) + ("" if kind == "Step" else f" [{kind}]")


def profile(net: engine.Network, x: np.ndarray, y: np.ndarray, steps: int
            ) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float]]:
    """Per step label: forward and backward seconds of each timed training step, and the
    whole steps' seconds."""
    opt = engine.SGD(lr=0.01, momentum=0.9)
    label = {nid: step_label(net, st) for st in net.plan.steps for nid in st.ids}
    fwd: dict[str, list[float]] = defaultdict(list)
    bwd: dict[str, list[float]] = defaultdict(list)
    whole: list[float] = []
    stamp = [0.0]
    current_f: dict[str, float] = {}
    current_b: dict[str, float] = {}

    def on_forward(nid: str, out: np.ndarray) -> None:
        now = time.perf_counter()
        lab = label[nid]
        current_f[lab] = current_f.get(lab, 0.0) + now - stamp[0]
        stamp[0] = now

    def on_backward(event) -> None:
        now = time.perf_counter()
        lab = label[event.nodes[0]]
        current_b[lab] = current_b.get(lab, 0.0) + now - stamp[0]
        stamp[0] = now

    handle = net.add_hook(on_forward, on_backward)
    try:
        for i in range(steps + 3):
            current_f.clear()
            current_b.clear()
            t0 = time.perf_counter()
            with OneThreadBlas(engine.get_num_threads() > 1):
                stamp[0] = time.perf_counter()
                net.forward(x, train=True)
                t1 = time.perf_counter()
                _, grads = net.loss(y, x)
                t2 = time.perf_counter()
                stamp[0] = t2
                net.loss_backward(grads)
                t3 = time.perf_counter()
                opt.step(net.params, net.grads, flat=(net.flat_params, net.flat_grads))
            t4 = time.perf_counter()
            if i < 3:
                continue
            current_f["(loss)"] = t2 - t1
            current_b["(optimizer update)"] = t4 - t3
            for k, v in current_f.items():
                fwd[k].append(v)
            for k, v in current_b.items():
                bwd[k].append(v)
            whole.append(t4 - t0)
    finally:
        handle.remove()
    return fwd, bwd, whole


def type_of(net: engine.Network, lab: str) -> str:
    first = lab.split(" → ")[0].split(" [")[0]
    if first in net.layers:
        kind = lab.split(" [")[1][:-1] if " [" in lab else ""
        t = net.layers[first].type_name
        return f"{t} [{kind}]" if kind else t
    return lab


def report(net: engine.Network, fwd, bwd, whole, batch: int) -> str:
    med = {k: statistics.median(v) * 1e3 for k, v in fwd.items()}
    medb = {k: statistics.median(v) * 1e3 for k, v in bwd.items()}
    low = {k: min(v) * 1e3 for k, v in fwd.items()}
    lowb = {k: min(v) * 1e3 for k, v in bwd.items()}
    labels = [step_label(net, st) for st in net.plan.steps if st.last not in net.input_ids]
    labels += ["(loss)", "(optimizer update)"]
    lines = [f"{net.graph.name}, batch {batch}, {engine.get_num_threads()} threads: median "
             f"step {statistics.median(whole) * 1e3:.1f} ms (range "
             f"{min(whole) * 1e3:.1f}–{max(whole) * 1e3:.1f}) over {len(whole)} steps, "
             f"{batch / statistics.median(whole):,.0f} samples/s", "",
             "| step | forward ms (median) | backward ms (median) | forward ms (fastest) "
             "| backward ms (fastest) |", "|---|---|---|---|---|"]

    def ms(d: dict[str, float], lab: str) -> str:
        v = d.get(lab)
        return "" if v is None else f"{v:.3f}"

    for lab in labels:
        lines.append(f"| {lab} | {ms(med, lab)} | {ms(medb, lab)} | {ms(low, lab)} | "
                     f"{ms(lowb, lab)} |")
    lines += ["", "| layer type | steps | forward ms | backward ms | total ms (median) | share "
              "| total ms (fastest) | share (fastest) |", "|---|---|---|---|---|---|---|---|"]
    by: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for lab in labels:
        t = type_of(net, lab)
        by[t][0] += 1
        by[t][1] += med.get(lab, 0.0)
        by[t][2] += medb.get(lab, 0.0)
        by[t][3] += low.get(lab, 0.0) + lowb.get(lab, 0.0)
    total = sum(f + b for _, f, b, _ in by.values())
    total_low = sum(v[3] for v in by.values())
    for t, (n, f, b, lo) in sorted(by.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        lines.append(f"| {t} | {n} | {f:.2f} | {b:.2f} | {f + b:.2f} | "
                     f"{100 * (f + b) / total:.1f} % | {lo:.2f} | {100 * lo / total_low:.1f} % |")
    lines.append(f"| all | | {sum(v[1] for v in by.values()):.2f} | "
                 f"{sum(v[2] for v in by.values()):.2f} | {total:.2f} | | {total_low:.2f} | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="resnet20", choices=sorted(bench_train.NETS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", help="also write the tables to this Markdown file")
    args = ap.parse_args(argv)
    engine.set_num_threads(args.threads)
    graph = bench_train.NETS[args.net]()
    net = engine.compile(graph, seed=0)
    rng = np.random.default_rng(0)
    x, y = bench_train.dataset(net.shapes[net.input_ids[0]], args.batch, rng)
    fwd, bwd, whole = profile(net, x, y, args.steps)
    text = (f"# profile_nodes.py --net {args.net}, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
            f"{bench_train.load()}\n\n" + report(net, fwd, bwd, whole, args.batch))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

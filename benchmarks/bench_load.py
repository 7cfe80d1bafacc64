"""Load benchmarks.

1. A 500-node model (a conv trunk and a dense trunk, with residual Adds and Concat branches;
   every shape valid): time to parse the file, validate and infer every shape, then to open
   it in the main window (canvas items, analysis, layered layout on load), and the layout
   alone. Best of ``--repeat`` runs each.
2. 20 training runs one after another (compile + a few epochs of a small conv net on the
   built-in ``digits`` set through engine.Trainer): resident memory (VmRSS) after each run;
   the growth after the first run must stay under 10 %. Runs in a fresh process so that the
   Qt part does not blur it.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_load.py [--nodes 500] [--runs 20]
    python benchmarks/bench_load.py --part memory [--vary-batch]

Exit status 1 when the memory growth exceeds the limit.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import engine

MEMORY_LIMIT = 0.10


def branchy_graph(n: int, seed: int = 0) -> dict:
    """A valid model of exactly ``n`` nodes: a conv trunk (blocks with residual Adds and
    channel Concats), global pooling, then a dense trunk with Adds and Concat branches."""
    rnd = random.Random(seed)
    nodes: list[dict] = [{"id": "in", "type": "Input", "params": {"shape": [3, 16, 16]}}]
    edges: list[dict] = []

    def add(kind: str, params: dict, *srcs: str) -> str:
        nid = f"{kind.lower()}{len(nodes)}"
        nodes.append({"id": nid, "type": kind, "params": params})
        edges.extend({"src": s, "dst": nid, "port": p} for p, s in enumerate(srcs))
        return nid

    conv = {"kernel_size": 3, "padding": "same"}
    prev = add("Conv2D", {"filters": 8, **conv}, "in")
    skip = prev
    budget_conv = n // 2
    while len(nodes) < budget_conv:
        r = rnd.random()
        if r < 0.4:
            prev = add("Conv2D", {"filters": 8, **conv}, prev)
            prev = add(rnd.choice(["ReLU", "BatchNorm", "Tanh"]), {}, prev)
        elif r < 0.6 and skip != prev:
            prev = skip = add("Add", {}, prev, skip)
        else:
            a = add("Conv2D", {"filters": 4, **conv}, prev)
            b = add("Conv2D", {"filters": 4, "kernel_size": 1}, prev)
            prev = skip = add("Concat", {}, a, b)
    prev = add("GlobalAvgPool2D", {}, prev)
    prev = skip = add("Dense", {"units": 32}, prev)
    while len(nodes) < n - 2:
        r = rnd.random()
        room = n - 2 - len(nodes)
        if r < 0.4 or room < 3:
            prev = add(rnd.choice(["ReLU", "Sigmoid", "Dropout"]), {}, prev)
        elif r < 0.6 and skip != prev:
            prev = skip = add("Add", {}, prev, skip)
        elif r < 0.8:
            prev = add("Dense", {"units": 32}, prev)
        else:
            a = add("Dense", {"units": 16}, prev)
            b = add("Dense", {"units": 16}, prev)
            prev = skip = add("Concat", {}, a, b)
    prev = add("Dense", {"units": 10}, prev)
    add("Output", {}, prev)
    return {"format": "netbuilder.graph", "version": 1, "name": f"branchy{n}",
            "nodes": nodes, "edges": edges}


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_open(n: int, repeat: int) -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    tmp = Path(tempfile.mkdtemp(prefix="nb-bench-load-"))
    doc = branchy_graph(n)
    path = tmp / "branchy.json"
    path.write_text(json.dumps(doc, indent=2))
    raw = path.read_bytes()
    ms = 1000.0

    from engine.graph import graph_from_bytes
    t_parse, g = best_of(lambda: graph_from_bytes(raw, str(path), validate=False), repeat)
    t_validate, shapes = best_of(g.validate, repeat)
    t_load, _ = best_of(lambda: engine.load_graph(path), repeat)
    assert len(shapes) == n
    kinds = sorted({nd["type"] for nd in doc["nodes"]})
    merges = sum(nd["type"] in ("Add", "Concat") for nd in doc["nodes"])
    print(f"model: {len(g.nodes)} nodes, {len(g.edges)} wires, {merges} merges "
          f"({', '.join(kinds)}); file {len(raw) / 1024:.0f} KB")
    print(f"parse (JSON + nodes, edges, params checked):           {t_parse * ms:8.1f} ms")
    print(f"validate + infer every shape:                          {t_validate * ms:8.1f} ms")
    print(f"engine.load_graph (read + parse + validate + shapes):  {t_load * ms:8.1f} ms")

    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp))
    from netbuilder.app import apply_style
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    apply_style(app)
    w = MainWindow(recovery=RecoveryStore(tmp / "recovery"), examples_dir=tmp)
    w.resize(1600, 1000)
    w.show()
    app.processEvents()
    t_new = float("inf")
    for _ in range(repeat):
        w.load_graph(engine.Graph("empty"), None)
        app.processEvents()
        t0 = time.perf_counter()
        assert w.open_file(path)
        app.processEvents()
        t_new = min(t_new, time.perf_counter() - t0)
    assert len(w.scene.nodes) == n and w.document.analysis.error_count == 0
    placed = sum(w.document.position(nid) is not None for nid in w.document.graph.nodes)
    t_layout, _ = best_of(w.scene.layout_positions, repeat)
    print(f"open in the window (read, analyse, {len(w.scene.nodes)} cards, "
          f"{len(w.scene.edges)} wires, layout on load, first paint): {t_new * ms:8.1f} ms")
    print(f"layered layout alone ({placed} cards placed):                {t_layout * ms:8.1f} ms")
    w.document.reset(engine.Graph("empty"))
    w.close()


def bench_datasets(repeat: int) -> None:
    """Generating the built-in datasets at the sizes the examples use (median of ``repeat``)."""
    from engine.data import load_dataset

    for name, n in (("shapes", 6000), ("digits", 1797), ("spirals", 600)):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            load_dataset(name, n=n) if name != "digits" else load_dataset(name)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(f"load_dataset({name!r}, n={n}): median {times[len(times) // 2] * 1e3:8.1f} ms "
              f"(min {times[0] * 1e3:.1f}, max {times[-1] * 1e3:.1f})")


# ----- memory -------------------------------------------------------------------------------
def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


LAYERS = [("Conv2D", {"filters": 8, "kernel_size": 3, "padding": "same"}), ("BatchNorm", {}),
          ("ReLU", {}), ("MaxPool2D", {}), ("Conv2D", {"filters": 16, "kernel_size": 3}),
          ("ReLU", {}), ("Flatten", {}), ("Dropout", {"rate": 0.2}), ("Dense", {"units": 32}),
          ("ReLU", {}), ("Dense", {"units": 10})]


def small_model() -> engine.Graph:
    nodes = [{"id": "in", "type": "Input", "params": {"shape": [1, 8, 8]}}]
    nodes += [{"id": f"n{i}", "type": t, "params": p} for i, (t, p) in enumerate(LAYERS)]
    nodes.append({"id": "out", "type": "Output", "params": {"loss": "cross_entropy"}})
    edges = [{"src": a["id"], "dst": b["id"]} for a, b in itertools.pairwise(nodes)]
    return engine.Graph.from_dict({"format": "netbuilder.graph", "version": 1, "name": "small",
                                   "nodes": nodes, "edges": edges})


def bench_memory(runs: int, epochs: int, vary_batch: bool) -> bool:
    from engine.data import load_dataset
    from engine.training import Trainer

    ds = load_dataset("digits")
    print(f"{runs} training runs: {len(ds)} digits, {epochs} epochs each, "
          f"{'batch size 16..64 varying' if vary_batch else 'batch 32'}; RSS after each run")
    rss = []
    for i in range(runs):
        t0 = time.perf_counter()
        net = engine.compile(small_model(), seed=i)
        batch = 16 + (i * 7) % 49 if vary_batch else 32
        trainer = Trainer(net, ds, {"epochs": epochs, "batch_size": batch, "val_split": 0.2,
                                    "seed": i, "optimizer": {"type": "adam", "lr": 0.01}})
        result = trainer.run()
        del net, trainer
        gc.collect()
        rss.append(rss_kb())
        acc = result.val_accuracy
        print(f"run {i + 1:2d}: {time.perf_counter() - t0:5.2f} s, val acc "
              f"{acc if acc is None else round(acc, 3)}, RSS {rss[-1] / 1024:7.1f} MB "
              f"({rss[-1] - rss[0]:+7,d} kB since run 1)", flush=True)
    growth = (rss[-1] - rss[0]) / rss[0]
    peak = (max(rss) - rss[0]) / rss[0]
    ok = growth <= MEMORY_LIMIT and peak <= MEMORY_LIMIT
    print(f"growth after run 1: {growth * 100:+.1f} % at the end, {peak * 100:+.1f} % at most "
          f"(limit {MEMORY_LIMIT * 100:.0f} %): {'ok' if ok else 'TOO MUCH'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["all", "open", "memory"], default="all")
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--vary-batch", action="store_true",
                    help="a different batch size in every run (caches keyed by batch size)")
    args = ap.parse_args(argv)
    ok = True
    if args.part in ("all", "open"):
        bench_open(args.nodes, args.repeat)
        bench_datasets(args.repeat)
    if args.part == "memory":
        ok = bench_memory(args.runs, args.epochs, args.vary_batch)
    elif args.part == "all":
        print(flush=True)
        cmd = [sys.executable, __file__, "--part", "memory", "--runs", str(args.runs),
               "--epochs", str(args.epochs)] + (["--vary-batch"] if args.vary_batch else [])
        ok = subprocess.run(cmd).returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

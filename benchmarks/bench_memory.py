"""Peak resident memory of a LeNet-5 training run (the example model on its built-in `shapes`
dataset, its own training settings), in a fresh process; with ``--net resnet20``, of
ResNet-20 training steps at batch 64 in the engine and in PyTorch (the exported module,
default layout), each in a fresh process.

    python benchmarks/bench_memory.py [--epochs 2]
    python benchmarks/bench_memory.py --net resnet20 [--steps 20] [--batch 64]

LeNet-5: the resident set after each stage (imports, data, compiled network, training) and
the peak (``ru_maxrss``) of the whole process; the target is 400 MB. ResNet-20: per side
the resident set once everything is imported (the engine's process imports torch too, so
both start from the same libraries), the peak after the steps, and their difference (what
the run itself holds); the target is the engine's peak at most 1.5× PyTorch's. Run it
twice on a cold Numba cache: the first run's peak includes compiling the kernels.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, machine_description

clean_environment()

import argparse  # noqa: E402
import datetime  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_mb()


def peak_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 2**20 if sys.platform == "darwin" else kb / 1024


def resnet20_worker(side: str, steps: int, batch: int) -> None:
    """One side's ResNet-20 run in this process; prints "base peak" in MB."""
    import _peers
    import bench_train
    import numpy as np
    import torch

    from engine.threads import set_num_threads

    torch.set_num_threads(2)
    set_num_threads(2)
    rng = np.random.default_rng(0)
    graph = bench_train.resnet20()
    base = rss_mb()
    step, net, x, y = bench_train.engine_step(graph, batch, rng)
    if side == "torch":
        step = _peers.torch_step(torch, net, x, y)
        del net
    for _ in range(steps):
        step()
    print(f"{base:.1f} {peak_mb():.1f}")


def resnet20_table(steps: int, batch: int) -> None:
    import subprocess

    rows = []
    for side in ("engine", "torch"):
        out = subprocess.run([sys.executable, __file__, "--worker", side, "--steps", str(steps),
                              "--batch", str(batch)], capture_output=True, text=True,
                             check=True).stdout.split()
        base, peak = float(out[-2]), float(out[-1])
        rows.append((side, base, peak))
    print(f"# {datetime.date.today()} · {machine_description()}")
    print(f"# ResNet-20, batch {batch}, {steps} training steps, 2 threads, each side in a fresh "
          "process")
    print()
    print("| side | RSS after imports MB | peak MB | peak - imports MB |")
    print("|---|---|---|---|")
    for side, base, peak in rows:
        print(f"| {side} | {base:.1f} | {peak:.1f} | {peak - base:.1f} |")
    (_, eb, ep), (_, tb, tp) = rows
    print(f"\nengine / torch: peak {ep / tp:.2f}×, run's own memory {(ep - eb) / (tp - tb):.2f}× "
          "(target: peak ≤ 1.5×)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--net", choices=("lenet5", "resnet20"), default="lenet5")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--worker", choices=("engine", "torch"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        resnet20_worker(args.worker, args.steps, args.batch)
        return 0
    if args.net == "resnet20":
        resnet20_table(args.steps, args.batch)
        return 0
    stages = [("python + benchmark", rss_mb())]
    import engine

    stages.append(("import engine", rss_mb()))
    graph = engine.load_graph(ROOT / "resources" / "examples" / "lenet5.json")
    settings = engine.TrainSettings.from_dict(graph.training, epochs=args.epochs)
    data = engine.load_dataset(settings.dataset)
    stages.append((f"dataset {settings.dataset!r} ({len(data)} samples)", rss_mb()))
    net = engine.compile(graph)
    stages.append(("compiled network", rss_mb()))
    t0 = time.perf_counter()
    result = engine.Trainer(net, data, settings).run()
    dt = time.perf_counter() - t0
    stages.append((f"trained {args.epochs} epochs, batch {settings.batch_size} ({dt:.1f} s)",
                   rss_mb()))
    print(f"# {datetime.date.today()} · {machine_description()}")
    print(f"# LeNet-5 on {settings.dataset}: {result.status}, {result.steps} steps, train loss "
          f"{result.train_loss:.3f}, val accuracy {result.val_accuracy or 0:.1%}")
    print()
    print(f"| {'stage':<44} | {'RSS MB':>7} |")
    print(f"|{'-' * 46}|{'-' * 9}|")
    for name, mb in stages:
        print(f"| {name:<44} | {mb:>7.1f} |")
    print(f"| {'peak (ru_maxrss)':<44} | {peak_mb():>7.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

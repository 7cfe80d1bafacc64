"""Peak resident memory of a LeNet-5 training run (the example model on its built-in `shapes`
dataset, its own training settings), in a fresh process.

    python benchmarks/bench_memory.py [--epochs 2]

Prints the resident set after each stage (imports, data, compiled network, training) and the
peak (``ru_maxrss``) of the whole process. The target is 400 MB.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args(argv)
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

"""What live profiling costs a training run: steps with ``engine.profile.StepTimer`` armed
on one step in ``--every`` (as Look Inside ▸ Profile Live While Training does) against the
same steps with no timer, in interleaved rounds; the median ratio of the times and its
spread.

    python benchmarks/bench_live_profile.py [--model lenet5] [--rounds 7] [--steps 60]
                                            [--every 20] [--batch 64]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment

clean_environment()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine_description  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.profile import StepTimer  # noqa: E402
from engine.resources import resolve_model  # noqa: E402


def run(net: engine.Network, opt: engine.Optimizer, x: np.ndarray, y: np.ndarray,
        steps: int, timer: StepTimer | None, every: int, batch: int) -> float:
    """Seconds for ``steps`` training steps, the timer armed on one in ``every``."""
    t0 = time.perf_counter()
    for i in range(steps):
        if timer is not None and i % every == 0:
            timer.arm()
        net.train_step(x, y, opt)
        if timer is not None and timer.armed:
            timer.take(batch)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    net = engine.Network(engine.load_graph(resolve_model(a.model)[0]), seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch, *net.shapes[net.input_ids[0]])).astype(np.float32)
    y = rng.integers(0, int(np.prod(net.shapes[net.output_ids[0]])), a.batch)
    opt = engine.SGD(lr=0.01)
    timer = StepTimer(net)
    run(net, opt, x, y, 5, timer, 1, a.batch)  # warm
    ratios = []
    for _ in range(a.rounds):
        off = run(net, opt, x, y, a.steps, None, a.every, a.batch)
        on = run(net, opt, x, y, a.steps, timer, a.every, a.batch)
        ratios.append(on / off)
    print(machine_description())
    print(f"{a.model}, batch {a.batch}, {a.steps} steps per round, one timed in {a.every}")
    print(f"time with live profiling / without: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}) over {a.rounds} rounds")


if __name__ == "__main__":
    main()

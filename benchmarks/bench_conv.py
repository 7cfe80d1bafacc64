"""Time the Conv2D and pooling layers on LeNet-5's shapes (forward, backward, per batch).

    python benchmarks/bench_conv.py [--batch 64] [--repeat 200] [--threads 2]

Prints the median milliseconds per call, the best forward+backward, and the forward GFLOP/s of
the convolutions (at the median). Medians move with whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from engine.registry import get_layer_class

CASES = [
    ("conv1 1->6 5x5 pad 2", "Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}, (1, 28, 28)),
    ("conv2 6->16 5x5", "Conv2D", {"filters": 16, "kernel_size": 5}, (6, 14, 14)),
    ("maxpool1 2x2", "MaxPool2D", {}, (6, 28, 28)),
    ("maxpool2 2x2", "MaxPool2D", {}, (16, 10, 10)),
    ("avgpool1 2x2", "AvgPool2D", {}, (6, 28, 28)),
]


def times_ms(fn, repeat: int) -> np.ndarray:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * np.array(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, {args.threads} Numba threads, median of {args.repeat}")
    print(f"{'layer':<22}{'forward ms':>12}{'backward ms':>13}{'total ms':>10}{'best ms':>9}"
          f"{'fwd GFLOP/s':>13}")
    for name, type_name, params, shape in CASES:
        layer = get_layer_class(type_name)("n", params, [shape])
        p = layer.init_params(rng)
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        x = rng.standard_normal((args.batch, *shape)).astype(np.float32)
        dy = rng.standard_normal((args.batch, *layer.out_shape)).astype(np.float32)
        f = times_ms(lambda: layer.forward([x], p, True), args.repeat)  # noqa: B023
        b = times_ms(lambda: layer.backward(dy, p, grads), args.repeat)  # noqa: B023
        fwd, bwd = float(np.median(f)), float(np.median(b))
        gflops = 2 * layer.macs() * args.batch / (fwd * 1e6) if layer.macs() else float("nan")
        print(f"{name:<22}{fwd:>12.3f}{bwd:>13.3f}{fwd + bwd:>10.3f}{f.min() + b.min():>9.3f}"
              f"{gflops:>13.2f}")


if __name__ == "__main__":
    main()

"""LSTM training-step throughput: NetBuilder's engine beside PyTorch's nn.LSTM, in one run.

    python benchmarks/bench_lstm.py [--batch 64] [--steps 50] [--features 32] [--units 128]

Both sides do the same work per step: forward over the whole sequence, mean-squared error on
every output, backward (through time, including the gradient wrt the input) and one SGD
update. Timings alternate between the two in rounds and report the median, so load from
other processes hits both alike. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the
environment (the script re-executes itself before numpy loads) so BLAS picks its kernels for
this CPU, as a user's installation would.
"""

from __future__ import annotations

import os
import sys

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(k in os.environ for k in _PINNED):
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

with contextlib.suppress(ImportError):  # before the engine: it sets GOMP_SPINCOUNT
    import torch  # noqa: F401

import engine  # noqa: E402


def blas_lines() -> list[str]:
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba's np.dot calls)
    from threadpoolctl import threadpool_info

    lines = []
    for info in threadpool_info():
        lines.append(f"{info['user_api']}: {info['internal_api']} {info.get('version')} "
                     f"({info.get('architecture')}, {info['num_threads']} threads) "
                     f"{Path(info['filepath']).parent.name}/{Path(info['filepath']).name}")
    return lines


def engine_step(args, rng):
    doc = {"format": "netbuilder.graph", "version": 1, "name": "bench_lstm",
           "nodes": [{"id": "in", "type": "Input",
                      "params": {"shape": [args.steps, args.features]}},
                     {"id": "lstm", "type": "LSTM",
                      "params": {"units": args.units, "return_sequences": True}},
                     {"id": "out", "type": "Output", "params": {"loss": "mse"}}],
           "edges": [{"src": "in", "dst": "lstm"}, {"src": "lstm", "dst": "out"}]}
    net = engine.compile(engine.Graph.from_dict(doc), seed=0)
    opt = engine.SGD(lr=0.01)
    x = rng.standard_normal((args.batch, args.steps, args.features)).astype(np.float32)
    y = rng.standard_normal((args.batch, args.steps, args.units)).astype(np.float32)
    return lambda: net.train_step(x, y, opt)


def torch_step(args, rng):
    import torch

    lstm = torch.nn.LSTM(args.features, args.units, batch_first=True)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
    x = torch.from_numpy(
        rng.standard_normal((args.batch, args.steps, args.features)).astype(np.float32))
    x.requires_grad_(True)  # the engine always computes the input gradient too
    y = torch.from_numpy(
        rng.standard_normal((args.batch, args.steps, args.units)).astype(np.float32))

    def step():
        opt.zero_grad()
        out, _ = lstm(x)
        loss = torch.nn.functional.mse_loss(out, y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def time_block(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50, help="sequence length T")
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-round", type=int, default=10)
    args = ap.parse_args(argv)

    import numba

    for line in blas_lines():
        print(line)
    print(f"numba {numba.__version__}: {numba.get_num_threads()} threads, numpy {np.__version__}")
    rng = np.random.default_rng(0)
    sides = {"netbuilder": engine_step(args, rng)}
    try:
        import torch

        sides[f"torch {torch.__version__}"] = torch_step(args, rng)
        print(f"torch threads: {torch.get_num_threads()}")
    except ImportError:
        print("torch is not installed: engine only (pip install torch for the comparison)")
    t0 = time.perf_counter()
    for fn in sides.values():
        for _ in range(5):
            fn()
    print(f"warm-up (incl. compiling) {time.perf_counter() - t0:.1f} s; numba threading layer: "
          f"{numba.threading_layer()}")
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, fn in sides.items():
            times[name].append(time_block(fn, args.per_round))
    print(f"LSTM batch {args.batch}, T {args.steps}, F {args.features}, {args.units} units: "
          "training step (forward + MSE + backward through time + SGD)")
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        print(f"  {name:<16} {t * 1e3:8.2f} ms/step  {args.batch / t:9.0f} samples/s "
              f"(best round {min(times[name]) * 1e3:.2f} ms)")
    if len(med) == 2:
        ours, theirs = med.values()
        print(f"  ratio netbuilder / torch (samples/s): {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()

"""MultiHeadAttention forward + backward: NetBuilder's layer beside PyTorch's
nn.MultiheadAttention (eager, both layouts: batch_first and time-major), in one run.

    python benchmarks/bench_attention.py [--batch 32] [--steps 64] [--embed 128] [--heads 4]
                                         [--causal] [--rounds 9] [--per-round 10]
                                         [--threads N]

Each side computes the layer's output for a float32 batch, then the gradients of a fixed
upstream gradient with respect to the input and every parameter (PyTorch: need_weights=False,
its fast path). Timings alternate between the sides in rounds; each round's time per call is
one sample, and the report gives the median and the spread (min … max) over the rounds, so
load from other processes hits every side alike. The ratio is PyTorch's median time over
NetBuilder's against the faster PyTorch layout (> 1: NetBuilder is faster).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment

clean_environment()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

with contextlib.suppress(ImportError):  # before the engine: it sets GOMP_SPINCOUNT
    import torch  # noqa: F401

import engine  # noqa: E402


def engine_call(args, rng):
    """Input -> MultiHeadAttention -> Output in a Network (as a model runs it: BLAS held to
    one thread while the parallel kernels call it)."""
    doc = {"format": "netbuilder.graph", "version": 1, "name": "bench_attention",
           "nodes": [{"id": "in", "type": "Input", "params": {"shape": [args.steps,
                                                                        args.embed]}},
                     {"id": "attn", "type": "MultiHeadAttention",
                      "params": {"heads": args.heads, "causal": args.causal}},
                     {"id": "out", "type": "Output", "params": {"loss": "mse"}}],
           "edges": [{"src": "in", "dst": "attn"}, {"src": "attn", "dst": "out"}]}
    net = engine.compile(engine.Graph.from_dict(doc), seed=0)
    x = rng.standard_normal((args.batch, args.steps, args.embed)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def call():
        net.forward(x, train=True)
        net.backward(dy)

    return call


def torch_call(args, rng, batch_first):
    import torch

    m = torch.nn.MultiheadAttention(args.embed, args.heads, batch_first=batch_first)
    shape = (args.batch, args.steps, args.embed) if batch_first else \
        (args.steps, args.batch, args.embed)
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).requires_grad_(True)
    dy = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    mask = torch.triu(torch.ones(args.steps, args.steps, dtype=torch.bool), 1) \
        if args.causal else None

    def call():
        m.zero_grad(set_to_none=False)
        x.grad = None
        y, _ = m(x, x, x, need_weights=False, attn_mask=mask, is_causal=args.causal)
        y.backward(dy)

    return call


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_block(fn, n: int, clock=time.perf_counter) -> float:
    t0 = clock()
    for _ in range(n):
        fn()
    return (clock() - t0) / n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=64, help="sequence length T")
    ap.add_argument("--embed", type=int, default=128, help="features E")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads for both sides (0: each library's default)")
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                    help="cpu: this process's CPU time (with --threads 1 it ignores the time "
                         "other programs hold the core: a loaded machine's fairer clock)")
    args = ap.parse_args(argv)

    import numba

    if args.threads:
        engine.set_num_threads(args.threads)
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(args.threads)
    from _common import blas_description, machine_description

    print(machine_description())
    print(f"BLAS: {blas_description()}; numba {numba.__version__}: "
          f"{numba.get_num_threads()} threads")
    rng = np.random.default_rng(0)
    sides = {"netbuilder": engine_call(args, rng)}
    try:
        import torch

        sides["torch batch_first"] = torch_call(args, rng, True)
        sides["torch (T, N, E)"] = torch_call(args, rng, False)
        print(f"torch {torch.__version__}: {torch.get_num_threads()} threads")
    except ImportError:
        print("torch is not installed: engine only (pip install torch for the comparison)")
    t0 = time.perf_counter()
    for fn in sides.values():
        for _ in range(3):
            fn()
    print(f"warm-up (incl. compiling) {time.perf_counter() - t0:.1f} s")
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, fn in sides.items():
            times[name].append(time_block(fn, args.per_round, CLOCKS[args.clock]))
    print(f"MultiHeadAttention batch {args.batch}, T {args.steps}, E {args.embed}, "
          f"{args.heads} heads{', causal' if args.causal else ''}: forward + backward "
          f"(median over {args.rounds} rounds of {args.per_round} calls; spread min … max)")
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        print(f"  {name:<18} {t * 1e3:8.2f} ms  ({min(times[name]) * 1e3:.2f} … "
              f"{max(times[name]) * 1e3:.2f})  {args.batch / t:8.0f} samples/s")
    if len(med) > 1:
        best = min(v for k, v in med.items() if k != "netbuilder")
        print(f"  ratio vs the faster PyTorch layout (its time / ours): "
              f"{best / med['netbuilder']:.2f}x")


if __name__ == "__main__":
    main()

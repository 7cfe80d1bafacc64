"""BatchNorm (+ ReLU) and BatchNorm + Add + ReLU training kernels against memory bandwidth
and PyTorch, on ResNet-20's shapes (batch 64, channels 16/32/64 at 32/16/8 px), 2 threads.

    python benchmarks/bench_norm.py [--threads 2] [--repeats 40] [--batch 64]

Per shape and direction, the engine's fused step (through the BatchNorm layer, as
``NormBlock`` / ``NormAddBlock`` run it), ``torch.batch_norm`` + ``relu`` (default layout
and channels_last; forward and autograd backward), and a numpy copy of the tensor's bytes
(the memory-bandwidth floor of one read + one write). Medians and fastest over
``--repeats`` calls in the same process, so the ratios hold on a loaded machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, machine_description

clean_environment()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.layers.norm import BatchNorm  # noqa: E402

SHAPES = ((16, 32), (32, 16), (64, 8))


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, fastest) milliseconds of ``repeats`` calls after 3 untimed ones."""
    for _ in range(3):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, min(ts) * 1e3


def engine_cases(n: int, c: int, hw: int, rng: np.random.Generator
                 ) -> dict[str, Callable[[], object]]:
    layer = BatchNorm("bn", {}, [(c, hw, hw)])
    params = {k: v.copy() for k, v in layer.init_params(rng).items()}
    grads = {"weight": np.zeros(c, np.float32), "bias": np.zeros(c, np.float32)}
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    skip = rng.standard_normal(x.shape).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y, yr, ya = np.empty_like(x), np.empty_like(x), np.empty_like(x)

    def bnrelu_fwd() -> None:
        layer.run_forward(x, params, True, y, yr)

    def bnrelu_bwd() -> None:
        layer.run_backward(dy, yr, params, grads)

    def bnadd_fwd() -> None:
        layer.run_forward_add_relu(x, skip, params, True, y, ya, yr)

    def bnadd_bwd() -> None:
        layer.run_backward_add_relu(dy, yr, params, grads)

    def bn_fwd() -> None:
        layer.run_forward(x, params, True, y, y[:0])

    def bn_bwd() -> None:
        layer.run_backward(dy, dy[:0], params, grads)

    return {"bn+relu fwd": bnrelu_fwd, "bn+relu bwd": (bnrelu_fwd, bnrelu_bwd),
            "bn+add+relu fwd": bnadd_fwd, "bn+add+relu bwd": (bnadd_fwd, bnadd_bwd),
            "bn fwd": bn_fwd, "bn bwd": (bn_fwd, bn_bwd)}


def torch_cases(n: int, c: int, hw: int, channels_last: bool
                ) -> dict[str, Callable[[], object]]:
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(n, c, hw, hw).to(memory_format=fmt).requires_grad_(True)
    skip = torch.randn(n, c, hw, hw).to(memory_format=fmt)
    dy = torch.randn(n, c, hw, hw).to(memory_format=fmt)
    w = torch.ones(c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    rm, rv = torch.zeros(c), torch.ones(c)
    out: dict[str, torch.Tensor] = {}

    def bnrelu_fwd() -> None:
        out["y"] = torch.relu(torch.batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5, False))

    def bnadd_fwd() -> None:
        out["y"] = torch.relu(torch.batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5, False) + skip)

    def bwd() -> None:
        out["y"].backward(dy)

    return {"bn+relu fwd": bnrelu_fwd, "bn+relu bwd": (bnrelu_fwd, bwd),
            "bn+add+relu fwd": bnadd_fwd, "bn+add+relu bwd": (bnadd_fwd, bwd)}


def run_case(case: object, repeats: int) -> tuple[float, float]:
    """A forward case runs alone; a (forward, backward) pair times the backward only."""
    if callable(case):
        return timed(case, repeats)
    fwd, bwd = case
    ts = []
    for i in range(repeats + 3):
        fwd()
        t0 = time.perf_counter()
        bwd()
        if i >= 3:
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, min(ts) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    import numba

    numba.set_num_threads(args.threads)
    if not args.no_torch:
        import torch

        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"# {machine_description()}, {args.threads} threads, batch {args.batch}; "
          f"ms median (fastest) over {args.repeats} calls")
    print("| shape | case | copy | engine | torch | torch channels_last |")
    print("|---|---|---|---|---|---|")
    for c, hw in SHAPES:
        n = args.batch
        src = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        dst = np.empty_like(src)
        copy = timed(lambda d=dst, s=src: np.copyto(d, s), args.repeats)
        eng = engine_cases(n, c, hw, rng)
        peers = ({} if args.no_torch else torch_cases(n, c, hw, False),
                 {} if args.no_torch else torch_cases(n, c, hw, True))
        for name, case in eng.items():
            cells = [f"{m:.3f} ({f:.3f})" for m, f in [run_case(case, args.repeats)]]
            for p in peers:
                cells.append("" if name not in p else
                             "{:.3f} ({:.3f})".format(*run_case(p[name], args.repeats)))
            print(f"| {n}×{c}×{hw}×{hw} | {name} | {copy[0]:.3f} ({copy[1]:.3f}) | "
                  + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

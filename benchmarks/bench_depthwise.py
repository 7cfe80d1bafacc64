"""Depthwise 3×3 Conv2D forward + backward: NetBuilder's kernels beside PyTorch eager, in one run.

    python benchmarks/bench_depthwise.py [--batch 32] [--channels 64] [--size 28]
                                         [--stride 1] [--rounds 9] [--per-round 10]
                                         [--kernels]

One step: forward of a depthwise 3×3 conv (groups = channels, padding 1, bias), then the
backward for the input, weight and bias gradients. PyTorch runs it in its default layout
(contiguous NCHW) and in channels_last; the ratio is against the faster of the two. Rounds
alternate between the sides and each side reports its median and spread (min..max of the
rounds), so load from other processes hits all sides alike. The BLAS tuning variables this
machine sets are removed first (``_common.clean_environment``).

``--kernels`` also times the kernels alone, forward and backward apart, in the same rounds:
for stride 1 the 'same' kernels (``kernels.depthwise_same``, what the layer runs then), for
stride 2 the phase kernels (``kernels.depthwise_s2``, likewise), the direct 3×3 kernels
(``kernels.depthwise``, what it runs for other strides, dilations and paddings) and the row
kernels other filter sizes run (``groupconv.depthwise_*_rows``), so the backward's cost
relative to the forward shows. ``--threads N`` sets Numba's and PyTorch's thread counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, import_torch_first, machine_description

clean_environment()
import_torch_first()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from engine.layers.conv import Conv2D  # noqa: E402


def engine_step(args, x, dy, w, b):
    layer = Conv2D("dw", {"filters": args.channels, "kernel_size": 3, "padding": 1,
                          "stride": args.stride, "groups": args.channels},
                   [x.shape[1:]])
    params = {"weight": w, "bias": b}
    grads = {"weight": np.zeros_like(w), "bias": np.zeros_like(b)}

    def step():
        layer.forward([x], params, True)
        layer.backward(dy, params, grads)

    return step


def kernel_steps(args, x, dy, w, b) -> dict:
    """The depthwise kernels alone, forward and backward apart: the stride-1 'same' ones (what
    the layer runs for stride 1), the direct 3×3 ones (every other 3×3) and rows."""
    from engine.kernels import depthwise as kd
    from engine.kernels import depthwise_s2 as k2
    from engine.kernels import depthwise_same as ks
    from engine.kernels import groupconv as kg

    y = np.empty_like(dy)
    gw, gb = np.zeros_like(w), np.zeros_like(b)
    s = args.stride
    out = {"rows forward": lambda: kg._depthwise_forward_rows(x, w, b, s, s, 1, 1, 1, 1, y),
           "rows backward": lambda: kg._depthwise_backward_rows(x, w, dy, s, s, 1, 1, 1, 1,
                                                               gw, gb)}
    out["direct forward"] = lambda: kd._depthwise3_forward(x, w, b, s, s, 1, 1, 1, 1, y)
    out["direct backward"] = lambda: kd._depthwise3_backward(x, w, dy, s, s, 1, 1, 1, 1, gw, gb)
    if s == 1:
        out["same forward"] = lambda: ks._same_forward(x, w, b, 1, 1, y)
        out["same backward"] = lambda: ks._same_backward(x, w, dy, 1, 1, gw, gb)
    if s == 2:
        out["s2 forward"] = lambda: k2._s2_forward(x, w, b, 1, 1, y)
        out["s2 backward"] = lambda: k2._s2_backward(x, w, dy, 1, 1, gw, gb)
    return out


def torch_step(torch, args, x, dy, w, b, channels_last):
    conv = torch.nn.Conv2d(args.channels, args.channels, 3, args.stride, 1,
                           groups=args.channels)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        conv.bias.copy_(torch.from_numpy(b))
    tx = torch.from_numpy(x.copy())
    tdy = torch.from_numpy(dy.copy())
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        tx = tx.contiguous(memory_format=torch.channels_last)
        tdy = tdy.contiguous(memory_format=torch.channels_last)
    tx.requires_grad_(True)

    def step():
        conv.zero_grad(set_to_none=True)
        tx.grad = None
        conv(tx).backward(tdy)

    return step


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_block(fn, n: int, clock=time.perf_counter) -> float:
    t0 = clock()
    for _ in range(n):
        fn()
    return (clock() - t0) / n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="threads (0: the defaults)")
    ap.add_argument("--kernels", action="store_true",
                    help="also time the kernels alone (forward, backward; flat and rows)")
    ap.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                    help="cpu: this process's CPU time (with --threads 1 it ignores the time "
                         "other programs hold the core: a loaded machine's fairer clock)")
    args = ap.parse_args(argv)

    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.channels, args.size, args.size)).astype(np.float32)
    w = (0.3 * rng.standard_normal((args.channels, 1, 3, 3))).astype(np.float32)
    b = rng.standard_normal(args.channels).astype(np.float32)
    out = (args.size - 1) // args.stride + 1
    dy = rng.standard_normal((args.batch, args.channels, out, out)).astype(np.float32)
    sides = {"netbuilder": engine_step(args, x, dy, w, b)}
    print(machine_description())
    print(f"numba {numba.__version__}: {numba.get_num_threads()} threads, numpy {np.__version__}")
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        sides["torch NCHW"] = torch_step(torch, args, x, dy, w, b, False)
        sides["torch channels_last"] = torch_step(torch, args, x, dy, w, b, True)
        print(f"torch {torch.__version__}: {torch.get_num_threads()} threads")
    except ImportError:
        print("torch is not installed: engine only (pip install torch for the comparison)")
    if args.kernels:
        sides.update({f"kernel {k}": fn for k, fn in kernel_steps(args, x, dy, w, b).items()})
    for fn in sides.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, fn in sides.items():
            times[name].append(time_block(fn, args.per_round, CLOCKS[args.clock]))
    print(f"depthwise 3×3, batch {args.batch}, {args.channels} channels, {args.size}×{args.size}, "
          f"stride {args.stride}, padding 1: forward + backward (dx, dweight, dbias)")
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        print(f"  {name:<22} median {t * 1e3:8.3f} ms/step  (rounds {min(times[name]) * 1e3:.3f}"
              f"..{max(times[name]) * 1e3:.3f} ms)")
    if any(k.startswith("torch") for k in med):
        best_name = min((k for k in med if k.startswith("torch")), key=med.get)
        print(f"  speed netbuilder / {best_name} (the faster PyTorch layout): "
              f"{med[best_name] / med['netbuilder']:.2f}x")
    for kind in ("same", "s2", "direct", "rows"):
        f, b = med.get(f"kernel {kind} forward"), med.get(f"kernel {kind} backward")
        if f and b:
            print(f"  {kind} kernels: backward / forward {b / f:.2f}")


if __name__ == "__main__":
    main()

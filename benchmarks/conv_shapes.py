"""Per conv shape of a CIFAR ResNet: the engine's ConvBlock forward and backward against the
BLAS products they contain and against PyTorch's conv2d on the same shapes, same process.

    python benchmarks/conv_shapes.py [--net resnet20] [--batch 64] [--threads 2] [--reps 15]

For every distinct Conv2D shape of the net: the ConvBlock's forward and backward (median and
fastest ms of ``--reps`` calls, as the network runs them), the sgemm time of the products a
batch-wide layout needs (forward (O, K) @ (K, N·P); weight gradient (O, N·P) @ (N·P, K);
input gradient (K, O) @ (O, N·P)) on ``--threads`` BLAS threads and its GFLOP/s against the
measured sgemm roof (``_common.matmul_roof``), and torch's conv2d forward + backward in its
default layout and channels_last.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, import_torch_first, matmul_roof

clean_environment()
import_torch_first()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench_train  # noqa: E402

import engine  # noqa: E402
from engine.fusion import ConvBlock  # noqa: E402
from engine.kernels.conv import OneThreadBlas  # noqa: E402


def timeit(fn, reps: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, min(ts) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="resnet20", choices=sorted(bench_train.NETS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    engine.set_num_threads(args.threads)
    net = engine.compile(bench_train.NETS[args.net](), seed=0)
    rng = np.random.default_rng(0)
    x, _ = bench_train.dataset(net.shapes[net.input_ids[0]], args.batch, rng)
    with OneThreadBlas(args.threads > 1):
        net.forward(x, train=True)
    torch = None
    if not args.no_torch:
        import torch
        torch.set_num_threads(args.threads)
    roof = matmul_roof(args.threads)
    from threadpoolctl import threadpool_limits
    print(f"sgemm roof {roof:.1f} GFLOP/s on {args.threads} threads; batch {args.batch}")
    print("| conv | modes | fwd ms median (fastest) | bwd ms median (fastest) | gemm fwd+bwd ms "
          "| % roof | torch ms (nchw) | torch ms (nhwc) | engine / torch best (medians) |")
    print("|---|---|---|---|---|---|---|---|---|")
    seen = set()
    tot = [0.0, 0.0, 0.0, 0.0, 0.0]
    for st in net.plan.steps:
        if not isinstance(st, ConvBlock):
            continue
        conv = st.conv
        c, h, w = conv.in_shapes[0]
        o, oh, ow = conv.out_shape
        kh, kw = conv.p["kernel_size"]
        key = (c, h, w, o, oh, ow, kh, kw, tuple(st.stride), st.relu, st.pool)
        c_in, c_out, c_k = conv.in_shapes[0], conv.out_shape, conv.p["kernel_size"]
        need_dx = st.srcs[0] not in net.input_ids
        count = sum(1 for s in net.plan.steps if isinstance(s, ConvBlock)
                    and s.conv.in_shapes[0] == c_in and s.conv.out_shape == c_out
                    and s.conv.p["kernel_size"] == c_k)
        if key in seen:
            continue
        seen.add(key)
        acts = {st.srcs[0]: net.acts[st.srcs[0]] if st.srcs[0] in net.acts
                else rng.standard_normal((args.batch, c, h, w)).astype(np.float32)}
        xin = acts[st.srcs[0]]
        with OneThreadBlas(args.threads > 1):
            fwd = timeit(lambda st=st, acts=acts: st.forward(acts, True), args.reps)
            dy = rng.standard_normal((args.batch, o, oh, ow)).astype(np.float32)
            bwd = timeit(lambda st=st, dy=dy, nd=need_dx: st.backward(dy, nd), args.reps)
        n = args.batch
        k = c * kh * kw
        p = n * oh * ow
        wm = rng.standard_normal((o, k)).astype(np.float32)
        cols = rng.standard_normal((k, p)).astype(np.float32)
        g = rng.standard_normal((o, p)).astype(np.float32)
        with threadpool_limits(args.threads, user_api="blas"):
            gf = timeit(lambda wm=wm, cols=cols: wm @ cols, args.reps)[1]
            gw = timeit(lambda g=g, cols=cols: g @ cols.T, args.reps)[1]
            gx = timeit(lambda wm=wm, g=g: wm.T @ g, args.reps)[1] if need_dx else 0.0
        gemm_ms = gf + gw + gx
        flops = 2 * o * k * p * (3 if need_dx else 2)
        pct = 100 * flops / (gemm_ms * 1e-3) / 1e9 / roof
        tn = tl = float("nan")
        if torch is not None:
            wt = torch.randn(o, c, kh, kw, requires_grad=True)
            res = []
            for cl in (False, True):
                xt = torch.from_numpy(xin.copy()).requires_grad_(need_dx)
                wl = wt
                if cl:
                    xt = xt.detach().to(memory_format=torch.channels_last).requires_grad_(need_dx)
                    wl = wt.detach().to(memory_format=torch.channels_last).requires_grad_(True)
                gt = torch.from_numpy(dy)
                if cl:
                    gt = gt.to(memory_format=torch.channels_last)
                pad = conv.pads[0]

                def step(xt=xt, wl=wl, gt=gt, pad=pad, stride=tuple(st.stride)):
                    out = torch.nn.functional.conv2d(xt, wl, None, stride, pad)
                    out.backward(gt)
                res.append(timeit(step, args.reps)[0])
            tn, tl = res
        name = f"{c}->{o} {kh}x{kw}/{st.stride[0]} {h}x{w} (x{count})"
        eng = fwd[0] + bwd[0]
        tot[0] += count * fwd[0]
        tot[1] += count * bwd[0]
        tot[2] += count * gemm_ms
        tot[3] += count * tn
        tot[4] += count * tl
        print(f"| {name} | {st.fwd_mode}/{st.bwd_mode} | {fwd[0]:.2f} ({fwd[1]:.2f}) | "
              f"{bwd[0]:.2f} ({bwd[1]:.2f}) | {gemm_ms:.2f} | {pct:.0f} % | {tn:.2f} | {tl:.2f} | "
              f"{eng / min(tn, tl):.2f} |")
    print(f"| all convs (× count) | | {tot[0]:.1f} | {tot[1]:.1f} | {tot[2]:.1f} | | "
          f"{tot[3]:.1f} | {tot[4]:.1f} | {(tot[0] + tot[1]) / min(tot[3], tot[4]):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

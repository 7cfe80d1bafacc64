"""How close the LSTM / GRU kernels run to their own BLAS floor, in CPU time of one thread.

    python benchmarks/bench_recurrent_floor.py [--cells lstm,gru] [--chunk 32] [--steps 50]
                                               [--features 32] [--units 128] [--rounds 25]

Each engine thread runs one chunk of the batch (``recurrent.n_chunks``: batch 64 on 2
threads is two chunks of 32), so one chunk on one thread is the unit of work. This script
times, with ``time.thread_time`` (CPU time of the calling thread, so other programs sharing
the cores change it little, unlike wall-clock time on a loaded machine):

- the kernels themselves: ``<cell>_forward`` and ``<cell>_backward`` on one chunk;
- the BLAS calls they make, alone, on the same shapes (the floor no element-wise work can go
  under): per-step recurrent products forward and backward, the input projection of all
  steps, and the weight and input gradients (one GEMM each over all steps);
- the same per-step products in the transposed layout (gates^T (G·H, Nc) = W_hh h^T), which
  packs the small operand instead of the weights.

Rounds alternate between the cases; the minimum and the median over the rounds are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from engine.kernels import recurrent as rk
from engine.kernels.blas import blas_address, gemm_arrays
from engine.kernels.conv import OneThreadBlas
from engine.kernels.jit import njit


@njit(parallel=False)
def _steps_forward(blas, hid, w_hhT, gates):
    """hid (T, Nc, H) @ w_hhT (H, G·H) added into gates (T, Nc, G·H), steps 1 … T-1."""
    for t in range(1, hid.shape[0]):
        gemm_arrays(blas, hid[t - 1], w_hhT, gates[t], 1.0)


@njit(parallel=False)
def _steps_forward_t(blas, hid_t, w_hh, gates_t):
    """The transposed layout: w_hh (G·H, H) @ hid_t (T, H, Nc) into gates_t (T, G·H, Nc)."""
    for t in range(1, hid_t.shape[0]):
        gemm_arrays(blas, w_hh, hid_t[t - 1], gates_t[t], 1.0)


@njit(parallel=False)
def _steps_backward(blas, dgates, w_hh, dh):
    """dh (Nc, H) = dgates_t (Nc, G·H) @ w_hh, steps T-1 … 1."""
    for t in range(dgates.shape[0] - 1, 0, -1):
        gemm_arrays(blas, dgates[t], w_hh, dh)


@njit(parallel=False)
def _steps_backward_t(blas, dgates_t, w_hh, dh_t):
    """dh^T (H, Nc) = w_hh^T @ dgates_t^T (G·H, Nc), steps T-1 … 1."""
    for t in range(dgates_t.shape[0] - 1, 0, -1):
        gemm_arrays(blas, w_hh.T, dgates_t[t], dh_t)


@njit(parallel=False)
def _whole(blas, a, b, out, transpose_a):
    if transpose_a:
        gemm_arrays(blas, a.T, b, out)
    else:
        gemm_arrays(blas, a, b, out)


def cases(cell: str, args: argparse.Namespace) -> dict[str, Callable[[], None]]:
    """name -> one call, every array made once here."""
    rng = np.random.default_rng(0)
    dt = np.float32
    t, nc, nf, nh = args.steps, args.chunk, args.features, args.units
    gh = rk.GATES[cell] * nh
    k = 1.0 / np.sqrt(nh)
    w_ih = rng.uniform(-k, k, (gh, nf)).astype(dt)
    w_hh = rng.uniform(-k, k, (gh, nh)).astype(dt)
    b_ih, b_hh = (rng.uniform(-k, k, gh).astype(dt) for _ in range(2))
    x = rng.standard_normal((1, t, nc, nf)).astype(dt)
    dhid = rng.standard_normal((1, t, nc, nh)).astype(dt)
    blas = blas_address(dt)
    state = rk.sequence_forward(cell, x, w_ih, w_hh, b_ih, b_hh, {})
    bufs: rk.Buffers = {}  # kept from call to call, as a layer keeps them
    bufs_back: rk.Buffers = {}
    out = {
        "kernel forward": lambda: rk.sequence_forward(cell, x, w_ih, w_hh, b_ih, b_hh, bufs),
        "kernel backward": lambda: rk.sequence_backward(cell, state, w_ih, w_hh, dhid,
                                                        bufs_back),
    }
    hid = state["hid"][0]
    gates = np.zeros((t, nc, gh), dt)
    w_ihT, w_hhT = np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T)
    hid_t = np.ascontiguousarray(hid.transpose(0, 2, 1))
    gates_t = np.zeros((t, gh, nc), dt)
    dh, dh_t = np.zeros((nc, nh), dt), np.zeros((nh, nc), dt)
    x2, h2, g2 = x[0].reshape(t * nc, nf), hid.reshape(t * nc, nh), gates.reshape(t * nc, gh)
    dw_ih, dw_hh, dx2 = np.zeros((gh, nf), dt), np.zeros((gh, nh), dt), np.zeros((t * nc, nf), dt)
    out.update({
        "BLAS per-step forward (Nc, H) @ (H, G·H)": lambda: _steps_forward(blas, hid, w_hhT,
                                                                          gates),
        "BLAS per-step forward transposed": lambda: _steps_forward_t(blas, hid_t, w_hh, gates_t),
        "BLAS per-step backward (Nc, G·H) @ (G·H, H)": lambda: _steps_backward(blas, gates, w_hh,
                                                                              dh),
        "BLAS per-step backward transposed": lambda: _steps_backward_t(blas, gates_t, w_hh, dh_t),
        "BLAS input projection (T·Nc, F) @ (F, G·H)": lambda: _whole(blas, x2, w_ihT, g2, False),
        "BLAS dW_hh (G·H, T·Nc) @ (T·Nc, H)": lambda: _whole(blas, g2, h2, dw_hh, True),
        "BLAS dW_ih (G·H, T·Nc) @ (T·Nc, F)": lambda: _whole(blas, g2, x2, dw_ih, True),
        "BLAS dx (T·Nc, G·H) @ (G·H, F)": lambda: _whole(blas, g2, w_ih, dx2, False),
    })
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--chunk", type=int, default=32, help="samples per chunk (batch / threads)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=25)
    args = ap.parse_args(argv)
    for cell in args.cells.split(","):
        fns = cases(cell.strip(), args)
        times: dict[str, list[float]] = {k: [] for k in fns}
        with OneThreadBlas():
            for fn in fns.values():
                fn()
            for _ in range(args.rounds):
                for name, fn in fns.items():
                    t0 = time.thread_time()
                    fn()
                    times[name].append((time.thread_time() - t0) * 1e3)
        print(f"\n{cell.upper()}: one chunk of {args.chunk}, T {args.steps}, F {args.features}, "
              f"{args.units} units, CPU ms of one thread over {args.rounds} rounds")
        print(f"| {'case':<46} | {'min':>7} | {'median':>7} |")
        print(f"|{'-' * 48}|{'-' * 9}|{'-' * 9}|")
        for name, ts in times.items():
            print(f"| {name:<46} | {min(ts):7.3f} | {statistics.median(ts):7.3f} |")
        med = {k: statistics.median(v) for k, v in times.items()}
        blas_fwd = (med["BLAS per-step forward (Nc, H) @ (H, G·H)"]
                    + med["BLAS input projection (T·Nc, F) @ (F, G·H)"])
        blas_bwd = sum(v for k, v in med.items() if k.startswith("BLAS") and (
            "backward (" in k or "dW" in k or "dx" in k))
        print(f"forward: kernel {med['kernel forward']:.3f} ms, its BLAS calls {blas_fwd:.3f} ms; "
              f"backward: kernel {med['kernel backward']:.3f} ms, its BLAS calls "
              f"{blas_bwd:.3f} ms (medians)")


if __name__ == "__main__":
    main()

"""LSTM and GRU training-step throughput: NetBuilder's engine beside the strongest CPU peers,
in one run.

    python benchmarks/bench_lstm.py [--cells lstm,gru] [--batch 64] [--steps 50]
                                    [--features 32] [--units 128] [--threads 2]
                                    [--rounds 7] [--per-round 10] [--no-compile] [--no-jax]
                                    [--bidirectional]

Every side does the same work per step: forward over the whole sequence, mean-squared error
on every output, backward (through time, including the gradient wrt the input) and one SGD
update (lr 0.01), float32, from the same initial weights. Peers:

- ``torch eager``: ``nn.LSTM`` / ``nn.GRU`` (batch_first), ``torch.optim.SGD``;
- ``torch.compile``: the same module compiled by inductor with ``allow_rnn`` (dynamo unrolls
  the recurrence), foreach SGD; left out when it cannot compile here;
- ``jax.jit``: the whole train step jitted by XLA, the recurrence a ``lax.scan`` over time
  with the input projection of all steps as one matrix product before it, the input
  gradient returned (so XLA cannot drop it), buffers donated. Only when jax is installed,
  and one-way only.

``--bidirectional`` runs both directions (the engine's ``direction="bidirectional"``,
``merge="concat"``; PyTorch's ``bidirectional=True``), 2 × units outputs per step.

Timings alternate between the sides in rounds (``--per-round`` steps each), so load from
other processes hits all alike; each side's median and range over the rounds are printed, and
the engine's ratio to the best peer (ratio of medians, and the range of the per-round ratios).
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment (the script re-executes
itself before numpy loads) so BLAS picks its kernels for this CPU, as a user's installation
would.
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
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

with contextlib.suppress(ImportError):  # before the engine: it sets GOMP_SPINCOUNT
    import torch  # noqa: F401

import engine  # noqa: E402

LR = 0.01
CELLS = {"lstm": ("LSTM", 4), "gru": ("GRU", 3)}


def blas_lines() -> list[str]:
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba's np.dot calls)
    from threadpoolctl import threadpool_info

    lines = []
    for info in threadpool_info():
        lines.append(f"{info['user_api']}: {info['internal_api']} {info.get('version')} "
                     f"({info.get('architecture')}, {info['num_threads']} threads) "
                     f"{Path(info['filepath']).parent.name}/{Path(info['filepath']).name}")
    return lines


def make_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    out = args.units * (2 if args.bidirectional else 1)
    x = rng.standard_normal((args.batch, args.steps, args.features)).astype(np.float32)
    y = rng.standard_normal((args.batch, args.steps, out)).astype(np.float32)
    return x, y


def engine_net(cell: str, args: argparse.Namespace) -> engine.Network:
    doc = {"format": "netbuilder.graph", "version": 1, "name": f"bench_{cell}",
           "nodes": [{"id": "in", "type": "Input",
                      "params": {"shape": [args.steps, args.features]}},
                     {"id": "rnn", "type": CELLS[cell][0],
                      "params": {"units": args.units, "return_sequences": True,
                                 **({"direction": "bidirectional", "merge": "concat"}
                                    if args.bidirectional else {})}},
                     {"id": "out", "type": "Output", "params": {"loss": "mse"}}],
           "edges": [{"src": "in", "dst": "rnn"}, {"src": "rnn", "dst": "out"}]}
    return engine.compile(engine.Graph.from_dict(doc), seed=0)


def engine_step(net: engine.Network, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    opt = engine.SGD(lr=LR)
    return lambda: net.train_step(x, y, opt)


def weights(net: engine.Network) -> dict[str, np.ndarray]:
    """The engine's initial weights by PyTorch name (``weight_ih_l0``, ``weight_ih_l0_reverse``
    …)."""
    out = {}
    for k, v in net.params.items():
        name = k.split(".", 1)[1]
        reverse = name.endswith("_reverse")
        base = name.removesuffix("_reverse")
        out[base + "_l0" + ("_reverse" if reverse else "")] = v.copy()
    return out


def torch_step(cell: str, w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
               compiled: bool = False) -> Callable[[], None]:
    import torch

    cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    both = any(k.endswith("_reverse") for k in w)
    rnn = cls(x.shape[2], y.shape[2] // (2 if both else 1), batch_first=True, bidirectional=both)
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            p.copy_(torch.from_numpy(w[name]))
    opt = torch.optim.SGD(rnn.parameters(), lr=LR, foreach=True if compiled else None)
    xt = torch.from_numpy(x).requires_grad_(True)  # the engine computes dx too
    yt = torch.from_numpy(y)
    if compiled:
        import torch._dynamo

        torch._dynamo.config.allow_rnn = True
        fwd = torch.compile(lambda inp: rnn(inp)[0])
    else:
        def fwd(inp):
            return rnn(inp)[0]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        xt.grad = None
        loss = torch.nn.functional.mse_loss(fwd(xt), yt)
        loss.backward()
        opt.step()

    return step


def jax_step(cell: str, w: dict[str, np.ndarray], x: np.ndarray,
             y: np.ndarray) -> Callable[[], None]:
    import jax
    import jax.numpy as jnp
    from jax import lax

    h = y.shape[2]

    def run(p, xb):
        xs = jnp.swapaxes(xb, 0, 1)  # (T, N, F)
        xw = xs @ p["weight_ih_l0"].T + p["bias_ih_l0"]  # every step's input projection
        n = xb.shape[0]
        zero = jnp.zeros((n, h), xb.dtype)
        w_hhT = p["weight_hh_l0"].T
        b_hh = p["bias_hh_l0"]
        if cell == "lstm":
            def body(carry, xw_t):
                hp, cp = carry
                g = xw_t + hp @ w_hhT + b_hh
                i, f, gg, o = jnp.split(g, 4, axis=1)
                c = jax.nn.sigmoid(f) * cp + jax.nn.sigmoid(i) * jnp.tanh(gg)
                hn = jax.nn.sigmoid(o) * jnp.tanh(c)
                return (hn, c), hn
            _, hs = lax.scan(body, (zero, zero), xw)
        else:
            def body(hp, xw_t):
                rec = hp @ w_hhT + b_hh
                xr, xz, xn = jnp.split(xw_t, 3, axis=1)
                hr, hz, hn_ = jnp.split(rec, 3, axis=1)
                r = jax.nn.sigmoid(xr + hr)
                z = jax.nn.sigmoid(xz + hz)
                nn_ = jnp.tanh(xn + r * hn_)
                hn = (1 - z) * nn_ + z * hp
                return hn, hn
            _, hs = lax.scan(body, zero, xw)
        return jnp.swapaxes(hs, 0, 1)

    def loss_fn(p, xb, yb):
        return jnp.mean((run(p, xb) - yb) ** 2)

    def train(p, xb, yb):
        loss, (g, dx) = jax.value_and_grad(loss_fn, argnums=(0, 1))(p, xb, yb)
        p = jax.tree_util.tree_map(lambda pi, gi: pi - LR * gi, p, g)
        return p, loss, dx

    train = jax.jit(train, donate_argnums=(0,))
    state = [{k: jnp.asarray(v) for k, v in w.items()}]
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def step() -> None:
        p, _loss, dx = train(state[0], xj, yj)
        state[0] = p
        dx.block_until_ready()

    return step


def peers(cell: str, w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
          args: argparse.Namespace) -> dict[str, Callable[[], None]]:
    """name -> train step of every peer that runs here (each called twice: compiling peers
    compile now); a peer that cannot is left out with a note on stderr."""
    makers: list[tuple[str, Callable[[], Callable[[], None]]]] = []
    if importlib.util.find_spec("torch") is not None:
        makers.append(("torch eager", lambda: torch_step(cell, w, x, y)))
        if args.compile:
            makers.append(("torch.compile", lambda: torch_step(cell, w, x, y, compiled=True)))
    if args.jax and not args.bidirectional and importlib.util.find_spec("jax") is not None:
        makers.append(("jax.jit", lambda: jax_step(cell, w, x, y)))
    out: dict[str, Callable[[], None]] = {}
    for name, make in makers:
        try:
            step = make()
            step()
            step()
        except Exception as exc:  # a peer that cannot run here is reported, not fatal
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            print(f"# {name} left out for {cell}: {last[:300]}", file=sys.stderr)
            continue
        out[name] = step
    return out


def time_block(fn: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def bench_cell(cell: str, args: argparse.Namespace) -> None:
    x, y = make_data(args)
    net = engine_net(cell, args)
    w = weights(net)
    sides = {"netbuilder": engine_step(net, x, y)}
    t0 = time.perf_counter()
    for _ in range(3):
        sides["netbuilder"]()
    sides.update(peers(cell, w, x, y, args))
    print(f"# {cell}: warm-up (incl. compiling every side) {time.perf_counter() - t0:.1f} s")
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, fn in sides.items():
            times[name].append(time_block(fn, args.per_round))
    both = ", bidirectional (concat)" if args.bidirectional else ""
    print(f"\n{CELLS[cell][0]}{both} batch {args.batch}, T {args.steps}, F {args.features}, "
          f"{args.units} units, {args.threads} threads: training step (forward + MSE + "
          f"backward through time incl. dx + SGD), {args.rounds} rounds × {args.per_round}")
    print(f"| {'side':<16} | {'ms/step':>8} | {'samples/s median':>16} | {'range':>15} |")
    print(f"|{'-' * 18}|{'-' * 10}|{'-' * 18}|{'-' * 17}|")
    for name, ts in times.items():
        rates = [args.batch / t for t in ts]
        print(f"| {name:<16} | {statistics.median(ts) * 1e3:8.2f} | "
              f"{statistics.median(rates):16.0f} | {min(rates):6.0f} – {max(rates):6.0f} |")
    others = [k for k in times if k != "netbuilder"]
    if others:
        best = min(others, key=lambda k: statistics.median(times[k]))
        ours = times["netbuilder"]
        ratio = statistics.median(times[best]) / statistics.median(ours)
        # per round: the engine against the best peer of that round
        per_round = [min(times[k][i] for k in others) / ours[i] for i in range(args.rounds)]
        print(f"ratio netbuilder / best peer ({best}): {ratio:.2f}x "
              f"(per-round range {min(per_round):.2f} – {max(per_round):.2f}x)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm,gru", help="comma-separated: lstm, gru")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50, help="sequence length T")
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="leave out torch.compile")
    ap.add_argument("--no-jax", dest="jax", action="store_false", help="leave out jax.jit")
    ap.add_argument("--bidirectional", action="store_true",
                    help="both directions, outputs concatenated (jax.jit left out)")
    args = ap.parse_args(argv)

    import numba

    engine.set_num_threads(args.threads)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}: {torch.get_num_threads()} threads")
    with contextlib.suppress(ImportError):
        import jax

        print(f"jax {jax.__version__}")
    for line in blas_lines():
        print(line)
    print(f"numba {numba.__version__}: {numba.get_num_threads()} threads, numpy {np.__version__}"
          f", load average {os.getloadavg()[0]:.2f}")
    for cell in args.cells.split(","):
        bench_cell(cell.strip(), args)


if __name__ == "__main__":
    main()

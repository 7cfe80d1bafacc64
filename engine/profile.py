"""What a network costs, measured: forward and backward time per node over a few steps.

    prof = profile(net, batch_size=32, steps=3)
    prof.nodes["c1"].forward_ms, prof.percent("c1"), prof.epoch_seconds(60000)

The run uses a copy of the network (same weights, same fusion), so a training run is not
disturbed and BatchNorm statistics do not move. Timings come from ``engine.hooks``: the
time between one step's hook call and the next is that step's. A fused step (Conv + ReLU +
pool) is one kernel, so its time is shared among its nodes in proportion to their
multiply-accumulates (equally when they have none). Times are wall-clock milliseconds.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .gradcheck import random_batch
from .hooks import BackwardEvent
from .network import Network
from .optim import Optimizer


@dataclass
class NodeTiming:
    """Mean milliseconds per step of one node's forward and backward."""

    node: str
    forward_ms: float = 0.0
    backward_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.forward_ms + self.backward_ms


@dataclass
class Profile:
    """Per-node timings (in execution order), the loss and optimizer time, and the whole
    step (forward + loss + backward + update), all mean milliseconds per step of
    ``batch_size`` samples."""

    batch_size: int
    steps: int
    threads: int = 0  # Numba threads the kernels ran on
    nodes: dict[str, NodeTiming] = field(default_factory=dict)
    loss_ms: float = 0.0
    update_ms: float = 0.0
    step_ms: float = 0.0

    def node_sum_ms(self) -> float:
        """Forward + backward of all nodes, plus loss and update: the step as the parts see
        it (the gap to ``step_ms`` is the bookkeeping between them)."""
        return sum(t.total_ms for t in self.nodes.values()) + self.loss_ms + self.update_ms

    def percent(self, node: str) -> float:
        """The node's share of the step, in %."""
        return 100.0 * self.nodes[node].total_ms / self.step_ms if self.step_ms > 0 else 0.0

    def epoch_seconds(self, n_samples: int) -> float:
        """Estimated seconds for one epoch over ``n_samples`` at this batch size."""
        return math.ceil(max(n_samples, 0) / self.batch_size) * self.step_ms / 1000.0

    def table(self) -> str:
        lines = [f"{'node':<20} {'fwd ms':>9} {'bwd ms':>9} {'% step':>7}"]
        for nid, t in self.nodes.items():
            lines.append(f"{nid:<20} {t.forward_ms:>9.3f} {t.backward_ms:>9.3f} "
                         f"{self.percent(nid):>6.1f}%")
        lines.append(f"{'(loss)':<20} {self.loss_ms:>9.3f}")
        lines.append(f"{'(update)':<20} {self.update_ms:>9.3f}")
        lines.append(f"{'step':<20} {self.step_ms:>9.3f}")
        return "\n".join(lines)


def _share(net: Network, ids: tuple[str, ...]) -> dict[str, float]:
    macs = {nid: float(net.layers[nid].macs()) for nid in ids}
    total = sum(macs.values())
    if total <= 0:
        return {nid: 1.0 / len(ids) for nid in ids}
    return {nid: m / total for nid, m in macs.items()}


def profile(net: Network, batch_size: int = 32, steps: int = 3, warmup: int = 1,
            seed: int = 0, optimizer: Optimizer | None = None,
            batch: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
            threads: int | None = None) -> Profile:
    """Time ``steps`` training steps (after ``warmup`` untimed ones) of a copy of ``net``
    on a random batch that fits it (or ``batch`` = (inputs, targets) by id), with
    ``optimizer`` (an SGD by default) updating the copy. ``threads``: run the kernels on
    that many Numba threads (on the calling thread only; as a training run's thread tuner
    may choose) instead of the engine's setting."""
    import numba

    from .threads import sync

    if threads is None:
        return _profile(net, batch_size, steps, warmup, seed, optimizer, batch)
    sync()
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return _profile(net, batch_size, steps, warmup, seed, optimizer, batch)
    finally:
        numba.set_num_threads(before)


def _profile(net: Network, batch_size: int, steps: int, warmup: int, seed: int,
             optimizer: Optimizer | None,
             batch: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None) -> Profile:
    import numba

    from .optim import SGD

    work = Network(net.graph, net.seed, net.dtype, fuse=net.fuse)
    work.load_state_dict(net.state_dict())
    xs, ys = batch if batch is not None else random_batch(work, batch_size, np.random.default_rng(seed))
    batch_size = int(next(iter(xs.values())).shape[0])
    targets = {**ys, **{o: xs[work.input_ids[0]] for o in work.output_ids
                        if work.layers[o].p["target"] == "x"}}
    opt = optimizer or SGD(lr=0.01)
    step_of = {nid: st for st in work.steps for nid in st.ids}
    shares = {id(st): _share(work, st.ids) for st in work.steps}
    fwd = {nid: 0.0 for nid in work.order}
    bwd = {nid: 0.0 for nid in work.order}
    clock = {"last": 0.0, "timing": False}
    seen: set[int] = set()

    def on_forward(nid: str, _out: np.ndarray) -> None:
        now = time.perf_counter()
        st = step_of.get(nid)
        key = id(st) if st is not None else -1
        if clock["timing"] and key not in seen:
            seen.add(key)
            dt = now - clock["last"]
            for n, w in (shares[key].items() if st is not None else [(nid, 1.0)]):
                fwd[n] += dt * w
        clock["last"] = now

    def on_backward(event: BackwardEvent) -> None:
        now = time.perf_counter()
        if clock["timing"]:
            dt = now - clock["last"]
            for n, w in shares[id(step_of[event.node])].items():
                bwd[n] += dt * w
        clock["last"] = now

    loss_t = update_t = step_t = 0.0
    with work.add_hook(on_forward=on_forward, on_backward=on_backward):
        for i in range(warmup + steps):
            timing = i >= warmup
            clock["timing"] = timing
            seen.clear()
            t0 = clock["last"] = time.perf_counter()
            work.forward(xs, train=True)
            t1 = time.perf_counter()
            _total, grads = work.loss(targets, xs)
            t2 = clock["last"] = time.perf_counter()
            work.loss_backward(grads)
            t3 = time.perf_counter()
            opt.step(work.params, work.grads, flat=(work.flat_params, work.flat_grads))
            t4 = time.perf_counter()
            if timing:
                loss_t += t2 - t1
                update_t += t4 - t3
                step_t += t4 - t0
    k = 1000.0 / max(steps, 1)
    prof = Profile(batch_size, steps, numba.get_num_threads(), loss_ms=loss_t * k,
                   update_ms=update_t * k, step_ms=step_t * k)
    for nid in work.order:
        prof.nodes[nid] = NodeTiming(nid, fwd[nid] * k, bwd[nid] * k)
    return prof


class StepTimer:
    """Times one step of a network that is training elsewhere (a run's own network), per
    node, from its hooks: ``arm()`` before a step, ``take()`` after it. The step timed is
    the first backward and the forward just before it: a forward that no backward follows
    (a validation batch, a monitor's probe) is started over by the next one.

    The hooks are registered by ``arm`` and removed by ``take``, so the steps in between
    samples run without them. Call both on the thread that runs the network. The forward
    clock starts at the Inputs' hook; the first backward step also holds the loss (there is
    no hook between them), and ``step_ms`` runs from the Inputs to ``take`` (so it includes
    the optimizer's update when ``take`` follows it). A fused step's time is shared among its
    nodes by multiply-accumulates, as ``profile`` does."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self._step_of = {nid: st for st in net.steps for nid in st.ids}
        self._inputs = set(net.input_ids)
        self._shares = {id(st): _share(net, st.ids) for st in net.steps}
        self._handle = None
        self._reset()

    def _reset(self) -> None:
        self.fwd = dict.fromkeys(self.net.order, 0.0)
        self.bwd = dict.fromkeys(self.net.order, 0.0)
        self._start: float | None = None
        self._last = 0.0
        self._seen: set[int] = set()
        self._backward_seen = False

    @property
    def armed(self) -> bool:
        return self._handle is not None

    def arm(self) -> None:
        """Time the next step (forward and backward) of the network."""
        if self._handle is None:
            self._reset()
            self._handle = self.net.add_hook(on_forward=self._on_forward,
                                             on_backward=self._on_backward)

    def _on_forward(self, nid: str, _out: np.ndarray) -> None:
        now = time.perf_counter()
        if self._backward_seen:
            return  # a second forward (a probe) before take(): the step is over
        if nid in self._inputs:  # a forward begins: any before it had no backward
            self.fwd = dict.fromkeys(self.net.order, 0.0)
            self._seen.clear()
            self._start = self._last = now
            return
        st = self._step_of.get(nid)
        if self._start is None or st is None:
            self._last = now
            return
        key = id(st)
        if key not in self._seen:
            self._seen.add(key)
            dt = now - self._last
            for n, w in self._shares[key].items():
                self.fwd[n] += dt * w
        self._last = now

    def _on_backward(self, event: BackwardEvent) -> None:
        now = time.perf_counter()
        if self._start is None:
            return
        self._backward_seen = True
        dt = now - self._last
        for n, w in self._shares[id(self._step_of[event.node])].items():
            self.bwd[n] += dt * w
        self._last = now

    def take(self, batch_size: int) -> Profile | None:
        """The timings of the step since ``arm`` (None when no full step ran), and the
        hooks removed."""
        now = time.perf_counter()
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._start is None or not self._backward_seen:
            return None
        import numba

        prof = Profile(batch_size, 1, numba.get_num_threads(),
                       step_ms=(now - self._start) * 1000.0)
        for nid in self.net.order:
            prof.nodes[nid] = NodeTiming(nid, self.fwd[nid] * 1000.0, self.bwd[nid] * 1000.0)
        return prof

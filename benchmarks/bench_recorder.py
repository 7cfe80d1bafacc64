"""The flight recorder's cost, and what freezing saves, on an example model.

    python benchmarks/bench_recorder.py [--model lenet5] [--rounds 7] [--steps 40]

1. Size: a 20-epoch run (``--steps`` steps of batch 64 on random data per epoch) recorded
   at the default budget: the recorder's bytes, the bundle's size with and without it.
2. Throughput with the recorder on (gradient hook every 10th step, a snapshot per "epoch"
   of ``--steps`` steps) against off, in interleaved rounds: the median ratio and its spread.
3. Training steps with the convolutions frozen against nothing frozen (same interleaving).
4. The app's recording (``netbuilder.session.recording.MonitorRecorder``: the above plus
   the canvas badges, every layer's gradient histograms, the confusion matrix, the
   predictions of the recorded samples), as a run in the app keeps it: the bundle of a
   20-epoch run of ``--epoch-steps`` steps (75: LeNet-5's epoch on ``shapes`` at batch 64);
   then the app's own training loop (``netbuilder.session.loop.RunLoop``: Trainer,
   validation, monitor, recording) on ``--dataset`` with the recording on against off: two
   runs side by side, paused and let go one epoch at a time in ABBA order, ``--rounds``
   rounds of 2 + 2 epochs; the median ratio of wall times, its range, the pooled ratio; the
   same of the process's CPU time per epoch; and the share of the training thread's time
   spent recording (``RunLoop.record_time``, which the machine's
   load hardly moves).

    python benchmarks/bench_recorder.py --rounds 7     # what the README quotes
    python benchmarks/bench_recorder.py --only-app --rounds 8     # the recording's cost
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment

clean_environment()

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine_description  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.recorder import DEFAULT_BUDGET, FlightRecorder  # noqa: E402
from engine.resources import resolve_model  # noqa: E402


def batch(net: engine.Network, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, *net.shapes[net.input_ids[0]])).astype(np.float32)
    classes = int(np.prod(net.shapes[net.output_ids[0]]))
    return x, rng.integers(0, classes, n)


def epoch_time(net: engine.Network, opt: engine.Optimizer, x: np.ndarray, y: np.ndarray,
               steps: int, rec: FlightRecorder | None, epoch: int) -> tuple[float, float]:
    """(seconds for the steps, seconds for the snapshot after them)."""
    t0 = time.perf_counter()
    for _ in range(steps):
        net.train_step(x, y, opt)
    t1 = time.perf_counter()
    if rec is not None:
        rec.record(epoch, net)
    return t1 - t0, time.perf_counter() - t1


def spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.3f} (min {min(xs):.3f}, max {max(xs):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--epoch-steps", type=int, default=75)
    ap.add_argument("--val", type=int, default=600)
    ap.add_argument("--dataset", default="shapes", help="the app section's data")
    ap.add_argument("--threads", type=int, default=0, help="kernel threads (0: all)")
    ap.add_argument("--views", action="store_true",
                    help="the app section with every monitor view shown (default: hidden)")
    ap.add_argument("--only-app", action="store_true", help="section 4 alone")
    args = ap.parse_args()
    print(machine_description())
    graph = engine.load_graph(resolve_model(args.model)[0])
    if not args.only_app:
        engine_sections(args, graph)
    app_section(args, graph)


def engine_sections(args: argparse.Namespace, graph: engine.Graph) -> None:
    net = engine.Network(graph, seed=0)
    x, y = batch(net)
    samples = x[:8]

    rec = FlightRecorder(net, samples=samples)
    rec.attach(net)
    opt = engine.SGD(lr=0.01, momentum=0.9)
    for epoch in range(1, 21):
        epoch_time(net, opt, x, y, args.steps, rec, epoch)
    rec.detach()
    with tempfile.TemporaryDirectory() as tmp:
        plain = engine.save_bundle(Path(tmp) / "plain.nbmodel", net)
        full = engine.save_bundle(Path(tmp) / "rec.nbmodel", net, extra=rec.members(),
                                  recorder=rec.describe())
        sizes = plain.stat().st_size, full.stat().st_size
    print(f"size: default budget {DEFAULT_BUDGET:,} B; 20 epochs recorded "
          f"{len(rec.data)} kept ({rec.total_bytes():,} B uncompressed); bundle "
          f"{sizes[0]:,} B without, {sizes[1]:,} B with the recording")

    on_net, off_net = engine.Network(graph, seed=0), engine.Network(graph, seed=0)
    on_opt, off_opt = engine.SGD(lr=0.01, momentum=0.9), engine.SGD(lr=0.01, momentum=0.9)
    rec = FlightRecorder(on_net, samples=samples)
    rec.attach(on_net)
    for net_, opt_, r in ((on_net, on_opt, rec), (off_net, off_opt, None)):
        epoch_time(net_, opt_, x, y, 3, r, 0)  # warm
    ratios, hooks, snaps = [], [], []
    for k in range(args.rounds):  # which goes first alternates
        if k % 2:
            off, _ = epoch_time(off_net, off_opt, x, y, args.steps, None, k + 1)
        on, snap = epoch_time(on_net, on_opt, x, y, args.steps, rec, k + 1)
        if not k % 2:
            off, _ = epoch_time(off_net, off_opt, x, y, args.steps, None, k + 1)
        ratios.append(off / (on + snap))
        hooks.append(off / on)
        snaps.append(snap / (off / args.steps))
    print(f"throughput with the recorder / without: {spread(ratios)} over {args.rounds} "
          f"rounds of {args.steps} steps + 1 snapshot")
    print(f"  steps alone (gradient hook on / off): {spread(hooks)}; one snapshot costs "
          f"{spread(snaps)} training steps")

    convs = [n for n in graph.nodes if graph.nodes[n].type == "Conv2D"]
    frozen_graph = graph.copy()
    for n in convs:
        frozen_graph.set_training(n, trainable=False)
    fz, fr = engine.Network(frozen_graph, seed=0), engine.Network(graph, seed=0)
    fz_opt, fr_opt = engine.SGD(lr=0.01), engine.SGD(lr=0.01)
    for net_, opt_ in ((fz, fz_opt), (fr, fr_opt)):
        epoch_time(net_, opt_, x, y, 3, None, 0)
    speed = []
    for k in range(args.rounds):
        if k % 2:
            b = epoch_time(fr, fr_opt, x, y, args.steps, None, 0)[0]
        a = epoch_time(fz, fz_opt, x, y, args.steps, None, 0)[0]
        if not k % 2:
            b = epoch_time(fr, fr_opt, x, y, args.steps, None, 0)[0]
        speed.append(b / a)
    from engine.cost import training_cost
    print(f"frozen {', '.join(convs)}: {training_cost(fz).summary()}")
    print(f"step time nothing frozen / convs frozen: {spread(speed)}")


def app_section(args: argparse.Namespace, graph: engine.Graph) -> None:
    """4: the app's recording, bundle size and throughput on against off."""
    from netbuilder.session.probes import Head, ProbeData
    from netbuilder.session.recording import MonitorRecorder

    def recorder(net: engine.Network, val: tuple[np.ndarray, np.ndarray]) -> MonitorRecorder:
        names = [f"class {k}" for k in range(int(val[1].max()) + 1)]
        probe = ProbeData(x=val[0][:64], y=val[1][:64], labels=names)
        return MonitorRecorder(net, probe, Head.of(net), val, DEFAULT_BUDGET)

    net = engine.Network(graph, seed=0)
    x, y = batch(net)
    xv, yv = batch(net, args.val)
    rec = recorder(net, (xv, yv))
    opt = engine.Adam(lr=0.002)
    rec.record(0)
    for epoch in range(1, 21):
        for _ in range(args.epoch_steps):
            net.train_step(x, y, opt)
        recording = rec.record(epoch)
    rec.detach()
    with tempfile.TemporaryDirectory() as tmp:
        path = engine.save_bundle(Path(tmp) / "app.nbmodel", net, extra=recording.members(),
                                  recorder=recording.describe())
        size = path.stat().st_size
    print(f"app recording: 21 snapshots (initial + 20 epochs of {args.epoch_steps} steps), "
          f"{len(recording.epochs)} kept, {recording.total_bytes():,} B of the "
          f"{DEFAULT_BUDGET:,} B budget; bundle {size:,} B")

    app_throughput(args, graph)


class _Segments:
    """One run of the app's training loop (``RunLoop``, the real one) on its own thread,
    held paused and let go one epoch at a time: ``epoch()`` resumes it and returns the wall
    time until its next epoch ended (steps, validation, monitor, recording), and the part
    of it spent recording."""

    def __init__(self, graph: engine.Graph, settings: dict, budget: int | None,
                 threads: int, views: bool) -> None:
        import threading

        from netbuilder.session.loop import RunLoop
        from netbuilder.session.messages import TrainingJob
        from netbuilder.session.probes import MonitorRequest

        hidden = MonitorRequest(feature_maps=False, filters=False, histograms=False,
                                graph=False, regions=False, pairs=False, attention=False,
                                epoch_report=False)
        job = TrainingJob(graph.copy(), settings, threads=threads, start_paused=True,
                          record_budget=budget)
        self.loop = RunLoop(job, MonitorRequest() if views else hidden)
        self._ended = threading.Event()
        self._t_end = self._c_end = 0.0
        self.loop.post = self._post
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()

    def _post(self, kind: str, payload: object) -> None:
        if kind == "epoch":
            self._t_end, self._c_end = time.perf_counter(), time.process_time()
            self.loop.pause()  # the trainer stops before the next batch
            self._ended.set()
        elif kind == "done":
            self._ended.set()

    def epoch(self) -> tuple[float, float, float]:
        """(s of wall time for one epoch, s of the process's CPU time in it, s of the wall
        time spent on the flight recording). The other run waits paused meanwhile, so the
        CPU time is this run's, whatever else the machine runs."""
        self._ended.clear()
        rec0 = self.loop.record_time
        t0, c0 = time.perf_counter(), time.process_time()
        self.loop.resume()
        if not self._ended.wait(600):
            raise RuntimeError("an epoch took over 10 minutes")
        return self._t_end - t0, self._c_end - c0, self.loop.record_time - rec0

    def close(self) -> None:
        self.loop.stop()
        self.loop.resume()
        self.thread.join(60)


def app_throughput(args: argparse.Namespace, graph: engine.Graph) -> None:
    """The app's training loop with the recording on against off, on ``--dataset``: two
    runs side by side, one epoch at a time in ABBA order (on, off, off, on; then off, on,
    on, off), so that a drift of the machine's load hits both alike."""
    from engine.threads import max_threads

    settings = {**graph.training, "dataset": args.dataset, "epochs": 2 * args.rounds + 2,
                "early_stopping": 0}
    threads = args.threads or max_threads()
    runs = {"on": _Segments(graph, settings, DEFAULT_BUDGET, threads, args.views),
            "off": _Segments(graph, settings, None, threads, args.views)}
    try:
        for r in runs.values():
            r.epoch()  # the kernels, the data, the first epoch's allocations
        ratios, cpu_ratios, shares = [], [], []
        totals = {"on": 0.0, "off": 0.0}
        for k in range(args.rounds):
            order = ("on", "off", "off", "on") if k % 2 == 0 else ("off", "on", "on", "off")
            t = {"on": 0.0, "off": 0.0}
            c = {"on": 0.0, "off": 0.0}
            for kind in order:
                wall, cpu, rec = runs[kind].epoch()
                t[kind] += wall
                c[kind] += cpu
                if kind == "on":
                    shares.append(100 * rec / wall)
            ratios.append(t["off"] / t["on"])
            cpu_ratios.append(c["off"] / c["on"])
            totals["on"] += t["on"]
            totals["off"] += t["off"]
    finally:
        for r in runs.values():
            r.close()
    loss = [100 * (1 - r) for r in ratios]
    n = runs["on"].loop.trainer.batches_per_epoch if runs["on"].loop.trainer else 0
    print(f"app loop on {args.dataset} ({n} steps an epoch, {threads} threads, monitor views "
          f"{'shown' if args.views else 'hidden'}), {args.rounds} rounds of 2 + 2 epochs:")
    print(f"  throughput with the recording / without: {spread(ratios)}; pooled "
          f"{totals['off'] / totals['on']:.3f}")
    print(f"  throughput loss: {spread(loss)} %")
    print(f"  CPU time per epoch without / with: {spread(cpu_ratios)}; loss "
          f"{spread([100 * (1 - r) for r in cpu_ratios])} %")
    print(f"  training-thread time spent recording: {spread(shares)} % of an epoch")


if __name__ == "__main__":
    main()

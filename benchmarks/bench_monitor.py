"""The live monitor's cost: LeNet-5 trains on ``shapes`` from the GUI while a 10 ms QTimer on
the GUI thread measures how late it fires (the longest stall of the event loop), with every
plot visible (curves, feature maps, filters, weights and gradients, data fit, mistakes,
confusion matrix, live values on the graph) and with every plot hidden. The two modes
alternate in segments of one run, so a machine whose load drifts hurts both alike.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_monitor.py [--segment 8] [--rounds 3]

Aim: worst stall ≤ 100 ms with the plots on, throughput loss ≤ 15 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, machine_description

clean_environment()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

TICK_MS = 10


class Ticker:
    """A 10 ms timer on the GUI thread recording how late each tick comes."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.late.append(max(0.0, now - self.last - TICK_MS / 1000))
        self.last = now

    def start(self) -> None:
        self.late = []
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return self.late


def run_loop(app: QApplication, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def set_plots(tc, on: bool) -> None:
    """Every plot visible (floating the tabbed ones beside the window) or every one hidden."""
    view = tc.presenter
    docks = view.docks.plots
    if view.act_graph.isChecked() != on:
        view.act_graph.trigger()  # Training ▸ Live Values on the Graph, as a user would
    if not on:
        for d in docks.values():
            d.hide()
        return
    w = tc.w
    geo = w.geometry()
    floating = ["grads", "filters", "fit", "pairs", "gallery"]  # the tabs behind the ones shown
    for k, d in docks.items():
        d.show()
        if k in floating:
            i = floating.index(k)
            d.setFloating(True)
            d.resize(480, 360)
            d.move(geo.x() + geo.width() + 10 + (i % 2) * 490, geo.y() + (i // 2) * 380)
        d.raise_()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--segment", type=float, default=4.0, help="seconds per measured segment")
    ap.add_argument("--rounds", type=int, default=6, help="off/on segment pairs")
    ap.add_argument("--limit", type=int, default=3000, help="samples of shapes to use")
    args = ap.parse_args(argv)

    app = QApplication.instance() or QApplication([])
    tmp = tempfile.mkdtemp(prefix="nb-bench-")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    import engine
    from netbuilder.app import DEFAULT_EXAMPLE, apply_style
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    apply_style(app)
    w = MainWindow(recovery=RecoveryStore(tmp))
    w.resize(1600, 1000)
    w.show()
    w.open_example(DEFAULT_EXAMPLE)  # lenet5 on shapes
    tc = w.training
    training = dict(w.document.graph.training, epochs=1000, limit=args.limit)
    w.document.graph.training = training
    tc.data.reload()
    tc.data.wait_loaded(60)
    w.scene.select_nodes(["a1"])
    tc.show_monitor()
    tc.filters.select_conv("c1")
    tc.grads.select_node("c3")
    run_loop(app, 0.5)
    t_start = time.perf_counter()
    assert tc.start(), tc.panel.message.text()
    while tc.active is None or len(tc.active.steps) < 30:  # compiled, warmed up
        run_loop(app, 0.2)
        if time.perf_counter() - t_start > 600:
            print("training did not start", file=sys.stderr)
            return 1
    batch = tc.worker.loop.trainer.batch_size
    print(f"machine: {machine_description()}")
    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(f"model: LeNet-5 on shapes ({args.limit} samples), batch {batch}; "
          f"start-up to step 30: {time.perf_counter() - t_start:.1f} s")
    ticker = Ticker()
    results: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for on in (False, True):
            set_plots(tc, on)
            run_loop(app, 1.0)  # settle: layout, first images
            m0 = tc.worker.loop.monitor_time
            n0, t0, c0 = len(tc.active.steps), time.perf_counter(), time.thread_time()
            ticker.start()
            run_loop(app, args.segment)
            late = np.array(ticker.stop()) * 1000
            n1, t1, c1 = len(tc.active.steps), time.perf_counter(), time.thread_time()
            rate = (n1 - n0) * batch / (t1 - t0)
            gui = 100 * (c1 - c0) / (t1 - t0)
            mon = 100 * (tc.worker.loop.monitor_time - m0) / (t1 - t0)
            results[on].append((rate, float(late.max()), float(np.percentile(late, 99))))
            print(f"  plots {'on ' if on else 'off'}: {rate:7.1f} samples/s, 10 ms timer late "
                  f"by at most {late.max():5.1f} ms (99th percentile {np.percentile(late, 99):5.1f}"
                  f" ms, {len(late)} ticks); GUI thread CPU {gui:4.1f} %, monitor work on the "
                  f"training thread {mon:4.1f} %", flush=True)
    shown = [k for k, d in tc.presenter.docks.plots.items() if d.isVisible()]
    tc.stop()
    while tc.state != "idle":
        run_loop(app, 0.1)
    off = statistics.median(r[0] for r in results[False])
    on_ = statistics.median(r[0] for r in results[True])
    worst_on = max(r[1] for r in results[True])
    worst_off = max(r[1] for r in results[False])
    # each "on" segment against the "off" segments on either side of it (load drifts)
    offs = [r[0] for r in results[False]]
    ratios = [r[0] / statistics.mean(offs[i:i + 2]) for i, r in enumerate(results[True])]
    loss = 100 * (1 - statistics.median(ratios))
    print(f"plots visible when on: {', '.join(shown)} + live values on the graph")
    print(f"throughput (medians): {off:.1f} samples/s plots off, {on_:.1f} plots on; loss "
          f"{loss:.1f} % (median of each 'on' segment against its neighbours; aim ≤ 15 %)")
    print(f"worst GUI stall: {worst_on:.1f} ms plots on, {worst_off:.1f} ms plots off "
          f"(aim ≤ 100 ms)")
    print(f"uptime: {os.popen('uptime').read().strip()}")
    w.document.reset(engine.Graph("closing"))
    w.ask_save_runs = lambda names: "discard"  # the measured run is thrown away, as a user would
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drawing the monitor from the session's messages: at most a few frames per second, and
within a frame one view per turn of the event loop, so that no single turn holds the GUI
thread long (each turn repaints only the view it changed)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

from ..session.messages import EpochReport, Snapshot, empty_snapshot
from ..session.probes import NodeStats

if TYPE_CHECKING:
    from .presenter import MonitorPresenter

REFRESH_MS = 400  # the monitor redraws at most 2.5 times per second
PHASES = ("status", "curves", "grads", "images", "epoch")
PHASE_GAP_MS = 15  # between the views drawn in one frame: the event loop breathes


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "NaN"
    if v != 0 and (abs(v) >= 100 or abs(v) < 0.01):
        return f"{v:.1e}"
    return f"{v:.2f}"


def badge_for(st: NodeStats) -> tuple[str, str, str]:
    """(text, level, tooltip) of a node's training badge."""
    if not st.finite:
        return "NaN/Inf", "nan", "this node's output holds NaN or Inf"
    text = f"μ {_fmt(st.mean)} σ {_fmt(st.std)}"
    tip = f"activation mean {st.mean:.4g}, std {st.std:.4g}"
    level = "ok"
    frac = None
    if st.dead is not None:
        frac = st.dead
        text += f" · dead {100 * st.dead:.0f}%"
        tip += f"; {100 * st.dead:.1f} % of the units were never positive in the batch"
    elif st.saturated is not None:
        frac = st.saturated
        text += f" · sat {100 * st.saturated:.0f}%"
        tip += f"; {100 * st.saturated:.1f} % of the outputs are saturated"
    if frac is not None:
        level = "bad" if frac > 0.5 else "warn" if frac > 0.2 else "ok"
    return text, level, tip


class FrameDrawing:
    """The drawing half of MonitorPresenter (a mixin: it reads the presenter's views)."""

    def _init_frames(self: MonitorPresenter) -> None:
        self._pending = empty_snapshot()  # what the next frame draws
        self._pending_epoch: EpochReport | None = None
        self._frame = empty_snapshot()  # what the frame being drawn shows
        self._frame_epoch: EpochReport | None = None
        self._phase = len(PHASES)
        self._drawn_curves: tuple[int, int, int] | None = None
        self._drawn_norms: tuple[int, int] | None = None
        self._runs_changed = False
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self._draw_frame)

    def _schedule(self: MonitorPresenter) -> None:
        if not self._refresh.isActive():
            self._refresh.start()

    _phase_live = True  # False while drawing everything at once (_draw_now)

    def _draw_frame(self: MonitorPresenter) -> None:
        """Apply what arrived since the last frame, one view per event-loop turn (each turn
        paints only what it changed, so no single turn holds the GUI long)."""
        self._frame, self._pending = self._pending, empty_snapshot()
        self._frame_epoch, self._pending_epoch = self._pending_epoch, None
        self._phase = 0
        self._next_phase()

    def _draw_now(self: MonitorPresenter) -> None:
        """Everything pending, at once (the end of a run)."""
        self._refresh.stop()
        self._frame, self._pending = self._pending, empty_snapshot()
        self._frame_epoch, self._pending_epoch = self._pending_epoch, None
        self._phase_live = False
        for name in PHASES:
            getattr(self, f"_draw_{name}")()
        self._phase_live = True
        self._phase = len(PHASES)

    def _next_phase(self: MonitorPresenter) -> None:
        while self._phase < len(PHASES):
            name = PHASES[self._phase]
            self._phase += 1
            if getattr(self, f"_draw_{name}")():
                QTimer.singleShot(PHASE_GAP_MS, self._next_phase)
                return

    def _draw_status(self: MonitorPresenter) -> bool:
        p = self._frame
        if p.event is not None:
            total = self.info.total_steps if self.info else p.event.step
            self.panel.show_progress(p.event, total)
        graph = self.act_graph.isChecked()
        if p.stats is not None and graph:
            self.w.scene.set_monitor(badges={n: badge_for(s) for n, s in p.stats.items()})
        if p.wires is not None and graph:
            norms, approx = p.wires
            self.w.scene.set_monitor(flows={e: (v, e in approx) for e, v in norms.items()})
        if p.profile is not None:
            self.live_profile.emit(p.profile)
        if self._runs_changed and self.active is not None:
            self._runs_changed = False
            self.store.notify_changed(self.active)
        return True

    def _draw_curves(self: MonitorPresenter) -> bool:
        run = self.shown
        if run is None or not self.views_ready:
            return False
        key = (run.number, len(run.steps), len(run.epochs))
        if key == self._drawn_curves:
            return False
        self._drawn_curves = key
        self.curves.refresh()
        return True

    def _draw_grads(self: MonitorPresenter) -> bool:
        """Histograms and per-layer norms: every other frame (slower-moving, costly axes)."""
        run = self.shown
        self._grads_turn = not getattr(self, "_grads_turn", False)
        if run is None or not self.views_ready or (self._grads_turn and self._phase_live):
            if self._frame.hists is not None and self._pending.hists is None:
                self._pending.hists = self._frame.hists  # drawn next frame
                self._schedule()
            return False
        changed = False
        if self._frame.hists is not None:
            self.grads.show_hists(self._frame.hists)
            self._frame.hists = None
            changed = True
        key = (run.number, len(run.grad_norm_steps))
        if key != self._drawn_norms:
            self._drawn_norms = key
            self.grads.refresh_norms()
            changed = True
        return changed

    def _draw_images(self: MonitorPresenter) -> bool:
        p = self._frame
        if not self.views_ready or all(v is None for v in (p.maps, p.filters, p.regions,
                                                           p.curve, p.pairs, p.attention)):
            return False
        self._show_images(p, hists=False)
        return True

    def _draw_epoch(self: MonitorPresenter) -> bool:
        rep = self._frame_epoch
        if rep is None or rep.analysis is None or not self.views_ready:
            return False
        self.confusion.show_analysis(rep.analysis, rep.event.epoch)
        self.gallery.show_analysis(rep.analysis, rep.event.epoch)
        return True

    def _show_images(self: MonitorPresenter, snap: Snapshot, hists: bool = True) -> None:
        if snap.maps is not None:
            self.maps.show_maps(snap.maps)
        if snap.filters is not None:
            self.filters.show_filters(*snap.filters)
        if snap.hists is not None and hists:
            self.grads.show_hists(snap.hists)
        if snap.regions is not None:
            self.fit.show_regions(snap.regions)
        if snap.curve is not None:
            self.fit.show_curve(snap.curve)
        if snap.pairs is not None:
            self.pairs.show_pairs(snap.pairs)
        if snap.attention is not None:
            self.attention.show_attention(snap.attention)

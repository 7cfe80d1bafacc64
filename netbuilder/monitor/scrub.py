"""The monitor at a recorded epoch: the presenter's half that follows the timeline.

While the timeline is on a recorded epoch (scrubbed), the filters, feature maps, histograms,
decision regions or fitted curve, the confusion matrix, the mistakes and the canvas badges
show that epoch as recorded (the Input vs Output and Attention views, not recorded, say
that they show the latest values), and what a running run sends is kept aside (the latest of each) instead
of drawn: the views do not jump back on every step. The curves go on growing. Live draws
the kept-aside latest values again and follows the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar

from engine.text import plural

from ..docklayout import MONITOR
from ..session.messages import EpochReport, Snapshot, empty_snapshot
from ..session.recording import RECORD_SAMPLES, fmt_mib, frame_at
from ..session.runs import RunRecord
from .frames import badge_for
from .timeline import TimelineBar, TimelineModel

if TYPE_CHECKING:
    from .presenter import MonitorPresenter

IMAGE_KEYS = ("stats", "wires", "maps", "filters", "hists", "regions", "curve", "pairs")


class TimelineDrawing:
    """A mixin of MonitorPresenter: the timeline bar and drawing a recorded epoch."""

    def _init_timeline(self: MonitorPresenter) -> None:
        self.timeline = TimelineModel(self)
        self.timeline.moved.connect(self._on_timeline_moved)
        self.timeline_bar: QToolBar | None = None
        self._latest = empty_snapshot()  # the newest of each live value of the shown run
        self._latest_epoch: EpochReport | None = None
        self.session.recorded.connect(self._on_recorded)

    @property
    def scrubbed(self: MonitorPresenter) -> bool:
        """The views show a recorded epoch, not the latest values."""
        return self.timeline.epoch is not None

    def _build_timeline_bar(self: MonitorPresenter) -> None:
        """The bar under the monitor (shown in the Monitor layout only)."""
        tb = QToolBar("Timeline", self.w)
        tb.setObjectName("timelineBar")
        tb.setMovable(False)
        tb.setFloatable(False)
        tb.toggleViewAction().setEnabled(False)
        self.timeline_widget = TimelineBar(self.timeline)
        tb.addWidget(self.timeline_widget)
        self.w.addToolBar(Qt.ToolBarArea.BottomToolBarArea, tb)
        self.timeline_bar = tb
        self.w.layouts.mode_changed.connect(self._place_timeline)
        self._place_timeline(self.w.layouts.mode)

    def _place_timeline(self: MonitorPresenter, mode: str) -> None:
        if self.timeline_bar is not None:
            self.timeline_bar.setVisible(mode == MONITOR)

    # ----- following runs ------------------------------------------------------------------
    def _follow_run(self: MonitorPresenter, run: RunRecord | None) -> None:
        """The timeline shows ``run``'s recording, Live."""
        self._latest = empty_snapshot()
        self._latest_epoch = None
        self.timeline.set_recording(None if run is None else run.recording,
                                    bool(run is not None and run.active), reset=True)
        self._show_budget(run)
        if run is not None and not run.active and self.session.final_net is None \
                and self.views_ready and self.timeline.epochs:
            self._show_recorded(self.timeline.epochs[-1], live=True)  # read from a bundle

    def _on_recorded(self: MonitorPresenter, run: RunRecord) -> None:
        if run is not self.shown:
            return
        self.timeline.set_recording(run.recording, run.active)
        self._show_budget(run)

    def _show_budget(self: MonitorPresenter, run: RunRecord | None) -> None:
        rec = None if run is None else run.recording
        if run is not None and run.recording_error:
            self.panel.show_recording_used(f"not recorded: {run.recording_error}", True)
        elif rec is not None:
            self.panel.show_recording_used(
                f"used {fmt_mib(rec.total_bytes())} by {run.name} "
                f"({plural(len(rec.epochs), 'epoch')} kept)", False)
        else:
            self.panel.show_recording_used("", False)

    # ----- live values while scrubbed ------------------------------------------------------
    def _keep_latest(self: MonitorPresenter, snap: Snapshot) -> None:
        """The newest of each live value (drawn again on the way back to Live)."""
        for key in IMAGE_KEYS:
            v = getattr(snap, key)
            if v is not None:
                setattr(self._latest, key, v)

    def _hold_back(self: MonitorPresenter) -> None:
        """Nothing live waiting to be drawn reaches the views while scrubbed."""
        for snap in (self._pending, self._frame):
            for key in IMAGE_KEYS:
                setattr(snap, key, None)
        self._pending_epoch = self._frame_epoch = None

    # ----- moving ----------------------------------------------------------------------------
    def _on_timeline_moved(self: MonitorPresenter, epoch: int | None) -> None:
        if not self.views_ready:
            return
        run = self.shown
        step = 0 if epoch == 0 else next((e.step for e in run.epochs if e.epoch == epoch),
                                         None) if run is not None else None
        self.curves.set_marker(epoch, step)
        if epoch is None:
            self._show_latest()
        else:
            self._hold_back()
            self._show_recorded(epoch)

    def _show_recorded(self: MonitorPresenter, epoch: int, live: bool = False) -> None:
        """Every view at recorded ``epoch`` (for the nodes they have selected); ``live``:
        it is the latest there is (a run read back from a bundle), nothing to say so."""
        rec = self.timeline.recording
        if rec is None or epoch not in rec.epochs:
            return
        f = frame_at(rec, epoch, self.request())
        snap = f.snapshot
        self._show_images(snap)
        if snap.maps is None and self.maps.node is not None:
            self.maps.show_placeholder(
                f"Epoch {epoch}: feature maps are recorded for samples 0–{RECORD_SAMPLES - 1}"
                " (the first channels of each node): pick one of them, or go Live.",
                self.maps.content)
        if self.act_graph.isChecked():
            self.w.scene.clear_monitor()
            if snap.stats:
                self.w.scene.set_monitor(badges={n: badge_for(s) for n, s in
                                                 snap.stats.items()})
        if f.analysis is not None:
            self.confusion.show_analysis(f.analysis, epoch)
        if f.analysis is not None and "wrong" in f.recorded.extra:
            self.gallery.show_analysis(f.analysis, epoch)
            self.gallery.set_live_note(None)
        elif not live:  # a recording made before the mistakes were kept
            self.gallery.set_live_note(epoch)
        if live:
            return
        for view in (self.pairs, self.attention):  # not recorded: they say so
            view.set_live_note(epoch)
        self.w.show_status(f"Epoch {epoch} as recorded (8-bit weights); Live: the latest")

    def _show_latest(self: MonitorPresenter) -> None:
        """Back to Live: the newest values kept aside, then whatever the run sends."""
        latest, rep = self._latest, self._latest_epoch
        for view in (self.gallery, self.pairs, self.attention):
            view.set_live_note(None)
        if self.shown is not None and self.shown.active:
            for key in IMAGE_KEYS:
                v = getattr(latest, key)
                if v is not None and getattr(self._pending, key) is None:
                    setattr(self._pending, key, v)
            if rep is not None and self._pending_epoch is None:
                self._pending_epoch = rep
            self._draw_now()
            self.request_changed()
        elif self.session.final_net is not None:
            self.w.scene.clear_monitor()
            if rep is not None and rep.analysis is not None:
                self.confusion.show_analysis(rep.analysis, rep.event.epoch)
                self.gallery.show_analysis(rep.analysis, rep.event.epoch)
            if latest.stats and self.act_graph.isChecked():
                self.w.scene.set_monitor(badges={n: badge_for(s) for n, s in
                                                 latest.stats.items()})
            self.request_changed()
        elif self.timeline.epochs:  # a run read back from a bundle: its last epoch
            self._show_recorded(self.timeline.epochs[-1], live=True)
        self.w.show_status("Timeline: Live")

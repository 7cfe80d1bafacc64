"""The timeline under the monitor, with real widgets: LeNet-5 trains with its flight
recording on; the slider takes every view back to a recorded epoch (the Filters view shows
that epoch's recorded weights, not the latest), Play steps through the epochs, Live comes
back; a running run does not pull a scrubbed view forward; the recording survives a bundle
saved and reopened; the budget in the Training panel changes what is kept."""

from __future__ import annotations

import itertools

import numpy as np
from monitorkit import click, example, open_model, wait_idle
from PySide6.QtCore import Qt

import engine
from netbuilder import settings
from netbuilder.monitor.frames import badge_for
from netbuilder.panels.training_panel import RECORD_KEY
from netbuilder.session.probes import NodeStats, histogram


def lenet(epochs: int) -> dict:
    return example("lenet5", epochs=epochs, limit=200, batch_size=32)


def shows_filters(tc, want: np.ndarray) -> bool:
    f = tc.filters.filters
    return f is not None and f.shape == want.shape and np.array_equal(f, want)


def test_scrub_play_live_and_reopen_the_recording(make_window, qtbot, tmp_path):
    drv, tc = open_model(make_window, lenet(4))
    p = tc.presenter
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    assert run.status == "completed"
    tl, bar = p.timeline, p.timeline_widget
    assert tl.epochs == [0, 1, 2, 3, 4] and tl.live and p.timeline_bar.isVisible()
    assert bar.slider.maximum() == 4 and bar.live_button.isChecked()
    assert "used" in tc.panel.record_used.text() and "5 epochs kept" in tc.panel.record_used.text()
    tc.docks.plots["filters"].raise_()
    final = run.weights["c1.weight"]
    qtbot.waitUntil(lambda: shows_filters(tc, final), timeout=30_000)  # the trained filters

    bar.slider.setFocus()
    bar.slider.setValue(4)
    qtbot.keyClick(bar.slider, Qt.Key.Key_Home)  # the user takes it to the start ...
    assert tl.epoch == 0
    qtbot.keyClick(bar.slider, Qt.Key.Key_Right)  # ... and one tick on: epoch 1
    assert tl.epoch == 1 and not bar.live_button.isChecked()
    rec = run.recording
    one = rec.snapshot(1)
    want = one.weights["c1.weight"]
    assert shows_filters(tc, want) and not np.allclose(want, final, atol=1e-3)
    assert np.abs(want - rec.snapshot(4).weights["c1.weight"]).max() > 1e-3
    assert "epoch 1 of 4" in bar.where.text()
    marks = tc.curves.markers  # the curves mark the epoch shown
    assert marks["epoch"].isVisible() and marks["epoch"].value() == 1
    assert marks["step"].value() == run.epochs[0].step
    assert tc.confusion.info.text().startswith("epoch 1 ·")
    assert tc.confusion.matrix.sum() == np.sum(one.extra["confusion"]) == 20
    # the Mistakes view: epoch 1's most confident mistakes, as recorded (8-bit samples)
    gallery = tc.gallery
    assert gallery.info.text().startswith("epoch 1 ·")
    assert [[s.index, s.true, s.pred] for s in gallery.analysis.wrong] == \
        [w[:3] for w in one.extra["wrong"]] != []
    np.testing.assert_array_equal(gallery.analysis.wrong[0].x, one.extra_arrays["wrong_x"][0])
    assert gallery.live_note.isHidden()
    # Input vs Output is not recorded: it says it shows the latest values
    assert not tc.pairs.live_note.isHidden() and "not epoch 1" in tc.pairs.live_note.text()
    b = one.extra["badges"]["a1"]
    assert drv.w.scene.nodes["a1"].badge == badge_for(NodeStats(*b))
    # the feature maps of the selected node and sample, the histograms, as recorded
    drv.w.scene.select_nodes(["a1"])
    tc.docks.plots["maps"].raise_()
    qtbot.waitUntil(lambda: "sample 0" in tc.maps.info.text(), timeout=10_000)
    np.testing.assert_array_equal(tc.maps.maps, one.feature_maps["a1"][0])
    tc.maps.sample_box.setValue(3)
    np.testing.assert_array_equal(tc.maps.maps, one.feature_maps["a1"][3])
    assert one.extra["predictions"][3] in tc.maps.input_label.text()
    tc.grads.select_node("c3")
    counts, _ = tc.grads.hists.weights["weight"]
    want_counts, _ = histogram(one.weights["c3.weight"])  # the recorded 8-bit weights'
    assert counts.tolist() == want_counts.tolist()
    counts, _ = tc.grads.hists.grads["weight"]
    assert counts.tolist() == one.extra["hists"]["c3"]["grads"]["weight"][0]
    tc.docks.plots["filters"].raise_()
    # another convolution while scrubbed: its epoch-1 weights
    tc.filters.select_conv("c3")
    assert shows_filters(tc, one.weights["c3.weight"])
    tc.filters.select_conv("c1")

    seen = []
    tl.moved.connect(seen.append)
    click(qtbot, bar.play_button)
    qtbot.waitUntil(lambda: not bar.play_button.isChecked(), timeout=30_000)
    assert seen == [2, 3, 4] and tl.epoch == 4  # it stops on the last recorded epoch
    assert shows_filters(tc, rec.snapshot(4).weights["c1.weight"])

    click(qtbot, bar.live_button)
    assert tl.live and bar.live_button.isChecked()
    assert shows_filters(tc, final)  # the trained network again, full precision
    assert tc.pairs.live_note.isHidden()
    assert gallery.info.text().startswith("epoch 4 ·")
    assert not marks["epoch"].isVisible()

    target = tmp_path / "lenet_run.nbmodel"
    tc.choose_bundle_path = lambda r: str(target)
    click(qtbot, tc.runs_panel.save_button)
    assert engine.load_bundle(target).manifest["recorder"]["epochs"] == [0, 1, 2, 3, 4]
    drv.w.new_file()
    assert tl.epochs == []
    assert drv.w.open_file(target)
    opened = tc.store.latest()
    assert opened is not run and tc.curves.run is opened
    assert tl.epochs == [0, 1, 2, 3, 4] and tl.live
    tc.docks.plots["filters"].raise_()
    bar.slider.setValue(1)
    assert tl.epoch == 1
    assert shows_filters(tc, opened.recording.snapshot(1).weights["c1.weight"])
    np.testing.assert_array_equal(opened.recording.snapshot(1).weights["c1.weight"], want)


def test_a_scrubbed_view_stays_while_the_run_goes_on(make_window, qtbot):
    _, tc = open_model(make_window, lenet(400))
    p = tc.presenter
    box = tc.panel.record_budget_box  # room for every epoch the test sees: none is thinned
    box.setCurrentIndex(box.findData(64))
    box.activated.emit(box.currentIndex())
    click(qtbot, tc.panel.start_button)
    tl, bar = p.timeline, p.timeline_widget
    tc.docks.plots["filters"].raise_()
    qtbot.waitUntil(lambda: len(tl.epochs) >= 3, timeout=120_000)
    assert tl.live and bar.where.text() == "Live"
    bar.slider.setValue(1)
    assert tl.epoch == 1
    want = tl.recording.snapshot(1).weights["c1.weight"]
    assert shows_filters(tc, want)
    # the run goes on: new filters and new epochs arrive, the view stays at epoch 1
    before = p._latest.filters
    grown = len(tl.epochs)
    qtbot.waitUntil(lambda: p._latest.filters is not before and len(tl.epochs) > grown + 1,
                    timeout=120_000)
    qtbot.waitUntil(lambda: not p._refresh.isActive(), timeout=10_000)  # frames drawn
    assert tl.epoch == 1 and shows_filters(tc, want)
    assert bar.slider.maximum() == len(tl.epochs) - 1  # the ticks grew meanwhile
    click(qtbot, tc.panel.pause_button)
    qtbot.waitUntil(lambda: tc.session.loop.trainer.status == "paused", timeout=60_000)
    assert tl.epoch == 1 and shows_filters(tc, want)
    click(qtbot, bar.live_button)  # Live: the paused network's own filters
    now = tc.session.loop.net.params["c1.weight"]
    qtbot.waitUntil(lambda: shows_filters(tc, now), timeout=60_000)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)


def test_the_budget_in_the_training_panel_changes_what_is_kept(make_window, qtbot):
    _, tc = open_model(make_window, lenet(8))
    box = tc.panel.record_budget_box
    assert box.currentText() == "8 MiB"
    box.setCurrentIndex(box.findData(1))
    box.activated.emit(box.currentIndex())  # as a pick in the list does
    assert str(settings.get_value(RECORD_KEY)) == "1"
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    rec = tc.store.latest().recording
    kept = tc.presenter.timeline.epochs
    assert rec.budget == 2**20 and rec.total_bytes() <= 2**20
    assert kept[0] == 0 and kept[-1] == 8 and len(kept) < 9  # middle epochs dropped
    assert f"{len(kept)} epochs kept" in tc.panel.record_used.text()
    box.setCurrentIndex(box.findData(0))  # off: the next run records nothing
    box.activated.emit(box.currentIndex())
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().recording is None and tc.presenter.timeline.epochs == []
    assert not tc.presenter.timeline_widget.slider.isEnabled()


def test_decision_regions_follow_the_timeline(make_window, qtbot):
    _, tc = open_model(make_window, example("xor_mlp", epochs=3))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    tc.docks.plots["fit"].raise_()
    rec = tc.store.latest().recording
    bar = tc.presenter.timeline_widget
    bar.slider.setValue(1)
    want = np.rint(rec.snapshot(1).extra_arrays["regions"]).astype(np.uint8)
    np.testing.assert_array_equal(tc.fit.regions.rgb, want)
    bar.slider.setValue(3)
    last = np.rint(rec.snapshot(3).extra_arrays["regions"]).astype(np.uint8)
    np.testing.assert_array_equal(tc.fit.regions.rgb, last)
    assert not np.array_equal(want, last)


def test_the_epoch_numbers_of_a_long_run_are_thinned_to_round_ones_that_do_not_touch(qtbot):
    """400 epochs under a 1024 or 1280 px window: every label stands apart, at a round step
    (here 50 or 25), the first and last epoch included; the tick marks are thinned too."""
    from netbuilder.monitor.timeline import EpochSlider

    slider = EpochSlider()
    qtbot.addWidget(slider)
    for width, epochs in ((700, list(range(401))), (870, list(range(401))),
                          (300, list(range(401))),
                          (700, [*range(12), *range(60, 390, 30), 397, 398, 399, 400])):
        slider.resize(width, 40)
        slider.setRange(0, len(epochs) - 1)
        slider.set_labels(epochs)
        slider.show()
        qtbot.waitExposed(slider)
        placed = slider.label_rects()
        texts = [t for _, t in placed]
        assert texts[0] == "0" and texts[-1] == "400", texts
        assert len(texts) >= 3, texts
        for (a, ta), (b, tb) in itertools.pairwise(placed):
            assert a.right() < b.left(), f"{ta} and {tb} touch at {width} px"
        inner = [int(t) for t in texts[1:-1]]
        assert any(all(e % step == 0 for e in inner) for step in (5, 10, 20, 25, 50)), texts
        assert slider.rect().contains(placed[-1][0].adjusted(4, 0, -4, 0)) or width < 400
        gap = (width - 20) / (len(epochs) - 1) * slider.tickInterval()
        assert gap >= 5

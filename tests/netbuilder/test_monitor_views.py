"""The monitor's views during a run: feature maps and filters of the right shapes for the
selected nodes, histograms and gradient norms, the fitted sine curve, and the learning rate
changed while training runs."""

from __future__ import annotations

import numpy as np
from monitorkit import click, example, open_model, sine_mlp, small_cnn, wait_idle, wait_steps
from PySide6.QtCore import Qt


def test_feature_maps_and_filters_show_arrays_of_the_right_shapes(make_window, qtbot):
    drv, tc = open_model(make_window, small_cnn(epochs=20))
    w = drv.w
    w.scene.select_nodes(["relu"])
    click(qtbot, tc.panel.step_button)  # a paused run: every step is probed in full
    tc.docks.plots["filters"].raise_()  # a tab beside the feature maps: measured when shown
    qtbot.waitUntil(lambda: tc.filters.filters is not None, timeout=60_000)
    tc.docks.plots["maps"].raise_()
    qtbot.waitUntil(lambda: tc.maps.maps is not None, timeout=30_000)
    assert tc.maps.node == "relu" and tc.maps.maps.shape == (4, 8, 8)
    assert tc.filters.conv == "conv" and tc.filters.filters.shape == (4, 1, 3, 3)
    assert tc.filters.tiles.shape == (4, 3, 3)  # averaged over the one input channel
    img = tc.maps.img.image
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[0] >= 8 and img.shape[1] >= 8
    # another node, another sample: shown at once while paused, without training
    n = len(tc.active.steps)
    w.scene.select_nodes(["pool"])
    tc.maps.sample_box.setValue(3)
    assert tc.maps.node == "pool"
    qtbot.waitUntil(lambda: tc.maps.maps is not None and tc.maps.maps.shape == (4, 4, 4)
                    and "sample 3" in tc.maps.info.text(), timeout=30_000)
    assert len(tc.active.steps) == n
    click(qtbot, tc.panel.step_button)
    qtbot.waitUntil(lambda: len(tc.active.steps) == n + 1, timeout=30_000)
    # vectors show as bars
    w.scene.select_nodes(["fc"])
    click(qtbot, tc.panel.step_button)
    qtbot.waitUntil(lambda: tc.maps.maps is not None and tc.maps.maps.shape == (10,),
                    timeout=30_000)
    assert tc.maps.bar_plot.isVisibleTo(tc.maps)
    # the weights of the selected layer and the gradient norm of every layer
    tc.docks.plots["grads"].raise_()
    w.scene.select_nodes(["conv"])
    click(qtbot, tc.panel.step_button)
    qtbot.waitUntil(lambda: tc.grads.hists is not None and tc.grads.hists.node == "conv",
                    timeout=30_000)
    counts, edges = tc.grads.hists.weights["weight"]
    assert counts.sum() == 4 * 9 and len(edges) == len(counts) + 1
    assert set(tc.grads.hists.grads) == {"weight", "bias"}
    run = tc.active
    assert set(run.grad_norms) == {"conv", "fc"}
    assert len(run.grad_norm_steps) >= 3
    qtbot.waitUntil(lambda: len(tc.grads.norm_curves["fc"].getData()[0])
                    == len(run.grad_norm_steps), timeout=5000)  # redrawn at most 10×/s
    assert np.all(tc.grads.norm_curves["fc"].yData > 0)
    # filters per input channel
    tc.filters.mode_box.setCurrentIndex(tc.filters.mode_box.findData("each"))
    assert tc.filters.tiles.shape == (4, 3, 3)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)
    # after the run the views still follow the selection (the final weights)
    tc.docks.plots["maps"].raise_()
    w.scene.select_nodes(["relu"])
    qtbot.waitUntil(lambda: tc.maps.maps is not None and tc.maps.maps.shape == (4, 8, 8),
                    timeout=10_000)


def test_sine_shows_the_fitted_curve(make_window, qtbot):
    _drv, tc = open_model(make_window, sine_mlp(epochs=3))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "completed"
    assert tc.fit.kind == "curve"
    xs, ys = tc.fit.curve.getData()
    assert xs.shape == (200,) and np.all(np.isfinite(ys))
    assert np.all(np.diff(xs) > 0)
    pts = tc.fit.points.getData()
    assert len(pts[0]) > 100
    assert tc.confusion.matrix is None  # regression: no confusion matrix


def test_learning_rate_change_applies_from_the_next_batch(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=5000))
    click(qtbot, tc.panel.start_button)
    wait_steps(qtbot, tc, 10)
    lr = tc.panel.lr
    assert lr.isEnabled() and not tc.panel.epochs.isEnabled()
    n = len(tc.active.steps)  # the worker may be a little ahead of what the GUI has
    lr.setFocus()
    lr.selectAll()
    qtbot.keyClicks(lr, "0.025")
    qtbot.keyClick(lr, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tc.active.lrs.values[-1] == 0.025, timeout=20_000)
    lrs = tc.active.lrs.values
    change = int(np.argmax(lrs != 0.1))
    assert change >= n and np.all(lrs[:change] == 0.1) and np.all(lrs[change:] == 0.025)
    assert drv.graph.training["optimizer"]["lr"] == 0.1  # the model file keeps its setting
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)
    assert tc.panel.lr.value() == 0.1

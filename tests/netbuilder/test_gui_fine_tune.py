"""Fine-tuning a trained model in the app, through the real widgets: a digits CNN trained
and saved as a bundle is opened with File ▸ Open, the Data panel switches it to shapes
resized to 8×8, the old head's card is deleted, a Dense from the palette is wired in as
the new head, the body is frozen (context menu and Inspector) and Start trains it from the
bundle's weights: the frozen weights stay the bundle's bit for bit, the new head learns,
and the Runs panel and the saved bundle say where the weights came from."""

from __future__ import annotations

import time

import numpy as np
from monitorkit import click, click_tab, example, wait_idle
from PySide6.QtCore import QPointF
from test_gui_run_edits import context_menu, type_into

import engine
from engine.lineage import run_of
from netbuilder.session import RunSession

BODY = ("conv1", "conv2", "fc1")


def trained_digits_bundle(path) -> dict[str, np.ndarray]:
    """digits_cnn trained one epoch on a few hundred digits (no Qt), saved at ``path``."""
    g = engine.Graph.from_dict(example("digits_cnn", epochs=1, limit=300, augment=None))
    s = RunSession()
    run = s.start(g, g.training)
    end = time.monotonic() + 300
    while s.loop is not None:
        assert time.monotonic() < end, "the run never ended"
        s.process_events(0.05)
    assert run.status == "completed"
    run.save_bundle(path)
    return dict(run.weights)


def test_open_a_bundle_replace_the_head_freeze_the_body_and_fine_tune(make_window, qtbot,
                                                                      tmp_path):
    bundle = tmp_path / "digits.nbmodel"
    trained = trained_digits_bundle(bundle)
    drv = make_window()
    w = drv.w
    tc = w.training
    # File ▸ Open the bundle: its model on the canvas, its run in the Runs panel
    w.choose_open_path = lambda: str(bundle)
    w.act_open.trigger()
    assert set(drv.graph.nodes) >= {*BODY, "logits"}
    source = tc.store.latest()
    assert source.weights is not None and tc.weights_source is source
    offer = tc.panel.init_from
    assert not offer.isHidden() and offer.isChecked()
    assert "digits.nbmodel, epoch 1" in offer.text()
    qtbot.wait(300)  # the Monitor layout the history is shown in settles
    # its views show the last recorded epoch (Live: there is nothing later)
    last = source.recording.snapshot(source.recording.epochs[-1])
    assert tc.filters.conv == "conv1"
    np.testing.assert_array_equal(tc.filters.filters, last.weights["conv1.weight"])
    # the Data panel: shapes, resized to the model's 8×8 input, a few hundred of them
    click_tab(qtbot, w, "Data")
    dp = tc.data
    dp.source.setCurrentIndex(dp.source.findData("shapes"))
    dp.source.activated.emit(dp.source.currentIndex())
    type_into(qtbot, dp.options, "size=8")
    dp.limit.setValue(320)
    assert drv.graph.training["dataset"] == "shapes:size=8"
    assert dp.wait_loaded(60) and dp.dataset.sample_shape == (1, 8, 8)
    # the old head (10 digits) goes; a new Dense from the palette for the 6 shapes, in the
    # Build layout (the toolbar's Build button: the palette and the Inspector come back)
    w.act_build_mode.trigger()
    qtbot.wait(100)
    assert w.palette.isVisible()
    head_pos = w.scene.nodes["logits"].scenePos()
    w.scene.select_nodes(["logits"])
    w.act_delete.trigger()
    assert "logits" not in drv.graph.nodes
    before = set(drv.graph.nodes)
    drv.drop("Dense", head_pos + QPointF(40, 20))
    (head,) = set(drv.graph.nodes) - before
    w.scene.select_nodes([head])
    type_into(qtbot, w.inspector.editors["units"].widget, "6")
    drv.wire("relu3", head)
    drv.wire(head, "out")
    assert drv.graph.nodes[head].params["units"] == 6
    assert not w.document.analysis.error_count
    assert not dp.problems
    # freeze the body: conv1 and conv2 on the context menu, fc1 in the Inspector
    w.scene.select_nodes(["conv1", "conv2"])
    context_menu(qtbot, drv, "conv1", "Freeze")
    w.scene.select_nodes(["fc1"])
    box = w.run_edits.fields.trainable
    assert box.isVisible() and box.isChecked()
    box.click()
    assert all(not drv.graph.nodes[n].trainable for n in BODY)
    assert drv.graph.nodes[head].trainable
    assert all(w.scene.nodes[n].frozen for n in BODY)
    # Start: the new run begins from the bundle's weights
    click_tab(qtbot, w, "Training")
    click(qtbot, tc.panel.start_button)
    assert "Fine-tuning from Run 1: 3 nodes keep their weights" in w.status_message.text()
    run = tc.active
    assert run is not None and run is not source
    # the bundle's one epoch: a first start also compiles the kernels of the 8×8 model
    qtbot.waitUntil(lambda: len(run.epochs) >= 1, timeout=600_000)
    wait_idle(qtbot, tc)
    assert run.status == "completed" and run.weights is not None
    assert run.parent_run is source and run.settings["dataset"] == "shapes:size=8"
    for n in BODY:  # frozen: the bundle's weights, bit for bit
        for k in ("weight", "bias"):
            np.testing.assert_array_equal(run.weights[f"{n}.{k}"], trained[f"{n}.{k}"],
                                          err_msg=f"{n}.{k}")
    start = run.start.weights[f"{head}.weight"]
    assert start.shape == run.weights[f"{head}.weight"].shape == (6, 64)
    assert not np.array_equal(run.weights[f"{head}.weight"], start)  # the new head learned
    # where the weights came from: the Runs panel's row and details, the saved bundle
    assert run.weights_from["file"] == str(bundle)
    assert run.provenance_text().startswith("weights from digits.nbmodel (run ")
    rp = tc.presenter.runs_panel
    row = rp.items[run.number]
    assert row.parent() is rp.items[source.number]  # a child of the opened run
    assert "weights from digits.nbmodel" in row.text(5)
    assert "removed logits" in row.text(5) and f"added {head} (Dense)" in row.text(5)
    rp.select(run)
    assert "weights from digits.nbmodel" in rp.details.text()
    saved = run.save_bundle(tmp_path / "shapes.nbmodel")
    rec = run_of(engine.load_bundle(saved).manifest)
    assert rec.weights_from["file"] == str(bundle) and rec.weights_from["epoch"] == 1
    assert rec.provenance().startswith(f"weights from {bundle}")
    assert set(rec.frozen) == set(BODY)
    # untick the offer: the next run starts from fresh weights, a root of its own
    offer.click()
    assert not offer.isChecked()
    click(qtbot, tc.panel.start_button)
    fresh = tc.active
    wait_idle(qtbot, tc, 600_000)
    assert fresh.status == "completed"
    assert fresh.parent_run is None and fresh.weights_from is None and fresh.start is None

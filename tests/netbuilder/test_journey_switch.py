"""Journey: train one model, then open another mid-session. Every panel shows the new model
or a clear empty state: no label, combo box, title or plot text names a node of the old one,
and no message of the old model or its run stays behind."""

from __future__ import annotations

import json

from guidocs import small_doc
from monitorkit import EXAMPLES, click, click_tab, wait_idle
from PySide6.QtCore import Qt
from visible import naming, visible_texts

# A digits model with two heads: a classifier (confusion matrix, mistakes) and an
# autoencoder head (inputs vs outputs); a convolution gives feature maps and filters.
OLD_IDS = {"oldin", "oldconv", "oldrelu", "oldflat", "oldfc", "oldcls", "oldrec", "oldshape",
           "oldrecout"}
OLD = small_doc(
    [("oldin", "Input", {"shape": [1, 8, 8]}),
     ("oldconv", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
     ("oldrelu", "ReLU", {}), ("oldflat", "Flatten", {}),
     ("oldfc", "Dense", {"units": 10}), ("oldcls", "Output", {}),
     ("oldrec", "Dense", {"units": 64}), ("oldshape", "Reshape", {"shape": [1, 8, 8]}),
     ("oldrecout", "Output", {"loss": "mse", "target": "x"})],
    [("oldin", "oldconv", 0), ("oldconv", "oldrelu", 0), ("oldrelu", "oldflat", 0),
     ("oldflat", "oldfc", 0), ("oldfc", "oldcls", 0), ("oldflat", "oldrec", 0),
     ("oldrec", "oldshape", 0), ("oldshape", "oldrecout", 0)],
    positions={"oldin": (0, 0), "oldconv": (0, 130), "oldrelu": (0, 260), "oldflat": (0, 390),
               "oldfc": (-150, 520), "oldcls": (-150, 650), "oldrec": (150, 520),
               "oldshape": (150, 650), "oldrecout": (150, 780)},
    name="two_heads")
OLD["training"] = {"dataset": "digits", "limit": 300, "epochs": 2, "batch_size": 64,
                   "optimizer": {"type": "adam", "lr": 0.01}}


def type_into(qtbot, widget, text):
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClick(widget, Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def break_the_model(drv, qtbot):
    """One unit before a cross-entropy Output: a problem the Training panel names."""
    drv.click(drv.node_centre("oldfc"))
    type_into(qtbot, drv.w.inspector.editors["units"].widget, "1")
    assert "problem" in drv.w.errors_button.text()


def test_switching_models_leaves_nothing_of_the_old_one(make_window, qtbot, tmp_path):
    drv = make_window(OLD)
    w, tc = drv.w, drv.w.training
    p = tc.panel
    assert tc.data.wait_loaded(30)

    # a refusal names a node; fixing the model (undo) takes it away
    break_the_model(drv, qtbot)
    click(qtbot, p.start_button)
    assert p.message.isVisible() and "oldcls" in p.message.text()
    w.act_undo.trigger()
    assert w.errors_button.text() == "✓ no problems"
    assert not p.message.isVisible() or "oldcls" not in p.message.text()

    # a run, and every view of the monitor showing it
    drv.click(drv.node_centre("oldconv"))
    click(qtbot, p.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "completed"
    for key, dock in tc.docks.plots.items():
        dock.raise_()
        qtbot.wait(50)
        if key == "pairs":
            qtbot.waitUntil(lambda: tc.pairs.pairs is not None, timeout=20_000)
    qtbot.waitUntil(lambda: tc.maps.maps is not None and tc.filters.filters is not None,
                    timeout=20_000)
    assert tc.confusion.matrix is not None
    docks = {where.split(":")[0] for where in naming(visible_texts(w), OLD_IDS)}
    assert {"Feature Maps", "Filters", "Gradients", "Input vs Output", "Model Summary",
            "Inspector"} <= docks  # the test would see a stale name
    assert p.message.isVisible() and "Run 1" in p.message.text()

    # the model breaks again, Start says why, then another model is opened
    break_the_model(drv, qtbot)
    click(qtbot, p.start_button)
    assert "oldcls" in p.message.text()
    drv.answer = "discard"
    other = tmp_path / "xor.json"
    other.write_text((EXAMPLES / "xor_mlp.json").read_text())
    w.choose_open_path = lambda: str(other)
    w.act_open.trigger()
    assert set(drv.graph.nodes) == {"in", "hidden", "tanh", "logits", "out"}
    assert tc.data.wait_loaded(30)
    qtbot.wait(100)

    stale = naming(visible_texts(w), OLD_IDS | {"two_heads", "Run 1 completed"})
    assert stale == {}, json.dumps(stale, indent=1, ensure_ascii=False)
    assert not p.message.isVisible()
    assert p.status.text() == "Ready" and p.progress.value() <= 0
    # the views show the new model's nodes or their empty state
    assert tc.maps.node in drv.graph.nodes and tc.maps.maps is None
    assert tc.filters.conv is None and tc.filters.placeholder.isVisibleTo(tc.filters)
    assert tc.confusion.matrix is None and tc.pairs.pairs is None
    assert tc.curves.run is None


def test_file_new_resets_the_zoom(make_window):
    from monitorkit import example

    w = make_window(example("lenet5")).w
    for _ in range(3):
        w.act_zoom_in.trigger()
    assert w.zoom_label.text() != "Zoom 100 %"
    w.act_new.trigger()
    assert w.view.zoom == 1.0 and w.zoom_label.text() == "Zoom 100 %"


def test_file_new_leaves_nothing_of_the_old_data_in_the_data_panel(make_window):
    from monitorkit import example

    drv = make_window(example("lenet5"))
    w, dp = drv.w, drv.w.training.data
    assert dp.wait_loaded(60)
    assert dp.split_label.text().startswith("train 4,800 · validation 600")
    assert "n=6000" in dp.options.placeholderText()
    w.act_new.trigger()
    assert not drv.graph.nodes
    assert dp.summary.text().startswith("No dataset chosen")
    assert dp.split_label.text() == "" and dp.source.currentText() == ""
    assert dp.options.text() == "" and "6000" not in dp.options.placeholderText()
    assert dp.preview_grid.count() == 0
    assert not dp.counts_plot.isVisibleTo(dp) and not dp.problem_label.isVisibleTo(dp)
    old = {"4,800", "n=6000", "lenet5", "c1", "a1", "s2", "c3", "s4", "f5", "f6", "logits"}
    assert not naming(visible_texts(w), old), naming(visible_texts(w), old)
    # the status bar's batch is the one the Training panel shows
    assert w.training.panel.batch.value() == 32 and "(batch 32)" in w.summary_label.text()


def test_opening_another_model_during_a_run_stops_it_and_shows_only_the_new_one(
        make_window, qtbot, tmp_path):
    from monitorkit import wait_steps

    doc = dict(OLD, training={**OLD["training"], "epochs": 500})
    drv = make_window(doc)
    w, tc = drv.w, drv.w.training
    assert tc.data.wait_loaded(30)
    drv.click(drv.node_centre("oldconv"))
    click(qtbot, tc.panel.start_button)
    wait_steps(qtbot, tc, 5)
    click_tab(qtbot, w, "Feature Maps")
    qtbot.waitUntil(lambda: tc.maps.maps is not None, timeout=20_000)
    run = tc.active
    assert w.open_example(EXAMPLES / "xor_mlp.json")
    wait_idle(qtbot, tc)
    qtbot.wait(500)  # two frames of the monitor: nothing of the old run arrives late
    assert run.status == "stopped" and run.weights is not None  # kept in the Runs panel
    assert tc.store.latest() is run and w.edit_lock is None
    stale = naming(visible_texts(w), OLD_IDS)
    assert stale == {}, json.dumps(stale, indent=1, ensure_ascii=False)
    assert "Run 1 of two_heads stopped" in w.status_message.text()
    assert tc.panel.status.text() == "Ready" and not tc.panel.message.isVisible()
    assert tc.maps.maps is None and tc.curves.run is None
    assert all(it.badge is None for it in w.scene.nodes.values())  # no training badges
    # the old run is still there to compare and save, and the new model trains
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "completed" and tc.curves.run is tc.store.latest()

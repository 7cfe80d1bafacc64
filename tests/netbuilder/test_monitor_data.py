"""The Data panel: built-in datasets or files, preview with labels, class counts, split,
normalisation and augmentation saved into the model, and a mismatch with the model's Input
shown before training (Start refuses it)."""

from __future__ import annotations

import numpy as np
from monitorkit import click, example, open_model


def choose(panel, name):
    i = panel.source.findData(name)
    panel.source.setCurrentIndex(i)
    panel.source.activated.emit(i)
    assert panel.wait_loaded(30)


def test_builtin_choice_preview_counts_and_split(make_window, qtbot):
    drv, tc = open_model(make_window, example("lenet5", limit=0))
    dp = tc.data
    assert dp.dataset is not None and dp.dataset.name == "shapes"
    assert dp.problems == []
    cells = [dp.preview_grid.itemAt(i).widget() for i in range(dp.preview_grid.count())]
    assert len(cells) == 18  # three of each of the six shapes
    captions = [c.findChildren(type(dp.summary))[1].text() for c in cells]
    assert captions[:3] == ["circle"] * 3 and captions[-1] == "ring"
    heights = dp.count_bars.opts["width"]  # one horizontal bar per class
    assert len(heights) == 6 and int(np.sum(heights)) == 6000
    assert dp.split_label.text() == "train 4,800 · validation 600 · test 600"
    dp.val_split.setValue(0.2)
    assert drv.graph.training["val_split"] == 0.2
    assert dp.split_label.text().startswith("train 4,200 · validation 1,200")
    dp.rotation.setValue(15)
    assert drv.graph.training["augment"] == {"rotation": 15.0}
    dp.normalize.setCurrentIndex(dp.normalize.findData("standardize"))
    dp.normalize.activated.emit(dp.normalize.currentIndex())
    assert drv.graph.training["normalize"] == "standardize"
    drv.w.act_undo.trigger()
    assert "normalize" not in drv.graph.training


def test_mismatch_with_the_input_is_shown_and_blocks_start(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp"))
    dp = tc.data
    choose(dp, "spirals")
    assert drv.graph.training["dataset"] == "spirals"
    assert dp.problems == [] and not dp.problem_label.isVisibleTo(dp)
    assert dp.points_plot.isVisibleTo(dp)
    choose(dp, "digits")
    assert dp.problems and dp.problems[0].node_id == "in"
    text = dp.problem_label.text()
    assert "Input 'in' expects samples shaped (2,)" in text and "(1, 8, 8)" in text
    assert dp.problem_label.isVisibleTo(dp)
    assert "Input 'in'" in tc.panel.data_note.text()
    click(qtbot, tc.panel.start_button)
    assert tc.state == "idle" and not tc.store.runs
    assert "does not fit" in tc.panel.message.text()
    # options of a generator
    choose(dp, "spirals")
    dp.options.setText("n=300, classes=3")
    dp.options.editingFinished.emit()
    assert drv.graph.training["dataset"] == "spirals:n=300,classes=3"
    assert dp.wait_loaded(30) and len(dp.dataset) == 300
    assert dp.problems and "3 classes" not in dp.problems[0].message
    assert "labels 0..2" in dp.problems[0].message  # 2 logits for 3 classes


def test_data_from_a_file(make_window, qtbot, tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "points.npz", x=x, y=y)
    drv, tc = open_model(make_window, example("xor_mlp"))
    dp = tc.data
    dp.choose_path = lambda: str(tmp_path / "points.npz")
    click(qtbot, dp.browse)
    assert dp.wait_loaded(30)
    assert drv.graph.training["dataset"] == str(tmp_path / "points.npz")
    assert dp.dataset is not None and len(dp.dataset) == 50 and dp.problems == []
    assert dp.source.currentData() == "__file__"
    dp.choose_path = lambda: str(tmp_path / "missing.npz")
    click(qtbot, dp.browse)
    assert dp.wait_loaded(30)
    assert dp.dataset is None and "no such dataset file" in dp.problem_label.text()
    click(qtbot, tc.panel.start_button)
    wait = tc.state
    assert wait == "starting" or tc.worker is not None
    qtbot.waitUntil(lambda: tc.state == "idle", timeout=30_000)
    assert tc.store.latest().status == "failed"
    assert "no such dataset file" in tc.panel.message.text()

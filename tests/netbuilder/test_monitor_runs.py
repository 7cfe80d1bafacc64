"""Runs: settings and curves kept per run, overlays of runs of the same model, trained
weights saved as a bundle and reopened (model on the canvas, history in the monitor), plots
exported as PNG and CSV; the training settings panel reads and writes the model."""

from __future__ import annotations

import csv

import numpy as np
from monitorkit import click, example, open_model, wait_idle
from PySide6.QtCore import Qt

import engine


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_bundle_save_and_reopen_shows_model_and_history(make_window, qtbot, tmp_path):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=4))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    assert run.status == "completed" and len(run.steps) == 40
    target = tmp_path / "xor_trained.nbmodel"
    tc.choose_bundle_path = lambda r: str(target)
    click(qtbot, tc.runs_panel.save_button)
    assert target.is_file()
    b = engine.load_bundle(target)
    for k, v in run.weights.items():
        assert np.array_equal(b.net.state_dict()[k], v)
    assert b.history["batch_loss"] == [float(v) for v in run.losses.values]
    # reopen: the canvas shows the model, the monitor its history
    drv.w.new_file()
    assert not drv.graph.nodes
    assert drv.w.open_file(target)
    assert set(drv.graph.nodes) == {"in", "hidden", "tanh", "logits", "out"}
    opened = tc.store.latest()
    assert opened is not run and opened.source == target
    assert len(opened.steps) == 40 and len(opened.epochs) == 4
    assert np.allclose(opened.losses.values, run.losses.values)
    assert opened.epochs[-1].val_accuracy == run.epochs[-1].val_accuracy
    assert tc.curves.run is opened
    assert len(tc.curves.raw_curve.getData()[0]) == 40
    assert opened.weights is not None and opened.describe_settings() == run.describe_settings()


def test_runs_keep_settings_and_overlay(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=2))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    tc.panel.lr.setValue(0.05)  # saved into the model for the next run
    assert drv.graph.training["optimizer"]["lr"] == 0.05
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    r1, r2 = tc.store.runs
    assert r1.settings["optimizer"]["lr"] == 0.1 and r2.settings["optimizer"]["lr"] == 0.05
    assert r1.model_key == r2.model_key
    assert "lr 0.05" in tc.runs_panel.items[2].text(2)
    assert tc.curves.run is r2 and tc.curves.overlays == []
    tc.runs_panel.items[1].setCheckState(0, Qt.CheckState.Checked)
    assert tc.curves.overlays == [r1]
    assert len(tc.curves._overlay_items) >= 2
    # the settings of run 1 go back into the model
    tc.runs_panel.select(r1)
    assert tc.curves.run is r1
    click(qtbot, tc.runs_panel.reuse_button)
    assert drv.graph.training["optimizer"]["lr"] == 0.1
    assert tc.panel.lr.value() == 0.1
    drv.w.act_undo.trigger()
    assert drv.graph.training["optimizer"]["lr"] == 0.05


def test_plots_export_png_and_csv(make_window, qtbot, tmp_path):
    _drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    png = tc.curves.export_png(tmp_path / "curves.png")
    assert png.stat().st_size > 2000
    rows = _rows(tc.curves.export_csv(tmp_path / "curves.csv"))
    assert rows[0][:3] == ["run", "step", "batch_loss"]
    assert len(rows) == 1 + len(run.steps)
    assert [r for r in rows[1:] if r[6]] and len([r for r in rows[1:] if r[6]]) == 3  # epochs
    rows = _rows(tc.confusion.export_csv(tmp_path / "cm.csv"))
    assert rows[0] == ["true \\ predicted", "same", "different"]
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == 20
    assert tc.fit.export_png(tmp_path / "fit.png").stat().st_size > 2000
    tc.choose_csv_path = lambda r: str(tmp_path / "run.csv")
    click(qtbot, tc.runs_panel.csv_button)
    rows = _rows(tmp_path / "run.csv")
    assert rows[0] == ["step", "loss", "accuracy", "lr"] and len(rows) == 1 + len(run.steps)
    # the export menu of a view asks for a path and writes there
    from netbuilder.monitor.common import MonitorPanel
    MonitorPanel.choose_path = lambda panel, what, filt, name: str(tmp_path / name)
    try:
        tc.filters._export_csv()
        tc.grads._export_png()
    finally:
        MonitorPanel.choose_path = None
    assert (tmp_path / "filters.csv").is_file()
    assert (tmp_path / "weights_and_gradients.png").is_file()


def test_training_panel_reads_and_writes_the_training_section(make_window, qtbot):
    drv, tc = open_model(make_window, example("digits_cnn"))
    p = tc.panel
    assert p.optimizer.currentData() == "adam" and p.lr.value() == 0.002
    assert p.schedule.currentData() == "cosine" and p.epochs.value() == 20
    assert p.batch.value() == 32 and p.form.isRowVisible(p.beta1)
    assert not p.form.isRowVisible(p.momentum)
    p.epochs.setValue(7)
    assert drv.graph.training["epochs"] == 7
    p.optimizer.setCurrentIndex(p.optimizer.findData("sgd"))
    p.optimizer.activated.emit(p.optimizer.currentIndex())
    assert drv.graph.training["optimizer"] == {"type": "sgd", "lr": 0.01}
    assert p.form.isRowVisible(p.momentum) and not p.form.isRowVisible(p.beta1)
    p.momentum.setValue(0.9)
    assert drv.graph.training["optimizer"] == {"type": "sgd", "lr": 0.01, "momentum": 0.9}
    p.clip.setValue(5.0)
    assert drv.graph.training["clip_norm"] == 5.0
    drv.w.act_undo.trigger()
    assert "clip_norm" not in drv.graph.training and p.clip.text() == "off"
    assert drv.graph.training["dataset"] == "digits"  # untouched
    assert engine.TrainSettings.from_dict(drv.graph.training).epochs == 7

"""The plots read well: legends above the data, step axes whose labels never run together,
no Accuracy plot where there is no accuracy, a confusion matrix with the dataset's classes,
and PNG exports at a printable size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from monitorkit import click, example, open_model, wait_idle
from PySide6.QtGui import QFontMetrics, QImage

import engine
from engine.data.builtin import SHAPE_CLASSES
from netbuilder.monitor.common import EXPORT_WIDTH, CompactAxis, MonitorPanel, compact_number
from netbuilder.monitor.confusion import ConfusionView, abbreviate, fold_extra_units
from netbuilder.monitor.curves import CurvesView
from netbuilder.session.probes import EpochAnalysis
from netbuilder.session.runs import EpochRow, RunRecord


def fake_run(steps: int, accuracy: bool) -> RunRecord:
    run = RunRecord(1, "m", "k", engine.Graph("m"), {"optimizer": {"type": "adam", "lr": 0.01}})
    s = np.arange(1, steps + 1)
    run.steps.extend(s)
    run.losses.extend(1.0 / np.sqrt(s))
    run.lrs.extend(0.01 * (1 - s / (steps + 1)))
    run.accuracies.extend(np.minimum(1, s / steps) if accuracy else np.full(steps, np.nan))
    for e in range(1, 4):
        run.epochs.append(EpochRow(e, e * steps // 3, 0.5, 0.8 if accuracy else None,
                                   0.6, 0.7 if accuracy else None, 0.01, 1.0))
    return run


def label_gaps(axis: CompactAxis, lo: float, hi: float) -> list[float]:
    """Pixels between neighbouring tick labels of ``axis`` over [lo, hi] (negative: they
    touch or overlap)."""
    width = axis.width()
    levels = axis.tickValues(lo, hi, width)
    spacing, values = levels[0]
    texts = axis.tickStrings(values, 1.0, spacing)
    fm = QFontMetrics(axis.font())
    xs = [(v - lo) / (hi - lo) * width for v in values]
    ws = [fm.horizontalAdvance(t) for t in texts]
    return [(x2 - x1) - (w1 + w2) / 2 for x1, x2, w1, w2 in zip(xs, xs[1:], ws, ws[1:])]


@pytest.mark.parametrize("width", [260, 400, 900])
def test_step_axis_labels_never_run_together(qtbot, width):
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(width, 420)
    view.show()
    view.set_run(fake_run(9000, accuracy=True))
    qtbot.wait(50)
    for plot in (view.loss_plot, view.lr_plot):
        axis = plot.getAxis("bottom")
        lo, hi = plot.getViewBox().viewRange()[0]
        gaps = label_gaps(axis, lo, hi)
        assert gaps and min(gaps) >= 4, (width, gaps)
        spacing, values = axis.tickValues(lo, hi, axis.width())[0]
        assert all(len(t) <= 4 for t in axis.tickStrings(values, 1.0, spacing))  # "4k", "8k"


def test_compact_numbers():
    assert [compact_number(v) for v in (0, 2000, 2500, 1.5e6, 0.002, 12)] == \
        ["0", "2k", "2.5k", "1.5M", "0.002", "12"]


def test_legends_are_title_lines_above_the_curves(qtbot):
    view = CurvesView()
    qtbot.addWidget(view)
    for plot in (view.loss_plot, view.acc_plot, view.lr_plot):
        assert plot.legend is None  # no legend box drawn over the data
    title = view.loss_plot.titleLabel.text
    for name in ("batch", "smoothed", "train", "validation"):
        assert name in title


def test_accuracy_plot_only_for_runs_with_an_accuracy(qtbot):
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(500, 420)
    view.show()
    view.set_run(fake_run(300, accuracy=False))  # e.g. an autoencoder's mse
    qtbot.wait(20)
    assert not view.acc_plot.isVisible()
    assert view.lr_plot.width() > 0.8 * view.loss_plot.width()  # the row is the lr's
    view.set_run(fake_run(300, accuracy=True))
    qtbot.wait(20)
    assert view.acc_plot.isVisible() and view.acc_train.getData()[0] is not None


def test_spare_output_units_fold_into_one_column():
    cm = np.zeros((10, 10), int)
    cm[:6, :6] = np.eye(6, dtype=int) * 5
    core, extra = fold_extra_units(cm, 6)
    assert core.shape == (6, 6) and extra == 0
    cm[2, 8] = 3
    core, extra = fold_extra_units(cm, 6)
    assert core.shape == (6, 7) and extra == 3 and core[2, 6] == 3


def test_class_names_are_cut_to_the_column_width(qtbot):
    fm = QFontMetrics(CompactAxis("bottom").font())
    names = list(SHAPE_CLASSES)
    assert abbreviate(names, 200, fm) == names
    short = abbreviate(names, 34, fm)
    assert len(set(short)) == 6 and all(fm.horizontalAdvance(s) + 6 <= 34 for s in short)
    assert short != names and short[0].startswith("ci")
    assert abbreviate(names, 5, fm) == [str(i) for i in range(6)]


def test_lenet5_on_shapes_shows_six_named_classes_and_exports_large_pngs(
        make_window, qtbot, tmp_path):
    drv, tc = open_model(make_window, example("lenet5", limit=300, epochs=1))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    view: ConfusionView = tc.confusion
    assert view.matrix is not None
    assert view.matrix.shape[0] == 6  # the dataset's six classes, not the Output's ten units
    assert view.row_names == list(SHAPE_CLASSES)
    left = view.plot.getPlotItem().getAxis("left")
    assert [t for _, t in left._tickLevels[0]] == list(SHAPE_CLASSES)
    bottom = view.plot.getPlotItem().getAxis("bottom")
    px = 1 / view.plot.getPlotItem().getViewBox().viewPixelSize()[0]
    fm = QFontMetrics(bottom.font())
    labels = [t for _, t in bottom._tickLevels[0]]
    assert len(labels) in (6, 7) and all(fm.horizontalAdvance(t) < px for t in labels)
    assert f"{view.matrix.sum()} samples · 6 classes" in view.info.text()
    # PNG export through the view's menu, drawn again at a printable size
    MonitorPanel.choose_path = lambda panel, what, filt, name: str(tmp_path / name)
    try:
        for v in (tc.confusion, tc.curves):
            png = next(a for a in v.export_button.menu().actions() if "PNG" in a.text())
            png.trigger()
    finally:
        MonitorPanel.choose_path = None
    for name, v in (("confusion_matrix.png", tc.confusion), ("training_curves.png", tc.curves)):
        img = QImage(str(tmp_path / name))
        on_screen = v.png_widget().size()
        assert img.width() >= EXPORT_WIDTH and img.width() >= 2 * on_screen.width()
        assert math.isclose(img.width() / img.height(),
                            on_screen.width() / on_screen.height(), rel_tol=0.02)
    assert drv.w.windowTitle().startswith("LeNet-5")


def test_a_wide_low_confusion_matrix_names_the_predicted_classes(qtbot):
    """CIFAR-10's ten classes in a dock 700 px wide and 260 high (the right column of a wide
    window): the columns use the width, so the names (cut if need be) fit, not numbers."""
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    view = ConfusionView()
    qtbot.addWidget(view)
    view.set_class_names(names)
    view.resize(700, 260)
    view.show()
    qtbot.waitExposed(view)
    view.show_analysis(EpochAnalysis(np.eye(10, dtype=int) * 20 + 1, [], "validation"), 3)
    qtbot.wait(20)
    bottom = view.plot.getPlotItem().getAxis("bottom")
    labels = [t for _, t in bottom._tickLevels[0]]
    px = 1 / view.plot.getPlotItem().getViewBox().viewPixelSize()[0]
    fm = QFontMetrics(bottom.font())
    assert all(fm.horizontalAdvance(t) < px for t in labels)
    assert labels[2:8] == ["bird", "cat", "deer", "dog", "frog", "horse"], labels
    assert all(t[:3] == n[:3] for t, n in zip(labels, names, strict=True))


def test_confusion_view_counts_predictions_on_spare_units(qtbot):
    view = ConfusionView()
    qtbot.addWidget(view)
    view.resize(400, 360)
    view.show()
    view.set_class_names(list(SHAPE_CLASSES))
    cm = np.zeros((10, 10), int)
    cm[np.arange(6), np.arange(6)] = 9
    cm[0, 9] = 2
    view.show_analysis(EpochAnalysis(cm, [], "validation"), 1)
    assert view.matrix.shape == (6, 7) and view.col_names[-1] == "other"
    assert "2 predicted on Output units 6–9" in view.info.text()
    header, rows = view.csv_table()
    assert header[1:] == [*SHAPE_CLASSES, "other"] and rows[0][-1] == 2


def test_a_long_gradient_norm_legend_wraps_instead_of_widening_its_dock(qtbot):
    """transformer_sort's 19 layers with weights: the legend under the gradient norms takes
    several lines in a 400 px view; it asked for 720 px, and its dock column took them from
    the Training panel (squeezed to 250 px, its Stop button cut)."""
    from netbuilder.monitor.histograms import GradientsView

    view = GradientsView()
    qtbot.addWidget(view)
    layers = [f"b{b}_{n}" for b in (1, 2) for n in ("ln1", "attn", "ln2", "ff1", "ff2")]
    view.set_layers(["embed", "pos", *layers, "head"])
    view.show_placeholder(None, view.glw)  # the plots shown, as once a run has begun
    view.resize(400, 400)
    view.show()
    qtbot.waitExposed(view)
    assert view.minimumSizeHint().width() <= 300
    legend = view.n_legend
    assert legend.isVisible() and legend.width() <= 400 and legend.height() > 2 * 12
    assert all(n in legend.text() for n in ("embed", "b2_ff2", "head"))


def test_the_curves_fit_a_1024_by_700_monitor_beside_the_attention(qtbot):
    """The plots' column of a 1024×700 Monitor holds two tab groups in about 570 px: the
    Curves (with a run's two-line summary) may ask at most 230 of them, or the window grew
    taller than asked with transformer_sort's Attention below."""
    from netbuilder.monitor.curves import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(390, 255)
    view.show_placeholder(None, view.glw)
    view.info.setText("<b>Run 1</b> · adam, lr 0.002, batch 64, 15 epochs, on sort_digits · "
                      "loss 0.4849 · val acc 93.9 %")
    view.show()
    qtbot.waitExposed(view)
    assert view.minimumSizeHint().height() <= 230
    from netbuilder.monitor.histograms import GradientsView

    grads = GradientsView()  # the same group: its legend wraps to two lines there
    qtbot.addWidget(grads)
    grads.set_layers(["conv1", "conv2", "fc1", "fc2", "logits", "extra_dense"])
    grads.show_placeholder(None, grads.glw)
    grads.resize(390, 255)
    grads.show()
    qtbot.waitExposed(grads)
    assert grads.n_legend.height() > 20 and grads.minimumSizeHint().height() <= 230


def test_low_curves_put_loss_and_accuracy_side_by_side(qtbot):
    """A 1024×700 Monitor leaves the Curves about 150 px of plot height: stacked, the loss
    and accuracy had no room for data; side by side each keeps the whole height."""
    from netbuilder.monitor.curves import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.show_placeholder(None, view.glw)
    view.resize(390, 230)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.one_row)
    loss, acc = view.loss_plot.sceneBoundingRect(), view.acc_plot.sceneBoundingRect()
    assert acc.left() >= loss.right() - 1 and abs(acc.top() - loss.top()) < 2
    data = view.loss_plot.getViewBox().sceneBoundingRect()
    assert data.height() > 60 and not view.lr_plot.isVisible()
    view.resize(390, 520)
    qtbot.waitUntil(lambda: not view.one_row)
    qtbot.waitUntil(lambda: view.lr_plot.isVisible())
    loss, acc = view.loss_plot.sceneBoundingRect(), view.acc_plot.sceneBoundingRect()
    assert acc.top() >= loss.bottom() - 1

"""Look Inside (issue 22) with real widgets: the Try it pad, the Why view, the gradient
check dialog and the profile overlay."""

from __future__ import annotations

import json
import threading

import numpy as np
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest

from engine.layers.conv import Conv2D
from engine.layers.dense import Dense
from engine.resources import example_path


def lenet_doc():
    return json.loads(example_path("lenet5").read_text(encoding="utf-8"))


def draw_stroke(qtbot, pad, points):
    pts = [QPoint(int(x * pad.width()), int(y * pad.height())) for x, y in points]
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(pad, p)
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[-1])


def test_drawing_a_stroke_on_the_pad_changes_the_prediction(make_window, qtbot):
    drv = make_window(lenet_doc())
    panel = drv.w.look_inside.show_try_it()
    qtbot.waitUntil(lambda: panel.isVisible() and panel.isEnabled())
    assert "untrained weights" in panel.source_note.text()
    before = panel.probs.copy()
    label_before = panel.prediction.text()
    assert panel.pad.ink(28, 28).max() == 0
    draw_stroke(qtbot, panel.pad, [(0.5, 0.2), (0.5, 0.4), (0.5, 0.6), (0.5, 0.8)])
    ink = panel.pad.ink(28, 28)
    assert ink.max() > 0.5 and ink[:, :10].max() == 0  # a vertical stroke in the middle
    assert not np.allclose(panel.probs, before)
    assert abs(panel.probs.sum() - 1) < 1e-6 and len(panel.bars.names) == 10
    np.testing.assert_array_equal(panel.bars.probs, panel.probs)
    top = int(np.argmax(panel.probs))
    assert panel.prediction.text().startswith(f"{top} · {100 * panel.probs[top]:.1f} %")
    assert panel.prediction.text() != label_before or int(np.argmax(before)) == top
    # the prediction is the network's answer for exactly what the pad shows
    np.testing.assert_allclose(panel.probs, panel.source.predict(panel.source.prepare(ink)))
    probs_drawn = panel.probs.copy()
    qtbot.mouseClick(panel.invert, Qt.MouseButton.LeftButton)
    assert panel.pad.inverted and not np.allclose(panel.probs, probs_drawn)
    qtbot.mouseClick(panel.clear_btn, Qt.MouseButton.LeftButton)
    assert panel.pad.ink(28, 28).min() == 1.0  # cleared, read inverted


def test_grad_cam_view_appears_for_a_conv_node(make_window, qtbot):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    assert li.act_cam in drv.view.context_actions and li.act_check in drv.view.context_actions
    drv.w.scene.select_nodes(["c3"])
    li.act_cam.trigger()
    panel = li.panel
    assert panel.method.currentText() == "Grad-CAM" and panel.node.currentData() == "c3"
    draw_stroke(qtbot, panel.pad, [(0.3, 0.3), (0.7, 0.7)])
    qtbot.waitUntil(lambda: panel.heat is not None and "Grad-CAM on c3" in panel.why_note.text(),
                    timeout=10_000)
    assert panel.heat.shape == (28, 28) and panel.why_view.image is not None
    assert panel.why_view.isVisible() and not panel.why_view.pixmap().isNull()
    assert panel.heat.min() >= 0 and panel.heat.max() <= 1 + 1e-9
    # occlusion runs in a background thread with a progress bar
    panel.patch.setValue(7)
    panel.method.setCurrentText("Occlusion")
    qtbot.waitUntil(lambda: panel.thread is not None, timeout=5_000)
    qtbot.waitUntil(lambda: panel.thread is None and "Occlusion" in panel.why_note.text()
                    and panel.progress.isHidden(), timeout=60_000)
    assert panel.heat is not None and panel.heat.shape == (28, 28)
    assert panel.progress.maximum() == 22 * 22


def test_gradient_check_dialog_passes_c1_and_fails_a_broken_layer(make_window, qtbot,
                                                                   monkeypatch):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    drv.w.scene.select_nodes(["c1"])
    assert li.check_button.isVisible()
    qtbot.mouseClick(li.check_button, Qt.MouseButton.LeftButton)
    dlg = li.dialog
    assert dlg is not None and dlg.isVisible()
    qtbot.waitUntil(lambda: dlg.report is not None, timeout=120_000)
    assert dlg.results() == {"x0": "pass", "weight": "pass", "bias": "pass"}
    assert "PASS" in dlg.verdict.text()
    real = Dense.backward

    def broken(self, dy, params, grads):
        dxs = real(self, dy, params, grads)
        return [dx * 0.5 for dx in dxs]

    monkeypatch.setattr(Dense, "backward", broken)
    drv.w.scene.select_nodes(["f5"])
    li.act_check.trigger()  # the canvas context-menu action
    dlg = li.dialog
    qtbot.waitUntil(lambda: dlg.report is not None, timeout=120_000)
    assert dlg.results() == {"x0": "FAIL", "weight": "pass", "bias": "pass"}
    assert "FAIL" in dlg.verdict.text() and "input 0" in dlg.verdict.text()
    assert not dlg.report.passed


def gate_worker_forwards(monkeypatch, cls):
    """``cls.forward`` called off the GUI thread waits until the returned event is set."""
    gate = threading.Event()
    real = cls.forward

    def gated(self, *args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            assert gate.wait(60)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "forward", gated)
    return gate


def test_gradient_check_runs_in_the_background_with_progress_and_cancel(make_window, qtbot,
                                                                        monkeypatch):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    gate = gate_worker_forwards(monkeypatch, Conv2D)
    drv.w.scene.select_nodes(["c1"])
    qtbot.mouseClick(li.check_button, Qt.MouseButton.LeftButton)
    dlg = li.dialog
    assert dlg.running and dlg.progress.isVisible() and "Checking" in dlg.verdict.text()
    seen = []
    # the check cannot finish before this timer fires: it only runs if the event loop does
    QTimer.singleShot(30, lambda: (seen.append((dlg.running, drv.w.isEnabled())), gate.set()))
    qtbot.waitUntil(lambda: dlg.report is not None, timeout=120_000)
    assert seen == [(True, True)]
    assert dlg.results() == {"x0": "pass", "weight": "pass", "bias": "pass"}
    assert dlg.progress.isHidden() and dlg.progress.value() == dlg.progress.maximum() > 0
    assert "PASS" in dlg.verdict.text() and "pass" in drv.w.status_message.text()
    # Cancel stops a check under way
    gate.clear()
    li.act_check.trigger()
    dlg = li.dialog
    assert dlg.running
    cancel = dlg.buttons.button(dlg.buttons.StandardButton.Cancel)
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    gate.set()
    assert li.wait_check()
    qtbot.waitUntil(lambda: "cancelled" in drv.w.status_message.text(), timeout=10_000)
    assert dlg.report is None and "Cancelled" in dlg.verdict.text() and dlg.isVisible()


def test_profile_shows_a_heat_overlay_and_summary_columns(make_window, qtbot):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    li.act_profile.trigger()
    assert li.wait_profile()
    qtbot.waitUntil(lambda: li.profile is not None, timeout=10_000)
    assert set(li.overlay.items) == set(drv.graph.nodes)
    halo, tag, _box = li.overlay.items["c1"]
    assert halo.parentItem() is drv.w.scene.nodes["c1"] and "ms" in tag.text()
    table = drv.w.summary.table
    assert table.columnCount() == 8
    assert [table.headerItem().text(c) for c in (5, 6, 7)] == ["fwd ms", "bwd ms", "% step"]
    rows = {table.topLevelItem(i).text(0): table.topLevelItem(i)
            for i in range(table.topLevelItemCount())}
    assert float(rows["c1"].text(5)) > 0 and 0 <= float(rows["c1"].text(7)) <= 100
    assert "per training step of 64 on" in drv.w.summary.totals.text()
    li.act_clear.trigger()
    assert not li.overlay and table.columnCount() == 5


def test_what_a_filter_looks_for_shows_a_grid_of_every_channel(make_window, qtbot):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    drv.w.scene.select_nodes(["c1"])
    li.act_filters.trigger()
    dlg = li.filter_dialog
    assert dlg is not None and dlg.isVisible()
    qtbot.waitUntil(lambda: dlg.result is not None, timeout=60_000)
    assert dlg.result.channels == list(range(6)) and len(dlg.views) == 6
    assert all(not v.pixmap().isNull() for v in dlg.views)
    assert np.all(dlg.result.history[-1] > dlg.result.history[0])
    assert dlg.progress.isHidden()
    dlg.close()
    drv.w.scene.select_nodes(["f5"])
    li.act_filters.trigger()
    assert li.filter_dialog is dlg  # a Dense has no maps: refused, said in the status bar
    assert "no feature maps" in drv.w.status_message.text()


def test_an_image_file_opened_on_the_pad_is_read_at_the_input_size(make_window, qtbot,
                                                                    tmp_path):
    from PySide6.QtGui import QColor, QImage

    drv = make_window(lenet_doc())
    panel = drv.w.look_inside.show_try_it()
    img = QImage(56, 56, QImage.Format.Format_RGB32)
    img.fill(QColor("black"))
    for y in range(56):
        for x in range(28, 56):
            img.setPixelColor(x, y, QColor("white"))
    path = tmp_path / "half.png"
    assert img.save(str(path))
    before = panel.probs.copy()
    panel.choose_image_path = lambda: str(path)
    qtbot.mouseClick(panel.open_btn, Qt.MouseButton.LeftButton)
    ink = panel.pad.ink(28, 28)
    assert ink[:, :13].max() < 0.05 and ink[:, 15:].min() > 0.95
    assert not np.allclose(panel.probs, before)


def test_each_node_shows_its_activation_for_the_drawn_input(make_window, qtbot):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    panel = li.show_try_it()
    draw_stroke(qtbot, panel.pad, [(0.2, 0.5), (0.8, 0.5)])
    assert {"c1", "a1", "s2", "c3", "f5", "logits"} <= set(li.thumbs.items)
    frame = li.thumbs.items["c1"]
    assert frame.parentItem() is drv.w.scene.nodes["c1"]
    pix = frame.childItems()[0].pixmap()
    assert not pix.isNull() and pix.width() == pix.height()  # a 28×28 map, square
    assert li.thumbs.items["f5"].childItems()[0].pixmap().height() == 8  # a vector: a strip
    np.testing.assert_allclose(panel.acts["c1"], panel.source.net.acts["c1"][0])
    qtbot.mouseClick(panel.on_canvas, Qt.MouseButton.LeftButton)
    assert not li.thumbs
    qtbot.mouseClick(panel.on_canvas, Qt.MouseButton.LeftButton)
    assert li.thumbs
    li.dock.hide()
    assert not li.thumbs


def test_feature_maps_view_shows_the_try_it_input_and_follows_the_pad(make_window, qtbot):
    drv = make_window(lenet_doc())
    li = drv.w.look_inside
    drv.w.training.show_monitor()
    maps = drv.w.training.maps
    assert not maps.tryit_box.isEnabled()  # nothing tried yet
    panel = li.show_try_it()
    qtbot.waitUntil(lambda: maps.tryit_box.isEnabled())
    drv.w.scene.select_nodes(["c1"])
    assert maps.node == "c1"
    qtbot.mouseClick(maps.tryit_box, Qt.MouseButton.LeftButton)
    assert maps.showing_tryit and not maps.sample_box.isEnabled()
    np.testing.assert_array_equal(maps.maps, panel.acts["c1"])
    assert maps.maps.shape == (6, 28, 28) and "Try-it input" in maps.info.text()
    before = maps.maps.copy()
    draw_stroke(qtbot, panel.pad, [(0.2, 0.2), (0.8, 0.8)])
    assert not np.allclose(maps.maps, before)
    np.testing.assert_array_equal(maps.maps, panel.acts["c1"])
    assert panel.prediction.text() in maps.input_label.text()
    drv.w.scene.select_nodes(["f5"])  # another node: its maps for the same input
    np.testing.assert_array_equal(maps.maps, panel.acts["f5"])
    assert "Try-it input" in maps.info.text()
    li.dock.hide()  # no Try it input any more: back to the validation samples
    assert not maps.tryit_box.isEnabled() and not maps.showing_tryit

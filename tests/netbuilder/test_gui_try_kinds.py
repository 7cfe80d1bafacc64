"""Try it beyond drawn images, with real widgets: a 2-D point chosen on the decision regions
of a trained XOR MLP, sequences (a dataset sample, typed tokens), a regression's value beside
its target and an autoencoder's reconstruction beside its input."""

from __future__ import annotations

import numpy as np
from monitorkit import click, example, open_model, wait_idle
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from engine.explain import class_scores, probabilities
from netbuilder.lookinside.sequence import parse_tokens


def press_at(pad, a, b, drag_to=None):
    """Press the left button on the point (a, b) of the region pad (and drag to another)."""
    p = pad.to_px(a, b).toPoint()
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    if drag_to is not None:
        q = pad.to_px(*drag_to).toPoint()
        for k in range(1, 6):
            QTest.mouseMove(pad, p + (q - p) * k / 5)
        p = q
    QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)


def test_a_point_clicked_on_the_decision_regions_of_a_trained_xor_mlp(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=40, seed=1))
    click(qtbot, drv.w.training.panel.start_button)
    wait_idle(qtbot, tc)
    li = drv.w.look_inside
    panel = li.show_try_it()
    qtbot.waitUntil(lambda: panel.isEnabled() and "weights of" in panel.source_note.text(),
                    timeout=10_000)
    pad = panel.region_pad
    assert pad.isVisible() and not panel.pad.isVisible() and pad.image is not None
    assert len(pad.points) > 0 and "decision regions" in panel.source_note.text()
    assert not panel.why_view.isVisible()  # no image: no saliency map to lay over it
    press_at(pad, 0.0, 1.0)  # a corner of class "different"
    assert pad.point == panel.region_pad.point
    np.testing.assert_allclose(pad.point, (0.0, 1.0), atol=0.05)
    p_diff = panel.probs.copy()
    assert np.argmax(p_diff) == 1 and p_diff[1] > 0.8
    assert panel.prediction.text().startswith("different ·")
    assert panel.bars.names == ["same", "different"]
    np.testing.assert_array_equal(panel.bars.probs, p_diff)
    press_at(pad, 0.5, 0.5, drag_to=(1.0, 1.0))  # drag to the corner of class "same"
    np.testing.assert_allclose(pad.point, (1.0, 1.0), atol=0.05)
    assert np.argmax(panel.probs) == 0 and panel.probs[0] > 0.8
    assert panel.prediction.text().startswith("same ·")
    # the answer is the network's for exactly that point, and the nodes show it
    x = panel.source.normalise(np.array([pad.point]))
    np.testing.assert_allclose(panel.probs, panel.source.answers(x)[0].probs)
    assert {"hidden", "tanh", "logits"} <= set(li.thumbs.items)
    # the monitor's Data fit view: the point dragged is ringed there, and a click there
    # questions the network at that point
    fit = drv.w.training.fit
    np.testing.assert_allclose(fit.marker.data["x"], [pad.point[0]])
    drv.w.training.show_monitor(("fit",))
    qtbot.waitUntil(lambda: fit.plot.isVisible() and fit.kind == "regions")
    vb = fit.plot.getPlotItem().getViewBox()
    pos = fit.plot.mapFromScene(vb.mapViewToScene(QPointF(0.0, 1.0)))
    QTest.mouseClick(fit.plot.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, pos)
    qtbot.waitUntil(lambda: np.argmax(panel.probs) == 1)
    np.testing.assert_allclose(pad.point, (0.0, 1.0), atol=0.05)
    np.testing.assert_allclose(fit.marker.data["x"], [pad.point[0]])


def test_a_token_model_answers_for_a_sample_and_for_typed_tokens(make_window, qtbot):
    drv, tc = open_model(make_window, example("embedding_tokens"))
    panel = drv.w.look_inside.show_try_it()
    qtbot.waitUntil(panel.isEnabled)
    seq = panel.seq_input
    assert seq.isVisible() and seq.tokens.isVisible() and not panel.pad.isVisible()
    ds = tc.data.dataset
    seq.sample.setValue(3)
    click(qtbot, seq.show_btn)
    assert seq.tokens.text() == " ".join(str(int(v)) for v in ds.x[3])
    names = ds.class_names
    assert panel.probs.shape == (4,) and abs(panel.probs.sum() - 1) < 1e-6
    assert f"sample's label: {names[int(ds.y[3])]}" in panel.prediction.text()
    before = panel.probs.copy()
    seq.tokens.clear()
    QTest.keyClicks(seq.tokens, "1 2 3 4 5 6 0 1 2 3 4 5 0 1 2 3 4 5 0 1")
    QTest.keyClick(seq.tokens, Qt.Key.Key_Return)
    np.testing.assert_array_equal(panel.raw[0], [1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 0, 1, 2,
                                                 3, 4, 5, 0, 1])
    assert not np.allclose(panel.probs, before) and "label" not in panel.prediction.text()
    np.testing.assert_allclose(panel.probs, panel.source.answers(panel.x)[0].probs)
    # fewer tokens keep the rest of the sequence; unknown ones are said and left out
    seq.tokens.setText("7 zebra 999")
    QTest.keyClick(seq.tokens, Qt.Key.Key_Return)
    assert panel.raw[0][0] == 7 and panel.raw[0][1] == 2
    assert "zebra 999" in seq.note.text()


def test_a_float_sequence_regression_shows_its_value_and_the_target(make_window, qtbot):
    drv, tc = open_model(make_window, example("lstm_adding"))
    panel = drv.w.look_inside.show_try_it()
    qtbot.waitUntil(panel.isEnabled)
    seq = panel.seq_input
    assert seq.isVisible() and not seq.tokens.isVisible()
    seq.sample.setValue(5)
    click(qtbot, seq.show_btn)
    ds = tc.data.dataset
    value = float(panel.answers[0].value.reshape(-1)[0])
    assert panel.answers[0].kind == "regression" and panel.probs is None
    assert panel.prediction.text().startswith(f"{value:.4g}")
    assert f"(target {float(ds.y[5].reshape(-1)[0]):.4g})" in panel.prediction.text()
    assert not panel.bars.isVisible() and seq.view.image is not None
    assert seq.view.image.width() == 50  # time runs left to right


def test_an_autoencoder_shows_the_reconstruction_beside_the_input(make_window, qtbot):
    drv, _tc = open_model(make_window, example("digits_autoencoder"))
    panel = drv.w.look_inside.show_try_it()
    qtbot.waitUntil(panel.isEnabled)
    assert panel.pad.isVisible() and panel.recon_view.isVisible()
    assert not panel._why_box.isVisible() and not panel.why_view.isVisible()  # no class
    panel.sample.setValue(2)
    click(qtbot, panel.sample_btn)
    a = panel.answers[0]
    assert a.kind == "reconstruction" and a.value.shape == (1, 8, 8)
    assert panel.prediction.text().startswith("MSE ")
    assert "target" not in panel.prediction.text() and "label" not in panel.prediction.text()
    img = panel.recon_view.image
    assert img is not None and img.width() > 2 * img.height() - 40  # two images side by side
    assert "Reconstruction" in panel.why_note.text()
    mse = float(np.mean((a.value - panel.x[0]) ** 2))
    assert f"{mse:.4g}" in panel.prediction.text()
    QTest.mousePress(panel.pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(20, 20))
    QTest.mouseMove(panel.pad, QPoint(150, 150))
    QTest.mouseRelease(panel.pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       QPoint(150, 150))
    assert not np.allclose(panel.answers[0].value, a.value)


def test_a_model_with_two_outputs_answers_for_each(make_window, qtbot):
    drv, _tc = open_model(make_window, example("multitask"))
    panel = drv.w.look_inside.show_try_it()
    qtbot.waitUntil(panel.isEnabled)
    click(qtbot, panel.sample_btn)
    kinds = [a.kind for a in panel.answers]
    assert kinds == ["classes", "regression"]
    note = panel.outputs_note.text()
    assert "<b>shape</b>:" in note and "<b>size</b>:" in note and "(target " in note


def test_live_profiling_puts_per_node_times_on_the_canvas_while_training(make_window, qtbot):
    from netbuilder.lookinside import LIVE_PROFILE_EVERY

    drv, tc = open_model(make_window, example("xor_mlp", epochs=5000))  # stopped below
    li = drv.w.look_inside
    li.act_live.trigger()
    assert li.act_live.isChecked() and tc.request().profile_every == LIVE_PROFILE_EVERY
    states = []
    tc.presenter.live_profile.connect(lambda _p: states.append(tc.state))
    click(qtbot, drv.w.training.panel.start_button)
    qtbot.waitUntil(lambda: li.live_steps >= 2, timeout=120_000)
    assert states[0] == "running"  # drawn while the model trains
    assert set(li.overlay.items) == set(drv.graph.nodes)
    _halo, tag, _box = li.overlay.items["hidden"]
    assert "ms" in tag.text() and li.profile.nodes["hidden"].forward_ms > 0
    assert "live while training" in drv.w.summary.totals.text()
    assert drv.w.summary.totals.text().count("(measured ") == 1  # replaced, not piled up
    click(qtbot, drv.w.training.panel.stop_button)
    wait_idle(qtbot, tc)
    li.act_live.trigger()  # off: the next run is not timed
    assert tc.request().profile_every == 0
    li.act_clear.trigger()
    assert not li.overlay


def test_a_per_step_model_answers_a_class_per_step_of_typed_tokens(make_window, qtbot):
    """transformer_sort has attention: Try it takes the tokens on its sequence page, which
    answers a class per step beside each head's weights."""
    drv, _tc = open_model(make_window, example("transformer_sort"))
    panel = drv.w.look_inside.show_try_it()
    qtbot.waitUntil(lambda: panel.sequence.isVisibleTo(panel))
    seq = panel.sequence
    assert not panel.image_page.isVisibleTo(panel)
    seq.tokens_edit.setText("9 8 7 6 5 4 3 2")
    QTest.keyClick(seq.tokens_edit, Qt.Key.Key_Return)
    src = seq.source
    x = src.normalise(parse_tokens("9 8 7 6 5 4 3 2", seq.vocab, 8)[None])
    probs = probabilities(class_scores(src.net, x))[0]
    assert probs.shape == (8, 10)
    tops = [src.class_name(int(k)) for k in np.argmax(probs, axis=-1)]
    assert seq.prediction.text() == " ".join(tops)
    assert seq.weights.shape[-2:] == (8, 8)  # each head's weights for the typed tokens

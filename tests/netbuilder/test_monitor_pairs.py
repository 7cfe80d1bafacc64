"""Inputs beside what the network makes of them: the SpatialTransformer's warped image and the
autoencoder's reconstruction, measured on the network (Qt-free) and shown live by the
"Input vs Output" view of a run started with the Train button."""

from __future__ import annotations

import dataclasses

import numpy as np
from monitorkit import chain, click, example, open_model, small_cnn, wait_idle, wait_steps

import engine
from netbuilder.monitor.pairs import NO_NODES, PairsView, pair_rgb
from netbuilder.session import probes
from netbuilder.session.messages import empty_snapshot, measure_images


def _doc(nodes, edges, training=None):
    return {"format": "netbuilder.graph", "version": 1, "name": "test",
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
            "edges": [{"src": s, "dst": d, "port": port} for s, d, port in edges],
            "ui": {n[0]: {"pos": [0, 110 * k]} for k, n in enumerate(nodes)},
            "training": training or {}}


def stn_doc(shape=(1, 6, 8), second=False, training=None):
    """Input → STN (port 0); Input → Flatten → Dense(6, zeros) = theta (port 1); the STN's
    output → Flatten → Dense(3) → Output. ``second``: a second STN on the first's output with
    the same theta."""
    nodes = [("in", "Input", {"shape": list(shape)}), ("flat", "Flatten", {}),
             ("theta", "Dense", {"units": 6, "init": "zeros"}),
             ("stn", "SpatialTransformer", {})]
    edges = [("in", "flat", 0), ("flat", "theta", 0), ("in", "stn", 0), ("theta", "stn", 1)]
    last = "stn"
    if second:
        nodes.append(("stn2", "SpatialTransformer", {}))
        edges += [("stn", "stn2", 0), ("theta", "stn2", 1)]
        last = "stn2"
    nodes += [("flat2", "Flatten", {}), ("fc", "Dense", {"units": 10 if second else 3}),
              ("out", "Output", {"loss": "cross_entropy"})]
    edges += [(last, "flat2", 0), ("flat2", "fc", 0), ("fc", "out", 0)]
    return _doc(nodes, edges, training)


def ae_doc(loss="mse", sigmoid=False, reshape=True):
    """Input 1×4×4 → Flatten → Dense 16 [→ Reshape 1×4×4] [→ Sigmoid] → Output(target x)."""
    nodes = [("in", "Input", {"shape": [1, 4, 4]}), ("flat", "Flatten", {}),
             ("dec", "Dense", {"units": 16})]
    if reshape:
        nodes.append(("img", "Reshape", {"shape": [1, 4, 4]}))
    if sigmoid:
        nodes.append(("sig", "Sigmoid", {}))
    nodes.append(("out", "Output", {"loss": loss, "target": "x"}))
    return chain(nodes, {})


def _net(doc):
    return engine.Network(engine.Graph.from_dict(doc), seed=0)


def _samples(n, shape, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


# ----- measured on the network (Qt-free) ---------------------------------------------------------
def test_transformed_image_is_the_stn_output_of_a_known_one_pixel_shift():
    net = _net(stn_doc())
    h, w = 6, 8
    net.params["theta.bias"][...] = [0, 0, 2 / w, 0, 0, 2 / h]  # read one pixel right, one down
    x = _samples(5, (1, h, w))
    pp = probes.image_pairs(net, x, "stn", "validation", tuple("abcde"))
    assert pp is not None and pp.kind == "transform" and pp.errors is None
    assert pp.before.shape == pp.after.shape == (5, 1, h, w)
    assert np.array_equal(pp.indices, np.arange(5)) and pp.labels == tuple("abcde")
    shifted = np.zeros_like(x)
    shifted[:, :, :-1, :-1] = x[:, :, 1:, 1:]
    assert np.allclose(pp.after, shifted, atol=1e-5)
    assert np.array_equal(pp.before, x)
    net.forward(x)
    assert np.array_equal(pp.after, net.acts["stn"])
    want = np.array([[1, 0, 2 / w], [0, 1, 2 / h]])
    assert pp.theta.shape == (5, 2, 3) and np.allclose(pp.theta, want, atol=1e-6)
    # a copy: later forwards do not change what was measured
    net.forward(np.zeros_like(x))
    assert np.allclose(pp.after, shifted, atol=1e-5)


def test_a_second_transformer_shows_its_own_input_and_other_nodes_show_nothing():
    net = _net(stn_doc(second=True))
    net.params["theta.bias"][...] = [0, 0, 2 / 8, 0, 0, 0]
    x = _samples(3, (1, 6, 8))
    pp = probes.image_pairs(net, x, "stn2", "training")
    first = np.zeros_like(x)
    first[..., :-1] = x[..., 1:]
    twice = np.zeros_like(x)
    twice[..., :-2] = x[..., 2:]
    assert np.allclose(pp.before, first, atol=1e-5)  # what enters stn2: stn's output
    assert np.allclose(pp.after, twice, atol=1e-5)
    assert pp.part == "training"
    for nid in ("fc", "in", "out", "missing"):
        assert probes.image_pairs(net, x, nid, "validation") is None
    assert probes.pair_nodes(net.graph) == {"stn": "transform", "stn2": "transform"}


def test_reconstruction_is_the_networks_output_reshaped_with_its_error():
    net = _net(ae_doc("mse", reshape=False))  # the Output is (16,): shown as 1×4×4
    x = _samples(6, (1, 4, 4))
    pp = probes.image_pairs(net, x, "out", "validation")
    out = net.forward(x)
    assert out.shape == (6, 16)
    assert pp.kind == "reconstruction" and pp.theta is None
    assert pp.after.shape == (6, 1, 4, 4) and np.allclose(pp.after, out.reshape(6, 1, 4, 4))
    assert np.array_equal(pp.before, x)
    want = ((out.reshape(6, -1).astype(np.float64) - x.reshape(6, -1)) ** 2).mean(axis=1)
    assert pp.errors.shape == (6,) and np.allclose(pp.errors, want, rtol=1e-5)
    assert probes.pair_nodes(net.graph) == {"out": "reconstruction"}


def test_bce_reconstructions_are_probabilities_whether_or_not_the_sigmoid_is_fused():
    x = _samples(4, (1, 4, 4))
    fused = _net(ae_doc("bce", sigmoid=True))
    assert "out" in fused.loss_logits  # the Sigmoid feeds the loss as logits...
    probs = fused.forward(x)
    pp = probes.image_pairs(fused, x, "out", "validation")
    assert np.allclose(pp.after, probs)  # ...yet the forward gives probabilities: shown as is
    assert np.all((pp.after > 0) & (pp.after < 1))
    assert not np.allclose(pp.after, 1 / (1 + np.exp(-probs)))
    plain = _net(ae_doc("bce", sigmoid=False))  # the loss squashes the logits itself
    logits = plain.forward(x)
    pp = probes.image_pairs(plain, x, "out", "validation")
    assert np.allclose(pp.after, 1 / (1 + np.exp(-logits)), atol=1e-6)
    want = ((pp.after - x) ** 2).mean(axis=(1, 2, 3))
    assert np.allclose(pp.errors, want, rtol=1e-5)


def test_measure_images_sends_eight_labelled_pairs_when_asked():
    net = _net(ae_doc("mse"))
    probe = probes.ProbeData(x=_samples(20, (1, 4, 4)), y=np.arange(20) % 3,
                             labels=["zero", "one", "two"])
    req = probes.MonitorRequest(pair_node="out", feature_maps=False, filters=False,
                                histograms=False, regions=False)
    snap = measure_images(net, probe, probes.Head.of(net), req, empty_snapshot())
    pp = snap.pairs
    assert len(pp.indices) == probes.PAIR_SAMPLES == 8
    assert pp.labels == ("zero", "one", "two", "zero", "one", "two", "zero", "one")
    assert np.array_equal(pp.before, probe.x[:8])
    off = measure_images(net, probe, None, probes.MonitorRequest(pair_node="out", pairs=False),
                         empty_snapshot())
    assert off.pairs is None


def test_a_pair_shares_one_colour_scale():
    before = np.array([[[0.0, 1.0], [2.0, 3.0]]], np.float32)
    after = before * 2  # up to 6: the input's 3 is half-bright
    b, a = pair_rgb(before, after)
    assert b.shape == a.shape == (2, 2, 3) and b.dtype == np.uint8
    assert b[0, 0, 0] == 0 and a[1, 1, 0] == 255 and b[1, 1, 0] == 128
    rgb = np.stack([before[0], before[0] + 1, before[0] + 2])  # 3 channels: colour
    b, a = pair_rgb(rgb, rgb)
    assert np.array_equal(b, a) and b[0, 0].tolist() == [0, 51, 102]
    many = np.stack([before[0]] * 5)  # 5 channels: channel 0
    b, _ = pair_rgb(many, many * np.nan)
    assert b.shape == (2, 2, 3) and b[1, 1, 0] == 255


def test_view_draws_the_chosen_nodes_pairs_with_captions_and_exports_them(qtbot):
    view = PairsView()
    qtbot.addWidget(view)
    view.resize(420, 360)
    view.show()
    chosen = []
    view.node_chosen.connect(chosen.append)
    view.set_nodes({"stn": "transform", "rec": "reconstruction"})
    assert view.node == "stn" and chosen == ["stn"] and view.node_box.isVisibleTo(view)
    assert "Start training" in view.placeholder.text()
    net = _net(stn_doc())
    x = _samples(3, (1, 6, 8))
    pp = probes.image_pairs(net, x, "stn", "validation", ("a", "", "c"))
    view.show_pairs(dataclasses.replace(pp, node="other"))  # not the chosen node: ignored
    assert view.pairs is None
    view.show_pairs(pp)
    assert view.pairs is pp and view.canvas.captions == ["a", "#1", "c"]
    assert view.canvas.rows_names == ("input", "warped") and not view.placeholder.isVisible()
    assert "affine matrix" in view.canvas.tips[0] and "+1.00" in view.canvas.tips[0]
    assert not view.canvas.grab().isNull()  # paints the canvas, as the PNG export does
    assert len(view.canvas.cells) == 3 and view.canvas.thumb >= 60  # one row of three
    header, rows = view.csv_table()
    assert header[2:] == ["a11", "a12", "a13", "a21", "a22", "a23"]
    assert rows[0][:2] == [0, "a"] and rows[0][2:] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    view.node_box.setCurrentIndex(1)
    view.node_box.activated.emit(1)
    assert view.node == "rec" and chosen == ["stn", "rec"]
    view.set_nodes({"rec": "reconstruction"})  # the model changed: one choice, no combo
    assert view.node == "rec" and view.node_box.isHidden() and view.pairs is None
    view.set_probe(probes.ProbeData())  # a run of a model with several Inputs
    assert "one Input" in view.placeholder.text()


# ----- live in the window --------------------------------------------------------------------------
def _shown(tc, n):
    pp = tc.pairs.pairs
    return pp is not None and len(pp.indices) == n and len(tc.pairs.canvas.images) == n


def test_autoencoder_shows_inputs_above_reconstructions_while_training(make_window, qtbot):
    doc = example("digits_autoencoder", epochs=400, limit=400)
    drv, tc = open_model(make_window, doc)
    drv.w.resize(1600, 1000)  # the size the monitor is laid out for
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: _shown(tc, 8) and tc.docks.visible("pairs"), timeout=60_000)
    assert tc.pairs.node == "out" and tc.pairs.node_box.isHidden()
    assert not tc.docks.visible("confusion")  # nothing to classify: the Runs list is in front
    pp = tc.pairs.pairs
    assert pp.kind == "reconstruction" and pp.before.shape == pp.after.shape == (8, 1, 8, 8)
    assert np.all((pp.after >= 0) & (pp.after <= 1))  # the Sigmoid's probabilities
    assert np.all(np.isfinite(pp.errors)) and pp.labels[0].isdigit()
    cap = tc.pairs.canvas.captions[0]
    assert cap == f"{pp.labels[0]}\nMSE {pp.errors[0]:.2g}"
    assert f"mean MSE {np.mean(pp.errors):.3g}" in tc.pairs.info.text()
    first = pp
    qtbot.waitUntil(lambda: tc.pairs.pairs is not first, timeout=30_000)  # a live update
    assert np.array_equal(tc.pairs.pairs.before, first.before)  # the same samples
    assert not np.array_equal(tc.pairs.pairs.after, first.after)  # rebuilt a little better
    assert tc.pairs.canvas.thumb >= 48  # at 1600×1000 each digit is drawn ≥ 48 px
    header, rows = tc.pairs.csv_table()
    assert header == ["sample", "label", "mse"] and len(rows) == 8
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)


def test_stn_shows_transformed_inputs_and_after_the_run_the_final_network(make_window, qtbot):
    doc = example("stn_shapes", epochs=1, limit=300, batch_size=32)
    _drv, tc = open_model(make_window, doc)
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: _shown(tc, 8) and tc.docks.visible("pairs"), timeout=60_000)
    pp = tc.pairs.pairs
    assert tc.pairs.node == "stn" and pp.kind == "transform" and tc.docks.visible("confusion")
    assert pp.before.shape == pp.after.shape == (8, 1, 40, 40)
    assert pp.theta.shape == (8, 2, 3) and np.all(np.isfinite(pp.theta))
    assert "validation samples · 40×40 → 40×40" in tc.pairs.info.text()
    assert tc.pairs.canvas.rows_names == ("input", "warped")
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "completed"
    # after the run the view re-measures the final network when shown again
    tc.pairs.clear()
    tc.docks.plots["filters"].raise_()
    tc.docks.plots["pairs"].raise_()
    qtbot.waitUntil(lambda: _shown(tc, 8), timeout=10_000)
    final = tc.session.final_net
    net = engine.Network(final.graph, seed=0)
    net.load_state_dict(final.state_dict())
    ref = probes.image_pairs(net, tc.session.final_probe.x[:8], "stn", "validation")
    assert np.allclose(tc.pairs.pairs.after, ref.after, atol=1e-5)


def test_paused_run_shows_the_transformer_picked_in_the_combo(make_window, qtbot):
    doc = stn_doc((1, 8, 8), second=True, training={
        "dataset": "digits", "limit": 200, "epochs": 5, "batch_size": 32,
        "optimizer": {"type": "adam", "lr": 0.01}})
    _drv, tc = open_model(make_window, doc)
    click(qtbot, tc.panel.step_button)  # a paused run
    qtbot.waitUntil(lambda: _shown(tc, 8) and tc.docks.visible("pairs"), timeout=60_000)
    box = tc.pairs.node_box
    assert tc.pairs.pairs.node == "stn" and box.isVisibleTo(tc.pairs) and box.count() == 2
    n = len(tc.active.steps)
    box.setCurrentIndex(1)
    box.activated.emit(1)
    qtbot.waitUntil(lambda: tc.pairs.pairs is not None and tc.pairs.pairs.node == "stn2",
                    timeout=20_000)
    assert len(tc.active.steps) == n  # measured on the paused network, nothing trained
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)


def test_models_without_a_transformer_or_autoencoder_say_so(make_window, qtbot):
    drv, tc = open_model(make_window, small_cnn(epochs=5))
    tc.ensure_views()
    assert tc.pairs.node is None and tc.pairs.placeholder.text() == NO_NODES
    assert not tc.request().pairs
    click(qtbot, tc.panel.step_button)
    wait_steps(qtbot, tc, 1)
    qtbot.wait(300)
    assert not tc.docks.visible("pairs") and tc.docks.visible("filters")  # not in front
    assert tc.pairs.pairs is None and tc.pairs.placeholder.isVisibleTo(tc.pairs)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)
    # another model with an autoencoder: the view waits for its run
    drv.w.load_graph(engine.Graph.from_dict(example("digits_autoencoder")), None)
    assert tc.pairs.node == "out" and tc.request().pair_node == "out"
    assert "Start training" in tc.pairs.placeholder.text()

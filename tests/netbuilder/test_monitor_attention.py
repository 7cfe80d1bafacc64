"""Attention maps: each head's (T × T) softmax weights of a MultiHeadAttention for one
validation sample, measured on the network (Qt-free) and shown live by the "Attention"
view of transformer_sort run with the Train button."""

from __future__ import annotations

import numpy as np
from monitorkit import chain, click, example, open_model, small_cnn, wait_idle, wait_steps
from PySide6.QtWidgets import QTabBar

import engine
from netbuilder.monitor.attention import NO_NODES, AttentionView, tick_labels
from netbuilder.session import probes
from netbuilder.session.messages import empty_snapshot, measure_images


def sort_doc(causal: bool = False, **training) -> dict:
    """transformer_sort, briefly trained; ``causal`` masks both attention nodes."""
    doc = example("transformer_sort", **{"epochs": 50, "limit": 400, **training})
    for n in doc["nodes"]:
        if n["type"] == "MultiHeadAttention":
            n["params"]["causal"] = causal
    return doc


def _net(doc):
    return engine.Network(engine.Graph.from_dict(doc), seed=0)


# ----- the probe (Qt-free) -----------------------------------------------------------------------
def test_probe_copies_the_layers_weights_for_one_sample_with_its_tokens():
    net = _net(sort_doc())
    x = np.array([[3, 1, 4, 1, 5, 9, 2, 6], [0, 0, 1, 1, 2, 2, 3, 3]], np.float32)
    probe = probes.ProbeData(x=x, y=np.sort(x, axis=1).astype(np.int64),
                             labels=[str(k) for k in range(10)],
                             vocab=[f"w{k}" for k in range(10)])
    req = probes.MonitorRequest(attn_node="b2_attn", attn_sample=1)
    am = measure_images(net, probe, probes.Head.of(net), req, empty_snapshot()).attention
    assert am.node == "b2_attn" and am.sample == 1 and am.weights.shape == (4, 8, 8)
    assert am.tokens == ("w0", "w0", "w1", "w1", "w2", "w2", "w3", "w3")
    assert np.allclose(am.weights.sum(axis=2), 1.0, atol=1e-5)
    net.forward(x[1:2], train=False)
    assert np.array_equal(am.weights, net.layers["b2_attn"].attention_weights[0])
    assert not am.causal and am.label == "w0 w0 w1 w1 w2 w2 w3 w3"  # the targets
    # only MultiHeadAttention nodes have weights; other requests measure nothing
    assert probes.attention_maps(net, x[0], "b1_ln1", 0) is None
    assert measure_images(net, probe, None, probes.MonitorRequest(attention=False),
                          empty_snapshot()).attention is None
    assert probes.attention_nodes(net.graph) == ["b1_attn", "b2_attn"]


def test_token_names_read_ids_or_one_hot_rows_and_nothing_without_a_vocabulary():
    probe = probes.ProbeData(vocab=["a", "b", "c"])
    assert probes.token_names(probe, np.array([2.0, 0.0, 7.0])) == ("c", "a", "7")
    assert probes.token_names(probe, np.eye(3)[[1, 1, 0]]) == ("b", "b", "a")
    assert probes.token_names(probe, np.zeros((2, 5))) == ()
    assert probes.token_names(probes.ProbeData(), np.array([1.0, 2.0])) == ()


def test_tick_labels_name_each_step_or_every_kth_of_a_long_sequence():
    assert tick_labels(("a", "b", "c"), 3) == [(0.5, "a"), (1.5, "b"), (2.5, "c")]
    assert tick_labels((), 2) == [(0.5, "0"), (1.5, "1")]
    long = tick_labels((), 64)
    assert len(long) == 16 and long[1] == (4.5, "4")


def test_view_without_attention_nodes_says_so(qtbot):
    view = AttentionView()
    qtbot.addWidget(view)
    view.set_nodes([])
    assert view.node is None and view.placeholder.text() == NO_NODES
    view.set_nodes(["a1", "a2"])
    assert view.node == "a1" and not view.node_box.isHidden()


# ----- live in the window --------------------------------------------------------------------------
def _shown(tc, node, heads=4):
    am = tc.attention.maps
    return am is not None and am.node == node and len(tc.attention.images) == heads \
        and tc.docks.visible("attention")


def test_transformer_sort_shows_each_heads_weights_live_and_they_match_the_layer(
        make_window, qtbot):
    drv, tc = open_model(make_window, sort_doc())
    drv.w.resize(1600, 1000)
    click(qtbot, tc.panel.start_button)
    wait_steps(qtbot, tc, 1, timeout=180_000)  # the first run compiles its kernels
    drv.w.scene.select_nodes(["b2_attn"])  # select the attention node on the canvas
    qtbot.waitUntil(lambda: _shown(tc, "b2_attn"), timeout=60_000)
    view = tc.attention
    am = view.maps
    assert tc.request().attn_node == "b2_attn" and view.node_box.isVisibleTo(view)
    assert am.weights.shape == (4, 8, 8) and np.allclose(am.weights.sum(axis=2), 1, atol=1e-5)
    assert len(am.tokens) == 8 and all(t.isdigit() for t in am.tokens)  # the vocabulary
    ticks = view.plots[0].getAxis("bottom")._tickLevels[0]
    assert [t for _p, t in ticks] == list(am.tokens)
    for h, img in enumerate(view.images):  # each heat map is its head's weights
        assert np.array_equal(img.image, am.weights[h])
    first = am
    qtbot.waitUntil(lambda: view.maps is not first, timeout=30_000)  # a live update
    assert not np.array_equal(view.maps.weights, first.weights)  # the weights learn
    # another sample, picked in the view
    view.sample_box.setValue(5)
    qtbot.waitUntil(lambda: view.maps.sample == 5, timeout=30_000)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)
    # after the run: the final network's weights for the sample shown
    view.sample_box.setValue(3)
    qtbot.waitUntil(lambda: view.maps.sample == 3, timeout=10_000)
    final = tc.session.final_net
    net = engine.Network(final.graph, seed=0)
    net.load_state_dict(final.state_dict())
    net.forward(tc.session.final_probe.x[3][None], train=False)
    assert np.allclose(view.maps.weights, net.layers["b2_attn"].attention_weights[0],
                       atol=1e-6)
    header, rows = view.csv_table()
    assert header[-1] == "weight" and len(rows) == 4 * 8 * 8


def test_causal_attention_has_nothing_above_the_diagonal(make_window, qtbot):
    drv, tc = open_model(make_window, sort_doc(causal=True))
    drv.w.resize(1280, 800)
    click(qtbot, tc.panel.step_button)  # a paused run
    wait_steps(qtbot, tc, 1, timeout=180_000)  # the first run compiles its kernels
    tc.docks.plots["attention"].raise_()
    qtbot.waitUntil(lambda: _shown(tc, "b1_attn"), timeout=60_000)
    w = tc.attention.maps.weights
    assert tc.attention.maps.causal and "causal" in tc.attention.info.text()
    assert np.all(np.triu(w, 1) == 0) and np.all(np.diagonal(w, axis1=1, axis2=2) > 0)
    assert np.allclose(w.sum(axis=2), 1.0, atol=1e-5)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)


def test_models_without_attention_keep_the_view_behind(make_window, qtbot):
    _drv, tc = open_model(make_window, small_cnn(epochs=5))
    tc.ensure_views()
    assert tc.attention.node is None and not tc.request().attention
    click(qtbot, tc.panel.step_button)
    wait_steps(qtbot, tc, 1, timeout=180_000)  # the first run compiles its kernels
    assert not tc.docks.visible("attention")
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)


def test_upsampling_nodes_show_feature_maps_like_a_conv(make_window, qtbot):
    """Upsample2D and ConvTranspose2D outputs are (C, H, W) tiles in Feature Maps."""
    nodes = [("in", "Input", {"shape": [1, 8, 8]}),
             ("conv", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
             ("pool", "MaxPool2D", {"pool_size": 2}),
             ("up", "Upsample2D", {"scale": 2}),
             ("tconv", "ConvTranspose2D", {"filters": 3, "kernel_size": 2, "stride": 2}),
             ("relu", "ReLU", {}), ("flat", "Flatten", {}), ("fc", "Dense", {"units": 10}),
             ("out", "Output", {"loss": "cross_entropy"})]
    doc = chain(nodes, {"dataset": "digits", "limit": 300, "epochs": 5, "batch_size": 32,
                        "optimizer": {"type": "adam", "lr": 0.01}})
    drv, tc = open_model(make_window, doc)
    click(qtbot, tc.panel.step_button)
    wait_steps(qtbot, tc, 1, timeout=180_000)  # the first run compiles its kernels
    tc.docks.plots["maps"].raise_()
    for nid, shape in (("up", (4, 8, 8)), ("tconv", (3, 16, 16))):
        drv.w.scene.select_nodes([nid])
        qtbot.waitUntil(lambda nid=nid, shape=shape: tc.maps.maps is not None and tc.maps.node == nid
                        and tc.maps.maps.shape == shape, timeout=30_000)
        assert "channel" in tc.maps.info.text() and tc.maps.plot.isVisibleTo(tc.maps)
    click(qtbot, tc.panel.stop_button)
    wait_idle(qtbot, tc)


# ----- Try it: the user's own tokens ---------------------------------------------------------
def test_try_it_shows_attention_for_typed_tokens_and_for_a_sample(make_window, qtbot):
    from PySide6.QtCore import Qt

    from netbuilder.lookinside.sequence import parse_tokens

    drv = make_window(sort_doc())
    assert drv.w.training.data.wait_loaded(30)
    panel = drv.w.look_inside.show_try_it()
    seq = panel.sequence
    qtbot.waitUntil(lambda: seq.isVisible() and seq.source is not None, timeout=20_000)
    assert not panel.image_page.isVisibleTo(panel) and seq.node.count() == 2
    assert seq.weights is not None  # a dataset sample was shown at once
    seq.tokens_edit.setText("3 1 4 1 5 9 2 6")
    qtbot.keyClick(seq.tokens_edit, Qt.Key.Key_Return)
    assert len(seq.prediction.text().split()) == 8 and seq.note.text() == ""
    w = seq.weights
    assert w.shape == (4, 8, 8) and np.allclose(w.sum(axis=2), 1, atol=1e-5)
    net = seq.source.net  # the weights are the layer's for exactly these tokens
    net.forward(np.array([[3, 1, 4, 1, 5, 9, 2, 6]], np.float32), train=False)
    assert np.array_equal(w, net.layers["b1_attn"].attention_weights[0])
    typed = ["3", "1", "4", "1", "5", "9", "2", "6"]  # the axes name the typed tokens (every
    left = seq.grid.plots[0].getAxis("left")._tickLevels[0]  # k-th where 8 do not fit)
    assert len(left) >= 2 and all(typed[int(p - 0.5)] == t for p, t in left)
    for h, img in enumerate(seq.grid.images):
        assert np.array_equal(img.image, w[h])
    seq.node.setCurrentIndex(1)  # the second block's attention, same input
    net.forward(np.array([[3, 1, 4, 1, 5, 9, 2, 6]], np.float32), train=False)
    assert np.array_equal(seq.weights, net.layers["b2_attn"].attention_weights[0])
    seq.tokens_edit.setText("3 1 4")  # a wrong length is said, not run
    qtbot.keyClick(seq.tokens_edit, Qt.Key.Key_Return)
    assert "reads 8 tokens, you typed 3" in seq.note.text()
    seq.sample.setValue(2)
    qtbot.mouseClick(seq.sample_btn, Qt.MouseButton.LeftButton)
    ds = drv.w.training.data.dataset
    assert seq.tokens_edit.text().split() == [str(int(v)) for v in ds.x[2]]
    assert parse_tokens("1, 2", ["a", "b", "c"], 2).tolist() == [1, 2]
    assert parse_tokens("c a", ["a", "b", "c"], 2).tolist() == [2, 0]


def test_the_monitor_of_a_transformer_opens_on_views_that_have_something_to_show(
        make_window, qtbot):
    """Ctrl+2 on transformer_sort: the Feature Maps, not the Filters tab that would only say
    the model has no Conv2D; LeNet-5 keeps its Filters in front."""
    drv, tc = open_model(make_window, sort_doc())
    drv.w.act_monitor_mode.trigger()
    qtbot.waitUntil(lambda: tc.docks.visible("curves"), timeout=5000)
    assert tc.docks.visible("maps") and not tc.docks.visible("filters")
    w = drv.w
    qtbot.wait(50)
    tabs = {b.tabText(i) for b in w.findChildren(QTabBar) if b.parent() is w and b.isVisible()
            for i in range(b.count())}
    assert {"Filters", "Attention", "Gradients", "Runs"} <= tabs  # one click away
    drv, tc = open_model(make_window, example("lenet5"))
    drv.w.act_monitor_mode.trigger()
    qtbot.waitUntil(lambda: tc.docks.visible("curves"), timeout=5000)
    assert tc.docks.visible("filters")

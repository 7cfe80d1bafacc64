"""What the worker measures on the training thread (Qt-free): activation statistics, the
gradient along every wire against an unfused network's own backward, tile mosaics,
confusion matrices and decision regions."""

from __future__ import annotations

import math

import numpy as np
from monitorkit import chain, small_cnn

import engine
from netbuilder.monitor.common import mosaic
from netbuilder.session import probes


def _net(doc):
    return engine.Network(engine.Graph.from_dict(doc), seed=0)


def test_node_stats_count_dead_relu_units_and_saturation():
    doc = chain([("in", "Input", {"shape": [4]}), ("d", "Dense", {"units": 6}),
                 ("r", "ReLU", {}), ("t", "Tanh", {}), ("out", "Output", {"loss": "mse"})], {})
    net = _net(doc)
    net.params["d.weight"][...] = 0
    net.params["d.bias"][...] = np.array([-1, -1, -1, 1, 2, 0.5], np.float32)
    net.forward(np.ones((5, 4), np.float32))
    st = probes.node_stats(net)
    assert set(st) == {"in", "d", "r", "t"}
    assert st["r"].dead == 0.5
    assert st["t"].saturated == 0.0
    assert math.isclose(st["d"].mean, 0.5 / 6) and st["in"].std == 0.0
    net.params["d.bias"][...] = 10.0
    net.forward(np.ones((5, 4), np.float32))
    st = probes.node_stats(net)
    assert st["r"].dead == 0.0 and st["t"].saturated == 1.0
    net.params["d.bias"][0] = np.nan
    net.forward(np.ones((5, 4), np.float32))
    assert not probes.node_stats(net)["d"].finite


def test_wire_gradients_match_the_unfused_backward():
    doc = small_cnn()
    net = _net(doc)
    rec = probes.GradFlowRecorder(net)
    assert rec.available
    rec.armed = True
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    net.forward(x, train=True)
    _, seeds = net.loss(y, x)
    net.loss_backward(seeds)
    norms, approx = rec.take()
    # the gradient arriving at each node's output, from a plain float64 unfused network
    ref = net.astype(np.float64)
    ref2 = engine.Network(ref.graph, seed=0, dtype=np.float64, fuse=False)
    ref2.load_state_dict(ref.state_dict())
    grads = {}
    ref2.add_hook(on_backward=lambda ev: grads.__setitem__(
        ev.node, float(np.linalg.norm(ev.grad_output))))
    ref2.forward(x.astype(np.float64), train=True)
    _, seeds = ref2.loss(y, x)
    ref2.loss_backward(seeds, input_grads=True)
    for (src, dst, port), v in norms.items():
        assert port == 0
        if (src, dst, port) in approx:
            continue
        assert math.isclose(v, grads[src], rel_tol=1e-4), (src, dst, v, grads[src])
    assert ("fc", "out", 0) in norms and ("flat", "fc", 0) in norms
    assert ("in", "conv", 0) not in norms  # nothing upstream of the first layer learns


def test_layer_grad_norms_and_histograms():
    net = _net(small_cnn())
    for g in net.grads.values():
        g[...] = 1.0
    norms = probes.layer_grad_norms(net)
    assert math.isclose(norms["conv"], math.sqrt(4 * 9 + 4))
    h = probes.histograms(net, "conv")
    assert h.weights["weight"][0].sum() == 36 and h.grads["bias"][0].sum() == 4
    assert probes.conv_filters(net, "conv")[1].shape == (4, 1, 3, 3)
    assert probes.conv_filters(net, "fc") is None


def test_mosaic_scales_each_tile_and_leaves_gaps():
    tiles = np.stack([np.full((2, 3), 5.0), np.arange(6.0).reshape(2, 3), -np.ones((2, 3))])
    img, rows, cols = mosaic(tiles, cols=2)
    assert (rows, cols) == (2, 2) and img.shape == (5, 7)
    assert np.isnan(img[2]).all() and np.isnan(img[:, 3]).all()
    assert img[0, 4] == 0.0 and img[1, 6] == 1.0
    sym, _, _ = mosaic(tiles, cols=3, symmetric=True)
    assert sym[0, 0] == 1.0 and sym[0, 8] == 0.0


def test_epoch_analysis_confusion_and_most_confident_mistakes():
    doc = chain([("in", "Input", {"shape": [2]}), ("d", "Dense", {"units": 3}),
                 ("out", "Output", {"loss": "cross_entropy"})], {})
    net = _net(doc)
    net.params["d.weight"][...] = np.array([[1, 0], [0, 1], [0, 0]], np.float32)
    net.params["d.bias"][...] = 0
    x = np.array([[5, 0], [0, 5], [3, 0], [0, 1], [0, 0.5]], np.float32)
    y = np.array([0, 1, 1, 1, 2])
    head = probes.Head.of(net)
    a = probes.epoch_analysis(net, x, y, head, "validation", batch_size=2)
    assert a.confusion.tolist() == [[1, 0, 0], [1, 2, 0], [0, 1, 0]]
    assert [s.index for s in a.wrong] == [2, 4]
    assert a.wrong[0].pred == 0 and a.wrong[0].confidence > a.wrong[1].confidence
    regions = probes.decision_regions(net, head, (-1, 1, -1, 1), res=8)
    assert regions.rgb.shape == (8, 8, 3) and regions.rgb.dtype == np.uint8


def test_the_validation_forward_gives_the_same_analysis_as_a_second_forward():
    """The Trainer's val_callbacks see every batch of the end-of-epoch validation; the
    EpochAnalyser built from them equals epoch_analysis' own forward over the same part."""
    doc = chain([("in", "Input", {"shape": [2]}), ("d", "Dense", {"units": 3}),
                 ("out", "Output", {"loss": "cross_entropy"})], {})
    net = _net(doc)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((700, 2)).astype(np.float32)
    y = rng.integers(0, 3, 700)
    ds = engine.Dataset({"x": x, "y": y}, "pts", task="classification")
    tr = engine.Trainer(net, ds, {"epochs": 1, "batch_size": 64, "val_split": 0.5,
                                  "restore_best": False})
    val = tr.splits.val
    head = probes.Head.of(net)
    an = probes.EpochAnalyser(head, val.x, val.arrays["y"], "validation")
    starts: list[int] = []
    tr.val_callbacks.append(lambda start, outs: (starts.append(start), an.batch(start, outs)))
    tr.run()
    assert starts == list(range(0, len(val), 256)) and len(val) > 256
    got = an.result()
    want = probes.epoch_analysis(net, val.x, val.arrays["y"], head, "validation")
    np.testing.assert_array_equal(got.confusion, want.confusion)
    assert got.confusion.sum() == len(val)
    assert [(w.index, w.pred) for w in got.wrong] == [(w.index, w.pred) for w in want.wrong]
    assert len(got.wrong) == probes.GALLERY_SIZE
    an.batch(0, {"out": np.zeros((5, 3), np.float32)})  # a new pass, not whole: no result
    assert an.result() is None


def test_histogram_matches_numpy_over_the_finite_values():
    rng = np.random.default_rng(2)
    a = rng.standard_normal(1000)
    counts, edges = probes.histogram(a)
    want, want_edges = np.histogram(a, bins=probes.HIST_BINS, range=(a.min(), a.max()))
    np.testing.assert_allclose(edges, want_edges)
    assert np.abs(counts - want).sum() <= 2 and counts.sum() == 1000  # float edge ties
    b = np.array([np.nan, 1.0, np.inf, 3.0])
    counts, edges = probes.histogram(b, bins=2)
    assert counts.tolist() == [1, 1] and edges.tolist() == [1.0, 2.0, 3.0]
    counts, edges = probes.histogram(np.full(4, 2.0), bins=2)
    assert counts.sum() == 4 and edges[0] < 2.0 < edges[-1]
    assert probes.histogram(np.array([np.nan])) is None

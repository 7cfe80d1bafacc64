"""Fused execution plans (engine.fusion) against the same networks run node by node."""

import numpy as np
import pytest
from graphdocs import chain_doc, graph_doc

import engine
from engine import fusion
from engine.fusion import COMPACT, GRID, SHIFT, ConvBlock, PoolBlock
from engine.kernels import conv as kconv

CONV = {"filters": 3, "kernel_size": 3, "padding": 1}
POOL = {"pool_size": 2}
HEAD = [("Flatten", {}), ("Dense", {"units": 3})]

CHAINS = {
    "conv-relu-pool": [("Conv2D", CONV), ("ReLU", {}), ("MaxPool2D", POOL)],
    "conv-relu": [("Conv2D", CONV), ("ReLU", {}), ("Conv2D", {"filters": 2, "kernel_size": 2})],
    "conv-pool-odd": [("Conv2D", {"filters": 2, "kernel_size": 2}), ("MaxPool2D", POOL)],
    "relu-pool": [("BatchNorm", {}), ("ReLU", {}), ("MaxPool2D", POOL)],
    "pool-alone": [("Conv2D", {**CONV, "bias": False}), ("Tanh", {}), ("MaxPool2D", POOL)],
    "dense-relu-seq": [("Conv2D", {"filters": 2, "kernel_size": 1}), ("Reshape", {"shape": [14, 6]}),
                       ("Dense", {"units": 5}), ("ReLU", {}), ("Dense", {"units": 4, "bias": False})],
    "lenet-like": [("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
                   ("MaxPool2D", POOL), ("Conv2D", {"filters": 5, "kernel_size": 2}),
                   ("ReLU", {}), ("MaxPool2D", POOL), ("Flatten", {}), ("Dense", {"units": 6}),
                   ("ReLU", {}), ("Dense", {"units": 3})],
}


def pair(doc, dtype=np.float32, seed=3):
    g = engine.Graph.from_dict(doc)
    fused = engine.Network(g, seed=seed, dtype=dtype)
    plain = engine.Network(g, seed=seed, dtype=dtype, fuse=False)
    return fused, plain


def tail(layers):
    """Make every chain end in logits for a cross-entropy Output."""
    return [*layers, ("Flatten", {}), ("Dense", {"units": 3})]


def assert_same_backward(fused, plain, dout):
    """The same input gradient and parameter gradients from both networks' last forward."""
    np.testing.assert_allclose(fused.backward(dout), plain.backward(dout), rtol=1e-11,
                               atol=1e-12)
    for k in plain.grads:
        np.testing.assert_allclose(fused.grads[k], plain.grads[k], rtol=1e-11, atol=1e-12,
                                   err_msg=k)


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_fused_network_matches_the_unfused_one(rng, name):
    layers = CHAINS[name]
    layers = layers if name == "lenet-like" else tail(layers)
    fused, plain = pair(chain_doc((2, 7, 6), layers), dtype=np.float64)
    assert any(st.fused for st in fused.steps)
    assert not any(st.fused for st in plain.steps)
    x = rng.standard_normal((5, 2, 7, 6))
    out_f, out_p = fused.forward(x, train=True), plain.forward(x, train=True)
    np.testing.assert_allclose(out_f, out_p, rtol=1e-12, atol=1e-12)
    assert set(fused.acts) == set(plain.acts) == set(fused.order)
    for nid in fused.order:
        np.testing.assert_allclose(fused.acts[nid], plain.acts[nid], rtol=1e-12, atol=1e-12,
                                   err_msg=nid)
    assert_same_backward(fused, plain, rng.standard_normal(out_f.shape))


def test_training_steps_match_in_float32(rng):
    fused, plain = pair(chain_doc((1, 12, 12), CHAINS["lenet-like"]))
    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    opt_f, opt_p = engine.SGD(lr=0.05, momentum=0.9), engine.SGD(lr=0.05, momentum=0.9)
    for _ in range(5):
        lf, lp = fused.train_step(x, y, opt_f), plain.train_step(x, y, opt_p)
        assert lf == pytest.approx(lp, rel=1e-5)
    for k in plain.params:
        np.testing.assert_allclose(fused.params[k], plain.params[k], rtol=1e-4, atol=1e-5)


def test_the_compiler_picks_the_chains():
    net = engine.compile(engine.Graph.from_dict(chain_doc((1, 12, 12), CHAINS["lenet-like"])))
    kinds = [(type(st).__name__, st.ids) for st in net.steps if st.fused]
    assert kinds == [("ConvBlock", ("n0", "n1", "n2")), ("ConvBlock", ("n3", "n4", "n5")),
                     ("DenseBlock", ("n7", "n8")), ("DenseBlock", ("n9",))]
    net = engine.compile(engine.Graph.from_dict(chain_doc((2, 7, 6), CHAINS["relu-pool"])))
    assert [st.ids for st in net.steps if isinstance(st, PoolBlock)] == [("n1", "n2")]


def test_a_dense_block_splits_by_samples_when_its_weight_is_no_larger_than_the_input(rng):
    layers = [("Conv2D", {"filters": 8, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
              ("MaxPool2D", POOL), ("Flatten", {}), ("Dense", {"units": 64}), ("ReLU", {}),
              ("Dense", {"units": 3})]
    fused, plain = pair(chain_doc((1, 8, 8), layers), dtype=np.float64)
    hidden, logits = (st for st in fused.steps if isinstance(st, fusion.DenseBlock))
    assert hidden.weight_size == 64 * 128
    assert hidden.splits_rows(64) and not hidden.splits_rows(63)
    assert logits.splits_rows(3) and not logits.splits_rows(2)
    for n in (64, 40):  # the hidden layer by samples, then by output features
        x = rng.standard_normal((n, 1, 8, 8))
        out_f, out_p = fused.forward(x, train=True), plain.forward(x, train=True)
        assert hidden._by_rows == (n == 64)
        assert hidden._chunks == kconv.batch_chunks(n)  # in slices when there are threads
        np.testing.assert_allclose(out_f, out_p, rtol=1e-12, atol=1e-12)
        assert_same_backward(fused, plain, rng.standard_normal(out_f.shape))


def test_no_fusion_across_a_branch():
    nodes = [("in", "Input", {"shape": [1, 6, 6]}), ("c", "Conv2D", CONV), ("r", "ReLU", {}),
             ("p", "MaxPool2D", POOL), ("f1", "Flatten", {}), ("f2", "Flatten", {}),
             ("cat", "Concat", {}), ("d", "Dense", {"units": 2}),
             ("out", "Output", {"loss": "cross_entropy"})]
    edges = [("in", "c"), ("c", "r"), ("r", "p"), ("p", "f1"), ("r", "f2"), ("f1", "cat"),
             ("f2", "cat", 1), ("cat", "d"), ("d", "out")]
    fused, plain = pair(graph_doc(nodes, edges), dtype=np.float64)
    assert [st.ids for st in fused.steps if st.fused] == [("c", "r"), ("p",), ("d",)]
    x = np.random.default_rng(0).standard_normal((3, 1, 6, 6))
    np.testing.assert_allclose(fused.forward(x), plain.forward(x), rtol=1e-12)
    dout = np.ones((3, 2))
    np.testing.assert_allclose(fused.backward(dout), plain.backward(dout), rtol=1e-11)


def test_input_gradients_are_skipped_only_while_training(rng):
    fused, plain = pair(chain_doc((1, 8, 8), [*CHAINS["lenet-like"][:3], *HEAD]))
    first = fused.steps[1]
    assert first.ids == ("n0", "n1", "n2") and not first.needs_input_grad
    assert fused.plan.step_of("n1") is first  # the flag lives on the step, not the layers
    assert not any(hasattr(layer, "needs_input_grad") for layer in fused.layers.values())
    assert fused.plan.step_of("n4").needs_input_grad
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    dx = fused.backward(np.ones_like(fused.forward(x, train=True)))
    assert dx.shape == x.shape and np.abs(dx).sum() > 0
    np.testing.assert_allclose(dx, plain.backward(np.ones_like(plain.forward(x, train=True))),
                               rtol=1e-5, atol=1e-6)


def test_network_gradcheck_passes_through_fused_blocks():
    g = engine.Graph.from_dict(chain_doc((1, 6, 6), [*CHAINS["lenet-like"][:6], *HEAD]))
    report = engine.gradcheck(g, batch=2)
    assert report.worst < 1e-6, report.errors


def test_reused_buffers_do_not_leak_into_returned_outputs(rng):
    doc = chain_doc((1, 6, 6), [("Conv2D", CONV), ("ReLU", {}), ("MaxPool2D", POOL)], loss="mse")
    net = engine.compile(engine.Graph.from_dict(doc))
    a, b = (rng.standard_normal((2, 1, 6, 6)).astype(np.float32) for _ in range(2))
    ya = net.forward(a)
    keep = ya.copy()
    yb = net.forward(b)
    np.testing.assert_array_equal(ya, keep)
    assert not np.shares_memory(ya, yb)
    np.testing.assert_allclose(net.predict(np.concatenate([a, b]), batch_size=2),
                               np.concatenate([keep, yb]), rtol=1e-6)


def test_batch_size_changes_and_float64_copies_work(rng):
    net = engine.compile(engine.Graph.from_dict(chain_doc((1, 8, 8), [*CHAINS["lenet-like"][:6], *HEAD])))
    opt = engine.SGD(lr=0.01)
    for n in (4, 3, 4):
        x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
        assert np.isfinite(net.train_step(x, rng.integers(0, 3, n), opt))
        assert net.acts["n2"].shape == (n, 4, 4, 4)
    net64 = net.astype(np.float64)
    assert any(st.fused for st in net64.steps)
    out = net64.forward(rng.standard_normal((2, 1, 8, 8)))
    assert out.dtype == np.float64


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_uses_the_fused_update_on_large_arrays_with_numpys_bits(rng, nesterov):
    p = {"w": rng.standard_normal(5000).astype(np.float32)}
    want = p["w"].copy()
    v = np.zeros_like(want)
    opt = engine.SGD(lr=0.05, momentum=0.8, nesterov=nesterov)
    for _ in range(3):
        g = rng.standard_normal(5000).astype(np.float32)
        opt.step(p, {"w": g})
        v *= 0.8
        v += g
        want -= 0.05 * (g + 0.8 * v) if nesterov else 0.05 * v
    np.testing.assert_array_equal(p["w"], want)


def test_backward_after_an_inference_forward_matches(rng):
    """Inference keeps no unfolded input for the backward pass; the backward recomputes it."""
    fused, plain = pair(chain_doc((1, 12, 12), CHAINS["lenet-like"]), dtype=np.float64)
    x = rng.standard_normal((3, 1, 12, 12))
    fused.forward(x, train=True)
    out = fused.forward(x, train=False)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(fused.backward(dout), (plain.forward(x), plain.backward(dout))[1],
                               rtol=1e-11, atol=1e-12)
    for k in plain.grads:
        np.testing.assert_allclose(fused.grads[k], plain.grads[k], rtol=1e-11, atol=1e-12)


MODES = [(GRID, GRID), (SHIFT, SHIFT), (GRID, COMPACT), (COMPACT, SHIFT), (SHIFT, GRID)]


@pytest.mark.parametrize("modes", MODES, ids=lambda m: "-".join(m))
@pytest.mark.parametrize("name", ["lenet-like", "conv-relu", "conv-pool-odd", "pool-alone"])
def test_every_conv_mode_matches_the_unfused_network(rng, monkeypatch, name, modes):
    monkeypatch.setattr(fusion, "conv_modes", lambda *a: modes)
    monkeypatch.setattr(fusion, "KEEP_ROWS_BELOW", 99)
    layers = CHAINS[name] if name == "lenet-like" else tail(CHAINS[name])
    fused, plain = pair(chain_doc((2, 7, 6), layers), dtype=np.float64)
    blocks = [st for st in fused.steps if isinstance(st, ConvBlock)]
    assert blocks and all((st.fwd_mode, st.bwd_mode) == modes for st in blocks)
    for train in (True, False):
        x = rng.standard_normal((5, 2, 7, 6))
        out_f = fused.forward(x, train=train)
        plain.forward(x, train=train)
        for nid in fused.order:
            np.testing.assert_allclose(fused.acts[nid], plain.acts[nid], rtol=1e-12, atol=1e-12,
                                       err_msg=nid)
        assert_same_backward(fused, plain, rng.standard_normal(out_f.shape))


def test_conv_modes_follow_the_measured_shapes():
    """WideCNN's 32-channel conv shifts, its first conv unfolds on the grid going forward;
    small images, strides and LeNet-5's 5×5 convs keep the compact unfolding."""
    assert fusion.conv_modes(32, 14, 14, (1, 1), 16) == (SHIFT, SHIFT)
    assert fusion.conv_modes(1, 28, 28, (1, 1), 30) == (GRID, COMPACT)
    assert fusion.conv_modes(16, 8, 8, (1, 1), 10) == (COMPACT, COMPACT)
    assert fusion.conv_modes(16, 32, 32, (1, 1), 34) == (SHIFT, SHIFT)
    assert fusion.conv_modes(8, 32, 32, (1, 1), 34) == (GRID, COMPACT)
    assert fusion.conv_modes(1, 28, 28, (1, 1), 32) == (COMPACT, COMPACT)
    assert fusion.conv_modes(64, 14, 14, (2, 1), 16) == (COMPACT, COMPACT)
    assert fusion.conv_modes(64, 14, 14, (1, 1), 14, plain=True) == (COMPACT, COMPACT)
    net = engine.compile(engine.Graph.from_dict(chain_doc(
        (1, 28, 28), [("Conv2D", {"filters": 32, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
                      ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}), *HEAD])))
    blocks = [st for st in net.steps if isinstance(st, ConvBlock)]
    assert [(st.fwd_mode, st.bwd_mode, st.wb) for st in blocks] == [
        (GRID, COMPACT, 30), (SHIFT, SHIFT, 30)]


def test_a_1x1_conv_on_many_channels_multiplies_the_image_and_matches_the_unfused_net(rng):
    layers = [("Conv2D", {"filters": 33, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
              ("Conv2D", {"filters": 4, "kernel_size": 1}), ("ReLU", {}), *HEAD]
    fused, plain = pair(chain_doc((2, 6, 5), layers), dtype=np.float64)
    blocks = [st for st in fused.steps if isinstance(st, ConvBlock)]
    assert [(st.plain, st.fwd_mode) for st in blocks] == [(False, COMPACT), (True, COMPACT)]
    x = rng.standard_normal((5, 2, 6, 5))
    out_f = fused.forward(x, train=True)
    plain.forward(x, train=True)
    for nid in fused.order:
        np.testing.assert_allclose(fused.acts[nid], plain.acts[nid], rtol=1e-12, atol=1e-12,
                                   err_msg=nid)
    assert_same_backward(fused, plain, rng.standard_normal(out_f.shape))


@pytest.mark.parametrize("modes", [(COMPACT, COMPACT), (GRID, GRID), (SHIFT, SHIFT)],
                         ids=lambda m: "-".join(m))
@pytest.mark.parametrize("name", ["conv-relu-pool", "conv-relu", "conv-pool-odd", "lenet-like"])
def test_blocks_publishing_only_their_last_output_compute_the_same(rng, monkeypatch, name, modes):
    monkeypatch.setattr(fusion, "conv_modes", lambda *a: modes)
    layers = CHAINS[name] if name == "lenet-like" else tail(CHAINS[name])
    fused, plain = pair(chain_doc((2, 7, 6), layers), dtype=np.float64)
    blocks = [st for st in fused.steps if isinstance(st, ConvBlock)]
    for st in blocks:
        st.publish = False
    hidden = {nid for st in blocks for nid in st.ids if nid != st.last}
    assert hidden
    for train in (True, False):
        x = rng.standard_normal((5, 2, 7, 6))
        out_f, out_p = fused.forward(x, train=train), plain.forward(x, train=train)
        np.testing.assert_allclose(out_f, out_p, rtol=1e-12, atol=1e-12)
        assert hidden.isdisjoint(fused.acts)
        assert set(fused.acts) == set(fused.order) - hidden
        assert_same_backward(fused, plain, rng.standard_normal(out_f.shape))


def test_a_same_padded_conv_on_enough_channels_backpropagates_flipped(rng):
    """digits_cnn's second conv (16 channels, 3×3 "same") takes the flipped input gradient and
    still matches the node-by-node network; its first conv (1 channel) does not."""
    layers = [("Conv2D", {"filters": 16, "kernel_size": 3, "padding": "same"}), ("ReLU", {}),
              ("Conv2D", {"filters": 6, "kernel_size": 3, "padding": "same"}), ("ReLU", {}),
              ("MaxPool2D", POOL), *HEAD]
    fused, plain = pair(chain_doc((1, 6, 6), layers), dtype=np.float64)
    blocks = [st for st in fused.steps if isinstance(st, ConvBlock)]
    assert [st.flipped for st in blocks] == [False, True]
    x = rng.standard_normal((5, 1, 6, 6))
    out_f = fused.forward(x, train=True)
    np.testing.assert_allclose(out_f, plain.forward(x, train=True), rtol=1e-12, atol=1e-12)
    assert_same_backward(fused, plain, rng.standard_normal(out_f.shape))

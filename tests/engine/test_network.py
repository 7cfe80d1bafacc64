"""Network: forward/backward through branches, several outputs, training, state, errors."""

import numpy as np
import pytest
from graphdocs import chain_doc, graph_doc

import engine


def two_head_doc():
    """in -> trunk -> {cls -> out_c (cross-entropy), reg -> out_r (mse, weight 0.5)}."""
    return graph_doc(
        [("in", "Input", {"shape": [4]}), ("trunk", "Dense", {"units": 6}),
         ("cls", "Dense", {"units": 3}), ("reg", "Dense", {"units": 2}),
         ("out_c", "Output", {"loss": "cross_entropy"}),
         ("out_r", "Output", {"loss": "mse", "weight": 0.5, "target": "size"})],
        [("in", "trunk"), ("trunk", "cls"), ("trunk", "reg"), ("cls", "out_c"), ("reg", "out_r")])


def test_forward_matches_numpy():
    g = engine.Graph.from_dict(chain_doc([3], [("Dense", {"units": 4}), ("Dense", {"units": 2})]))
    net = engine.compile(g)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    p = net.params
    want = (x @ p["n0.weight"].T + p["n0.bias"]) @ p["n1.weight"].T + p["n1.bias"]
    out = net.forward(x)
    assert out.dtype == np.float32 and out.shape == (5, 2)
    np.testing.assert_allclose(out, want, rtol=1e-5)


def test_several_outputs_return_a_dict_and_fan_out_sums_gradients(rng):
    net = engine.compile(engine.Graph.from_dict(two_head_doc())).astype(np.float64)
    x = rng.standard_normal((3, 4))
    out = net.forward(x)
    assert set(out) == {"out_c", "out_r"}
    dout = {"out_c": rng.standard_normal((3, 3)), "out_r": rng.standard_normal((3, 2))}
    dx = net.backward(dout)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp = x.copy()
        xp[i] += eps
        op = net.forward(xp)
        xp[i] -= 2 * eps
        om = net.forward(xp)
        num[i] = sum(np.sum((op[k] - om[k]) * dout[k]) for k in dout) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-9)


def test_multitask_loss_is_the_weighted_sum(rng):
    net = engine.compile(engine.Graph.from_dict(two_head_doc()))
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = {"y": rng.integers(0, 3, 8), "size": rng.standard_normal((8, 2))}
    net.forward(x, train=True)
    total, _ = net.loss(y, x)
    assert total == pytest.approx(net.last_losses["out_c"] + 0.5 * net.last_losses["out_r"])
    assert "accuracy" in net.last_metrics["out_c"]
    with pytest.raises(engine.DataError, match="'size'"):
        net.loss({"y": y["y"]}, x)


def test_gradcheck_on_a_two_headed_network():
    report = engine.gradcheck(engine.Graph.from_dict(two_head_doc()))
    assert report.worst < 1e-6, report.table()
    assert set(report.nodes()) == {"trunk", "cls", "reg"}


def test_train_step_lowers_the_loss(rng):
    net = engine.compile(engine.Graph.from_dict(two_head_doc()), seed=1)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = {"y": (x[:, 0] > 0).astype(int) + (x[:, 1] > 0), "size": x[:, 2:4] * 2}
    opt = engine.Adam(lr=0.01)
    losses = [net.train_step(x, y, opt) for _ in range(200)]
    assert losses[-1] < 0.3 * losses[0]


def test_autoencoder_target_x(rng):
    doc = chain_doc([6], [("Dense", {"units": 2}), ("Dense", {"units": 6})], loss="mse")
    doc["nodes"][-1]["params"]["target"] = "x"
    net = engine.compile(engine.Graph.from_dict(doc))
    x = rng.standard_normal((16, 6)).astype(np.float32)
    opt = engine.Adam(lr=0.01)
    first = net.train_step(x, None, opt)
    for _ in range(100):
        last = net.train_step(x, None, opt)
    assert last < first


def test_state_dict_round_trip_and_mismatch():
    g = engine.Graph.from_dict(chain_doc([3], [("Dense", {"units": 4})]))
    a, b = engine.compile(g, seed=0), engine.compile(g, seed=1)
    b.load_state_dict(a.state_dict())
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    with pytest.raises(engine.NetBuilderError, match="missing"):
        b.load_state_dict({})
    bad = a.state_dict()
    bad["n0.weight"] = np.zeros((2, 2))
    with pytest.raises(engine.NetBuilderError, match=r"n0.weight have shape \(2, 2\)"):
        b.load_state_dict(bad)


def test_wrong_input_shape_is_a_data_error():
    net = engine.compile(engine.Graph.from_dict(chain_doc([3], [("Dense", {"units": 4})])))
    with pytest.raises(engine.DataError, match=r"expects samples shaped \(3,\)") as exc:
        net.forward(np.zeros((2, 5)))
    assert exc.value.node_id == "in"
    with pytest.raises(engine.DataError, match="numbers"):
        net.forward(np.array([["a", "b", "c"]]))


def test_labels_out_of_range_are_refused(rng):
    net = engine.compile(engine.Graph.from_dict(chain_doc([3], [("Dense", {"units": 2})])))
    with pytest.raises(engine.DataError, match=r"0\.\.1"):
        net.train_step(np.zeros((2, 3), np.float32), np.array([0, 5]), engine.SGD())


def test_nan_loss_stops_with_the_first_bad_node_and_keeps_weights():
    net = engine.compile(engine.Graph.from_dict(chain_doc([3], [("Dense", {"units": 2})])))
    before = net.state_dict()
    x = np.array([[np.nan, 0, 0], [0, 0, 0]], np.float32)
    with pytest.raises(engine.TrainingError, match="'in'") as exc:
        net.train_step(x, np.array([0, 1]), engine.SGD())
    assert exc.value.node_id == "in"
    for k, v in before.items():
        np.testing.assert_array_equal(net.params[k], v)


def test_predict_in_batches_equals_forward(rng):
    net = engine.compile(engine.Graph.from_dict(chain_doc([3], [("Dense", {"units": 4})])))
    x = rng.standard_normal((10, 3)).astype(np.float32)
    np.testing.assert_allclose(net.predict(x, batch_size=3), net.forward(x), rtol=1e-6)


def test_param_count_and_macs():
    net = engine.compile(engine.Graph.from_dict(chain_doc([3], [("Dense", {"units": 4})])))
    assert net.param_count() == 16
    assert net.macs() == 12


def test_lenet5_from_the_design_format_trains_with_train_step_and_its_loss_falls():
    doc = chain_doc([1, 28, 28], [
        ("Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}), ("ReLU", {}),
        ("MaxPool2D", {}), ("Conv2D", {"filters": 16, "kernel_size": 5}), ("ReLU", {}),
        ("MaxPool2D", {}), ("Flatten", {}), ("Dense", {"units": 120}), ("ReLU", {}),
        ("Dense", {"units": 84}), ("ReLU", {}), ("Dense", {"units": 10})])
    net = engine.compile(engine.Graph.from_dict(doc), seed=0)
    assert net.param_count() == 61_706
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 64)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32) * 0.3
    x[np.arange(64), 0, 2 * y + 3, 2 * y + 3] += 4.0     # a class-dependent bright pixel
    opt = engine.SGD(lr=0.02, momentum=0.9)
    losses = [net.train_step(x, y, opt) for _ in range(30)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])

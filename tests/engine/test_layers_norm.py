import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.layers.norm import BatchNorm, Dropout


@pytest.mark.parametrize(("shape", "batch"), [((2, 3, 3), 2), ((4,), 3), ((3, 4), 2)])
def test_batchnorm_gradients_in_training(shape, batch):
    report = engine.check_layer("BatchNorm", {}, [shape], batch=batch)
    assert set(report.errors) == {"x0", "weight", "bias"}
    assert report.worst < 1e-6, report.errors


@pytest.mark.parametrize("shape", [(2, 3, 3), (4,)])
def test_batchnorm_gradients_in_eval(shape):
    report = engine.check_layer("BatchNorm", {"eps": 0.1}, [shape], batch=2, train=False)
    assert report.worst < 1e-7, report.errors


def test_batchnorm_params_buffers_and_summary():
    img = BatchNorm("bn", {}, [(3, 4, 4)])
    assert img.param_shapes() == {"weight": (3,), "bias": (3,)}
    assert img.buffer_shapes() == {"running_mean": (3,), "running_var": (3,)}
    assert img.summary() == "3 channels"
    seq = BatchNorm("bn", {"momentum": 0.5}, [(7, 5)])
    assert seq.param_shapes()["weight"] == (5,)
    assert seq.summary() == "5 features, momentum 0.5"
    p = img.init_params(np.random.default_rng(0))
    np.testing.assert_array_equal(p["weight"], 1)
    np.testing.assert_array_equal(p["bias"], 0)
    np.testing.assert_array_equal(p["running_mean"], 0)
    np.testing.assert_array_equal(p["running_var"], 1)
    assert all(a.dtype == np.float32 for a in p.values())


def test_running_statistics_follow_the_pytorch_formula(rng):
    layer = BatchNorm("bn", {"momentum": 0.9}, [(2, 3, 3)])
    params = layer.init_params(rng)
    x1 = (rng.standard_normal((4, 2, 3, 3)) * 3 + 1).astype(np.float32)
    x2 = (rng.standard_normal((4, 2, 3, 3)) * 0.5 - 2).astype(np.float32)
    rm, rv = np.zeros(2), np.ones(2)
    for x in (x1, x2):
        layer.forward([x], params, train=True)
        x64 = x.astype(np.float64)
        n = x.shape[0] * 9
        mean = x64.mean(axis=(0, 2, 3))
        unbiased = ((x64 - mean[None, :, None, None]) ** 2).sum(axis=(0, 2, 3)) / (n - 1)
        rm = 0.9 * rm + 0.1 * mean
        rv = 0.9 * rv + 0.1 * unbiased
        np.testing.assert_allclose(params["running_mean"], rm, rtol=1e-5)
        np.testing.assert_allclose(params["running_var"], rv, rtol=1e-5)
    assert params["running_mean"].dtype == np.float32


def test_training_normalises_with_biased_batch_variance(rng):
    layer = BatchNorm("bn", {"eps": 1e-5}, [(6,)])
    params = layer.init_params(rng)
    params["weight"][:] = 2.0
    params["bias"][:] = 0.5
    x = (rng.standard_normal((5, 6)) * 4 + 3).astype(np.float32)
    y = layer.forward([x], params, train=True)
    want = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * 2 + 0.5
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_eval_uses_running_statistics(rng):
    layer = BatchNorm("bn", {"eps": 1e-3}, [(2, 2, 2)])
    params = layer.init_params(rng)
    params["running_mean"][:] = [1.0, -2.0]
    params["running_var"][:] = [4.0, 0.25]
    params["weight"][:] = [1.5, 0.5]
    params["bias"][:] = [0.0, 1.0]
    x = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    before = {k: v.copy() for k, v in params.items()}
    y = layer.forward([x], params, train=False)
    c = (None, slice(None), None, None)
    want = (x - params["running_mean"][c]) / np.sqrt(params["running_var"][c] + 1e-3) \
        * params["weight"][c] + params["bias"][c]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    for k in before:
        np.testing.assert_array_equal(params[k], before[k])


def test_batchnorm_needs_two_values_per_feature_to_train(rng):
    layer = BatchNorm("bn", {}, [(4,)])
    params = layer.init_params(rng)
    with pytest.raises(engine.DataError, match="batch size of at least 2") as info:
        layer.forward([np.ones((1, 4), np.float32)], params, train=True)
    assert info.value.node_id == "bn"
    layer.forward([np.ones((1, 4), np.float32)], params, train=False)
    image = BatchNorm("bn", {}, [(2, 3, 3)])
    image.forward([rng.standard_normal((1, 2, 3, 3))], image.init_params(rng), train=True)


def test_batchnorm_in_a_network_updates_buffers_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc(
        (6,), [("Dense", {"units": 5}), ("BatchNorm", {}), ("ReLU", {}),
               ("Dense", {"units": 3})]))
    net = engine.compile(g, seed=1)
    assert set(net.buffers) == {"n1.running_mean", "n1.running_var"}
    assert {"n1.weight", "n1.bias"} <= set(net.params)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    net.train_step(x, rng.integers(0, 3, 8), engine.SGD(lr=0.1))
    assert not np.allclose(net.buffers["n1.running_mean"], 0)
    report = engine.gradcheck(g, batch=4)
    assert report.worst < 1e-6, report.table()


def test_dropout_is_the_identity_when_not_training(rng):
    layer = Dropout("d", {"rate": 0.5}, [(3, 4)])
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward([x], {}, train=False), x)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy, {}, {})[0], dy)


def test_dropout_keeps_the_expected_scale_in_training():
    layer = Dropout("d", {"rate": 0.3}, [(5000,)])
    layer.rng = np.random.default_rng(5)
    x = np.ones((4, 5000), np.float32)
    y = layer.forward([x], {}, train=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(kept.mean() - 0.7) < 0.02
    assert abs(y.mean() - 1.0) < 0.03
    dy = np.full_like(x, 2.0)
    dx = layer.backward(dy, {}, {})[0]
    np.testing.assert_array_equal(dx != 0, kept)
    np.testing.assert_allclose(dx[kept], 2 / 0.7, rtol=1e-6)


def test_dropout_same_seed_same_mask_in_any_dtype(rng):
    x = rng.standard_normal((3, 40))
    masks = []
    for seed, dtype in [(3, np.float32), (3, np.float64), (4, np.float32)]:
        layer = Dropout("d", {}, [(40,)])
        layer.rng = np.random.default_rng(seed)
        masks.append(layer.forward([x.astype(dtype)], {}, train=True) != 0)
    np.testing.assert_array_equal(masks[0], masks[1])
    assert (masks[0] != masks[2]).any()


def test_dropout_gradients_and_rate_zero():
    report = engine.check_layer("Dropout", {"rate": 0.4}, [(2, 3, 3)], batch=2)
    assert report.worst < 1e-7, report.errors
    layer = Dropout("d", {"rate": 0.0}, [(4,)])
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(layer.forward([x], {}, train=True), x)


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1])
def test_dropout_rate_must_be_in_zero_one(rate):
    with pytest.raises(engine.ParamError, match="rate") as info:
        Dropout("d", {"rate": rate}, [(4,)])
    assert info.value.node_id == "d"


def test_dropout_in_a_network_draws_fresh_masks_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc(
        (6,), [("Dense", {"units": 8}), ("Dropout", {"rate": 0.5}), ("Dense", {"units": 3})]))
    net = engine.compile(g, seed=0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    a, b = net.forward(x, train=True), net.forward(x, train=True)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(net.forward(x), net.forward(x))
    report = engine.gradcheck(net, batch=3)
    assert report.worst < 1e-6, report.table()
    assert {c.type_name for c in engine.layers_by_category()["Normalization"]} >= {
        "BatchNorm", "Dropout"}

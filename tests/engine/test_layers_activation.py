import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.layers.activation import PReLU, Softmax
from engine.registry import get_layer_class

ACTIVATIONS = [
    ("ReLU", {}), ("LeakyReLU", {"alpha": 0.1}), ("Sigmoid", {}), ("Tanh", {}),
    ("HardSigmoid", {}), ("HardTanh", {"min_val": -0.5, "max_val": 2.0}),
    ("Swish", {}), ("Swish", {"beta": 2.0}), ("Softmax", {}),
]


@pytest.mark.parametrize("shape", [(2, 3, 3), (6,)])
@pytest.mark.parametrize(("type_name", "params"), ACTIVATIONS)
def test_activation_gradients(type_name, params, shape):
    report = engine.check_layer(type_name, params, [shape], batch=3)
    assert report.worst < 1e-7, report.errors


@pytest.mark.parametrize("shape", [(3, 2, 2), (5,), (4, 3)])
def test_prelu_gradients_on_images_vectors_and_sequences(shape):
    report = engine.check_layer("PReLU", {"init": 0.2}, [shape], batch=3)
    assert set(report.errors) == {"x0", "weight"}
    assert report.worst < 1e-7, report.errors


@pytest.mark.parametrize(("shape", "channels"), [((3, 4, 4), 3), ((7,), 7), ((5, 6), 6)])
def test_prelu_has_one_slope_per_channel(rng, shape, channels):
    layer = PReLU("p", {}, [shape])
    assert layer.param_shapes() == {"weight": (channels,)}
    params = layer.init_params(rng)
    np.testing.assert_array_equal(params["weight"], np.full(channels, 0.25, np.float32))
    params["weight"] = np.arange(1, channels + 1, dtype=np.float32) / 10
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    y = layer.forward([x], params, train=True)
    axis = 1 if len(shape) == 3 else -1
    a = np.expand_dims(params["weight"], [d for d in range(x.ndim) if d != axis % x.ndim])
    np.testing.assert_allclose(y, np.where(x > 0, x, a * x), rtol=1e-6)
    assert y.dtype == np.float32


@pytest.mark.parametrize(("axis", "shape"), [(0, (3, 2, 2)), (1, (3, 2, 2)), (-2, (4, 3))])
def test_softmax_on_other_axes(rng, axis, shape):
    report = engine.check_layer("Softmax", {"axis": axis}, [shape], batch=2)
    assert report.worst < 1e-7, report.errors
    layer = Softmax("s", {"axis": axis}, [shape])
    y = layer.forward([rng.standard_normal((2, *shape))], {}, train=False)
    np.testing.assert_allclose(y.sum(axis=1 + axis % len(shape)), 1.0)
    assert y.shape == (2, *shape)


def test_softmax_axis_outside_the_sample_is_a_shape_error():
    with pytest.raises(engine.ShapeError, match="use an axis from -1 to 0") as info:
        Softmax("sm", {"axis": 1}, [(10,)])
    assert info.value.node_id == "sm"


def test_elementwise_values_and_dtype(rng):
    x = np.array([[-3.0, -1.0, 0.5, 3.0]], dtype=np.float32)
    expect = {
        "ReLU": [0, 0, 0.5, 3],
        "LeakyReLU": [-0.03, -0.01, 0.5, 3],
        "HardSigmoid": [0, 0.25, 0.625, 1],
        "HardTanh": [-1, -1, 0.5, 1],
    }
    for name, want in expect.items():
        layer = get_layer_class(name)("n", {}, [(4,)])
        y = layer.forward([x], {}, train=False)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y[0], want, rtol=1e-6)


def test_hardtanh_needs_min_below_max():
    with pytest.raises(engine.ParamError, match=r"min_val .* must be below max_val") as info:
        get_layer_class("HardTanh")("h", {"min_val": 1.0, "max_val": 1.0}, [(4,)])
    assert info.value.node_id == "h"


def test_activations_are_registered_in_their_category():
    by_cat = {cls.type_name for cls in engine.layers_by_category()["Activation"]}
    assert {"ReLU", "LeakyReLU", "PReLU", "Sigmoid", "Tanh", "HardSigmoid", "HardTanh",
            "Swish", "Softmax"} <= by_cat


def test_summaries():
    def summary(t, p, s=(4,)):
        return get_layer_class(t)("n", p, [s]).summary()
    assert summary("ReLU", {}) == ""
    assert summary("LeakyReLU", {"alpha": 0.2}) == "α = 0.2"
    assert summary("PReLU", {}, (8, 5, 5)) == "8 slopes"
    assert summary("HardTanh", {}) == "[-1, 1]"
    assert summary("Swish", {}) == "β = 1"
    assert summary("Softmax", {}) == ""
    assert summary("Softmax", {"axis": 0}) == "axis 0"


def test_standalone_softmax_and_prelu_in_a_network_pass_gradcheck():
    g = engine.Graph.from_dict(chain_doc(
        (5,), [("Dense", {"units": 4}), ("PReLU", {}), ("Dense", {"units": 3}),
               ("Softmax", {})], loss="mse"))
    report = engine.gradcheck(g, batch=3)
    assert report.worst < 1e-6, report.table()


def test_softmax_before_cross_entropy_still_trains():
    g = engine.Graph.from_dict(chain_doc(
        (5,), [("Dense", {"units": 3}), ("Softmax", {})], loss="cross_entropy"))
    net = engine.compile(g, seed=0)
    report = engine.gradcheck(net, batch=4)
    assert report.worst < 1e-6, report.table()
    out = net.forward(np.ones((2, 5), np.float32))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)

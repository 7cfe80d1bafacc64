import numpy as np
import pytest

import engine
from engine.errors import ParamError, ShapeError
from engine.kernels.reference import conv as ref
from engine.layers.conv import window_geometry
from engine.registry import get_layer_class


def conv(params, in_shape=(2, 5, 6), node_id="c1"):
    return get_layer_class("Conv2D")(node_id, params, [in_shape])


@pytest.mark.parametrize("params", [
    {"filters": 3},
    {"filters": 2, "kernel_size": [2, 3], "stride": 2, "padding": "same"},
    {"filters": 2, "kernel_size": 3, "stride": [1, 2], "padding": 1, "bias": False},
    {"filters": 1, "kernel_size": [4, 2], "stride": 3, "padding": "same"},
    {"filters": 2, "kernel_size": 1, "stride": 2},
    {"filters": 3, "kernel_size": 1},  # a plain product on the image (fused.is_plain_gemm)
    {"filters": 3, "kernel_size": 1, "bias": False},
    {"filters": 2, "kernel_size": 5, "padding": 2, "init": "xavier"},
])
def test_conv2d_gradients(params):
    report = engine.check_layer("Conv2D", params, [(2, 5, 6)])
    assert set(report.errors) == {"x0", "weight"} | ({"bias"} if params.get("bias", True) else set())
    assert report.worst < 1e-7, report.errors


@pytest.mark.parametrize("size, k, s, padding, want", [
    (28, 5, 1, 2, (28, 2, 2)),
    (28, 5, 1, "valid", (24, 0, 0)),
    (28, 5, 1, "same", (28, 2, 2)),
    (5, 3, 2, "same", (3, 1, 1)),
    (6, 3, 2, "same", (3, 0, 1)),
    (6, 4, 1, "same", (6, 1, 2)),
    (7, 1, 3, "same", (3, 0, 0)),
    (10, 3, 3, "valid", (3, 0, 0)),
    (3, 5, 1, 1, (1, 1, 1)),
    (3, 5, 1, 0, (-1, 0, 0)),
])
def test_window_geometry(size, k, s, padding, want):
    assert window_geometry(size, k, s, padding) == want


@pytest.mark.parametrize("size", range(1, 12))
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("s", [1, 2, 3])
def test_same_padding_follows_tensorflow(size, k, s):
    out, before, after = window_geometry(size, k, s, "same")
    assert out == -(-size // s)
    assert before <= after <= before + 1
    assert (size + before + after - k) // s + 1 == out


def test_conv2d_shapes_params_and_macs_of_lenet():
    c1 = conv({"filters": 6, "kernel_size": 5, "padding": 2}, (1, 28, 28))
    assert c1.out_shape == (6, 28, 28)
    assert c1.param_shapes() == {"weight": (6, 1, 5, 5), "bias": (6,)}
    assert c1.param_count() == 156
    assert c1.macs() == 28 * 28 * 6 * 1 * 5 * 5
    c2 = conv({"filters": 16, "kernel_size": 5}, (6, 14, 14))
    assert c2.out_shape == (16, 10, 10)
    assert c2.param_count() == 16 * 6 * 25 + 16
    assert c2.macs() == 240_000
    c3 = conv({"filters": 4, "kernel_size": [3, 1], "stride": [2, 1], "padding": "same",
               "bias": False}, (3, 7, 5))
    assert c3.out_shape == (4, 4, 5)
    assert c3.param_shapes() == {"weight": (4, 3, 3, 1)}
    assert c3.macs() == 4 * 5 * 4 * 3 * 3
    assert c3.pads == (1, 1, 0, 0)


def test_conv2d_same_padding_pads_extra_at_bottom_right():
    layer = conv({"filters": 1, "kernel_size": 4, "padding": "same"}, (1, 6, 6))
    assert layer.out_shape == (1, 6, 6)
    assert layer.pads == (1, 2, 1, 2)


def test_conv2d_forward_matches_reference_with_layer_padding(rng):
    layer = conv({"filters": 3, "kernel_size": [3, 2], "stride": 2, "padding": "same"}, (2, 7, 6))
    params = {k: v + rng.standard_normal(v.shape).astype(np.float32)
              for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((4, 2, 7, 6)).astype(np.float32)
    y = layer.forward([x], params, train=True)
    assert y.dtype == np.float32 and y.shape == (4, *layer.out_shape)
    want = ref.conv2d_forward(x.astype(np.float64), params["weight"].astype(np.float64),
                              params["bias"].astype(np.float64), (2, 2), layer.pads)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    (dx,) = layer.backward(dy, params, grads)
    want_dx, want_gw, want_gb = ref.conv2d_backward(
        x.astype(np.float64), params["weight"].astype(np.float64), dy.astype(np.float64),
        (2, 2), layer.pads)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["weight"], want_gw, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(grads["bias"], want_gb, rtol=1e-5, atol=1e-5)


def test_conv2d_by_hand():
    layer = conv({"filters": 1, "kernel_size": 2}, (1, 3, 3))
    params = {"weight": np.ones((1, 1, 2, 2), np.float32), "bias": np.array([0.5], np.float32)}
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    y = layer.forward([x], params, train=False)
    np.testing.assert_array_equal(y[0, 0], [[8.5, 12.5], [20.5, 24.5]])


def test_conv2d_backward_overwrites_gradients(rng):
    layer = conv({"filters": 2, "kernel_size": 3, "padding": 1}, (1, 4, 4))
    params = layer.init_params(rng)
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    dy = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    grads = {k: np.full_like(v, 123.0) for k, v in params.items()}
    layer.forward([x], params, train=True)
    layer.backward(dy, params, grads)
    first = {k: v.copy() for k, v in grads.items()}
    layer.backward(dy, params, grads)
    for k in grads:
        np.testing.assert_array_equal(grads[k], first[k])
    np.testing.assert_allclose(grads["bias"], dy.sum(axis=(0, 2, 3)), rtol=1e-5)


def test_conv2d_init_and_category():
    cls = get_layer_class("Conv2D")
    assert cls.category == "Convolution"
    layer = conv({"filters": 8, "kernel_size": 3}, (4, 9, 9))
    p = layer.init_params(np.random.default_rng(0))
    assert p["weight"].dtype == np.float32 and p["weight"].shape == (8, 4, 3, 3)
    assert np.std(p["weight"]) == pytest.approx(np.sqrt(2 / 36), rel=0.25)
    assert np.all(p["bias"] == 0)
    assert conv({"filters": 8, "kernel_size": 3}).summary() == "8 × 3×3"
    assert conv({"filters": 6, "kernel_size": [5, 3], "stride": 2, "padding": "same",
                 "bias": False}).summary() == "6 × 5×3, stride 2, pad same, no bias"


def test_conv2d_needs_an_image():
    with pytest.raises(ShapeError) as e:
        conv({}, (784,))
    assert e.value.node_id == "c1"
    assert str(e.value) == ("Conv2D 'c1' expects an image (C, H, W), got (784,): "
                            "add a Reshape to (1, 28, 28)")
    with pytest.raises(ShapeError, match=r"Reshape to \(1, 5, 7\)"):
        conv({}, (5, 7))
    with pytest.raises(ShapeError, match="add a Reshape"):
        conv({}, (10,))


def test_conv2d_kernel_larger_than_input():
    with pytest.raises(ShapeError) as e:
        conv({"kernel_size": 5}, (1, 4, 4))
    msg = str(e.value)
    assert e.value.node_id == "c1"
    assert "5×5" in msg and "4×4" in msg
    with pytest.raises(ShapeError, match=r"padding 1 \(padded 6×6\)"):
        conv({"kernel_size": [7, 3], "padding": 1}, (1, 4, 4))
    assert conv({"kernel_size": 5, "padding": 1}, (1, 4, 4)).out_shape == (16, 2, 2)
    assert conv({"kernel_size": 9, "padding": "same"}, (1, 4, 4)).out_shape == (16, 4, 4)


@pytest.mark.parametrize("params", [
    {"padding": "full"}, {"padding": -1}, {"kernel_size": 0}, {"kernel_size": [3, 3, 3]},
    {"stride": 0}, {"filters": 0}, {"init": "glorot"}, {"padding": 1.5},
])
def test_conv2d_rejects_bad_params(params):
    with pytest.raises(ParamError):
        conv(params)


def test_conv2d_in_a_network_trains_and_passes_gradcheck(make_graph):
    g = make_graph((1, 6, 6), [
        ("Conv2D", {"filters": 2, "kernel_size": 3, "padding": "same"}),
        ("Conv2D", {"filters": 3, "kernel_size": 2, "stride": 2}),
        ("Flatten", {}),
        ("Dense", {"units": 3}),
    ])
    report = engine.gradcheck(g, max_elements=20)
    assert report.worst < 1e-6, report.table()
    net = engine.compile(g, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    opt = engine.SGD(lr=0.1)
    first = net.train_step(x, y, opt)
    for _ in range(20):
        last = net.train_step(x, y, opt)
    assert last < first

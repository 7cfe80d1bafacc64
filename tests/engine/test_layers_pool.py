import numpy as np
import pytest

import engine
from engine.errors import ParamError, ShapeError
from engine.kernels.reference import pool as ref
from engine.registry import get_layer_class


def make(type_name, params, in_shape=(2, 5, 6), node_id="p1"):
    return get_layer_class(type_name)(node_id, params, [in_shape])


POOL_PARAMS = [
    {},
    {"pool_size": 3, "stride": 1},
    {"pool_size": [2, 3], "stride": [1, 2], "padding": "same"},
    {"pool_size": 3, "stride": 2, "padding": 1},
    {"pool_size": 2, "padding": "same"},
    {"pool_size": [3, 2], "stride": [2, 1], "padding": 1},
    {"pool_size": 2, "ceil_mode": True},                            # 5×6 -> 3×3
    {"pool_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},  # overhangs the padding
]


@pytest.mark.parametrize("type_name", ["MaxPool2D", "AvgPool2D"])
@pytest.mark.parametrize("params", POOL_PARAMS)
def test_pool_gradients(type_name, params):
    report = engine.check_layer(type_name, params, [(2, 5, 6)])
    assert set(report.errors) == {"x0"}
    assert report.worst < 1e-7, report.errors


def test_global_avg_pool_gradients():
    report = engine.check_layer("GlobalAvgPool2D", {}, [(3, 4, 5)])
    assert report.worst < 1e-7, report.errors


@pytest.mark.parametrize("type_name, params, in_shape, out_shape", [
    ("MaxPool2D", {}, (6, 28, 28), (6, 14, 14)),
    ("MaxPool2D", {}, (3, 7, 5), (3, 3, 2)),
    ("MaxPool2D", {"padding": "same"}, (3, 7, 5), (3, 4, 3)),
    ("AvgPool2D", {"pool_size": 3, "stride": 1, "padding": 1}, (2, 5, 6), (2, 5, 6)),
    ("AvgPool2D", {"pool_size": [2, 4], "stride": [2, 1]}, (1, 6, 6), (1, 3, 3)),
    ("AvgPool2D", {"pool_size": 3, "stride": 2, "padding": "same"}, (1, 6, 7), (1, 3, 4)),
    ("GlobalAvgPool2D", {}, (16, 5, 5), (16,)),
])
def test_pool_shapes(type_name, params, in_shape, out_shape):
    assert make(type_name, params, in_shape).out_shape == out_shape


def test_pool_stride_defaults_to_pool_size():
    layer = make("MaxPool2D", {"pool_size": [3, 2]}, (1, 9, 8))
    assert layer.p["stride"] is None
    assert layer.stride == (3, 2)
    assert layer.out_shape == (1, 3, 4)
    assert layer.summary() == "3×2"
    assert make("AvgPool2D", {}).summary() == "2×2"
    assert make("MaxPool2D", {"pool_size": 3, "stride": 2, "padding": 1}).summary() == \
        "3×3, stride 2, pad 1"


def test_pool_macs_params_and_categories():
    for name in ("MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"):
        assert get_layer_class(name).category == "Pooling"
    mp = make("MaxPool2D", {}, (6, 28, 28))
    assert mp.macs() == 0 and mp.param_count() == 0 and mp.init_params(None) == {}
    assert make("AvgPool2D", {}, (6, 28, 28)).macs() == 6 * 14 * 14 * 4
    assert make("GlobalAvgPool2D", {}, (16, 5, 5)).macs() == 16 * 25


@pytest.mark.parametrize("type_name", ["MaxPool2D", "AvgPool2D"])
def test_pool_forward_backward_match_reference(rng, type_name):
    layer = make(type_name, {"pool_size": 3, "stride": 2, "padding": "same"}, (2, 6, 7))
    assert layer.pads == (0, 1, 1, 1)
    x = rng.standard_normal((3, 2, 6, 7)).astype(np.float32)
    y = layer.forward([x], {}, train=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    (dx,) = layer.backward(dy, {}, {})
    assert y.dtype == dx.dtype == np.float32
    if type_name == "MaxPool2D":
        want_y = ref.maxpool2d_forward(x, (3, 3), (2, 2), layer.pads)
        want_dx = ref.maxpool2d_backward(x, dy, (3, 3), (2, 2), layer.pads)
    else:
        want_y = ref.avgpool2d_forward(x, (3, 3), (2, 2), layer.pads, False)
        want_dx = ref.avgpool2d_backward(x, dy, (3, 3), (2, 2), layer.pads, False)
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("type_name", ["MaxPool2D", "AvgPool2D"])
@pytest.mark.parametrize("padding", ["valid", 1])
def test_ceil_mode_forward_backward_match_reference(rng, type_name, padding):
    layer = make(type_name, {"pool_size": 3, "stride": 2, "padding": padding,
                             "ceil_mode": True}, (2, 8, 7))
    floor = make(type_name, {"pool_size": 3, "stride": 2, "padding": padding}, (2, 8, 7))
    assert layer.out_shape[1] == floor.out_shape[1] + 1
    x = rng.standard_normal((3, 2, 8, 7))
    y = layer.forward([x], {}, train=True)
    (dx,) = layer.backward(np.ones_like(y), {}, {})
    np.testing.assert_allclose(y, layer.reference_forward([x], {}, True), rtol=1e-12)
    if type_name == "MaxPool2D":
        want = ref.maxpool2d_backward(x, np.ones_like(y), (3, 3), (2, 2), layer.pads, True)
    else:
        want = ref.avgpool2d_backward(x, np.ones_like(y), (3, 3), (2, 2), layer.pads, True,
                                      True)
    np.testing.assert_allclose(dx, want, rtol=1e-12)
    assert layer.summary().endswith("ceil")


def test_ceil_mode_is_refused_with_same_padding_and_not_fused():
    with pytest.raises(ShapeError, match="'same' already gives ceil"):
        make("MaxPool2D", {"padding": "same", "ceil_mode": True})
    assert make("MaxPool2D", {}, (1, 6, 6)).fusion_stage() == "pool2"
    assert make("MaxPool2D", {"ceil_mode": True}, (1, 7, 7)).fusion_stage() == ""


def test_avgpool_padding_rules():
    x = np.ones((1, 1, 4, 4), np.float32)
    same = make("AvgPool2D", {"pool_size": 3, "stride": 1, "padding": "same"}, (1, 4, 4))
    np.testing.assert_allclose(same.forward([x], {}, False), 1.0)
    explicit = make("AvgPool2D", {"pool_size": 3, "stride": 1, "padding": 1}, (1, 4, 4))
    y = explicit.forward([x], {}, False)[0, 0]
    assert y[0, 0] == pytest.approx(4 / 9) and y[0, 1] == pytest.approx(6 / 9)
    assert y[1, 1] == pytest.approx(1.0)


def test_global_avg_pool_forward_and_backward(rng):
    layer = make("GlobalAvgPool2D", {}, (3, 4, 5))
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = layer.forward([x], {}, train=False)
    assert y.dtype == np.float32
    # float32 sums of 20 values of magnitude ~1: to ~1e-7 of the float64 mean
    np.testing.assert_allclose(y, x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-6, atol=1e-6)
    (dx,) = layer.backward(np.ones((2, 3), np.float32), {}, {})
    assert dx.shape == x.shape and dx.dtype == np.float32
    np.testing.assert_allclose(dx, 1 / 20)
    dx[0, 0, 0, 0] = 5.0
    assert dx[0, 0, 0, 1] == pytest.approx(1 / 20)


@pytest.mark.parametrize("type_name", ["MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"])
def test_pools_need_an_image(type_name):
    with pytest.raises(ShapeError) as e:
        make(type_name, {}, (36,))
    assert e.value.node_id == "p1"
    assert f"{type_name} 'p1' expects an image (C, H, W)" in str(e.value)
    assert "Reshape to (1, 6, 6)" in str(e.value)


def test_pool_window_larger_than_input():
    with pytest.raises(ShapeError) as e:
        make("MaxPool2D", {"pool_size": 4}, (1, 3, 8))
    assert "4×4" in str(e.value) and "3×8" in str(e.value)
    assert make("MaxPool2D", {"pool_size": 4, "padding": "same"}, (1, 3, 8)).out_shape == (1, 1, 2)


def test_pool_padding_at_most_half_the_window():
    with pytest.raises(ShapeError, match="more than half"):
        make("MaxPool2D", {"pool_size": 2, "padding": 2})
    with pytest.raises(ShapeError, match="more than half"):
        make("AvgPool2D", {"pool_size": [4, 2], "padding": 2})
    assert make("MaxPool2D", {"pool_size": 2, "padding": 1}).out_shape == (2, 3, 4)


@pytest.mark.parametrize("params", [
    {"pool_size": 0}, {"stride": 0}, {"padding": "full"}, {"padding": -1}, {"size": 2},
])
def test_pools_reject_bad_params(params):
    with pytest.raises(ParamError):
        make("MaxPool2D", params)


def test_pools_in_a_network_pass_gradcheck(make_graph):
    g = make_graph((2, 6, 6), [
        ("MaxPool2D", {"pool_size": 3, "stride": 1, "padding": 1}),
        ("Conv2D", {"filters": 3, "kernel_size": 3}),
        ("AvgPool2D", {"pool_size": 2, "padding": "same"}),
        ("GlobalAvgPool2D", {}),
        ("Dense", {"units": 2}),
    ])
    assert g.infer_shapes()["n3"] == (3,)
    report = engine.gradcheck(g, max_elements=20)
    assert report.worst < 1e-6, report.table()

import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine.errors import ShapeError
from engine.kernels.reference import spatial as ref
from engine.registry import get_layer_class


def stn(in_shapes=((2, 5, 6), (6,)), node_id="stn", **params):
    return get_layer_class("SpatialTransformer")(node_id, params, list(in_shapes))


@pytest.mark.parametrize("params, out", [({}, (2, 5, 6)), ({"out_size": [3, 4]}, (2, 3, 4)),
                                         ({"out_size": 7}, (2, 7, 7))])
def test_gradients_to_image_and_theta(rng, params, out):
    layer = stn(**params)
    assert layer.out_shape == out
    xs = [rng.standard_normal((2, 2, 5, 6)), 0.3 * rng.standard_normal((2, 6))]
    report = engine.check_layer("SpatialTransformer", params, [(2, 5, 6), (6,)], inputs=xs)
    assert set(report.errors) == {"x0", "x1"}
    assert report.worst < 1e-6, report.errors


def test_zero_theta_is_the_identity_and_theta_is_an_offset(rng):
    layer = stn()
    img = rng.standard_normal((3, 2, 5, 6)).astype(np.float32)
    out = layer.forward([img, np.zeros((3, 6), np.float32)], {}, train=False)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, img, atol=1e-6)
    theta = 0.4 * rng.standard_normal((3, 6))
    want = ref.affine_sample(img.astype(np.float64),
                             theta.reshape(3, 2, 3) + np.eye(2, 3), 5, 6)
    np.testing.assert_allclose(layer.forward([img.astype(np.float64), theta], {}, True), want,
                               atol=1e-12)
    dimg, dtheta = layer.backward(np.ones_like(want), {}, {})
    assert dimg.shape == img.shape and dtheta.shape == (3, 6)


@pytest.mark.parametrize("shapes, needle", [
    ([(2, 5, 6), (4,)], "Dense(6)"),
    ([(30,), (6,)], "Reshape to (C, H, W)"),
    ([(2, 5, 6)], "two inputs"),
])
def test_wrong_inputs_say_what_to_do(shapes, needle):
    with pytest.raises(ShapeError) as e:
        stn(shapes)
    assert needle in str(e.value) and e.value.node_id == "stn"


def test_describes_itself_for_the_palette():
    cls = get_layer_class("SpatialTransformer")
    assert cls.category == "Spatial" and cls.input_names == ("image", "theta")
    assert cls.min_inputs == cls.max_inputs == 2
    assert "identity" in cls.help and "identity" in cls.__doc__


def test_localisation_net_with_zero_last_layer_starts_as_identity(rng):
    doc = graph_doc(
        [("in", "Input", {"shape": [1, 6, 6]}), ("flat", "Flatten", {}),
         ("loc", "Dense", {"units": 6, "init": "zeros"}),
         ("stn", "SpatialTransformer", {}), ("out", "Output", {"loss": "mse", "target": "x"})],
        [("in", "flat"), ("flat", "loc"), ("in", "stn", 0), ("loc", "stn", 1), ("stn", "out")])
    net = engine.compile(engine.Graph.from_dict(doc), seed=0)
    x = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), x, atol=1e-6)
    # the identity samples exactly at pixel centres, the kinks of bilinear interpolation:
    # move off them before comparing with finite differences
    net.params["loc.bias"][...] = 0.1 * rng.standard_normal(6)
    report = engine.gradcheck(net, batch=2)
    assert report.worst < 1e-5, report.table()

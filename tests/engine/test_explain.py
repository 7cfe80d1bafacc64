"""engine.explain: saliency, Grad-CAM, occlusion and activation maximisation."""

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.explain import (
    ExplainCancelledError,
    class_scores,
    explainable,
    grad_cam,
    maximise_activation,
    occlusion,
    probabilities,
    resize_bilinear,
    saliency,
    saliency_map,
    score_node,
)
from engine.resources import example_path

CNN = [("Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
       ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}), ("Dense", {"units": 4})]


def cnn(dtype=np.float64, layers=CNN, shape=(1, 6, 6)):
    return engine.Network(engine.Graph.from_dict(chain_doc(shape, layers)), seed=3,
                          dtype=dtype)


def test_saliency_is_the_input_gradient_from_backward(rng):
    net = cnn()
    x = rng.standard_normal((3, 1, 6, 6))
    cls = np.array([0, 2, 3])
    got = saliency(net, x, cls)
    ref = cnn()
    out = ref.forward(x)
    dout = np.zeros_like(out)
    dout[np.arange(3), cls] = 1.0
    np.testing.assert_allclose(got, ref.backward(dout), rtol=1e-12, atol=1e-14)
    assert np.abs(got).max() > 0


def test_saliency_reads_the_logits_when_a_softmax_folds_into_the_loss(rng):
    net = cnn(layers=[*CNN, ("Softmax", {})])
    assert score_node(net) == "n4"
    x = rng.standard_normal((2, 1, 6, 6))
    plain = cnn()
    np.testing.assert_allclose(saliency(net, x, 1), saliency(plain, x, 1), rtol=1e-12)


def test_smoothgrad_averages_noisy_gradients_and_is_seeded(rng):
    net = cnn()
    x = rng.standard_normal((1, 1, 6, 6))
    np.testing.assert_allclose(saliency(net, x, 1, smooth=3, noise=0.0), saliency(net, x, 1))
    a = saliency(net, x, 1, smooth=4, noise=0.2, seed=5)
    b = saliency(net, x, 1, smooth=4, noise=0.2, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, saliency(net, x, 1))
    m = saliency_map(a[0])
    assert m.shape == (6, 6) and m.max() == pytest.approx(1.0) and m.min() >= 0


def _conv_ref(x, w, b):
    n, _c, h, wd = x.shape
    f, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, f, h, wd))
    for i in range(h):
        for j in range(wd):
            out[:, :, i, j] = np.einsum("nckl,fckl->nf", xp[:, :, i:i + k, j:j + k], w)
    return out + b[None, :, None, None]


@pytest.mark.parametrize("fuse", [True, False])
def test_grad_cam_matches_a_float64_numpy_reference(rng, fuse):
    layers = [("Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
              ("Flatten", {}), ("Dense", {"units": 4})]
    g = engine.Graph.from_dict(chain_doc((2, 6, 6), layers))
    net = engine.Network(g, seed=2, dtype=np.float64, fuse=fuse)
    x = rng.standard_normal((2, 2, 6, 6))
    cls = np.array([1, 3])
    res = grad_cam(net, x, cls, "n0")
    w, b = net.params["n0.weight"], net.params["n0.bias"]
    wd = net.params["n3.weight"]
    a = _conv_ref(x, w, b)
    da = wd[cls].reshape(2, 3, 6, 6) * (a > 0)
    alpha = da.mean(axis=(2, 3))
    cam = np.maximum((alpha[:, :, None, None] * a).sum(axis=1), 0)
    np.testing.assert_allclose(res.weights, alpha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.cam, cam, rtol=1e-10, atol=1e-12)
    assert res.heatmap.shape == (2, 6, 6)
    np.testing.assert_allclose(res.heatmap, cam / cam.max(axis=(1, 2), keepdims=True),
                               rtol=1e-10, atol=1e-12)


def test_grad_cam_upsamples_to_the_input_and_refuses_a_flat_node(rng):
    lenet = engine.compile(engine.load_graph(example_path("lenet5")), seed=0)
    x = rng.standard_normal((1, 1, 28, 28)).astype(np.float32)
    res = grad_cam(lenet, x, 3, "c3")
    assert res.cam.shape == (1, 10, 10) and res.heatmap.shape == (1, 28, 28)
    assert res.heatmap.min() >= 0 and res.heatmap.max() <= 1 + 1e-9
    with pytest.raises(engine.NetBuilderError, match="image output"):
        grad_cam(lenet, x, 3, "f5")


def test_resize_bilinear_keeps_constants_and_means():
    a = np.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(resize_bilinear(np.ones((3, 3)), 7, 5), np.ones((7, 5)))
    np.testing.assert_allclose(resize_bilinear(a, 4, 4), a)
    big = resize_bilinear(a, 8, 8)
    np.testing.assert_allclose(big[::2, ::2][1:, 1:] + big[1::2, 1::2][:-1, :-1],
                               2 * (big[::2, ::2][1:, 1:] + big[1::2, 1::2][:-1, :-1]) / 2)
    assert big.shape == (8, 8) and big.min() >= 0 and big.max() <= 15


def one_pixel_net(pixel=(2, 3)):
    g = engine.Graph.from_dict(chain_doc((1, 5, 5), [("Flatten", {}), ("Dense", {"units": 2})]))
    net = engine.Network(g, dtype=np.float64)
    net.params["n1.weight"][...] = 0.0
    net.params["n1.bias"][...] = 0.5
    net.params["n1.weight"][1, pixel[0] * 5 + pixel[1]] = 2.0
    return net


def test_occlusion_lights_only_the_pixel_the_output_depends_on():
    net = one_pixel_net()
    x = np.ones((1, 5, 5))
    calls = []
    heat = occlusion(net, x, 1, patch=1, stride=1, batch=7,
                     progress=lambda done, total: calls.append((done, total)))
    expect = np.zeros((5, 5))
    expect[2, 3] = 2.0
    np.testing.assert_allclose(heat, expect, atol=1e-12)
    assert calls[-1] == (25, 25) and len(calls) == 4
    assert np.all(occlusion(net, x, 0, patch=1) == 0)


def test_occlusion_with_a_larger_patch_covers_the_pixel_and_can_be_cancelled():
    net = one_pixel_net()
    x = np.ones((1, 5, 5))
    heat = occlusion(net, x, 1, patch=3, stride=1)
    assert heat[2, 3] == pytest.approx(2.0) and heat.max() == heat[2, 3]
    assert heat[0, 0] == 0 and heat[4, 0] == 0
    with pytest.raises(ExplainCancelledError):
        occlusion(net, x, 1, patch=1, batch=5, cancelled=iter([False, True]).__next__)


def test_activation_maximisation_increases_the_target_monotonically():
    lenet = engine.compile(engine.load_graph(example_path("lenet5")), seed=0)
    res = maximise_activation(lenet, "c1", steps=25, seed=4)
    assert res.images.shape == (6, 1, 28, 28) and res.history.shape == (26, 6)
    assert np.all(np.diff(res.history, axis=0) > 0)
    again = maximise_activation(lenet, "c1", channels=[2], steps=25, seed=4)
    np.testing.assert_allclose(again.history[:, 0], res.history[:, 2], rtol=1e-4)
    with pytest.raises(ExplainCancelledError):
        maximise_activation(lenet, "c1", steps=5, cancelled=lambda: True)


def test_explainable_copies_a_fused_network_with_its_weights(rng):
    net = cnn(np.float32)
    other = explainable(net)
    assert other is not net and not other.fuse and explainable(other) is other
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(class_scores(other, x), class_scores(net, x), rtol=1e-5)
    p = probabilities(class_scores(net, x))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)

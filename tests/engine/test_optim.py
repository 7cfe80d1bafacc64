"""Optimizers against their textbook update rules, written out by hand."""

import numpy as np
import pytest

import engine
from engine.optim import clip_by_global_norm, make_optimizer


def run(opt, steps=3):
    p = {"w": np.array([1.0, -2.0, 3.0])}
    history = []
    for t in range(steps):
        g = {"w": np.array([0.5, -1.0, 2.0]) * (t + 1)}
        opt.step(p, g)
        history.append(p["w"].copy())
    return history


def grads(t):
    return np.array([0.5, -1.0, 2.0]) * (t + 1)


def test_sgd_plain():
    w = np.array([1.0, -2.0, 3.0])
    for t, got in enumerate(run(engine.SGD(lr=0.1))):
        w = w - 0.1 * grads(t)
        np.testing.assert_allclose(got, w)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_and_nesterov(nesterov):
    w, v = np.array([1.0, -2.0, 3.0]), np.zeros(3)
    for t, got in enumerate(run(engine.SGD(lr=0.1, momentum=0.9, nesterov=nesterov))):
        g = grads(t)
        v = 0.9 * v + g
        w = w - 0.1 * ((g + 0.9 * v) if nesterov else v)
        np.testing.assert_allclose(got, w)


def test_adam():
    w, m, v = np.array([1.0, -2.0, 3.0]), np.zeros(3), np.zeros(3)
    for t, got in enumerate(run(engine.Adam(lr=0.01))):
        g = grads(t)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        mh, vh = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.999 ** (t + 1))
        w = w - 0.01 * mh / (np.sqrt(vh) + 1e-8)
        np.testing.assert_allclose(got, w, rtol=1e-12)


def test_adamw_decays_weights_separately():
    w, m, v = np.array([1.0, -2.0, 3.0]), np.zeros(3), np.zeros(3)
    for t, got in enumerate(run(engine.AdamW(lr=0.01, weight_decay=0.1))):
        g = grads(t)
        w = w * (1 - 0.01 * 0.1)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.01 * (m / (1 - 0.9 ** (t + 1))) / (np.sqrt(v / (1 - 0.999 ** (t + 1))) + 1e-8)
        np.testing.assert_allclose(got, w, rtol=1e-12)


def test_rmsprop_and_adagrad():
    w, s = np.array([1.0, -2.0, 3.0]), np.zeros(3)
    for t, got in enumerate(run(engine.RMSProp(lr=0.01))):
        g = grads(t)
        s = 0.99 * s + 0.01 * g * g
        w = w - 0.01 * g / (np.sqrt(s) + 1e-8)
        np.testing.assert_allclose(got, w, rtol=1e-12)
    w, s = np.array([1.0, -2.0, 3.0]), np.zeros(3)
    for t, got in enumerate(run(engine.AdaGrad(lr=0.1))):
        g = grads(t)
        s = s + g * g
        w = w - 0.1 * g / (np.sqrt(s) + 1e-10)
        np.testing.assert_allclose(got, w, rtol=1e-12)


def test_weight_decay_is_l2_in_the_gradient():
    w = np.array([1.0, -2.0, 3.0])
    got = run(engine.SGD(lr=0.1, weight_decay=0.01), steps=1)[0]
    np.testing.assert_allclose(got, w - 0.1 * (grads(0) + 0.01 * w))


def test_clip_by_global_norm():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    norm = clip_by_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(g["a"], [0.6, 0.0])
    np.testing.assert_allclose(g["b"], [0.8])
    small = {"a": np.array([0.1])}
    clip_by_global_norm(small, 1.0)
    np.testing.assert_allclose(small["a"], [0.1])


def test_optimizer_clips_before_update():
    opt = engine.SGD(lr=1.0, clip_norm=1.0)
    p = {"w": np.zeros(2)}
    opt.step(p, {"w": np.array([30.0, 40.0])})
    np.testing.assert_allclose(p["w"], [-0.6, -0.8])
    assert opt.last_grad_norm == pytest.approx(50.0)


def test_make_optimizer_from_model_file_section():
    opt = make_optimizer({"type": "sgd", "lr": 0.05, "momentum": 0.9})
    assert isinstance(opt, engine.SGD) and opt.momentum == 0.9 and opt.lr == 0.05
    assert isinstance(make_optimizer("adam", lr=0.002), engine.Adam)
    with pytest.raises(engine.ParamError, match="unknown optimizer"):
        make_optimizer({"type": "lion"})
    with pytest.raises(engine.ParamError, match="unknown setting"):
        make_optimizer({"type": "sgd", "momentun": 0.9})
    with pytest.raises(engine.ParamError, match="learning rate"):
        make_optimizer({"type": "sgd", "lr": -1})

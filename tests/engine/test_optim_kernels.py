"""The optimizer kernels against numpy's per-parameter updates (same bits), and the flat
update over a network's parameter vector against the per-parameter one."""

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.kernels import optim as ko
from engine.optim import FLAT, make_optimizer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_update_gives_numpys_bits(rng, dtype, nesterov):
    p = rng.standard_normal(37).astype(dtype)
    g = rng.standard_normal(37).astype(dtype)
    v = rng.standard_normal(37).astype(dtype)
    lr, m = 0.0123, 0.9
    want_p, want_v = p.copy(), v.copy()
    want_v *= m
    want_v += g
    want_p -= lr * (g + m * want_v) if nesterov else lr * want_v
    ko.sgd_momentum_update(p, g, v, dtype(lr), dtype(m), nesterov)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(p, want_p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_update_gives_numpys_bits(rng, dtype):
    p = rng.standard_normal(41).astype(dtype)
    g = rng.standard_normal(41).astype(dtype)
    want = p - 0.07 * g
    ko.sgd_update(p, g, dtype(0.07))
    np.testing.assert_array_equal(p, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_update_gives_numpys_bits(rng, dtype, weight_decay):
    p = rng.standard_normal(53).astype(dtype)
    g = rng.standard_normal(53).astype(dtype)
    m = rng.standard_normal(53).astype(dtype) * 0.1
    v = np.abs(rng.standard_normal(53)).astype(dtype) * 0.1
    lr, b1, b2, eps, t = 0.003, 0.9, 0.999, 1e-8, 4
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    wp, wm, wv = p.copy(), m.copy(), v.copy()
    wm *= b1
    wm += (1 - b1) * g
    wv *= b2
    wv += (1 - b2) * (g * g)
    if weight_decay:
        wp *= 1 - lr * weight_decay
    wp -= (lr / bc1) * wm / (np.sqrt(wv / bc2) + eps)
    c = dtype
    ko.adam_update(p, g, m, v, c(b1), c(1 - b1), c(b2), c(1 - b2), c(lr / bc1), c(bc2), c(eps),
                   c(1 - lr * weight_decay))
    np.testing.assert_array_equal(m, wm)
    np.testing.assert_array_equal(v, wv)
    np.testing.assert_array_equal(p, wp)


def test_sum_squares_accumulates_in_float64(rng):
    g = rng.standard_normal(10_001).astype(np.float32)
    assert ko.sum_squares(g) == pytest.approx(float(np.sum(g.astype(np.float64) ** 2)),
                                              rel=1e-12)
    assert ko.sum_squares(np.full(4, 3e38, np.float32)) == pytest.approx(4 * 9e76)


def test_network_parameters_are_views_of_one_flat_vector():
    net = engine.Network(engine.Graph.from_dict(chain_doc(
        (5,), [("Dense", {"units": 70}), ("ReLU", {}), ("Dense", {"units": 3})])), seed=1)
    total = sum(p.size for p in net.params.values())
    assert net.flat_params.size >= total and net.flat_grads.shape == net.flat_params.shape
    for k, p in net.params.items():
        assert np.shares_memory(p, net.flat_params) and p.flags.c_contiguous, k
        assert np.shares_memory(net.grads[k], net.flat_grads), k
        assert (p.__array_interface__["data"][0]
                - net.flat_params.__array_interface__["data"][0]) % 64 == 0, k
    covered = np.zeros(net.flat_params.size, bool)
    base = net.flat_params.__array_interface__["data"][0]
    for p in net.params.values():
        at = (p.__array_interface__["data"][0] - base) // p.itemsize
        assert not covered[at:at + p.size].any()  # no two parameters overlap
        covered[at:at + p.size] = True
    assert not net.flat_params[~covered].any()  # the gaps are zero


@pytest.mark.parametrize("config", [
    {"type": "sgd", "lr": 0.05},
    {"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"type": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
    {"type": "adam", "lr": 0.01},
    {"type": "adamw", "lr": 0.01, "weight_decay": 0.1},
    {"type": "rmsprop", "lr": 0.01},
    {"type": "adagrad", "lr": 0.05},
    {"type": "sgd", "lr": 0.5, "clip_norm": 0.1},
])
def test_flat_update_matches_the_update_per_parameter(rng, config):
    """train_step updates all parameters in one pass over the flat vector; the result equals
    the per-parameter update of the same gradients (float64, a few steps)."""
    doc = chain_doc((7,), [("Dense", {"units": 90}), ("Tanh", {}), ("Dense", {"units": 60}),
                           ("ReLU", {}), ("Dense", {"units": 4})])
    flat = engine.Network(engine.Graph.from_dict(doc), seed=3, dtype=np.float64)
    each = engine.Network(engine.Graph.from_dict(doc), seed=3, dtype=np.float64)
    opt_flat, opt_each = make_optimizer(config), make_optimizer(config)
    x = rng.standard_normal((16, 7))
    y = rng.integers(0, 4, 16)
    for _ in range(4):
        flat.train_step(x, y, opt_flat)
        each.forward(x, train=True)
        _total, grads = each.loss(y, x)
        each.loss_backward(grads)
        opt_each.step(each.params, each.grads)
    assert set(opt_flat.state) <= {FLAT}
    assert opt_flat.last_grad_norm == pytest.approx(opt_each.last_grad_norm, rel=1e-9)
    for k, p in flat.params.items():
        np.testing.assert_allclose(p, each.params[k], rtol=1e-10, atol=1e-12, err_msg=k)

"""The optimizer kernels against numpy's per-parameter updates (same bits), and the flat
update over a network's parameter vector against the per-parameter one."""

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.kernels import optim as ko
from engine.optim import FLAT, make_optimizer

# sizes: below one block, and several blocks with a partial last one
SIZES = [37, 2 * ko.NORM_BLOCK + 53]


def squares(g: np.ndarray) -> float:
    return float(np.sum(g.astype(np.float64) ** 2))


def check_norm(got: float, g: np.ndarray, with_norm: bool) -> None:
    """The update kernels' Σ g² (float64) when asked for, else 0."""
    if with_norm:
        assert got == pytest.approx(squares(g), rel=1e-12)
    else:
        assert got == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("with_norm", [False, True])
def test_sgd_momentum_update_gives_numpys_bits(rng, dtype, nesterov, size, with_norm):
    p = rng.standard_normal(size).astype(dtype)
    g = rng.standard_normal(size).astype(dtype)
    v = rng.standard_normal(size).astype(dtype)
    lr, m = 0.0123, 0.9
    want_p, want_v = p.copy(), v.copy()
    want_v *= m
    want_v += g
    want_p -= lr * (g + m * want_v) if nesterov else lr * want_v
    check_norm(ko.sgd_momentum_update(p, g, v, dtype(lr), dtype(m), nesterov, with_norm), g,
               with_norm)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(p, want_p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("with_norm", [False, True])
def test_sgd_update_gives_numpys_bits(rng, dtype, size, with_norm):
    p = rng.standard_normal(size).astype(dtype)
    g = rng.standard_normal(size).astype(dtype)
    want = p - 0.07 * g
    check_norm(ko.sgd_update(p, g, dtype(0.07), with_norm), g, with_norm)
    np.testing.assert_array_equal(p, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("with_norm", [False, True])
def test_adam_update_gives_numpys_bits(rng, dtype, weight_decay, size, with_norm):
    p = rng.standard_normal(size).astype(dtype)
    g = rng.standard_normal(size).astype(dtype)
    m = rng.standard_normal(size).astype(dtype) * 0.1
    v = np.abs(rng.standard_normal(size)).astype(dtype) * 0.1
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
    got = ko.adam_update(p, g, m, v, c(b1), c(1 - b1), c(b2), c(1 - b2), c(lr / bc1), c(bc2),
                         c(eps), c(1 - lr * weight_decay), with_norm)
    check_norm(got, g, with_norm)
    np.testing.assert_array_equal(m, wm)
    np.testing.assert_array_equal(v, wv)
    np.testing.assert_array_equal(p, wp)


def test_the_summed_norm_does_not_depend_on_the_thread_count(rng):
    from engine.threads import max_threads

    g = rng.standard_normal(5 * ko.NORM_BLOCK + 7).astype(np.float32)
    got = []
    for threads in sorted({1, max_threads()}):
        before = engine.set_num_threads(threads)
        try:
            p = np.zeros_like(g)
            got.append(ko.sgd_update(p, g, np.float32(0.1), True))
        finally:
            engine.set_num_threads(before)
    assert got[0] == pytest.approx(squares(g), rel=1e-12)
    assert all(x == got[0] for x in got)


@pytest.mark.parametrize("config", [
    {"type": "sgd", "lr": 0.05},
    {"type": "sgd", "lr": 0.05, "momentum": 0.9},
    {"type": "adamw", "lr": 0.01, "weight_decay": 0.1},
    {"type": "rmsprop", "lr": 0.01},
])
def test_a_flat_step_sums_the_norm_in_its_update_with_the_same_result(rng, config):
    """Without a norm given (no clipping, no coupled weight decay) the update kernel sums the
    gradient norm on its pass: same parameters, bit for bit, and the same norm as a step
    given the norm."""
    size = 3 * ko.NORM_BLOCK + 11
    p0 = rng.standard_normal(size).astype(np.float32)
    g = rng.standard_normal(size).astype(np.float32)
    norm = float(np.sqrt(squares(g)))
    fused, given = make_optimizer(config), make_optimizer(config)
    pf, pg = p0.copy(), p0.copy()
    for _ in range(3):
        fused.step({"w": pf}, {"w": g}, flat=(pf, g))
        given.step({"w": pg}, {"w": g}, flat=(pg, g), norm=norm)
        assert fused.last_grad_norm == pytest.approx(norm, rel=1e-12)
    np.testing.assert_array_equal(pf, pg)
    assert fused.t == given.t == 3


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

"""engine.profile (per-node timing) and engine.nodecheck (one node's gradient check)."""

import math

import numpy as np
import pytest

import engine
from engine.layers.conv import Conv2D
from engine.nodecheck import CheckCancelledError, check_node
from engine.profile import StepTimer, profile
from engine.resources import example_path


def lenet(seed=0):
    return engine.compile(engine.load_graph(example_path("lenet5")), seed=seed)


@pytest.mark.parametrize("fuse", [True, False])
def test_per_node_timings_add_up_to_the_step(fuse):
    net = engine.Network(engine.load_graph(example_path("lenet5")), fuse=fuse)
    before = net.state_dict()
    prof = profile(net, batch_size=16, steps=3)
    assert list(prof.nodes) == net.order and prof.batch_size == 16
    assert all(t.forward_ms >= 0 and t.backward_ms >= 0 for t in prof.nodes.values())
    assert prof.nodes["c1"].forward_ms > 0 and prof.nodes["c3"].backward_ms > 0
    # a consistency check of the profiler (the parts tile the step), not a speed target
    assert abs(prof.node_sum_ms() - prof.step_ms) <= 0.10 * prof.step_ms
    shares = [prof.percent(n) for n in prof.nodes]
    assert all(0 <= s <= 100 for s in shares) and sum(shares) <= 100 + 1e-9
    assert prof.epoch_seconds(1000) == pytest.approx(math.ceil(1000 / 16) * prof.step_ms / 1000)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert "c1" in prof.table()


def test_a_fused_step_shares_its_time_by_multiply_accumulates():
    prof = profile(lenet(), batch_size=4, steps=1)
    c1, a1 = prof.nodes["c1"], prof.nodes["a1"]
    assert a1.forward_ms == 0 or c1.forward_ms >= a1.forward_ms


def test_gradcheck_passes_lenet5_c1_and_every_other_node():
    net = lenet()
    before = net.state_dict()
    rep = check_node(net, "c1")
    assert set(rep.errors) == {"x0", "weight", "bias"}
    assert rep.passed and rep.worst < 1e-6, rep.errors
    for nid in ("a1", "s2", "c3", "s4", "flatten", "f5", "logits", "out"):
        assert check_node(net, nid).passed, nid
    assert check_node(net, "in").errors == {}
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_gradcheck_fails_a_deliberately_broken_backward(monkeypatch):
    real = Conv2D.backward

    def broken(self, dy, params, grads):
        dxs = real(self, dy, params, grads)
        grads["weight"] *= 1.5
        return dxs

    monkeypatch.setattr(Conv2D, "backward", broken)
    rep = check_node(lenet(), "c1")
    assert not rep.passed
    assert rep.failing() == ["weight"] and rep.errors["weight"] > 0.1


def test_gradcheck_uses_the_batch_given_and_names_unknown_nodes(rng):
    net = lenet()
    x = rng.standard_normal((3, 1, 28, 28))
    assert check_node(net, "c3", x=x, max_elements=30).passed
    with pytest.raises(engine.NetBuilderError, match="no node"):
        check_node(net, "nope")


def test_gradcheck_reports_progress_to_the_end_and_can_be_cancelled():
    seen = []
    rep = check_node(lenet(), "c1", max_elements=20, progress=lambda d, t: seen.append((d, t)))
    assert rep.passed
    total = 2 * (20 + 20 + 6)  # x0 and weight sampled, the 6 biases all
    assert seen[-1] == (total, total) and len(seen) == total
    assert [d for d, _t in seen] == list(range(1, total + 1))
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(CheckCancelledError, match="cancelled"):
        check_node(lenet(), "c1", max_elements=20, cancelled=cancelled)
    assert len(calls) == 6


def test_profile_on_one_thread_restores_the_thread_count():
    import numba

    before = numba.get_num_threads()
    prof = profile(lenet(), batch_size=8, steps=1, threads=1)
    assert prof.threads == 1 and numba.get_num_threads() == before
    assert abs(prof.node_sum_ms() - prof.step_ms) <= 0.10 * prof.step_ms


@pytest.mark.parametrize("fuse", [True, False])
def test_a_step_timer_times_one_armed_step_of_a_training_network(fuse, rng):
    from engine.gradcheck import random_batch
    from engine.optim import SGD

    net = engine.Network(engine.load_graph(example_path("lenet5")), seed=0, fuse=fuse)
    xs, ys = random_batch(net, 8, rng)
    opt = SGD(lr=0.01)

    def step():
        net.forward(xs, train=True)
        _total, grads = net.loss(ys, xs)
        net.loss_backward(grads)
        opt.step(net.params, net.grads, flat=(net.flat_params, net.flat_grads))

    timer = StepTimer(net)
    step()
    assert timer.take(8) is None  # not armed: nothing timed
    hooks_before = len(net.hooks)
    timer.arm()
    assert timer.armed and len(net.hooks) == hooks_before + 1
    step()
    prof = timer.take(8)
    assert not timer.armed and len(net.hooks) == hooks_before  # the hooks are gone again
    assert set(prof.nodes) == set(net.order) and prof.batch_size == 8
    assert all(prof.nodes[n].forward_ms > 0 for n in ("c1", "c3", "f5", "logits"))
    assert all(prof.nodes[n].backward_ms > 0 for n in ("c1", "c3", "f5"))
    parts = sum(t.total_ms for t in prof.nodes.values())
    assert 0 < parts <= prof.step_ms
    assert 0 < prof.percent("c1") < 100
    # a forward without backward before the step (validation) is started over
    timer.arm()
    net.forward(xs, train=False)
    assert timer.fwd["c1"] > 0
    step()
    fwd = {n: t.forward_ms for n, t in timer.take(8).nodes.items()}
    assert fwd["c1"] > 0
    # a probe's forward after the step (before take) is not counted in the step
    timer.arm()
    step()
    seen = dict(timer.fwd)
    net.forward(xs, train=False)
    assert timer.fwd == seen and len(fwd) == len(seen)
    assert timer.take(8) is not None

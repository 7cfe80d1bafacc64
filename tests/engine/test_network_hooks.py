"""Network.add_hook (engine.hooks) and the execution plan (engine.plan) as a monitor sees them."""

import numpy as np
import pytest
from graphdocs import chain_doc, graph_doc

import engine
from engine.hooks import BackwardEvent

LAYERS = [("Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
          ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}), ("Dense", {"units": 5}),
          ("Tanh", {}), ("Dense", {"units": 3})]


def nets(dtype=np.float64):
    g = engine.Graph.from_dict(chain_doc((1, 6, 6), LAYERS))
    return (engine.Network(g, seed=1, dtype=dtype),
            engine.Network(g, seed=1, dtype=dtype, fuse=False))


@pytest.mark.parametrize("fuse", [True, False])
def test_forward_hooks_see_every_node_once_in_order(rng, fuse):
    net = nets()[0 if fuse else 1]
    seen = []
    net.add_hook(on_forward=lambda nid, out: seen.append((nid, out.copy())))
    x = rng.standard_normal((4, 1, 6, 6))
    net.forward(x, train=True)
    assert [nid for nid, _ in seen] == net.order
    for nid, out in seen:
        np.testing.assert_array_equal(out, net.acts[nid])


def test_backward_events_carry_the_gradients_of_the_unfused_network(rng):
    fused, plain = nets()
    x, y = rng.standard_normal((4, 1, 6, 6)), rng.integers(0, 3, 4)
    events = {True: [], False: []}
    for net, key in ((fused, True), (plain, False)):
        net.add_hook(on_backward=lambda ev, key=key: events[key].append(ev))
        net.forward(x, train=True)
        _, seeds = net.loss(y, x)
        dxs = net.loss_backward(seeds, input_grads=True)
    at_output = {ev.node: ev.grad_output for ev in events[False]}
    at_output["in"] = dxs["in"]  # an Input runs no backward step: what reaches it
    steps = [ev.nodes for ev in events[True]]
    assert ("n0", "n1", "n2") in steps and ("n4",) in steps  # the fused conv block, a Dense
    for ev in events[True]:
        assert isinstance(ev, BackwardEvent)
        np.testing.assert_allclose(ev.grad_output, at_output[ev.node], rtol=1e-10, atol=1e-12)
        assert [p for _, p in ev.inputs] == [0] * len(ev.inputs)
        for (src, _), g in zip(ev.inputs, ev.grad_inputs):
            if g is not None:
                np.testing.assert_allclose(g, at_output[src], rtol=1e-10, atol=1e-12)
        for name, g in ev.param_grads.items():
            assert name.split(".")[0] in ev.nodes
            assert g is fused.grads[name] or np.shares_memory(g, fused.grads[name])


def test_a_step_skips_its_input_gradient_when_nothing_upstream_learns(rng):
    fused, _ = nets()
    events = []
    fused.add_hook(on_backward=events.append)
    x, y = rng.standard_normal((2, 1, 6, 6)).astype(np.float64), rng.integers(0, 3, 2)
    fused.forward(x, train=True)
    fused.loss_backward(fused.loss(y, x)[1])
    first = next(ev for ev in events if ev.nodes[0] == "n0")
    assert first.inputs == (("in", 0),) and first.grad_inputs == (None,)
    assert not fused.plan.step_of("n0").needs_input_grad
    assert fused.plan.step_of("n4").needs_input_grad


def test_events_name_the_ports_of_merge_layers(rng):
    doc = graph_doc([("a", "Input", {"shape": [4]}), ("b", "Input", {"shape": [4]}),
                     ("da", "Dense", {"units": 3}), ("db", "Dense", {"units": 2}),
                     ("cat", "Concat", {}), ("out", "Output", {"loss": "mse"})],
                    [("a", "da"), ("b", "db"), ("db", "cat", 0), ("da", "cat", 1),
                     ("cat", "out")])
    net = engine.compile(engine.Graph.from_dict(doc))
    events = []
    net.add_hook(on_backward=events.append)
    xs = {"a": rng.standard_normal((2, 4)), "b": rng.standard_normal((2, 4))}
    net.backward(np.ones_like(net.forward(xs)))
    cat = next(ev for ev in events if ev.node == "cat")
    assert cat.inputs == (("db", 0), ("da", 1))
    assert [g.shape for g in cat.grad_inputs] == [(2, 2), (2, 3)]


def test_handles_remove_hooks_and_a_hook_can_change_the_gradients(rng):
    net, _ = nets()
    calls = []
    handle = net.add_hook(on_forward=lambda nid, out: calls.append(nid))
    with net.add_hook(on_backward=lambda ev: calls.append(ev.node)):
        net.backward(np.ones_like(net.forward(rng.standard_normal((2, 1, 6, 6)))))
    assert len(net.hooks) == 1 and calls
    handle.remove()
    handle.remove()
    calls.clear()
    net.backward(np.ones_like(net.forward(rng.standard_normal((2, 1, 6, 6)))))
    assert calls == [] and len(net.hooks) == 0
    with pytest.raises(TypeError, match="on_forward, on_backward"):
        net.add_hook()
    with pytest.raises(TypeError, match="callable"):
        net.add_hook(on_forward=3)


def test_the_plan_says_what_each_step_covers():
    fused, plain = nets()
    assert [st.ids for st in fused.plan] == [("in",), ("n0", "n1", "n2"), ("n3",),
                                             ("n4",), ("n5",), ("n6",), ("out",)]
    assert len(plain.plan) == len(plain.order)
    text = "\n".join(fused.plan.describe())
    assert "ConvBlock  n0 -> n1 -> n2  (no input gradient)" in text
    assert fused.steps is fused.plan.steps
    assert [len(fused.plan.grads[st.last]) for st in fused.plan] == [0, 2, 0, 2, 0, 2, 0]

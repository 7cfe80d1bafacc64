"""The fused BatchNorm + ReLU (``NormBlock``), Add + ReLU (``AddBlock``) and BatchNorm +
Add + ReLU (``NormAddBlock``) steps of residual networks against the same network run node
by node, in float64 and float32, in training and inference; gradients against finite
differences. The file name puts it in ``test_without_jit``'s rerun (the kernels as plain
Python)."""

import numpy as np
import pytest
from graphdocs import graph_doc
from test_fusion import assert_same_backward, pair

import engine
from engine.fusion import AddBlock, NormAddBlock, NormBlock

CONV = {"kernel_size": 3, "padding": 1, "bias": False}


def residual_doc(c=3, hw=6):
    """conv-BN-ReLU stem; a basic block; a strided block with a 1×1 strided conv + BN
    shortcut; global average pool; Dense."""
    nodes = [("in", "Input", {"shape": [2, hw, hw]}),
             ("c0", "Conv2D", {"filters": c, **CONV}), ("b0", "BatchNorm", {}), ("r0", "ReLU", {}),
             ("c1", "Conv2D", {"filters": c, **CONV}), ("b1", "BatchNorm", {}), ("r1", "ReLU", {}),
             ("c2", "Conv2D", {"filters": c, **CONV}), ("b2", "BatchNorm", {}),
             ("add1", "Add", {}), ("o1", "ReLU", {}),
             ("c3", "Conv2D", {"filters": 2 * c, "stride": 2, **CONV}),
             ("b3", "BatchNorm", {"momentum": 0.8}), ("r3", "ReLU", {}),
             ("c4", "Conv2D", {"filters": 2 * c, **CONV}), ("b4", "BatchNorm", {}),
             ("cs", "Conv2D", {"filters": 2 * c, "kernel_size": 1, "stride": 2, "bias": False}),
             ("bs", "BatchNorm", {}),
             ("add2", "Add", {}), ("o2", "ReLU", {}),
             ("gap", "GlobalAvgPool2D", {}), ("fc", "Dense", {"units": 4}),
             ("out", "Output", {"loss": "cross_entropy"})]
    edges = [("in", "c0"), ("c0", "b0"), ("b0", "r0"), ("r0", "c1"), ("c1", "b1"), ("b1", "r1"),
             ("r1", "c2"), ("c2", "b2"), ("b2", "add1"), ("r0", "add1", 1), ("add1", "o1"),
             ("o1", "c3"), ("c3", "b3"), ("b3", "r3"), ("r3", "c4"), ("c4", "b4"),
             ("o1", "cs"), ("cs", "bs"), ("b4", "add2"), ("bs", "add2", 1), ("add2", "o2"),
             ("o2", "gap"), ("gap", "fc"), ("fc", "out")]
    return graph_doc(nodes, edges)


def plain_add_doc():
    """A residual block without BatchNorm: conv-ReLU-conv + input, ReLU."""
    nodes = [("in", "Input", {"shape": [2, 5, 5]}),
             ("c0", "Conv2D", {"filters": 2, **CONV}), ("r0", "ReLU", {}),
             ("c1", "Conv2D", {"filters": 2, **CONV}), ("add", "Add", {}), ("o", "ReLU", {}),
             ("gap", "GlobalAvgPool2D", {}), ("fc", "Dense", {"units": 3}),
             ("out", "Output", {"loss": "cross_entropy"})]
    edges = [("in", "c0"), ("c0", "r0"), ("r0", "c1"), ("in", "add"), ("c1", "add", 1),
             ("add", "o"), ("o", "gap"), ("gap", "fc"), ("fc", "out")]
    return graph_doc(nodes, edges)


DOCS = {"residual": residual_doc, "plain-add": plain_add_doc}
SHAPES = {"residual": (2, 6, 6), "plain-add": (2, 5, 5)}


def test_the_planner_fuses_batchnorm_relu_and_the_ends_of_residual_blocks():
    fused, plain = pair(residual_doc())
    kinds = {st.ids: type(st) for st in fused.steps}
    assert kinds[("b0", "r0")] is NormBlock and kinds[("b3", "r3")] is NormBlock
    assert kinds[("b2", "add1", "o1")] is NormAddBlock
    assert kinds[("b4", "add2", "o2")] is NormAddBlock  # the BatchNorm on port 0
    assert ("bs",) in kinds  # the shortcut's BatchNorm stays alone
    order = [st.ids[0] for st in fused.steps]
    assert order.index("bs") < order.index("b4")  # the block runs after both its inputs
    end = fused.plan.step_of("add2")
    assert end.srcs == ("c4", "bs") and end.ports == (0, 1)
    assert not any(st.fused for st in plain.steps)
    net = engine.compile(engine.Graph.from_dict(plain_add_doc()))
    step = net.plan.step_of("add")
    assert type(step) is AddBlock and step.ids == ("add", "o")


def test_no_fusion_of_a_three_input_add_or_a_shared_output():
    nodes = [("in", "Input", {"shape": [4]}), ("bn", "BatchNorm", {}), ("r", "ReLU", {}),
             ("add", "Add", {}), ("r2", "ReLU", {}), ("fc", "Dense", {"units": 2}),
             ("out", "Output", {"loss": "cross_entropy"})]
    edges = [("in", "bn"), ("bn", "r"), ("bn", "add"), ("r", "add", 1), ("in", "add", 2),
             ("add", "r2"), ("r2", "fc"), ("fc", "out")]
    net = engine.compile(engine.Graph.from_dict(graph_doc(nodes, edges)))
    assert not any(isinstance(st, (NormBlock, AddBlock)) for st in net.steps)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("name", sorted(DOCS))
def test_fused_residual_network_matches_the_unfused_one_in_float64(rng, train, name):
    fused, plain = pair(DOCS[name](), dtype=np.float64)
    x = rng.standard_normal((5, *SHAPES[name]))
    out_f, out_p = fused.forward(x, train=train), plain.forward(x, train=train)
    np.testing.assert_allclose(out_f, out_p, rtol=1e-12, atol=1e-12)
    assert set(fused.acts) == set(plain.acts) == set(fused.order)
    for nid in fused.order:
        np.testing.assert_allclose(fused.acts[nid], plain.acts[nid], rtol=1e-12, atol=1e-12,
                                   err_msg=nid)
    assert_same_backward(fused, plain, rng.standard_normal(out_f.shape))
    for k in plain.buffers:
        np.testing.assert_allclose(fused.buffers[k], plain.buffers[k], rtol=1e-12, err_msg=k)


def test_fused_residual_training_steps_match_in_float32(rng):
    fused, plain = pair(residual_doc(c=4, hw=8))
    x = rng.standard_normal((8, 2, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    opt_f, opt_p = engine.SGD(lr=0.05, momentum=0.9), engine.SGD(lr=0.05, momentum=0.9)
    for _ in range(3):
        lf, lp = fused.train_step(x, y, opt_f), plain.train_step(x, y, opt_p)
        assert lf == pytest.approx(lp, rel=1e-5)
    for k in plain.params:
        np.testing.assert_allclose(fused.params[k], plain.params[k], rtol=1e-4, atol=1e-5,
                                   err_msg=k)


@pytest.mark.parametrize("name", sorted(DOCS))
def test_network_gradcheck_passes_through_the_fused_residual_blocks(name):
    doc = residual_doc(c=2, hw=4) if name == "residual" else DOCS[name]()
    report = engine.gradcheck(engine.Graph.from_dict(doc), batch=3)
    assert report.worst < 1e-6, report.errors


def test_hooks_see_every_node_of_the_fused_steps(rng):
    fused, _ = pair(residual_doc())
    seen, events = [], []
    with fused.add_hook(lambda nid, out: seen.append(nid), events.append):
        fused.forward(rng.standard_normal((3, 2, 6, 6)).astype(np.float32), train=True)
        fused.backward(np.ones((3, 4), np.float32))
    assert set(seen) == set(fused.order)
    nodes = [e.nodes for e in events]
    assert ("b2", "add1", "o1") in nodes and ("b0", "r0") in nodes
    end = next(e for e in events if e.nodes == ("b2", "add1", "o1"))
    assert end.inputs == (("c2", 0), ("r0", 1))
    assert set(end.param_grads) == {"b2.weight", "b2.bias"}
    assert all(g is not None for g in end.grad_inputs)

"""Freeze and thaw: per-node ``trainable`` and ``lr_mult`` in the model file, honoured by
the optimizer and by the backward pass (a frozen node's weight gradient is not computed)."""

import itertools
import json

import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine.cost import training_cost
from engine.kernels import convgrid as kgrid
from engine.kernels import fused as kfused
from engine.optim import FLAT

MLP = [("in", "Input", {"shape": [4]}), ("d1", "Dense", {"units": 8}), ("r1", "ReLU", {}),
       ("d2", "Dense", {"units": 8}), ("r2", "ReLU", {}), ("head", "Dense", {"units": 3}),
       ("out", "Output", {"loss": "cross_entropy"})]
CNN = [("in", "Input", {"shape": [2, 8, 8]}),
       ("c1", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
       ("r1", "ReLU", {}), ("p1", "MaxPool2D", {}),
       ("c2", "Conv2D", {"filters": 4, "kernel_size": 3, "stride": 2}),
       ("bn", "BatchNorm", {}), ("f", "Flatten", {}), ("head", "Dense", {"units": 3}),
       ("out", "Output", {"loss": "cross_entropy"})]


def doc(nodes, frozen=(), mults=None):
    d = graph_doc(nodes, list(itertools.pairwise([n[0] for n in nodes])))
    for nd in d["nodes"]:
        if nd["id"] in frozen:
            nd["trainable"] = False
        if mults and nd["id"] in mults:
            nd["lr_mult"] = mults[nd["id"]]
    return d


def net_of(nodes, frozen=(), mults=None, seed=0, fuse=True):
    return engine.compile(engine.Graph.from_dict(doc(nodes, frozen, mults)), seed=seed, fuse=fuse)


def batch(nodes, n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *nodes[0][2]["shape"])).astype(np.float32)
    return x, rng.integers(0, 3, n)


def node_state(net, nid):
    return {k: v.copy() for k, v in {**net.params, **net.buffers}.items()
            if k.startswith(nid + ".") and k in net.params}


# ----- the model file ---------------------------------------------------------------------
def test_trainable_and_lr_mult_round_trip_and_default_when_absent():
    g = engine.Graph.from_dict(doc(MLP, frozen=["d1"], mults={"d2": 0.5}))
    assert not g.nodes["d1"].trainable and g.nodes["d2"].lr_mult == 0.5
    assert g.nodes["head"].trainable and g.nodes["head"].lr_mult == 1.0
    out = g.to_dict()
    nodes = {n["id"]: n for n in out["nodes"]}
    assert nodes["d1"]["trainable"] is False and "lr_mult" not in nodes["d1"]
    assert nodes["d2"]["lr_mult"] == 0.5 and "trainable" not in nodes["d2"]
    assert set(nodes["head"]) == {"id", "type", "params"}  # an older reader sees nothing new
    again = engine.Graph.from_dict(json.loads(json.dumps(out)))
    assert again == g
    plain = doc(MLP)
    assert engine.Graph.from_dict(plain).to_dict()["nodes"] == plain["nodes"]


@pytest.mark.parametrize("key,value,match", [
    ("trainable", "no", "trainable must be true or false"),
    ("trainable", 0, "trainable must be true or false"),
    ("lr_mult", -1, "lr_mult must be a number between 0 and 1e6"),
    ("lr_mult", "fast", "lr_mult must be a number"),
    ("lr_mult", float("nan"), "lr_mult must be a number"),
    ("lr_mult", True, "lr_mult must be a number"),
])
def test_bad_training_keys_are_refused_naming_the_node(key, value, match):
    d = doc(MLP)
    d["nodes"][1][key] = value
    with pytest.raises(engine.ParamError, match=match) as err:
        engine.Graph.from_dict(d)
    assert err.value.node_id == "d1"


# ----- training ---------------------------------------------------------------------------
@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_frozen_nodes_do_not_change_while_the_others_do(fuse, opt):
    for nodes, frozen in ((MLP, ["d2"]), (CNN, ["c1", "bn"])):
        net = net_of(nodes, frozen, fuse=fuse)
        before = {n: node_state(net, n) for n in ("d1", "d2", "c1", "bn", "head")
                  if n in net.layers}
        o = engine.make_optimizer({"type": opt, "lr": 0.05, "weight_decay": 0.01,
                                   **({"momentum": 0.9} if opt == "sgd" else {})})
        x, y = batch(nodes)
        for _ in range(3):
            net.train_step(x, y, o)
        for nid, state in before.items():
            for k, v in state.items():
                if nid in frozen:
                    np.testing.assert_array_equal(net.params[k], v, err_msg=k)
                elif k.endswith("weight"):
                    assert not np.array_equal(net.params[k], v), k


class KernelSpy:
    """Wraps the backward kernels and records, per call, whether it was asked for a weight
    gradient (a non-empty ``gweight``)."""

    def __init__(self, monkeypatch):
        self.calls = []
        for mod, name, at in ((kfused, "dense_backward", 7), (kfused, "dense_rows_backward", 7),
                              (kfused, "dense_small_backward", 7),
                              (kfused, "conv_block_backward", 16),
                              (kgrid, "conv_grid_backward", 14)):
            monkeypatch.setattr(mod, name, self._wrap(getattr(mod, name), name, at))

    def _wrap(self, fn, name, at):
        def spy(*args):
            self.calls.append((name, args[1].shape, args[at].shape[0] > 0))
            return fn(*args)
        return spy


def test_the_weight_gradient_of_a_frozen_node_is_not_computed(monkeypatch):
    net = net_of(CNN, ["c2", "head"])
    x, y = batch(CNN)
    for g in (net.grads["c2.weight"], net.grads["head.weight"], net.grads["head.bias"]):
        g.fill(np.nan)
    spy = KernelSpy(monkeypatch)
    events = []
    net.add_hook(on_backward=events.append)
    net.forward(x, train=True)
    net.loss_backward(net.loss(y, x)[1])
    by_weight = {shape: dw for _, shape, dw in spy.calls}
    assert by_weight == {net.params["c1.weight"].shape: True,
                         net.params["c2.weight"].shape: False,
                         net.params["head.weight"].shape: False}
    assert np.isnan(net.grads["c2.weight"]).all() and np.isnan(net.grads["head.bias"]).all()
    assert np.abs(net.grads["c1.weight"]).sum() > 0
    seen = {k for e in events for k in e.param_grads}
    assert "c2.weight" not in seen and "head.weight" not in seen and "c1.weight" in seen
    assert "(frozen)" in "\n".join(net.plan.describe())


def test_a_frozen_body_is_skipped_in_the_backward_pass(monkeypatch):
    net = net_of(CNN, ["c1", "c2", "bn"])
    x, y = batch(CNN)
    spy = KernelSpy(monkeypatch)
    events = []
    net.add_hook(on_backward=events.append)
    net.forward(x, train=True)
    net.loss_backward(net.loss(y, x)[1])
    assert [c[0] for c in spy.calls] in (["dense_backward"], ["dense_rows_backward"],
                                         ["dense_small_backward"])
    assert {e.node for e in events} == {"out", "head"}
    cost = training_cost(net)
    assert cost.nodes["c1"].weight_grad == 0 and cost.nodes["c2"].input_grad == 0
    full = training_cost(net_of(CNN))
    assert cost.saved == full.backward - cost.backward
    assert cost.saved >= sum(full.nodes[n].weight_grad + full.nodes[n].input_grad
                             for n in ("c1", "c2")) > 0
    assert "frozen c1, c2, bn (3 nodes) save" in cost.summary()


@pytest.mark.parametrize("nodes,frozen", [(MLP, ["d2"]), (CNN, ["c2", "bn"]),
                                          (CNN, ["c1", "head"])])
@pytest.mark.parametrize("fuse", [True, False])
def test_input_gradients_flow_through_frozen_layers(nodes, frozen, fuse):
    """Finite differences in float64, and the same bits as with nothing frozen."""
    net = net_of(nodes, frozen, fuse=fuse).astype(np.float64)
    free = net_of(nodes, fuse=fuse).astype(np.float64)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, *nodes[0][2]["shape"]))
    dout = rng.standard_normal((3, 3))
    net.forward(x, train=True)
    dx = net.backward(dout)
    free.forward(x, train=True)
    np.testing.assert_array_equal(dx, free.backward(dout))
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp = x.copy()
        xp[i] += eps
        up = np.sum(net.forward(xp, train=True) * dout)
        xp[i] -= 2 * eps
        num[i] = (up - np.sum(net.forward(xp, train=True) * dout)) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-8)


def test_lr_mult_one_half_gives_half_the_sgd_update():
    x, y = batch(MLP)
    half, full = net_of(MLP, mults={"d2": 0.5}), net_of(MLP)
    start = full.state_dict()
    for net in (half, full):
        net.train_step(x, y, engine.SGD(lr=0.1))
    for k in full.params:
        dh, df = half.params[k] - start[k], full.params[k] - start[k]
        if k.startswith("d2."):
            ulp = 2 * np.spacing(np.abs(start[k]).max())  # float32 rounding of p - lr·g
            np.testing.assert_allclose(dh, 0.5 * df, rtol=1e-5, atol=ulp)
            assert np.abs(df).sum() > 0
        else:
            np.testing.assert_array_equal(half.params[k], full.params[k])


def test_freezing_between_steps_keeps_weights_and_optimizer_state():
    net = net_of(MLP)
    opt = engine.Adam(lr=0.01)
    x, y = batch(MLP)
    for _ in range(3):
        net.train_step(x, y, opt)
    net.set_training("d1", trainable=False)
    assert not net.graph.nodes["d1"].trainable and net.frozen == {"d1"}
    assert not net.grads["d1.weight"].any()
    a, b = net.offsets["d1.weight"], net.offsets["d2.weight"]
    m = opt.state[FLAT]["m"][a:b].copy()
    w = net.params["d1.weight"].copy()
    for _ in range(3):
        net.train_step(x, y, opt)
    np.testing.assert_array_equal(net.params["d1.weight"], w)
    np.testing.assert_array_equal(opt.state[FLAT]["m"][a:b], m)
    net.set_training("d1", trainable=True, lr_mult=2.0)
    assert net.lr_segments() == [(0, b, 2.0), (b, net.flat_params.size, 1.0)]
    net.train_step(x, y, opt)
    assert not np.array_equal(net.params["d1.weight"], w)


def test_the_trainer_honours_frozen_nodes():
    data = engine.load_dataset("xor")
    g = engine.Graph.from_dict(doc([("in", "Input", {"shape": [2]}), *MLP[1:]], ["d1"]))
    net = engine.compile(g)
    w = net.params["d1.weight"].copy()
    engine.Trainer(net, data, {"epochs": 1, "optimizer": {"type": "adam", "lr": 0.01}}).run()
    np.testing.assert_array_equal(net.params["d1.weight"], w)

"""Weight carry-over across graph edits (engine.carry) and the identity init."""

import itertools

import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine.carry import carry_over, plan_carry
from engine.optim import FLAT

MLP = [("in", "Input", {"shape": [2]}), ("d1", "Dense", {"units": 16}), ("r1", "ReLU", {}),
       ("drop", "Dropout", {"rate": 0.2}), ("d2", "Dense", {"units": 16}), ("r2", "ReLU", {}),
       ("head", "Dense", {"units": 3}), ("out", "Output", {"loss": "cross_entropy"})]


def chain(nodes):
    """A graph of the nodes in a chain."""
    ids = [n[0] for n in nodes]
    return engine.Graph.from_dict(graph_doc(nodes, list(itertools.pairwise(ids))))


def edit(nodes, node_id, **params):
    return [(i, t, {**p, **params} if i == node_id else p) for i, t, p in nodes]


def insert_after(nodes, after, node):
    i = [n[0] for n in nodes].index(after)
    return [*nodes[:i + 1], node, *nodes[i + 1:]]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return x, y


@pytest.fixture()
def trained(data):
    """An MLP after 20 Adam steps, and its optimizer."""
    net = engine.compile(chain(MLP), seed=3)
    opt = engine.Adam(lr=0.01)
    x, y = data
    for _ in range(20):
        net.train_step(x, y, opt)
    return net, opt


def moments(opt, net, name):
    """Adam's (m, v) of one parameter of ``net``, from the optimizer's flat slots."""
    a, size = net.offsets[name], net.params[name].size
    return tuple(opt.state[FLAT][k][a:a + size].copy() for k in ("m", "v"))


def eval_loss(net, data):
    x, y = data
    net.forward(x)
    return net.loss(y, x)[0]


def test_widening_a_dense_keeps_every_other_node_bit_for_bit(trained):
    old, opt = trained
    before = {k: moments(opt, old, k) for k in old.params}
    weights = old.state_dict()
    new = engine.compile(chain(edit(MLP, "d2", units=32)), seed=3)
    report = carry_over(old, new, opt)
    assert report.kept == ["d1"]
    assert report.fate("d2").reason == "units 16→32"
    assert report.fate("head").fate == "reinitialised"
    assert report.fate("head").reason == "input (16,)→(32,)"
    assert set(report.reinitialised) == {"d2", "head"}
    for k in ("d1.weight", "d1.bias"):
        np.testing.assert_array_equal(new.params[k], weights[k])
        for was, now in zip(before[k], moments(opt, new, k)):
            np.testing.assert_array_equal(now, was)
    fresh = engine.compile(chain(edit(MLP, "d2", units=32)), seed=3)
    np.testing.assert_array_equal(new.params["d2.weight"], fresh.params["d2.weight"])
    for k in ("d2.weight", "head.weight"):
        assert not moments(opt, new, k)[0].any() and not moments(opt, new, k)[1].any()
    assert opt.state[FLAT]["m"].shape == new.flat_params.shape


def test_an_edit_that_keeps_shapes_trains_on_exactly_as_before(trained, data):
    old, opt = trained
    twin = engine.compile(chain(MLP), seed=3)
    twin.load_state_dict(old.state_dict())
    twin_opt = engine.Adam(lr=0.01)
    twin_opt.state = {FLAT: {k: v.copy() for k, v in opt.state[FLAT].items()}}
    twin_opt.t = opt.t
    moved = chain(MLP)
    moved.ui = {"d1": {"pos": [10, 20]}}
    new = engine.compile(moved, seed=3)
    report = carry_over(old, new, opt)
    assert set(report.kept) == {"d1", "d2", "head"} and not report.reinitialised
    x, y = data
    for net in (new, twin):  # the same dropout masks in both
        rng = np.random.default_rng(1)
        for layer in net.layers.values():
            layer.rng = rng
    for _ in range(3):
        assert new.train_step(x, y, opt) == twin.train_step(x, y, twin_opt)
    np.testing.assert_array_equal(new.flat_params, twin.flat_params)


def test_adding_replacing_and_removing_nodes_is_reported(trained):
    old, opt = trained
    nodes = [n for n in MLP if n[0] not in ("d2", "r2")]
    nodes = insert_after(nodes, "drop", ("d3", "Dense", {"units": 8}))
    nodes = edit(nodes, "head", units=5)
    new = engine.compile(chain(nodes), seed=3)
    report = carry_over(old, new, opt)
    assert report.added == ["d3"] and report.fate("d3").reason == "new Dense"
    assert set(report.removed) == {"d2", "r2"}
    assert report.fate("head").reason == "units 3→5"
    assert report.kept == ["d1"]
    text = "\n".join(report.lines())
    assert "head  reinitialised: units 3→5" in text and "d2  removed" in text
    assert report.to_dict()["nodes"][0] == {"node": "in", "fate": "kept", "reason": "",
                                            "weights": False}


def test_replacing_a_node_by_another_type_under_the_same_id_reinitialises_it(trained):
    old, _ = trained
    nodes = edit(MLP, "d2", units=16)
    nodes = [(i, "Tanh" if i == "r2" else t, {} if i == "r2" else p) for i, t, p in nodes]
    report = plan_carry(old, engine.compile(chain(nodes), seed=3))
    assert report.fate("r2").fate == "reinitialised"
    assert report.fate("r2").reason == "type ReLU→Tanh"


def test_changing_dropout_keeps_everything_and_the_loss(trained, data):
    old, opt = trained
    before = eval_loss(old, data)
    new = engine.compile(chain(edit(MLP, "drop", rate=0.5)), seed=3)
    report = carry_over(old, new, opt)
    assert report.fate("drop").fate == "kept" and report.fate("drop").reason == "rate 0.2→0.5"
    assert not report.reinitialised
    assert eval_loss(new, data) == before


def test_adding_batchnorm_keeps_the_rest_and_barely_moves_the_loss(trained, data):
    old, opt = trained
    before = eval_loss(old, data)
    new = engine.compile(chain(insert_after(MLP, "d1", ("bn", "BatchNorm", {}))), seed=3)
    report = carry_over(old, new, opt)
    assert report.added == ["bn"] and set(report.kept) == {"d1", "d2", "head"}
    assert eval_loss(new, data) == pytest.approx(before, rel=1e-4)


def test_batchnorm_running_statistics_are_carried(data):
    nodes = insert_after(MLP, "d1", ("bn", "BatchNorm", {}))
    old = engine.compile(chain(nodes), seed=0)
    opt = engine.SGD(lr=0.05, momentum=0.9)
    x, y = data
    for _ in range(5):
        old.train_step(x, y, opt)
    assert old.buffers["bn.running_mean"].any()
    new = engine.compile(chain(edit(nodes, "head", units=4)), seed=0)
    carry_over(old, new, opt)
    for k in ("bn.running_mean", "bn.running_var", "bn.weight"):
        src = old.buffers.get(k, old.params.get(k))
        dst = new.buffers.get(k, new.params.get(k))
        np.testing.assert_array_equal(dst, src)
    v_old = opt.state[FLAT]["v"]
    assert v_old.shape == new.flat_params.shape
    a = new.offsets["bn.weight"]
    assert v_old[a:a + 16].any()


@pytest.mark.parametrize("where", ["r1", "r2"])
def test_an_identity_dense_inserted_in_a_chain_leaves_the_loss_unchanged(trained, data, where):
    old, opt = trained
    before = eval_loss(old, data)
    nodes = insert_after(MLP, where, ("eye", "Dense", {"units": 16, "init": "identity"}))
    new = engine.compile(chain(nodes), seed=3)
    report = carry_over(old, new, opt)
    assert report.fate("eye").reason == "new Dense, starts as the identity"
    np.testing.assert_array_equal(new.params["eye.weight"], np.eye(16, dtype=np.float32))
    assert eval_loss(new, data) == pytest.approx(before, rel=1e-6, abs=1e-7)
    x, y = data
    for _ in range(20):
        new.train_step(x, y, opt)
    assert eval_loss(new, data) < before


def test_an_identity_conv_passes_images_through():
    g = chain([("in", "Input", {"shape": [3, 6, 5]}),
               ("c", "Conv2D", {"filters": 3, "kernel_size": [3, 5], "padding": "same",
                                "init": "identity"}),
               ("f", "Flatten", {}), ("out", "Output", {"loss": "mse"})])
    net = engine.compile(g)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5)).astype(np.float32)
    np.testing.assert_array_equal(net.forward(x), x.reshape(2, -1))


@pytest.mark.parametrize("layer,params,match", [
    ("Dense", {"units": 8}, "needs as many outputs as inputs"),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}, "as many outputs"),
    ("Conv2D", {"filters": 3, "kernel_size": 2, "padding": "same"}, "odd kernel"),
    ("Conv2D", {"filters": 3, "kernel_size": 3}, "padding 'same'"),
    ("Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same", "stride": 2}, "stride 1"),
])
def test_an_identity_init_that_cannot_be_the_identity_is_refused(layer, params, match):
    shape = [3, 6, 6] if layer == "Conv2D" else [3]
    nodes = [("in", "Input", {"shape": shape}), ("x", layer, {**params, "init": "identity"}),
             ("out", "Output", {"loss": "mse"})]
    with pytest.raises(engine.ShapeError, match=match) as err:
        chain(nodes)
    assert err.value.node_id == "x"


def test_carry_over_remaps_per_parameter_optimizer_state(data):
    old = engine.compile(chain(MLP), seed=1)
    opt = engine.SGD(lr=0.1, momentum=0.9)
    x, y = data
    old.forward(x, train=True)
    _, grads = old.loss(y, x)
    old.loss_backward(grads)
    opt.step(old.params, old.grads)  # the per-name path: slots keyed by parameter name
    v = opt.state["d1.weight"]["v"].copy()
    new = engine.compile(chain(edit(MLP, "head", units=4)), seed=1)
    carry_over(old, new, opt)
    assert "head.weight" not in opt.state
    np.testing.assert_array_equal(opt.state["d1.weight"]["v"], v)


def test_trainer_replace_network_keeps_weights_and_trains_on(data):
    """A Trainer paused between steps takes an edited graph's network: kept nodes carry
    their weights and Adam moments bit for bit, the widened head starts fresh, training
    goes on from the same step count and the old best weights are dropped."""
    x, y = data
    ds = engine.Dataset({"x": x, "y": y}, task="classification")
    settings = {"epochs": 3, "batch_size": 16, "val_split": 0.25,
                "optimizer": {"type": "adam", "lr": 0.01}}
    tr = engine.Trainer(engine.compile(chain(MLP), seed=3), ds, settings)
    for _ in range(6):
        tr.step_once()
    old = tr.net
    before = {k: v.copy() for k, v in old.params.items()}
    m_before = moments(tr.opt, old, "d1.weight")
    new = engine.compile(chain(edit(MLP, "d2", units=32)), seed=3)
    report = tr.replace_network(new)
    assert tr.net is new and tr.best_state is None
    assert report.fate("d2").fate == "reinitialised" and "units 16→32" in report.fate("d2").reason
    assert report.fate("head").fate == "reinitialised"  # its input widened
    np.testing.assert_array_equal(new.params["d1.weight"], before["d1.weight"])
    for a, b in zip(moments(tr.opt, new, "d1.weight"), m_before, strict=True):
        np.testing.assert_array_equal(a, b)
    step = tr.step
    tr.step_once()
    assert tr.step == step + 1
    assert not np.array_equal(new.params["d1.weight"], before["d1.weight"])


def test_trainer_replace_network_refuses_a_net_the_data_does_not_fit(data):
    x, y = data
    ds = engine.Dataset({"x": x, "y": y}, task="classification")
    tr = engine.Trainer(engine.compile(chain(MLP), seed=3), ds, {"epochs": 1, "batch_size": 16})
    tr.step_once()
    old = tr.net
    flat = old.flat_params.copy()
    wrong = engine.compile(chain(edit(MLP, "in", shape=[3])), seed=3)
    with pytest.raises(engine.NetBuilderError):
        tr.replace_network(wrong)
    assert tr.net is old
    np.testing.assert_array_equal(old.flat_params, flat)

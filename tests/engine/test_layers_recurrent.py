import itertools
import math

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.errors import ShapeError
from engine.kernels.reference import recurrent as ref
from engine.registry import get_layer_class, layers_by_category

TYPES = ("SimpleRNN", "LSTM", "GRU")
COMBOS = list(itertools.product(("forward", "backward", "bidirectional"), ("sum", "concat"),
                                (False, True)))
REF_FORWARD = {"SimpleRNN": lambda *a: ref.rnn_forward(*a),
               "LSTM": lambda *a: ref.lstm_forward(*a)[0],
               "GRU": lambda *a: ref.gru_forward(*a)[0]}


def make(type_name, in_shape=(3, 2), node_id="r1", **params):
    return get_layer_class(type_name)(node_id, params, [in_shape])


@pytest.mark.parametrize("direction, merge, seq", COMBOS)
@pytest.mark.parametrize("type_name", TYPES)
def test_gradients_every_direction_and_merge(type_name, direction, merge, seq):
    params = {"units": 3, "direction": direction, "merge": merge, "return_sequences": seq}
    report = engine.check_layer(type_name, params, [(3, 2)])
    sfx = ("", "_reverse") if direction == "bidirectional" else (
        ("_reverse",) if direction == "backward" else ("",))
    names = {f"{w}{s}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for s in sfx}
    assert set(report.errors) == {"x0"} | names
    assert report.worst < 1e-6, report.errors


@pytest.mark.parametrize("type_name", TYPES)
def test_gradients_with_a_padded_chunk(type_name):
    params = {"units": 2, "direction": "bidirectional", "merge": "concat", "return_sequences": True}
    report = engine.check_layer(type_name, params, [(4, 3)], batch=3)
    assert report.worst < 1e-6, report.errors


def expected_output(type_name, layer, params, x):
    """Direct numpy: each direction step by step with PyTorch's equations, then merged."""
    p = layer.p
    outs = []
    for sfx in layer.suffixes:
        w = [params[n + sfx] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if sfx:
            h = REF_FORWARD[type_name](x[:, ::-1], *w)
            outs.append(h[:, ::-1] if p["return_sequences"] else h[:, -1])
        else:
            h = REF_FORWARD[type_name](x, *w)
            outs.append(h if p["return_sequences"] else h[:, -1])
    if len(outs) == 1:
        return outs[0]
    return outs[0] + outs[1] if p["merge"] == "sum" else np.concatenate(outs, axis=-1)


@pytest.mark.parametrize("direction, merge, seq", COMBOS)
@pytest.mark.parametrize("type_name", TYPES)
def test_forward_matches_step_by_step_numpy(rng, type_name, direction, merge, seq):
    layer = make(type_name, (5, 3), units=4, direction=direction, merge=merge,
                 return_sequences=seq)
    params = {k: v.astype(np.float64) for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((3, 5, 3))
    y = layer.forward([x], params, train=True)
    assert y.shape == (3, *layer.out_shape)
    np.testing.assert_allclose(y, expected_output(type_name, layer, params, x), atol=1e-12)
    y32 = layer.forward([x.astype(np.float32)],
                        {k: v.astype(np.float32) for k, v in params.items()}, train=False)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, atol=2e-5)


@pytest.mark.parametrize("type_name, gates", [("SimpleRNN", 1), ("LSTM", 4), ("GRU", 3)])
def test_params_follow_pytorch_names_layouts_and_init(rng, type_name, gates):
    layer = make(type_name, (7, 5), units=6, direction="bidirectional")
    shapes = layer.param_shapes()
    assert shapes == {
        "weight_ih": (gates * 6, 5), "weight_hh": (gates * 6, 6), "bias_ih": (gates * 6,),
        "bias_hh": (gates * 6,), "weight_ih_reverse": (gates * 6, 5),
        "weight_hh_reverse": (gates * 6, 6), "bias_ih_reverse": (gates * 6,),
        "bias_hh_reverse": (gates * 6,)}
    params = layer.init_params(rng)
    bound = 1 / math.sqrt(6)
    for name, arr in params.items():
        assert arr.dtype == np.float32 and arr.shape == shapes[name]
        assert np.all(np.abs(arr) <= bound)
    values = np.concatenate([a.ravel() for a in params.values()])
    assert 0.45 * bound < values.std() < 0.7 * bound  # U(-b, b) has std b / √3
    assert set(make(type_name, (7, 5), direction="backward").param_shapes()) == {
        "weight_ih_reverse", "weight_hh_reverse", "bias_ih_reverse", "bias_hh_reverse"}
    assert layer.macs() == 2 * 7 * gates * 6 * (5 + 6)
    assert layer.type_name in [c.type_name for c in layers_by_category()["Recurrent"]]


@pytest.mark.parametrize("direction, merge, seq, want", [
    ("forward", "concat", False, (8,)),
    ("backward", "concat", True, (10, 8)),
    ("bidirectional", "sum", False, (8,)),
    ("bidirectional", "concat", False, (16,)),
    ("bidirectional", "concat", True, (10, 16)),
])
def test_output_shapes(direction, merge, seq, want):
    layer = make("LSTM", (10, 3), units=8, direction=direction, merge=merge, return_sequences=seq)
    assert layer.out_shape == want


@pytest.mark.parametrize("shape, hint", [((12,), "(12, 1)"), ((1, 28, 28), "(28, 28)"),
                                         ((2, 3, 4, 5), "(24, 5)")])
def test_non_sequence_input_says_to_reshape(shape, hint):
    with pytest.raises(ShapeError) as e:
        make("GRU", shape, node_id="gru1")
    assert e.value.node_id == "gru1"
    assert "Reshape to (T, F)" in str(e.value) and hint in str(e.value)


def test_lstm_in_a_network_learns_the_sum_of_a_sequence(rng):
    doc = chain_doc((6, 1), [("LSTM", {"units": 8}), ("Dense", {"units": 1})], loss="mse")
    net = engine.compile(engine.Graph.from_dict(doc), seed=0)
    opt = engine.Adam(lr=0.02)
    x = rng.uniform(-1, 1, (64, 6, 1)).astype(np.float32)
    y = x.sum(axis=1)
    first = net.train_step(x, y, opt)
    for _ in range(60):
        last = net.train_step(x, y, opt)
    assert last < 0.2 * first
    report = engine.gradcheck(net, batch=2)
    assert report.worst < 1e-5, report.table()


def torch_name(name):
    """weight_ih_reverse -> weight_ih_l0_reverse."""
    base = name.removesuffix("_reverse")
    return f"{base}_l0" + ("_reverse" if name != base else "")


def test_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    dy = rng.standard_normal((3, 5, 12)).astype(np.float32)
    for type_name, cls in (("SimpleRNN", torch.nn.RNN), ("LSTM", torch.nn.LSTM),
                           ("GRU", torch.nn.GRU)):
        layer = make(type_name, (5, 4), units=6, direction="bidirectional", merge="concat",
                     return_sequences=True)
        params = layer.init_params(rng)
        mod = cls(4, 6, batch_first=True, bidirectional=True)
        with torch.no_grad():
            for name, arr in params.items():
                getattr(mod, torch_name(name)).copy_(torch.from_numpy(arr))
        tx = torch.from_numpy(x).requires_grad_(True)
        out, h_n = mod(tx)
        (out * torch.from_numpy(dy)).sum().backward()
        y = layer.forward([x], params, train=True)
        np.testing.assert_allclose(y, out.detach().numpy(), atol=2e-6)
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        dx = layer.backward(dy, params, grads)[0]
        np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-5)
        for name, g in grads.items():
            np.testing.assert_allclose(g, getattr(mod, torch_name(name)).grad.numpy(), atol=1e-4,
                                       err_msg=f"{type_name} {name}")
        h_last = h_n[0] if type_name == "LSTM" else h_n
        back = make(type_name, (5, 4), units=6, direction="backward")
        rev = {k: v for k, v in params.items() if k.endswith("_reverse")}
        np.testing.assert_allclose(back.forward([x], rev, train=False),
                                   h_last[1].detach().numpy(), atol=2e-6)
        fwd = make(type_name, (5, 4), units=6)
        np.testing.assert_allclose(
            fwd.forward([x], {k: v for k, v in params.items() if k not in rev}, train=False),
            h_last[0].detach().numpy(), atol=2e-6)

"""PositionalEmbedding and SequencePool: semantics, errors, what ONNX keeps of them and
PyTorch's own forms of them imported (the contract harness checks gradients, file, ONNX,
PyTorch export and import round trips)."""

import io
import math

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.layers.sequence import PositionalEmbedding, SequencePool, sinusoid_table


def test_sinusoid_table_is_vaswanis_formula():
    t, e = 7, 6
    table = sinusoid_table(t, e)
    for pos in range(t):
        for i in range(e // 2):
            angle = pos / 10000 ** (2 * i / e)
            assert table[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-14)
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-14)
    assert sinusoid_table(4, 5).shape == (4, 5)  # an odd E ends on a sine column


def test_positions_are_added_and_learned_rows_beyond_t_get_no_gradient(rng):
    layer = PositionalEmbedding("pos", {"max_len": 10}, [(4, 3)])
    p = {"weight": rng.standard_normal((10, 3))}
    x = rng.standard_normal((2, 4, 3))
    np.testing.assert_allclose(layer.forward([x], p, True), x + p["weight"][:4])
    grads = {"weight": np.full((10, 3), 7.0)}
    dy = rng.standard_normal((2, 4, 3))
    (dx,) = layer.backward(dy, p, grads)
    np.testing.assert_array_equal(dx, dy)
    np.testing.assert_allclose(grads["weight"][:4], dy.sum(axis=0))
    assert not grads["weight"][4:].any()
    sin = PositionalEmbedding("pos", {"mode": "sinusoidal"}, [(4, 3)])
    assert sin.param_shapes() == {} and sin.init_params(rng) == {}
    np.testing.assert_allclose(sin.forward([x], {}, False), x + sinusoid_table(4, 3))


def test_too_long_a_sequence_is_refused_with_the_fix():
    with pytest.raises(engine.ShapeError, match="raise max_len to at least 9") as info:
        PositionalEmbedding("pos1", {"max_len": 8}, [(9, 4)])
    assert info.value.node_id == "pos1"
    with pytest.raises(engine.ShapeError, match=r"sequence \(T, E\)"):
        SequencePool("sp", {}, [(3, 4, 4)])


@pytest.mark.parametrize(("mode", "pick"), [("mean", lambda x: x.mean(axis=1)),
                                            ("first", lambda x: x[:, 0]),
                                            ("last", lambda x: x[:, -1])])
def test_sequence_pool_modes_and_their_gradients(rng, mode, pick):
    layer = SequencePool("sp", {"mode": mode}, [(5, 3)])
    x = rng.standard_normal((2, 5, 3))
    np.testing.assert_allclose(layer.forward([x], {}, True), pick(x))
    assert layer.out_shape == (3,)
    report = engine.check_layer("SequencePool", {"mode": mode}, [(5, 3)], batch=2)
    assert report.worst < 1e-8, report.errors


def test_onnx_keeps_the_rows_it_uses_so_import_gives_max_len_t(rng):
    pytest.importorskip("onnx")
    from engine.export import build_onnx, import_onnx

    g = engine.Graph.from_dict(chain_doc((4, 6), [("PositionalEmbedding", {"max_len": 32}),
                                                  ("SequencePool", {"mode": "last"}),
                                                  ("Dense", {"units": 3})]))
    net = engine.compile(g, seed=1)
    graph, state = import_onnx(build_onnx(net))
    pos = next(n for n in graph.nodes.values() if n.type == "PositionalEmbedding")
    assert pos.params == {"max_len": 4}
    back = engine.compile(graph)
    back.load_state_dict(state)
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x), net.predict(x), rtol=1e-6)


class _TorchSeq:
    """PyTorch modules written the way users write them."""

    @staticmethod
    def make(kind):
        torch = pytest.importorskip("torch")

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.pos = torch.nn.Parameter(torch.randn(1, 5, 4))
                self.head = torch.nn.Linear(4, 3)

            def forward(self, x):
                h = x + self.pos
                h = {"mean": lambda: h.mean(dim=1), "first": lambda: h[:, 0],
                     "last": lambda: h[:, -1]}[kind]()
                return self.head(h)

        return Model()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("kind", ["mean", "first", "last"])
def test_torchs_positions_and_pooling_import(rng, kind):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from engine.export import import_onnx

    model = _TorchSeq.make(kind).eval()
    buf = io.BytesIO()
    try:
        torch.onnx.export(model, (torch.zeros(2, 5, 4),), buf, input_names=["x"],
                          output_names=["y"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    except Exception as exc:  # the exporter needs optional packages on some installs
        pytest.skip(f"torch.onnx.export unavailable: {type(exc).__name__}")
    graph, state = import_onnx(buf.getvalue())
    types = sorted(n.type for n in graph.nodes.values())
    assert types == ["Dense", "Input", "Output", "PositionalEmbedding", "SequencePool"]
    pool = next(n for n in graph.nodes.values() if n.type == "SequencePool")
    assert pool.params.get("mode", "mean") == kind
    net = engine.compile(graph)
    net.load_state_dict(state)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.predict(x), want, rtol=1e-4, atol=1e-5)

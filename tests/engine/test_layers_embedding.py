import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.errors import DataError
from engine.registry import get_layer_class


def embedding(in_shape=(4,), node_id="emb", **params):
    return get_layer_class("Embedding")(node_id, params, [in_shape])


def test_gradient_wrt_weight():
    report = engine.check_layer("Embedding", {"vocab": 7, "dim": 3}, [(5,)])
    assert set(report.errors) == {"weight"}  # ids have no gradient
    assert report.worst < 1e-7, report.errors


def test_lookup_shapes_and_init(rng):
    layer = embedding(vocab=50, dim=8)
    assert layer.out_shape == (4, 8) and layer.param_shapes() == {"weight": (50, 8)}
    assert layer.index_range(0) == 50
    w = layer.init_params(rng)["weight"]
    assert w.dtype == np.float32 and abs(w.mean()) < 0.1 and 0.9 < w.std() < 1.1
    ids = np.array([[3, 0, 49, 3], [1, 1, 2, 7]], np.float32)
    y = layer.forward([ids], {"weight": w}, train=True)
    np.testing.assert_array_equal(y, w[ids.astype(int)])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    g = {"weight": np.full_like(w, 9.0)}
    assert layer.backward(dy, {"weight": w}, g) == [None]
    np.testing.assert_allclose(g["weight"][3], dy[0, 0] + dy[0, 3], rtol=1e-6)
    np.testing.assert_allclose(g["weight"][1], dy[1, 0] + dy[1, 1], rtol=1e-6)
    assert np.all(g["weight"][10:49] == 0)


@pytest.mark.parametrize("bad, needle", [(7.0, "outside 0 … 6"), (-1.0, "outside 0 … 6"),
                                         (2.5, "whole-number"), (np.nan, "whole-number")])
def test_bad_ids_raise_data_error_naming_the_node(bad, needle):
    layer = embedding(vocab=7, dim=2)
    ids = np.array([[1.0, 2.0, bad, 0.0]])
    with pytest.raises(DataError) as e:
        layer.forward([ids], {"weight": np.zeros((7, 2))}, train=False)
    assert needle in str(e.value) and e.value.node_id == "emb"


def test_embedding_network_trains_and_gradchecks(rng):
    doc = chain_doc((5,), [("Embedding", {"vocab": 6, "dim": 4}), ("Flatten", {}),
                           ("Dense", {"units": 3})])
    net = engine.compile(engine.Graph.from_dict(doc), seed=1)
    report = engine.gradcheck(net, batch=3)
    assert set(report.errors) >= {"n0.weight"}
    assert report.worst < 1e-5, report.table()
    x = rng.integers(0, 6, (32, 5)).astype(np.float32)
    y = x[:, 0].astype(int) % 3
    opt = engine.SGD(lr=0.5)
    first = net.train_step(x, y, opt)
    for _ in range(40):
        last = net.train_step(x, y, opt)
    assert last < 0.3 * first

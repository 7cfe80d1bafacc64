import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine.layers.merge import Add, Concat


def test_add_gradients_with_three_inputs():
    report = engine.check_layer("Add", {}, [(2, 3, 3)] * 3, batch=2)
    assert set(report.errors) == {"x0", "x1", "x2"}
    assert report.worst < 1e-7, report.errors


def test_add_sums_its_inputs(rng):
    xs = [rng.standard_normal((2, 5)).astype(np.float32) for _ in range(3)]
    layer = Add("a", {}, [(5,)] * 3)
    before = [x.copy() for x in xs]
    y = layer.forward(xs, {}, train=False)
    np.testing.assert_allclose(y, xs[0] + xs[1] + xs[2], rtol=1e-6)
    for x, b in zip(xs, before):
        np.testing.assert_array_equal(x, b)
    assert y.dtype == np.float32
    assert layer.summary() == "3 inputs"


def test_add_shape_mismatch_lists_the_shapes():
    with pytest.raises(engine.ShapeError) as info:
        Add("res", {}, [(3, 8, 8), (4, 8, 8)])
    msg = str(info.value)
    assert "Add 'res'" in msg and "(3, 8, 8) at port 0" in msg and "(4, 8, 8) at port 1" in msg
    assert info.value.node_id == "res"


@pytest.mark.parametrize(("axis", "shapes"), [
    (0, [(2, 3, 3), (1, 3, 3)]),
    (0, [(1, 2, 2), (2, 2, 2), (3, 2, 2)]),
    (1, [(2, 2, 3), (2, 1, 3)]),
    (2, [(2, 2, 1), (2, 2, 3), (2, 2, 2)]),
    (-1, [(3, 2), (3, 4)]),
    (0, [(4,), (2,), (3,)]),
])
def test_concat_gradients(axis, shapes):
    report = engine.check_layer("Concat", {"axis": axis}, shapes, batch=2)
    assert set(report.errors) == {f"x{i}" for i in range(len(shapes))}
    assert report.worst < 1e-7, report.errors


def test_concat_output_shape_and_values(rng):
    layer = Concat("c", {"axis": -2}, [(2, 3, 4), (2, 5, 4)])
    assert layer.out_shape == (2, 8, 4)
    xs = [rng.standard_normal((3, 2, 3, 4)), rng.standard_normal((3, 2, 5, 4))]
    y = layer.forward(xs, {}, train=False)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=2))
    parts = layer.backward(y, {}, {})
    for p, x in zip(parts, xs):
        np.testing.assert_array_equal(p, x)
        assert p.flags.c_contiguous
    assert layer.summary() == "axis -2, 2 inputs"


def test_concat_mismatch_names_the_axis():
    with pytest.raises(engine.ShapeError, match="axis 1 differs") as info:
        Concat("cat", {}, [(3, 8, 8), (3, 7, 8)])
    assert "(3, 7, 8) at port 1" in str(info.value)
    assert info.value.node_id == "cat"


def test_concat_needs_same_rank_and_a_valid_axis():
    with pytest.raises(engine.ShapeError, match="same number of dimensions"):
        Concat("cat", {}, [(3, 8, 8), (10,)])
    with pytest.raises(engine.ShapeError, match="use an axis from -2 to 1"):
        Concat("cat", {"axis": 2}, [(3, 4), (3, 4)])


def _branches(merge, params, units=(4, 4)):
    nodes = [("in", "Input", {"shape": [5]}),
             ("a", "Dense", {"units": units[0]}), ("b", "Dense", {"units": units[1]}),
             ("r", "ReLU", {}), ("m", merge, params), ("h", "Dense", {"units": 3}),
             ("out", "Output", {"loss": "cross_entropy"})]
    edges = [("in", "a"), ("in", "b"), ("a", "r"), ("r", "m", 0), ("b", "m", 1),
             ("in", "m", 2), ("m", "h"), ("h", "out")]
    return graph_doc(nodes, edges)


def test_merges_in_a_graph_pass_gradcheck():
    for merge, units, width in [("Add", (5, 5), 5), ("Concat", (4, 2), 11)]:
        g = engine.Graph.from_dict(_branches(merge, {}, units))
        assert g.infer_shapes()["m"] == (width,)
        report = engine.gradcheck(g, batch=3)
        assert report.worst < 1e-6, report.table()


def test_graph_diagnosis_marks_the_merge_node():
    g = engine.Graph.from_dict(_branches("Add", {}, (4, 4)), validate=False)
    with pytest.raises(engine.ShapeError, match="same shape") as info:
        g.infer_shapes()
    assert info.value.node_id == "m"

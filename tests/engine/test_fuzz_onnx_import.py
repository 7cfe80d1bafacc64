"""The ONNX importer fuzzed like the model-file loader: truncated, bit-flipped and spliced
protobufs, structural damage (absurd dimensions and attributes, renamed inputs that dangle or
close cycles, reordered, duplicated, deleted or retyped nodes), and 10,000-node graphs. Every
file imports (and the network runs) or raises NetBuilderError with a message; nothing else
escapes, and a constant that claims a huge size is refused before it is allocated.
``onnx_cases`` and ``check_onnx`` also drive benchmarks/fuzz_long.py (target "onnx")."""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import pytest
from fuzzcases import Case, load_or_refuse, refusal_and_peak_mb
from graphdocs import chain_doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine.export import build_onnx, import_onnx  # noqa: E402

HUGE = [0, 1, 2**31 - 1, 2**40, 2**62, -1, -(2**40)]
OPS = ["Relu", "Add", "Mul", "Reshape", "Transpose", "Gather", "Concat", "Squeeze",
       "Unsqueeze", "Shape", "ConstantOfShape", "Expand", "Tile", "Range", "Slice", "Cast",
       "LSTM", "GRU", "Gemm", "MatMul", "Conv", "MaxPool", "Flatten", "Identity", "Bogus"]


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model_of(nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, "fuzz", inputs, outputs,
                          initializer=[numpy_helper.from_array(np.asarray(v), k)
                                       for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.asarray(value), name))


def torch_like_lstm():
    """What torch.onnx.export writes for an LSTM classifier with a dynamic batch: the zero
    state from Shape → Gather → Unsqueeze → Concat → ConstantOfShape, h_n[-1] as a Gather."""
    rng = np.random.default_rng(0)
    h = 3
    inits = {"W": rng.normal(0, 0.3, (1, 4 * h, 2)).astype(np.float32),
             "R": rng.normal(0, 0.3, (1, 4 * h, h)).astype(np.float32),
             "B": rng.normal(0, 0.1, (1, 8 * h)).astype(np.float32),
             "fc": rng.normal(0, 0.3, (2, h)).astype(np.float32),
             "fcb": np.zeros(2, np.float32)}
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]), const("zero", np.array(0, np.int64)),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
        const("ax", np.array([0], np.int64)), helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        const("one", np.array([1], np.int64)), const("hid", np.array([h], np.int64)),
        helper.make_node("Concat", ["one", "n1", "hid"], ["hshape"], axis=0),
        helper.make_node("ConstantOfShape", ["hshape"], ["h0"],
                         value=numpy_helper.from_array(np.zeros(1, np.float32))),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["xt", "W", "R", "B", "", "h0", "h0"], ["Y", "Yh", "Yc"],
                         hidden_size=h, name="lstm"),
        const("last", np.array(-1, np.int64)),
        helper.make_node("Gather", ["Yh", "last"], ["hn"], axis=0),
        helper.make_node("Gemm", ["hn", "fc", "fcb"], ["y"], transB=1)]
    return model_of(nodes, [vi("x", ["N", 5, 2])], [vi("y", ["N", 2])], inits)


def view_cnn():
    """A CNN with ``x.view(x.size(0), -1)`` and a BatchNormalization."""
    rng = np.random.default_rng(1)
    inits = {"w": rng.normal(0, 0.3, (3, 1, 3, 3)).astype(np.float32),
             "s": np.ones(3, np.float32), "b": np.zeros(3, np.float32),
             "m": np.zeros(3, np.float32), "v": np.ones(3, np.float32),
             "fc": rng.normal(0, 0.3, (27, 2)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
             helper.make_node("MaxPool", ["bn"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Shape", ["p"], ["shp"]), const("zero", np.array(0, np.int64)),
             helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
             const("ax", np.array([0], np.int64)),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             const("rest", np.array([-1], np.int64)),
             helper.make_node("Concat", ["n1", "rest"], ["t"], axis=0),
             helper.make_node("Reshape", ["p", "t"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["y"])]
    return model_of(nodes, [vi("x", ["N", 1, 6, 6])], [vi("y", ["N", 2])], inits)


@functools.cache
def bases() -> list[bytes]:
    own = engine.Graph.from_dict(chain_doc([4, 3], [
        ("GRU", {"units": 3, "direction": "bidirectional"}), ("Dense", {"units": 2})]))
    return [torch_like_lstm().SerializeToString(), view_cnn().SerializeToString(),
            build_onnx(engine.compile(own, seed=0)).SerializeToString()]


def check_onnx(case: Case) -> str:
    """Import ``case``: "ok" (and the network compiles and runs) or "refused"."""
    outcome, result = load_or_refuse(lambda: import_onnx(case.data))
    # import_onnx relabels a stray KeyError / IndexError... as "malformed ONNX model": for
    # the fuzzer that is a Python error escaping the importer's own checks
    assert outcome == "ok" or "malformed ONNX model (" not in str(result), str(result)
    if outcome == "ok":
        graph, state = result
        shapes = graph.infer_shapes()
        if all(math.prod(s) < 100_000 for s in shapes.values()):
            net = engine.compile(graph)
            net.load_state_dict(state)
            xs = {i: np.zeros((2, *shapes[i]), np.float32) for i in graph.input_ids()}
            outcome, _ = load_or_refuse(lambda: net.forward(xs))
    return outcome


# ----- mutations ------------------------------------------------------------------------------
@st.composite
def damaged_model(draw: st.DrawFn) -> Case:
    """One base model with one structural change, serialised."""
    k = draw(st.integers(0, len(bases()) - 1))
    m = onnx.load_model_from_string(bases()[k])
    g = m.graph
    kind = draw(st.sampled_from(["dim", "attr", "rename", "swap", "duplicate", "delete",
                                 "retype", "init", "constant"]))
    nodes = list(g.node)
    node = nodes[draw(st.integers(0, len(nodes) - 1))]
    names = sorted({t for n in nodes for t in (*n.input, *n.output) if t} |
                   {i.name for i in g.initializer} | {"x", "nowhere"})
    if kind == "dim":
        vis = [*g.input, *g.output]
        v = vis[draw(st.integers(0, len(vis) - 1))]
        dims = v.type.tensor_type.shape.dim
        if len(dims):
            d = dims[draw(st.integers(0, len(dims) - 1))]
            d.Clear()
            d.dim_value = draw(st.sampled_from(HUGE))
    elif kind == "attr" and len(node.attribute):
        a = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
        if a.type == onnx.AttributeProto.INT:
            a.i = draw(st.sampled_from(HUGE))
        elif a.type == onnx.AttributeProto.INTS and len(a.ints):
            a.ints[draw(st.integers(0, len(a.ints) - 1))] = draw(st.sampled_from(HUGE))
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = draw(st.sampled_from([0.0, -1.0, 1e30, float("nan"), float("inf")]))
        elif a.type == onnx.AttributeProto.TENSOR:
            a.t.dims.append(draw(st.sampled_from(HUGE)))
    elif kind == "rename" and len(node.input):
        node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(names))
    elif kind == "swap" and len(nodes) > 1:
        i, j = draw(st.integers(0, len(nodes) - 1)), draw(st.integers(0, len(nodes) - 1))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[i])
        b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
    elif kind == "duplicate":
        g.node.append(node)
    elif kind == "delete":
        g.node.remove(node)
    elif kind == "retype":
        node.op_type = draw(st.sampled_from(OPS))
    elif kind == "init" and len(g.initializer):
        t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        change = draw(st.sampled_from(["dims", "type", "drop data"]))
        if change == "dims":
            t.dims.append(draw(st.sampled_from(HUGE)))
        elif change == "type":
            t.data_type = draw(st.sampled_from([2, 7, 8, 9, 10, 16, 17, 99]))
        else:
            t.ClearField("raw_data")
    elif kind == "constant":
        consts = [n for n in nodes if n.op_type == "Constant"]
        if consts:
            c = consts[draw(st.integers(0, len(consts) - 1))]
            value = draw(st.sampled_from([np.array([2**40, 2**40], np.int64),
                                          np.array([-5], np.int64), np.array(7, np.int64),
                                          np.zeros((0,), np.int64),
                                          np.array([1.5, -2.5], np.float32)]))
            c.attribute[0].t.CopyFrom(numpy_helper.from_array(value, c.output[0]))
    return Case(f"{kind} in base {k}", m.SerializeToString())


@st.composite
def damaged_bytes(draw: st.DrawFn) -> Case:
    raw = bases()[draw(st.integers(0, len(bases()) - 1))]
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "random"]))
    if kind == "truncate":
        return Case(kind, raw[:draw(st.integers(0, len(raw) - 1))])
    if kind == "random":
        return Case(kind, draw(st.binary(max_size=400)))
    data = bytearray(raw)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
    else:
        pos = draw(st.integers(0, len(data) - 1))
        junk = draw(st.binary(min_size=1, max_size=16))
        data[pos:pos + len(junk)] = junk
    return Case(kind, bytes(data))


def onnx_cases() -> st.SearchStrategy[Case]:
    return st.one_of(damaged_model(), damaged_bytes())


# ----- tests ----------------------------------------------------------------------------------
def test_the_unchanged_bases_import_and_run():
    for raw in bases():
        assert check_onnx(Case("base", raw)) == "ok"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=damaged_model())
def test_structurally_damaged_models_import_or_refuse(case):
    check_onnx(case)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=damaged_bytes())
def test_damaged_protobufs_import_or_refuse(case):
    check_onnx(case)


def absurd_models():
    x, y = [vi("x", ["N", 3])], [vi("y", ["N", 3])]
    big = np.array([2**20, 2**20], np.int64)
    doubling, prev = [], "c"
    for i in range(45):
        doubling.append(helper.make_node("Concat", [prev, prev], [f"c{i}"], axis=0))
        prev = f"c{i}"
    declared = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    del declared.dims[:]
    declared.dims.extend([2**20, 2**20])
    return {
        "initialiser declaring 2^40 elements": model_of(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], x, y, {}),
        "input of 2^40 elements": model_of(
            [helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 2**20, 2**20])],
            [vi("y", ["N", 2**20, 2**20])], {}),
        "ConstantOfShape of 2^40": model_of(
            [helper.make_node("ConstantOfShape", ["s"], ["e"]),
             helper.make_node("Add", ["x", "e"], ["y"])], x, y, {"s": big}),
        "Expand to 2^40": model_of(
            [helper.make_node("Expand", ["c", "s"], ["e"]),
             helper.make_node("Add", ["x", "e"], ["y"])], x, y, {"c": np.float32(1), "s": big}),
        "Tile to 2^41": model_of(
            [helper.make_node("Tile", ["c", "s"], ["e"]),
             helper.make_node("Add", ["x", "e"], ["y"])], x, y,
            {"c": np.ones(3, np.float32), "s": np.array([2**40], np.int64)}),
        "Range of 10^15": model_of(
            [helper.make_node("Range", ["a", "b", "d"], ["e"]),
             helper.make_node("Add", ["x", "e"], ["y"])], x, y,
            {"a": np.float32(0), "b": np.float32(1e15), "d": np.float32(1)}),
        "Concat doubling 45 times": model_of(
            [*doubling, helper.make_node("Add", ["x", prev], ["y"])], x, y,
            {"c": np.ones((1, 3), np.float32)}),
        "Reshape to 2^40 per sample": model_of(
            [helper.make_node("Reshape", ["x", "s"], ["y"])], x, y,
            {"s": np.array([0, 2**40], np.int64)}),
    }, declared


def test_absurd_dimensions_are_refused_before_allocating():
    models, declared = absurd_models()
    models["initialiser declaring 2^40 elements"].graph.initializer.append(declared)
    for label, m in models.items():
        raw = m.SerializeToString()
        outcome, peak = refusal_and_peak_mb(lambda raw=raw: import_onnx(raw))
        assert outcome == "refused" and peak < 128, (label, outcome, peak)


def test_cycles_and_dangling_names_are_refused():
    x, y = [vi("x", ["N", 3])], [vi("y", ["N", 3])]
    cases = [
        [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
         helper.make_node("Add", ["x", "a"], ["y"])],
        [helper.make_node("Add", ["x", "y"], ["y"])],
        [helper.make_node("Add", ["x", "nowhere"], ["y"])],
        [helper.make_node("Relu", ["x"], ["z"])],
    ]
    for nodes in cases:
        with pytest.raises(engine.NetBuilderError):
            import_onnx(model_of(nodes, x, y, {}).SerializeToString())


def chain(kind: str, n: int):
    """A graph of ``n`` nodes (or node pairs) in a row."""
    nodes, inits, prev = [], {}, "x"
    for i in range(n):
        if kind == "matmul+add":
            inits[f"w{i}"] = np.eye(3, dtype=np.float32)
            inits[f"b{i}"] = np.zeros(3, np.float32)
            nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
                      helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
        elif kind == "view":
            nodes += [helper.make_node("Shape", [prev], [f"s{i}"]),
                      helper.make_node("Reshape", [prev, f"s{i}"], [f"a{i}"])]
        else:
            nodes.append(helper.make_node(kind, [prev], [f"a{i}"]))
        prev = f"a{i}"
    nodes[-1].output[0] = "y"
    return model_of(nodes, [vi("x", ["N", 3])], [vi("y", ["N", 3])], inits)


def seconds(m) -> float:
    raw = m.SerializeToString()
    best = math.inf
    for _ in range(2):
        t0 = time.perf_counter()
        outcome, _ = load_or_refuse(lambda: import_onnx(raw))
        best = min(best, time.perf_counter() - t0)
    assert outcome == "ok"
    return best


@pytest.mark.parametrize("kind,n", [("Relu", 10_000), ("Sigmoid", 10_000),
                                    ("matmul+add", 5_000), ("view", 5_000)])
def test_10000_node_graphs_import_in_time_linear_in_their_size(kind, n):
    """A tenth of the graph takes about a tenth of the time (quadratic work would be a
    hundredth): the importer, its rewrite pass and the graph checks scan no list per node."""
    small, big = seconds(chain(kind, n // 10)), seconds(chain(kind, n))
    assert big < 40 * max(small, 0.01), (small, big)

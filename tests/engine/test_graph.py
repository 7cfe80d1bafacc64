"""Graph format round trips and one test for each validation error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from graphdocs import chain_doc, graph_doc

import engine
from engine import (
    CycleError,
    GraphFormatError,
    GraphStructureError,
    ModelTooLargeError,
    NetBuilderError,
    ParamError,
    ShapeError,
    UnknownLayerError,
)


def mlp_doc(**extra):
    return graph_doc(
        [("in", "Input", {"shape": [4]}), ("fc1", "Dense", {"units": 8}),
         ("fc2", "Dense", {"units": 3}), ("out", "Output", {})],
        [("in", "fc1"), ("fc1", "fc2"), ("fc2", "out")], **extra)


def test_round_trip_through_dict_and_file(tmp_path):
    doc = mlp_doc(ui={"in": {"pos": [0, 0]}}, training={"dataset": "xor", "epochs": 3})
    g = engine.Graph.from_dict(doc)
    path = tmp_path / "m.json"
    engine.save_graph(g, path)
    again = engine.load_graph(path)
    assert again == g
    assert again.to_dict() == g.to_dict()
    assert again.ui == {"in": {"pos": [0, 0]}}
    assert again.training["epochs"] == 3
    assert json.loads(path.read_text())["format"] == "netbuilder.graph"


def test_defaults_stay_implicit_in_the_file():
    g = engine.Graph.from_dict(mlp_doc())
    assert g.to_dict()["nodes"][1]["params"] == {"units": 8}


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    g = engine.Graph.from_dict(mlp_doc())
    path = tmp_path / "m.json"
    engine.save_graph(g, path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    g.name = "changed"
    with pytest.raises(OSError):
        engine.save_graph(g, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.json"]


def test_infer_shapes_per_node():
    shapes = engine.Graph.from_dict(mlp_doc()).infer_shapes()
    assert shapes == {"in": (4,), "fc1": (8,), "fc2": (3,), "out": (3,)}


def test_malformed_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"format": "netbuilder.graph", "nodes": [')
    with pytest.raises(GraphFormatError, match="not valid JSON"):
        engine.load_graph(p)


def test_not_utf8(tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GraphFormatError, match="UTF-8"):
        engine.load_graph(p)


def test_missing_file(tmp_path):
    with pytest.raises(GraphFormatError, match="no such model file"):
        engine.load_graph(tmp_path / "nope.json")


def test_wrong_format():
    doc = mlp_doc()
    doc["format"] = "keras"
    with pytest.raises(GraphFormatError, match="not a NetBuilder model"):
        engine.Graph.from_dict(doc)


def test_newer_version():
    doc = mlp_doc()
    doc["version"] = 99
    with pytest.raises(GraphFormatError, match="newer"):
        engine.Graph.from_dict(doc)


def test_unknown_type_names_the_node():
    doc = mlp_doc()
    doc["nodes"][1]["type"] = "Densee"
    with pytest.raises(UnknownLayerError, match="Densee") as exc:
        engine.Graph.from_dict(doc)
    assert exc.value.node_id == "fc1"


def test_unknown_param():
    doc = mlp_doc()
    doc["nodes"][1]["params"]["unitz"] = 3
    with pytest.raises(ParamError, match="unknown param 'unitz'") as exc:
        engine.Graph.from_dict(doc)
    assert exc.value.node_id == "fc1"


@pytest.mark.parametrize("value", [0, -3, 10**9, 2.5, "many", True, None])
def test_out_of_range_or_wrong_kind_param(value):
    doc = mlp_doc()
    doc["nodes"][1]["params"]["units"] = value
    with pytest.raises(ParamError) as exc:
        engine.Graph.from_dict(doc)
    assert exc.value.node_id == "fc1"
    assert "units" in str(exc.value)


def test_bad_choice_lists_the_choices():
    doc = mlp_doc()
    doc["nodes"][3]["params"]["loss"] = "hinge"
    with pytest.raises(ParamError, match="'cross_entropy', 'mse', 'bce'"):
        engine.Graph.from_dict(doc)


def test_duplicate_id():
    doc = mlp_doc()
    doc["nodes"][2]["id"] = "fc1"
    with pytest.raises(GraphStructureError, match="duplicate node id 'fc1'"):
        engine.Graph.from_dict(doc)


def test_edge_to_missing_node():
    doc = mlp_doc()
    doc["edges"].append({"src": "fc2", "dst": "ghost"})
    with pytest.raises(GraphStructureError, match="no node named 'ghost'"):
        engine.Graph.from_dict(doc)


def test_edge_to_missing_port():
    doc = mlp_doc()
    doc["edges"][1]["port"] = 1
    with pytest.raises(GraphStructureError, match="no input port 1") as exc:
        engine.Graph.from_dict(doc)
    assert exc.value.node_id == "fc2"


def test_two_edges_into_one_port():
    doc = mlp_doc()
    doc["edges"].append({"src": "in", "dst": "fc2"})
    with pytest.raises(GraphStructureError, match="already fed by 'fc1'") as exc:
        engine.Graph.from_dict(doc)
    assert exc.value.node_id == "fc2"


def test_unconnected_required_input():
    doc = mlp_doc()
    doc["edges"] = [e for e in doc["edges"] if e["dst"] != "fc2"]
    with pytest.raises(GraphStructureError, match="nothing connected") as exc:
        engine.Graph.from_dict(doc)
    assert exc.value.node_id == "fc2"
    g = engine.Graph.from_dict(doc, validate=False)
    diag = g.diagnose()
    assert set(diag.errors) == {"fc2"}
    assert "fc1" in diag.shapes


def test_cycle_is_refused_with_its_nodes():
    doc = graph_doc(
        [("in", "Input", {"shape": [4]}), ("a", "Dense", {"units": 4}),
         ("b", "Dense", {"units": 4}), ("out", "Output", {"loss": "mse"})],
        [("in", "a"), ("a", "b"), ("b", "out")])
    g = engine.Graph.from_dict(doc)
    with pytest.raises(CycleError, match="cycle"):
        g.connect("b", "a", 0)
    # a cycle written into a file is found too
    g.edges.append(engine.Edge("b", "a", 1))
    assert set(g.find_cycle()) == {"a", "b"}
    with pytest.raises(CycleError) as exc:
        g.topological_order()
    assert set(exc.value.cycle) == {"a", "b"}


def test_self_loop():
    g = engine.Graph.from_dict(mlp_doc())
    with pytest.raises(GraphStructureError):
        g.connect("fc1", "fc1", 0)


def test_no_input():
    doc = graph_doc([("fc", "Dense", {}), ("out", "Output", {})], [("fc", "out")])
    with pytest.raises(GraphStructureError, match="no Input"):
        engine.Graph.from_dict(doc)


def test_no_output():
    doc = graph_doc([("in", "Input", {"shape": [3]}), ("fc", "Dense", {})], [("in", "fc")])
    with pytest.raises(GraphStructureError, match="no Output"):
        engine.Graph.from_dict(doc)


def test_shape_error_names_the_node_where_shapes_stop_fitting():
    doc = chain_doc([16, 5, 5], [("Dense", {"units": 10})])
    with pytest.raises(ShapeError) as exc:
        engine.Graph.from_dict(doc)
    assert exc.value.node_id == "n0"
    assert str(exc.value) == ("Dense 'n0' expects a flat input, got (16, 5, 5): add a Flatten")


def test_absurd_sizes_are_refused_with_their_size():
    doc = chain_doc([1_000_000], [("Dense", {"units": 1_000_000})])
    with pytest.raises(ModelTooLargeError, match=r"parameters.*this machine has"):
        engine.Graph.from_dict(doc)


def test_too_many_elements_per_sample():
    doc = chain_doc([100_000, 100_000], [("Flatten", {})])
    with pytest.raises(ModelTooLargeError, match="elements per sample"):
        engine.Graph.from_dict(doc)


def test_errors_are_value_errors_with_node_ids():
    assert issubclass(NetBuilderError, ValueError)
    err = ShapeError("x", "n1")
    assert err.node_id == "n1"


def test_rename_keeps_wires():
    g = engine.Graph.from_dict(mlp_doc(ui={"fc1": {"pos": [1, 2]}}))
    g.rename_node("fc1", "hidden")
    assert {(e.src, e.dst) for e in g.edges} == {("in", "hidden"), ("hidden", "fc2"),
                                                 ("fc2", "out")}
    assert g.ui["hidden"] == {"pos": [1, 2]}
    g.validate()


def test_topological_order_is_stable_and_respects_edges():
    g = engine.Graph.from_dict(mlp_doc())
    assert g.topological_order() == ["in", "fc1", "fc2", "out"]


def test_engine_imports_without_qt():
    code = "import sys; sys.modules['PySide6'] = None; import engine; engine.layer_types()"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_engine_imports_and_caches_kernels_without_qt_or_platformdirs(tmp_path):
    code = ("import sys, os\n"
            "for m in ('PySide6', 'shiboken6', 'pyqtgraph', 'platformdirs'): sys.modules[m] = None\n"
            "import engine\n"
            "print(os.environ['NUMBA_CACHE_DIR'])\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert Path(out).parent == tmp_path / "netbuilder" / "numba" and Path(out).is_dir()


@pytest.mark.parametrize("value", [2, [2], (2,)])
def test_one_number_is_a_one_dimensional_shape(value):
    doc = mlp_doc()
    doc["nodes"][0]["params"]["shape"] = value
    g = engine.Graph.from_dict(doc)
    assert g.infer_shapes()["in"] == (2,)
    spec = engine.get_layer_class("Input").spec("shape")
    assert spec.to_json(spec.coerce(value)) == [2]
    with pytest.raises(ParamError, match="list of sizes"):
        spec.coerce("2")


def test_a_model_file_with_a_cycle_or_a_doubly_fed_port_is_refused_naming_the_nodes():
    nodes = [("in", "Input", {"shape": [4]}), ("a", "Dense", {"units": 4}),
             ("b", "Dense", {"units": 4}), ("out", "Output", {"loss": "mse"}),
             ("add", "Add", {})]
    with pytest.raises(CycleError, match=r"add -> b -> add|b -> add -> b") as exc:
        engine.Graph.from_dict(graph_doc(nodes, [("in", "a"), ("a", "add"), ("b", "add", 1),
                                                 ("add", "b"), ("b", "out")]), validate=False)
    assert set(exc.value.cycle) == {"add", "b"}
    with pytest.raises(GraphStructureError, match="input port 0 of Dense 'b' is already fed"):
        engine.Graph.from_dict(graph_doc(nodes, [("in", "a"), ("a", "b"), ("in", "b"),
                                                 ("b", "out")]), validate=False)

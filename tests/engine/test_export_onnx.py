"""ONNX export: every layer type and example model runs in onnxruntime and matches the
engine's forward; names, dynamic batch, metadata, refusals and the CLI command."""
import json

import numpy as np
import pytest
from exportcases import CASES, all_cases, as_dict, compiled, example_docs, inputs_for, rel_err

import engine
from engine import cli

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from engine.export import ExportError, build_onnx, describe_onnx, export_onnx  # noqa: E402
from engine.export.onnx_export import OPSET  # noqa: E402
from engine.layers.activation import Tanh  # noqa: E402

TOL = 1e-4


def run_ort(model, xs):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, xs)))


def check_matches_engine(net, batch=3, seed=0):
    model = build_onnx(net)
    xs = inputs_for(net, batch, seed)
    want = as_dict(net.forward(xs if len(xs) > 1 else next(iter(xs.values()))), net)
    got = run_ort(model, xs)
    assert set(got) == set(want)
    for oid, ref in want.items():
        assert rel_err(got[oid], ref) < TOL, oid
    return model


def test_every_registered_layer_type_has_an_onnx_mapping_and_test_cases():
    types = engine.layer_types()
    assert not [t for t, cls in types.items() if not cls.capabilities().onnx_export], \
        "layer types with no ONNX converter"
    assert not [t for t in types if t not in CASES], "layer types with no export test case"


@pytest.mark.parametrize("type_name,case,doc", all_cases(),
                         ids=[f"{t}-{c}" for t, c, _ in all_cases()])
def test_layer_matches_engine_in_onnxruntime(type_name, case, doc):
    net = compiled(doc)
    model = check_matches_engine(net)
    assert model.opset_import[0].version == OPSET


@pytest.mark.parametrize("name,doc", example_docs(), ids=[n for n, _ in example_docs()])
def test_example_model_matches_engine_in_onnxruntime(name, doc):
    check_matches_engine(compiled(doc), batch=2)


def test_names_dynamic_batch_and_weights_as_initialisers(tmp_path):
    net = compiled(CASES["Output"][2][1])
    report = export_onnx(net, tmp_path / "m.onnx")
    model = onnx.load(tmp_path / "m.onnx")
    assert report["bytes"] == (tmp_path / "m.onnx").stat().st_size
    assert [i.name for i in model.graph.input] == ["in"]
    assert [o.name for o in model.graph.output] == ["out_cls", "out_reg"]
    for vi in [*model.graph.input, *model.graph.output]:
        assert vi.type.tensor_type.shape.dim[0].dim_param == "N"
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for key, arr in net.params.items():
        assert np.array_equal(inits[key], arr), key
    for batch in (1, 7):
        check_matches_engine(net, batch=batch, seed=batch)
    meta = {p.key: p.value for p in model.metadata_props}
    heads = json.loads(meta["netbuilder.outputs"])
    assert heads["out_reg"] == {"loss": "mse", "weight": 0.5, "target": "size", "source": "reg"}
    assert model.producer_name == "netbuilder"


def test_softmax_before_cross_entropy_stays_in_the_graph():
    net = compiled(CASES["Softmax"][2][1])
    model = check_matches_engine(net)
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Softmax", "Identity"]
    probs = run_ort(model, inputs_for(net))["out"]
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_mappings_use_the_documented_ops():
    ops = {}
    for t, cid, doc in all_cases():
        ops[(t, cid)] = [n.op_type for n in build_onnx(compiled(doc)).graph.node]
    assert ops[("Dense", "vector")][0] == "Gemm"
    assert ops[("Dense", "sequence")][:2] == ["MatMul", "Add"]
    assert ops[("HardTanh", "vector")][0] == "Clip"
    assert ops[("Swish", "beta")][:3] == ["Mul", "Sigmoid", "Mul"]
    assert ops[("BatchNorm", "sequence")][:3] == ["Transpose", "BatchNormalization", "Transpose"]
    assert ops[("GlobalAvgPool2D", "image")][:2] == ["GlobalAveragePool", "Flatten"]
    if ("LSTM", "bidirectional-last-sum") in ops:
        assert ops[("LSTM", "bidirectional-last-sum")][:4] == ["Transpose", "LSTM", "Transpose",
                                                                "ReduceSum"]
        assert "GRU" in ops[("GRU", "forward-seq-sum")]
    if ("Embedding", "ids") in ops:
        assert ops[("Embedding", "ids")][:2] == ["Cast", "Gather"]
    if ("SpatialTransformer", "loc-net") in ops:
        assert "GridSample" in ops[("SpatialTransformer", "loc-net")]
    conv = build_onnx(compiled(CASES["Conv2D"][1][1])).graph.node[0]
    pads = next(a for a in conv.attribute if a.name == "pads").ints
    assert list(pads) == [0, 0, 1, 1]  # even kernel, "same": the extra row/column goes bottom/right


def test_gru_uses_pytorch_reset_placement():
    if "GRU" not in engine.layer_types():
        pytest.skip("no GRU layer")
    model = build_onnx(compiled(CASES["GRU"][0][1]))
    gru = next(n for n in model.graph.node if n.op_type == "GRU")
    assert {a.name: a.i for a in gru.attribute}["linear_before_reset"] == 1


def test_unmapped_layer_type_is_refused_naming_the_nodes(monkeypatch):
    monkeypatch.setattr(Tanh, "to_onnx", engine.Layer.to_onnx)
    assert Tanh.capabilities().missing() == ["no ONNX export"]
    doc = CASES["Output"][2][1]
    with pytest.raises(ExportError) as err:
        build_onnx(engine.Graph.from_dict(doc))
    assert "Tanh 'r'" in str(err.value) and err.value.node_id == "r"
    assert isinstance(err.value, engine.NetBuilderError)


def test_describe_lists_io_and_nodes():
    text = describe_onnx(build_onnx(engine.load_graph(example_docs_path("lenet5"))))
    assert "input  in: float[N×1×28×28]" in text
    assert "Conv" in text and "MaxPool" in text and "Gemm" in text


def example_docs_path(stem):
    from exportcases import EXAMPLES
    return next(p for p in EXAMPLES if p.stem == stem)


def test_cli_export_onnx(tmp_path, capsys):
    path = tmp_path / "lenet.onnx"
    code = cli.main(["export", str(example_docs_path("lenet5")), "--format", "onnx", "-o",
                     str(path)])
    assert code == 0, capsys.readouterr().err
    assert "lenet.onnx" in capsys.readouterr().out
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["in"]


def test_cli_export_refuses_unknown_format(tmp_path, capsys):
    code = cli.main(["export", str(example_docs_path("lenet5")), "--format", "tflite", "-o",
                     str(tmp_path / "x")])
    assert code == 2
    assert "tflite" in capsys.readouterr().err


def test_export_of_a_trained_bundle_keeps_weights_and_preprocessing(tmp_path):
    net = compiled(CASES["Dense"][0][1])
    path = tmp_path / "m.nbmodel"
    engine.save_bundle(path, net, preprocess={"mode": "scale", "min": 0.0, "max": 2.0})
    bundle = engine.load_bundle(path)
    model = build_onnx(bundle)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["netbuilder.preprocess"])["mode"] == "scale"
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert np.array_equal(inits["n0.weight"], net.params["n0.weight"])


def test_engine_imports_and_writes_pytorch_code_without_onnx_or_torch(tmp_path):
    import subprocess
    import sys
    code = (
        "import sys\n"
        "for m in ('onnx', 'onnxruntime', 'torch'):\n"
        "    sys.modules[m] = None\n"
        "import engine, engine.cli\n"
        "from engine.export import ExportError, export_onnx, export_pytorch\n"
        "g = engine.load_graph(sys.argv[1])\n"
        "export_pytorch(g, sys.argv[2])\n"
        "try:\n"
        "    export_onnx(g, sys.argv[3])\n"
        "except ExportError as exc:\n"
        "    print('refused:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(example_docs_path("lenet5")),
                           str(tmp_path / "l.py"), str(tmp_path / "l.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused: this needs the 'onnx' package, which NetBuilder installs with it but " \
        "which is missing here: pip install onnx" in proc.stdout
    assert (tmp_path / "l.py").exists() and not (tmp_path / "l.onnx").exists()

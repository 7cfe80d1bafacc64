"""PyTorch export: the generated module gives the engine's outputs, one training step gives
the engine's loss and updated weights, and the script trains on its own (and under torchrun)."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from exportcases import (
    CASES,
    EXAMPLES,
    STOCHASTIC,
    all_cases,
    as_dict,
    compiled,
    example_docs,
    inputs_for,
    rel_err,
    targets_for,
)
from graphdocs import graph_doc

import engine
from engine import cli
from engine.export import export_pytorch, pytorch_source
from engine.export.pytorch_export import MODULE_ATTRS, class_name

torch = pytest.importorskip("torch")

TOL = 1e-4
_count = [0]


def generate(net, folder, stem="model", data=None):
    """Export ``net`` and import the script as a fresh module."""
    _count[0] += 1
    folder = folder / f"export{_count[0]}"
    folder.mkdir()
    report = export_pytorch(net, folder / f"{stem}.py", data=data)
    spec = importlib.util.spec_from_file_location(f"nb_generated_{_count[0]}", report["script"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    classes = [v for v in vars(mod).values() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and v.__module__ == mod.__name__]
    # the model's class (the others, if any, are its blocks' classes)
    cls = next((v for v in classes if v.__name__ == class_name(net.graph.name)), classes[0])
    return mod, mod.load_weights(cls()), report


def field_names(net):
    return ["x"] if len(net.input_ids) == 1 else list(net.input_ids)


def torch_batch(net, xs, ys):
    batch = {f: torch.from_numpy(xs[i]) for f, i in zip(field_names(net), net.input_ids)}
    batch.update({k: torch.from_numpy(np.asarray(v)) for k, v in ys.items()})
    return batch


def engine_x(xs):
    return xs if len(xs) > 1 else next(iter(xs.values()))


def torch_state(mod, model):
    """The module's weights by NetBuilder names."""
    names = {v: k for k, v in mod.STATE_KEYS.items()}
    return {names.get(k, k): v.detach().numpy() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def check_forward(net, tmp_path, batch=3):
    mod, model, _ = generate(net, tmp_path)
    model.eval()
    xs = inputs_for(net, batch)
    want = as_dict(net.forward(engine_x(xs)), net)
    with torch.no_grad():
        got = model(*[torch.from_numpy(xs[i]) for i in net.input_ids])
    got = got if isinstance(got, dict) else {net.output_ids[0]: got}
    for oid, ref in want.items():
        assert rel_err(got[oid].numpy(), ref) < TOL, oid
    return mod, model


def check_train_step(doc, tmp_path, batch=4, lr=0.1):
    net = compiled(doc)
    mod, model, _ = generate(net, tmp_path)
    xs, ys = inputs_for(net, batch, seed=5), targets_for(net, batch, seed=6)
    loss_engine = net.train_step(engine_x(xs), ys, engine.SGD(lr=lr))
    batch = torch_batch(net, xs, ys)
    if net.params:
        loss_torch = mod.train_step(model, batch, torch.optim.SGD(model.parameters(), lr=lr))
    else:  # nothing to update: compare the losses
        model.train()
        out = model(*[batch[f] for f in field_names(net)], loss_inputs=True)
        loss_torch = float(mod.compute_loss(out, batch))
    assert abs(loss_torch - loss_engine) <= TOL * max(1.0, abs(loss_engine))
    got = torch_state(mod, model)
    for key, arr in {**net.params, **net.buffers}.items():
        assert rel_err(got[key], arr) < TOL, key


def test_every_registered_layer_type_has_an_emitter():
    pytorch_source(engine.Graph.from_dict(CASES["Dense"][0][1]))
    assert not [t for t, cls in engine.layer_types().items()
                if not cls.capabilities().pytorch_export]


@pytest.mark.parametrize("type_name,case,doc", all_cases(),
                         ids=[f"{t}-{c}" for t, c, _ in all_cases()])
def test_layer_forward_matches_engine(type_name, case, doc, tmp_path):
    check_forward(compiled(doc), tmp_path)


@pytest.mark.parametrize("type_name,case,doc",
                         [c for c in all_cases() if (c[0], c[1]) not in STOCHASTIC],
                         ids=[f"{t}-{c}" for t, c, _ in all_cases() if (t, c) not in STOCHASTIC])
def test_layer_training_step_matches_engine(type_name, case, doc, tmp_path):
    check_train_step(doc, tmp_path)


@pytest.mark.parametrize("name,doc", example_docs(), ids=[n for n, _ in example_docs()])
def test_example_model_forward_and_training_step(name, doc, tmp_path):
    check_forward(compiled(doc), tmp_path, batch=2)
    check_train_step(doc, tmp_path)


def test_state_dict_keys_are_our_parameter_names(tmp_path):
    net = compiled(CASES["BatchNorm"][2][1])
    _, model, report = generate(net, tmp_path)
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(net.state_dict())
    with np.load(report["weights"], allow_pickle=False) as f:
        assert set(f.files) == set(net.state_dict())


def test_awkward_node_ids_become_valid_python(tmp_path):
    doc = graph_doc(
        [("in", "Input", {"shape": [4]}), ("train", "Dense", {"units": 3}),
         ("my-node", "Dense", {"units": 3}), ("class", "ReLU", {}),
         ("forward", "BatchNorm", {}), ("_x", "Dense", {"units": 2}),
         ("out", "Output", {"loss": "cross_entropy"})],
        [("in", "train"), ("train", "my-node"), ("my-node", "class"), ("class", "forward"),
         ("forward", "_x"), ("_x", "out")], name="odd names")
    net = compiled(doc)
    mod, model = check_forward(net, tmp_path)
    assert mod.STATE_KEYS["train.weight"] != "train.weight"
    assert "my-node.weight" in model.state_dict()
    check_train_step(doc, tmp_path)


def test_module_attribute_list_is_complete():
    reserved = {n for n in dir(torch.nn.Module()) if not n.startswith("_")}
    assert reserved <= MODULE_ATTRS, reserved - MODULE_ATTRS


def test_generated_code_is_standalone_and_readable():
    net = compiled(CASES["Output"][2][1])
    src = pytorch_source(net, "multitask.npz")
    assert not re.search(r"^\s*(import|from)\s+(engine|netbuilder)\b", src, re.M)
    compile(src, "multitask.py", "exec")
    assert "class Multitask(nn.Module):" in src
    assert "self.cls = nn.Linear(5, 3, bias=True)" in src
    assert "def forward(self, in_: torch.Tensor, loss_inputs: bool = False):" in src
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if Path(ruff).exists():
        proc = subprocess.run([ruff, "check", "--isolated", "--select", "E,F,W",
                               "--line-length", "110", "--stdin-filename", "multitask.py", "-"],
                              input=src, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


def test_hard_sigmoid_is_the_catalogue_formula_not_torchs():
    src = pytorch_source(engine.Graph.from_dict(CASES["HardSigmoid"][0][1]))
    assert "torch.clamp(0.25 * in_ + 0.5, 0.0, 1.0)" in src
    assert "nn.Hardsigmoid(" not in src and "F.hardsigmoid" not in src


def _small_data(net, path, n=24):
    xs, ys = inputs_for(net, n, seed=2), targets_for(net, n, seed=3)
    np.savez(path, x=xs["in"], **ys, x_test=xs["in"][:8], **{f"{k}_test": v[:8]
                                                             for k, v in ys.items()})


@pytest.mark.slow
def test_script_trains_on_an_npz_as_one_process(tmp_path):
    net = compiled(CASES["Output"][2][1])
    export_pytorch(net, tmp_path / "multi.py")
    _small_data(net, tmp_path / "data.npz")
    proc = subprocess.run([sys.executable, str(tmp_path / "multi.py"), "--data",
                           str(tmp_path / "data.npz"), "--epochs", "2", "--batch-size", "8"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 process(es)" in proc.stdout and "epoch 2/2" in proc.stdout
    assert "test_acc" in proc.stdout
    trained = dict(np.load(tmp_path / "multi_trained.npz", allow_pickle=False))
    back = engine.compile(net.graph)
    back.load_state_dict(trained)  # the names fit NetBuilder again
    assert any(not np.array_equal(trained[k], v) for k, v in net.params.items())


@pytest.mark.slow
def test_script_trains_data_parallel_under_torchrun(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    net = compiled(CASES["Dense"][0][1])
    export_pytorch(net, tmp_path / "mlp.py")
    _small_data(net, tmp_path / "data.npz")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Gloo's teardown in torch 2.13 now and then aborts a rank after the run is over
    # ("terminate called without an active exception"; seen once in a loaded CI run, never
    # alone): that one crash gets a second, clean run; any other failure fails at once.
    for attempt in range(2):
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               "--nproc-per-node", "2", str(tmp_path / "mlp.py"), "--data",
                               str(tmp_path / "data.npz"), "--epochs", "2", "--batch-size",
                               "4"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env=env)
        if proc.returncode == 0 or attempt or \
                "terminate called without an active exception" not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout and "epoch 2/2" in proc.stdout
    assert (tmp_path / "mlp_trained.npz").exists()


def test_cli_export_pytorch_with_its_dataset(tmp_path, capsys):
    model = next(p for p in EXAMPLES if p.stem == "digits_cnn")
    code = cli.main(["export", str(model), "--format", "pytorch", "-o",
                     str(tmp_path / "digits.py"), "--data", "digits"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "torchrun" in out
    for name in ("digits.py", "digits.npz", "digits_data.npz"):
        assert (tmp_path / name).exists(), name
    with np.load(tmp_path / "digits_data.npz", allow_pickle=False) as f:
        assert f["x"].shape[1:] == (1, 8, 8) and "y" in f.files


def test_any_model_name_gives_valid_code():
    doc = dict(CASES["Dense"][0][1])
    doc["name"] = 'He said """hi""" \\ and\nleft'
    src = pytorch_source(engine.Graph.from_dict(doc))
    compile(src, "odd.py", "exec")
    assert "class HeSaidHiAndLeft(nn.Module):" in src


def test_class_names_are_the_head_of_a_sentence_name():
    """The shipped examples' names are sentences: the script's class is named after the head
    (a 100-letter class name came out of transformer_sort's)."""
    from engine.resources import example_names, example_path
    assert class_name("Transformer: two pre-norm blocks (LayerNorm → attention) sort") == \
        "Transformer"
    assert class_name("LeNet-5") == "LeNet5" and class_name("digits cnn") == "DigitsCnn"
    assert class_name("Conv1D filters sliding along noisy sines (T=50)") == \
        "Conv1DFiltersSlidingAlongNoisySines"
    assert class_name("(x) odd") == "XOdd" and class_name("") == "Model"
    assert class_name("3 layers") == "Model3Layers"
    assert all(len(class_name(engine.load_graph(example_path(n)).name)) <= 40
               for n in example_names())

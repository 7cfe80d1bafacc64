"""The command line: engine.cli.main return codes and output, and netbuilder.cli routing."""

import io
import json
import subprocess
import sys
import types

import pytest
from graphdocs import chain_doc

import engine
from engine import cli
from engine import resources as engine_resources
from engine.resources import example_path
from engine.training import BatchEvent, EpochEvent

XOR = str(example_path("xor_mlp"))


def run(argv, capsys=None):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def write_model(tmp_path, layers, shape=(2,), training=None, name="m.json"):
    doc = chain_doc(shape, layers)
    doc["training"] = training or {"dataset": "moons", "epochs": 2}
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_train_xor_example_reaches_100_percent_and_saves_a_bundle(tmp_path):
    code, out, err = run(["train", XOR, "--out", str(tmp_path / "run")])
    assert code == 0, err
    assert "test accuracy 100.00%" in out
    bundle = tmp_path / "run" / "xor_mlp.nbmodel"
    assert f"saved {bundle}" in out
    b = engine.load_bundle(bundle)
    assert b.manifest["metrics"]["test_accuracy"] == 1.0
    assert b.manifest["dataset"]["name"] == "xor"
    assert b.manifest["training"]["epochs"] == b.graph.training["epochs"]
    assert len(b.history["epoch"]) == b.graph.training["epochs"]
    assert err.count("\n") == b.graph.training["epochs"]  # one line per epoch, no \r off a tty
    assert "\r" not in err and "val_acc" in err
    # a bundle is a MODEL too: info, and training continues from its weights
    code, out, _ = run(["info", str(bundle)])
    assert code == 0 and "bundle: saved" in out and "test_accuracy 1" in out
    code, out, err = run(["train", str(bundle), "--epochs", "1", "--out", str(tmp_path / "r2"),
                          "--quiet"])
    assert code == 0 and err == "" and "test accuracy 100.00%" in out


def test_train_flags_override_the_training_section(tmp_path):
    model = write_model(tmp_path, [("Dense", {"units": 8}), ("ReLU", {}), ("Dense", {"units": 2})])
    code, out, err = run(["train", str(model), "--data", "circles:n=120", "--epochs", "3",
                          "--batch-size", "all", "--optimizer", "adam", "--lr", "0.01",
                          "--seed", "5", "--threads", "1", "--val-split", "0.25",
                          "--test-split", "0", "--out", str(tmp_path), "--limit", "100"])
    assert code == 0, err
    assert "train 75, val 25, test 0" in out
    assert "3 epochs, batch 75, adam lr 0.01, seed 5" in out
    assert "validation accuracy" in out
    assert (tmp_path / "m.nbmodel").exists()


def test_threads_auto_trains_with_the_thread_tuner(tmp_path, monkeypatch):
    import engine.cli as cli

    made = []
    real = cli.Trainer

    def trainer(*a, **kw):
        made.append(kw.get("tune_threads"))
        return real(*a, **kw)
    monkeypatch.setattr(cli, "Trainer", trainer)
    model = write_model(tmp_path, [("Dense", {"units": 8}), ("ReLU", {}), ("Dense", {"units": 2})])
    for flag in (["--threads", "auto"], [], ["--threads", "1"]):
        code, _out, err = run(["train", str(model), "--data", "circles:n=60", "--epochs", "1",
                               "--out", str(tmp_path), "--quiet", *flag])
        assert code == 0, err
    assert made == [True, True, False]


def test_info_lists_every_node_and_totals(tmp_path):
    code, out, _ = run(["info", str(example_path("digits_cnn"))])
    assert code == 0
    net = engine.compile(engine.load_graph(example_path("digits_cnn")))
    for nid in net.order:
        assert nid in out
    assert f"{net.param_count():,}" in out and f"{net.macs():,}" in out
    assert "(16, 8, 8)" in out and "Conv2D" in out and "training: dataset digits" in out


def test_info_says_which_exports_a_model_allows(tmp_path, monkeypatch):
    model = write_model(tmp_path, [("Dense", {"units": 3}), ("Tanh", {}), ("Dense", {"units": 2})])
    code, out, _ = run(["info", str(model)])
    assert code == 0 and "export: ONNX yes, PyTorch yes" in out
    from engine.layers.activation import Tanh
    monkeypatch.setattr(Tanh, "to_pytorch", engine.Layer.to_pytorch)
    code, out, _ = run(["info", str(model)])
    assert code == 0 and "ONNX yes, PyTorch no (no PyTorch equivalent for Tanh 'n1')" in out


def test_info_without_a_model_lists_every_layer_type_and_its_exports(monkeypatch):
    from engine.layers.activation import Tanh
    monkeypatch.setattr(Tanh, "from_onnx", engine.Layer.from_onnx)
    code, out, _ = run(["info"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["type", "category", "ONNX", "export", "ONNX", "import",
                                "PyTorch", "export"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:]}
    assert set(rows) == set(engine.layer_types())
    assert rows["Conv2D"] == ["Convolution", "yes", "yes", "yes"]
    assert rows["Tanh"] == ["Activation", "yes", "no", "yes"]


def test_gradcheck_ok_and_failure(tmp_path, monkeypatch):
    model = write_model(tmp_path, [("Dense", {"units": 3}), ("Tanh", {}), ("Dense", {"units": 2})])
    code, out, _ = run(["gradcheck", str(model)])
    assert code == 0 and "ok" in out and "n0.weight" in out
    from engine.fusion import DenseBlock  # the compiled network runs Dense through it
    original = DenseBlock.backward

    def wrong(self, dy, need_dx):
        dx = original(self, dy, need_dx)
        self.local_grads["weight"] *= 1.5
        return dx
    monkeypatch.setattr(DenseBlock, "backward", wrong)
    code, out, _ = run(["gradcheck", str(model)])
    assert code == 1 and "<-- check" in out and "above 0.0001" in out


@pytest.mark.parametrize("argv, match", [
    (["train", "nowhere.json"], "no such model file: nowhere.json"),
    (["train", XOR, "--data", "imagenet"], "unknown dataset 'imagenet'"),
    (["train", XOR, "--data", "digits"], "Input 'in' expects samples shaped (2,)"),
    (["train", XOR, "--epochs", "0"], "training.epochs must be"),
    (["train", XOR, "--epochs", "x"], "invalid int value"),
    (["train", XOR, "--batch-size", "many"], "--batch-size must be a whole number"),
    (["train", XOR, "--optimizer", "lbfgs"], "unknown optimizer"),
    (["train", XOR, "--threads", "999"], "--threads must be between 1 and"),
    (["train", XOR, "--threads", "lots"], "must be a whole number or 'auto', got 'lots'"),
    (["train"], "the following arguments are required: MODEL"),
    (["fly"], "invalid choice: 'fly'"),
    (["info", "--bogus", XOR], "unrecognized arguments: --bogus"),
])
def test_bad_input_exits_2_with_one_line(argv, match):
    code, _out, err = run(argv)
    assert code == 2
    assert err.startswith("netbuilder: error: ") and err.count("\n") == 1
    assert match in err
    assert "Traceback" not in err


def test_bad_model_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(["info", str(bad)])
    assert code == 2 and "not valid JSON" in err
    fake = tmp_path / "fake.nbmodel"
    fake.write_bytes(b"PK\x03\x04broken")
    code, _, err = run(["info", str(fake)])
    assert code == 2 and "not a NetBuilder bundle" in err and err.count("\n") == 1
    model = write_model(tmp_path, [("Dense", {"units": 2})], training={"epochs": 1})
    code, _, err = run(["train", str(model)])
    assert code == 2 and "no dataset" in err


def test_divergence_exits_1_with_the_step(tmp_path):
    code, _out, err = run(["train", XOR, "--optimizer", "sgd", "--lr", "1e300", "--out",
                          str(tmp_path)])
    assert code == 1
    assert "netbuilder: error: training stopped at step 1" in err
    assert not (tmp_path / "xor_mlp.nbmodel").exists()


def test_help_and_no_command():
    code, out, _ = run([])
    assert code == 0 and "train" in out and "gradcheck" in out
    code, out, _ = run(["--help"])
    assert code == 0


def test_progress_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    p = cli.Progress(s)
    p(BatchEvent(2, 5, 10, 20, 30, 0.1234, {"out": 0.1234}, 0.875, {}, 0.01, 12345.0, 1.0,
                 3.0, 75.0))
    line = s.getvalue()
    assert line.startswith("\r") and "epoch 2/5" in line and "10/20" in line
    assert "loss 0.1234" in line and "acc  87.5%" in line and "12,345 samples/s" in line
    assert "ETA 01:15" in line and "[##########..........]" in line
    p(EpochEvent(2, 5, 40, 0.1, 0.9, 0.2, 0.85, {}, 0.01, 4.0, 2.0, 6.0, 500.0, True))
    tail = s.getvalue().split("\r")[-1]
    assert "epoch 2/5" in tail and "val_acc  85.0%" in tail and tail.endswith("\n")
    assert cli.fmt_time(3725) == "1:02:05" and cli.fmt_time(float("nan")) == "--:--"


# ----- netbuilder.cli routing -------------------------------------------------------------------
def test_netbuilder_entry_routes_commands_and_files(tmp_path, monkeypatch, capsys):
    from netbuilder import cli as app_cli
    assert app_cli.main(["info", XOR]) == 0
    assert "hidden" in capsys.readouterr().out
    assert app_cli.main(["trian", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown command, file or example 'trian'" in err
    assert "commands: train, info, gradcheck, export" in err and "lenet5" in err
    assert app_cli.main(["models/missing"]) == 2
    assert "unknown command or missing file 'models/missing'" in capsys.readouterr().err
    calls = []
    fake = types.ModuleType("netbuilder.app")
    fake.main = lambda argv: calls.append(list(argv)) or 0
    monkeypatch.setitem(sys.modules, "netbuilder.app", fake)
    assert app_cli.main([]) == 0
    assert app_cli.main([XOR]) == 0
    assert app_cli.main(["models/new_model.json"]) == 0
    assert app_cli.main(["lenet5"]) == 0  # an example, by name
    assert calls == [[], [XOR], ["models/new_model.json"], ["lenet5"]]
    assert app_cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("netbuilder ")


def test_commands_never_import_qt(tmp_path):
    code = (
        "import sys\n"
        "from netbuilder.cli import main\n"
        f"rc = main(['info', {XOR!r}])\n"
        "assert rc == 0, rc\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_ctrl_c_stops_after_the_batch_and_saves_the_bundle(tmp_path):
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "train", XOR, "--epochs", "100000", "--threads",
         "1", "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        first = proc.stderr.readline()
        assert first.split()[:2] == ["epoch", "1/100000"], first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted:" in out and "Traceback" not in err
    assert engine.load_bundle(tmp_path / "xor_mlp.nbmodel").manifest["metrics"]["status"] == \
        "stopped"


# ----- models by example name ---------------------------------------------------------------
def test_examples_are_usable_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["info", "lenet5"])
    assert code == 0, err
    assert out.startswith(f"LeNet-5 ({example_path('lenet5')})")
    code, out, err = run(["info", "lenet5.json"])
    assert code == 0 and out.startswith("LeNet-5 ("), err
    code, out, err = run(["train", "xor_mlp", "--epochs", "2", "--quiet"])
    assert code == 0, err
    assert (tmp_path / "runs" / "xor_mlp" / "xor_mlp.nbmodel").is_file()
    code, out, err = run(["export", "digits_cnn", "--format", "onnx", "-o", "d.onnx"])
    assert code == 0, err
    assert (tmp_path / "d.onnx").stat().st_size > 1000
    code, out, err = run(["gradcheck", "xor_mlp"])
    assert code == 0, err


def test_a_file_in_the_current_folder_wins_over_an_example_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = chain_doc((3,), [("Dense", {"units": 2})])
    doc["name"] = "my own lenet5"
    for name in ("lenet5", "lenet5.json"):
        (tmp_path / name).write_text(json.dumps(doc))
        code, out, err = run(["info", name])
        assert code == 0, err
        assert out.startswith(f"my own lenet5 ({name})"), out


def test_an_unknown_model_name_is_a_clear_error_listing_the_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["info", "lenet6"])
    assert code == 2 and out == ""
    assert err.startswith("netbuilder: error: no file or example named 'lenet6'; examples: ")
    for name in engine_resources.example_names():
        assert name in err
    assert len(err.strip().splitlines()) == 1


def test_help_says_models_may_be_example_names(capsys):
    assert cli.main(["--help"]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert "'netbuilder EXAMPLE' (e.g. 'netbuilder lenet5')" in flat
    assert "MODEL may be the name of a shipped example" in flat and "xor_mlp" in flat
    assert cli.main(["train", "--help"]) == 0
    assert "example name (e.g. lenet5)" in " ".join(capsys.readouterr().out.split())


def test_onnx_files_open_in_every_command_as_in_the_app(tmp_path):
    """An .onnx file (which File ▸ Open imports) works where a model goes: info, export to a
    PyTorch script, train from its weights with the dataset its export recorded; a broken one
    is one line naming the file."""
    pytest.importorskip("onnx")
    onnx_path = tmp_path / "x.onnx"
    assert run(["export", XOR, "--format", "onnx", "-o", str(onnx_path)])[0] == 0
    code, out, err = run(["info", str(onnx_path)])
    assert code == 0, err
    assert "Dense" in out and "export: ONNX yes, PyTorch yes" in out
    code, _, err = run(["export", str(onnx_path), "--format", "pytorch",
                        "-o", str(tmp_path / "x.py")])
    assert code == 0 and (tmp_path / "x.py").exists() and (tmp_path / "x.npz").exists(), err
    code, out, err = run(["train", str(onnx_path), "--epochs", "1", "--threads", "1",
                          "--out", str(tmp_path / "runs")])
    assert code == 0, err
    assert list((tmp_path / "runs").rglob("*.nbmodel"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(onnx_path.read_bytes()[:40])
    code, _, err = run(["info", str(broken)])
    assert code == 2 and "broken.onnx" in err and err.count("\n") == 1

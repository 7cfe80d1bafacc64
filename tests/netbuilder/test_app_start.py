"""Starting the app on a model given by name: `netbuilder lenet5` opens the shipped example
(as a new, untitled model); a file of that name in the current folder wins; the smoke-test
option quits by itself and fails on errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.resources import example_path
from netbuilder import app
from netbuilder.session import kernel_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def start(qtbot, tmp_path, monkeypatch):
    """start(*argv) -> the window ``netbuilder *argv`` shows, from an empty folder (the kernel
    cache counted as complete, so no background compile starts)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(kernel_service, "SERVICE", kernel_service.KernelService())
    monkeypatch.setattr(kernel_service, "cache_is_warm", lambda: True)
    windows = []

    def make(*argv: str):
        w = app.build_window(list(argv))
        qtbot.addWidget(w)
        windows.append(w)
        qtbot.waitExposed(w)
        return w
    yield make
    for w in windows:
        w.ask_save_changes = lambda: "discard"
        w.close()


def test_an_example_name_opens_that_example_as_a_new_model(start):
    w = start("digits_cnn")
    expected = json.loads(example_path("digits_cnn").read_text())
    assert w.document.graph.name == expected["name"]
    assert set(w.document.graph.nodes) == {n["id"] for n in expected["nodes"]}
    assert w.document.path is None  # Save asks where: the shipped file stays as it is
    assert not w.training.prep.running


def test_a_file_of_that_name_in_the_current_folder_wins(start, tmp_path):
    doc = {"format": "netbuilder.graph", "version": 1, "name": "my own digits_cnn",
           "nodes": [{"id": "in", "type": "Input", "params": {"shape": [3]}},
                     {"id": "d", "type": "Dense", "params": {"units": 2}},
                     {"id": "out", "type": "Output", "params": {"loss": "mse"}}],
           "edges": [{"src": "in", "dst": "d"}, {"src": "d", "dst": "out"}]}
    (tmp_path / "digits_cnn.json").write_text(json.dumps(doc))
    w = start("digits_cnn.json")
    assert w.document.graph.name == "my own digits_cnn"
    assert w.document.path is not None and Path(w.document.path).name == "digits_cnn.json"
    (tmp_path / "digits_cnn").write_text(json.dumps(doc))
    assert start("digits_cnn").document.graph.name == "my own digits_cnn"


def test_no_argument_opens_lenet5(start):
    w = start()
    assert w.document.graph.name == json.loads(example_path("lenet5").read_text())["name"]


def _netbuilder(args, cwd):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p))
    return subprocess.run([sys.executable, "-m", "netbuilder", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_smoke_test_option_quits_by_itself_and_fails_on_errors(tmp_path):
    ok = _netbuilder(["xor_mlp", "--quit-after", "1"], tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    (tmp_path / "broken.json").write_text("{not json")
    bad = _netbuilder(["broken.json", "--quit-after", "1"], tmp_path)
    assert bad.returncode == 1
    assert "netbuilder: error: Cannot open model: broken.json could not be opened" in bad.stderr
    unknown = _netbuilder(["lenet6"], tmp_path)
    assert unknown.returncode == 2
    assert "unknown command, file or example 'lenet6'" in unknown.stderr

"""Counts in messages take the right number: '1 epoch', '2 epochs', never '1 epochs'."""

from __future__ import annotations

import io
import json

from graphdocs import chain_doc

import engine
from engine import cli
from engine.data import load_dataset
from engine.text import plural


def test_plural():
    assert plural(1, "epoch") == "1 epoch"
    assert plural(0, "epoch") == "0 epochs"
    assert plural(2, "class") == "2 classes" and plural(1, "class") == "1 class"
    assert plural(3, "batch") == "3 batches" and plural(1, "batch") == "1 batch"
    assert plural(2, "index", "indices") == "2 indices"


def test_layer_summaries_and_dataset_lines():
    g = engine.Graph.from_dict(chain_doc((3,), [("Dense", {"units": 1})], loss="mse"))
    net = engine.compile(g)
    dense = next(lay for lay in net.layers.values() if lay.type_name == "Dense")
    assert dense.summary() == "1 unit"
    ds = load_dataset("xor", n=1)
    assert ds.describe().startswith("xor: 1 sample, x (2,)")


def test_cli_says_1_epoch(tmp_path):
    doc = chain_doc((2,), [("Dense", {"units": 2})])
    doc["training"] = {"dataset": "xor", "epochs": 1}
    model = tmp_path / "m.json"
    model.write_text(json.dumps(doc))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["train", str(model), "--out", str(tmp_path), "--quiet"], out, err) == 0
    text = out.getvalue()
    assert "training: 1 epoch, batch" in text and "done: 1 epoch, " in text
    assert "1 epochs" not in text
    out = io.StringIO()
    assert cli.main(["info", str(model)], out, io.StringIO()) == 0
    assert "xor, 1 epoch," in out.getvalue()

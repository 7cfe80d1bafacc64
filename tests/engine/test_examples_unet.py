"""The unet_shapes example (issue 20): a small U-Net of DoubleConv blocks (down with Conv2D +
max-pooling, up with ConvTranspose2D + Concat skips) scoring 4 classes per pixel of
seg_shapes with pixel cross-entropy. Valid, laid out along its flow, trainable from the CLI
(which reports the mean IoU), and ≥ 0.85 test mean IoU as shipped (slow)."""

import io
import re

import numpy as np
import pytest

import engine
from engine import cli
from engine.losses import iou_counts, mean_iou
from engine.resources import example_path
from engine.training import evaluate


def _run(args):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_is_valid_laid_out_and_fits_its_dataset():
    g = engine.load_graph(example_path("unet_shapes"))
    engine.TrainSettings.from_dict(g.training)
    assert set(g.ui) == set(g.nodes)
    pos = {nid: tuple(g.ui[nid]["pos"]) for nid in g.nodes}
    assert len(set(pos.values())) == len(pos)
    assert all(pos[e.src][1] < pos[e.dst][1] for e in g.edges)
    net = engine.compile(g)
    ds = engine.load_dataset(g.training["dataset"]).take(64)
    engine.data.check_dataset(engine.data.fit_to_model(ds, net), net)


def test_is_a_unet_down_and_up_with_concatenated_skips():
    g = engine.load_graph(example_path("unet_shapes"))
    net = engine.compile(g)
    assert net.shapes["in"] == (1, 32, 32) and net.shapes["out"] == (4, 32, 32)
    assert net.layers["out"].p["loss"] == "pixel_cross_entropy"
    assert [net.shapes[f"{b}-relu2"] for b in ("down1", "down2", "middle", "dec2", "dec1")] == [
        (16, 32, 32), (32, 16, 16), (64, 8, 8), (32, 16, 16), (16, 32, 32)]
    for up, skip, enc in (("up2", "skip2", "down2"), ("up1", "skip1", "down1")):
        assert g.nodes[up].type == "ConvTranspose2D" and g.nodes[skip].type == "Concat"
        assert [e.src for e in g.in_edges(skip)] == [up, enc]
    assert len(g.nodes_of_type("MaxPool2D")) == 2
    flat = g.flatten()
    assert len(flat.nodes_of_type("Conv2D")) == 11  # two per DoubleConv block and the head


def test_evaluate_counts_iou_over_the_whole_set_not_per_batch():
    g = engine.load_graph(example_path("unet_shapes"))
    net = engine.compile(g, seed=1)
    ds = engine.load_dataset("seg_shapes", n=37)
    whole = evaluate(net, ds, batch_size=37)
    pieces = evaluate(net, ds, batch_size=8)
    scores = net.forward(ds.x, train=False)
    want = mean_iou(*iou_counts(scores.argmax(axis=1), ds.y, 4))
    assert whole.iou == pytest.approx(want, rel=1e-12)
    assert pieces.iou == pytest.approx(want, rel=1e-12)
    assert whole.heads["out"]["iou"] == whole.iou
    assert whole.accuracy == pytest.approx(np.mean(scores.argmax(axis=1) == ds.y))


def test_trains_briefly_from_the_cli_and_reports_the_mean_iou(tmp_path):
    code, out, err = _run(["train", "unet_shapes", "--epochs", "1", "--limit", "200",
                           "--out", str(tmp_path)])
    assert code == 0, err
    assert re.search(r"^epoch 1/1 .* val_mIoU [0-9.]+", out + err, re.M), out + err
    assert re.search(r"^test mean IoU [0-9.]+, pixel accuracy [0-9.]+%", out, re.M), out
    b = engine.load_bundle(tmp_path / "unet_shapes.nbmodel")
    assert 0.0 <= b.manifest["metrics"]["test_iou"] <= 1.0
    assert len(b.history["val_iou"]) == 1 and len(b.history["train_iou"]) == 1
    assert "val_iou" in b.history["heads"]["out"]


def test_augmentation_is_refused_for_per_pixel_labels():
    g = engine.load_graph(example_path("unet_shapes"))
    net = engine.compile(g)
    ds = engine.load_dataset("seg_shapes", n=40)
    with pytest.raises(engine.errors.ParamError, match="per-pixel labels"):
        engine.Trainer(net, ds, {**g.training, "augment": {"shift": 0.1}})


@pytest.mark.slow
def test_as_shipped_reaches_a_mean_iou_of_at_least_0_85(tmp_path):
    code, out, err = _run(["train", "unet_shapes", "--out", str(tmp_path), "--quiet"])
    assert code == 0, err
    b = engine.load_bundle(tmp_path / "unet_shapes.nbmodel")
    assert b.manifest["metrics"]["test_iou"] >= 0.85, out

"""The Try it source (Qt-free) and the pad's resampling: what the network is fed."""

from __future__ import annotations

import json

import numpy as np

import engine
from engine.data.transforms import Normalizer
from engine.resources import example_path
from netbuilder.lookinside.source import build_source


def digits_graph():
    return engine.Graph.from_dict(json.loads(example_path("digits_cnn").read_text("utf-8")))


def test_a_drawing_is_mapped_to_the_data_range_and_normalised_as_the_data_are():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 16, (50, 1, 8, 8)).astype(np.float32)
    ds = engine.Dataset({"x": x, "y": rng.integers(0, 10, 50)}, "d", [f"c{k}" for k in range(10)])
    src = build_source(digits_graph(), dataset=ds, norm_mode="standardize")
    ink = rng.uniform(0, 1, (8, 8))
    got = src.prepare(ink)
    lo, hi = float(x.min()), float(x.max())
    want = Normalizer("standardize").fit(x).apply((lo + ink * (hi - lo))[None, None])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got.shape == (1, 1, 8, 8) and src.class_name(3) == "c3"
    p = src.predict(got)
    assert p.shape == (10,) and abs(p.sum() - 1) < 1e-9
    assert "untrained" in src.label


def test_a_run_s_weights_and_normaliser_are_used():
    g = digits_graph()
    trained = engine.Network(g, seed=5)
    norm = {"mode": "scale", "min": 0.0, "max": 2.0}
    src = build_source(g, weights=trained.state_dict(), normalizer=norm, label="weights of Run 1")
    assert not src.net.fuse and src.label == "weights of Run 1"
    np.testing.assert_array_equal(src.net.params["conv1.weight"], trained.params["conv1.weight"])
    np.testing.assert_allclose(src.prepare(np.ones((8, 8))), np.full((1, 1, 8, 8), 0.5))


def test_the_pad_averages_its_drawing_down_to_the_input(qtbot):
    from netbuilder.lookinside.pad import DrawingPad

    pad = DrawingPad()
    qtbot.addWidget(pad)
    pattern = np.zeros((8, 8))
    pattern[2:6, 3] = 1.0
    pattern[0, 0] = 0.5
    pad.set_ink(pattern)
    np.testing.assert_allclose(pad.ink(8, 8), pattern, atol=1 / 255)
    coarse = pad.ink(4, 4)  # 2x2 means of the pattern
    np.testing.assert_allclose(coarse, pattern.reshape(4, 2, 4, 2).mean(axis=(1, 3)), atol=1 / 255)
    pad.set_inverted(True)
    np.testing.assert_allclose(pad.ink(8, 8), 1 - pattern, atol=1 / 255)

"""Splits, normalisation, augmentation, and checking a dataset against a model."""

import numpy as np
import pytest
from graphdocs import chain_doc, graph_doc

import engine
from engine.data import (
    Augmenter,
    Dataset,
    Normalizer,
    check_dataset,
    dataset_problems,
    fit_to_model,
    load_dataset,
    normalize_splits,
    split_dataset,
)


def _ds(n=100, k=4, shape=(3,)):
    rng = np.random.default_rng(0)
    return Dataset({"x": rng.standard_normal((n, *shape)).astype(np.float32),
                    "y": np.arange(n) % k}, "t")


def test_split_sizes_stratified_disjoint_and_seeded():
    ds = _ds(100, 4)
    s = split_dataset(ds, val_split=0.2, test_split=0.1, seed=1)
    assert s.sizes() == {"train": 70, "val": 20, "test": 10}
    for part in (s.train, s.val, s.test):
        counts = part.class_counts()
        assert counts.max() - counts.min() <= 1
    rows = [tuple(r) for part in (s.train, s.val, s.test) for r in part.x.reshape(-1, 3)]
    assert len(set(rows)) == 100
    again = split_dataset(ds, 0.2, 0.1, seed=1)
    np.testing.assert_array_equal(s.val.x, again.val.x)
    other = split_dataset(ds, 0.2, 0.1, seed=2)
    assert not np.array_equal(s.val.x, other.val.x)


def test_split_without_val_and_shipped_test_part():
    ds = _ds(20)
    s = split_dataset(ds, 0.0, 0.0)
    assert s.val is None and s.test is None and len(s.train) == 20
    ds.test = _ds(7)
    s = split_dataset(ds, 0.1, 0.5)
    assert s.test is ds.test and len(s.train) + len(s.val) == 20


def test_split_refusals():
    with pytest.raises(engine.DataError, match="nothing to train on"):
        split_dataset(_ds(), 0.6, 0.4)
    with pytest.raises(engine.DataError, match="fraction"):
        split_dataset(_ds(), 1.5)
    with pytest.raises(engine.DataError, match="too small"):
        split_dataset(_ds(2, 2), 0.5, 0.4)


def test_normalizers_use_training_statistics():
    train = np.array([[0.0, 10.0], [2.0, 30.0]], np.float32)
    test = np.array([[4.0, 20.0]], np.float32)
    sc = Normalizer("scale").fit(train)
    np.testing.assert_allclose(sc.apply(train), [[0, 1 / 3], [2 / 30, 1]], rtol=1e-6)
    st = Normalizer("standardize").fit(train)
    np.testing.assert_allclose(st.apply(train).mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(st.apply(test), [[3.0, 0.0]], atol=1e-6)
    again = Normalizer.from_json(st.to_json())
    np.testing.assert_allclose(again.apply(test), st.apply(test))
    assert Normalizer("none").fit(train).apply(test) is not None
    with pytest.raises(engine.DataError, match="unknown normalisation"):
        Normalizer("zscore")
    with pytest.raises(engine.DataError, match="missing its statistics"):
        Normalizer.from_json({"mode": "scale"})


def test_standardize_images_per_channel():
    x = np.zeros((4, 2, 3, 3), np.float32)
    x[:, 1] = 5.0
    x[0, 0] = 2.0
    n = Normalizer("standardize").fit(x)
    assert n.stats["mean"].shape == (2, 1, 1)
    out = n.apply(x)
    np.testing.assert_allclose(out[:, 0].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(out[:, 1], 0, atol=1e-6)  # constant channel: std 1, no NaN


def test_normalize_splits_fits_on_train_only():
    ds = _ds(50)
    s = normalize_splits(split_dataset(ds, 0.2, 0.2), "standardize")
    np.testing.assert_allclose(s.train.x.mean(0), 0, atol=1e-5)
    assert s.normalizer.mode == "standardize"
    assert not np.allclose(s.val.x.mean(0), 0, atol=1e-5)


def test_augmenter_identity_shift_and_determinism():
    x = np.zeros((2, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0
    assert Augmenter.from_config(None) is None
    assert Augmenter.from_config({"shift": 0}) is None
    still = Augmenter(rotation=0.0, shift=0.0, scale=0.0)
    np.testing.assert_array_equal(still(x, np.random.default_rng(0)), x)
    aug = Augmenter(shift=0.3)
    out = aug(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), 1.0, atol=1e-5)  # bilinear keeps mass
    assert not np.allclose(out, x)
    np.testing.assert_array_equal(out, aug(x, np.random.default_rng(0)))
    rot = Augmenter(rotation=90.0)(x, np.random.default_rng(1))
    np.testing.assert_allclose(rot[:, 0, 4, 4], 1.0, atol=1e-5)  # the centre stays put
    flat = np.ones((3, 4), np.float32)
    assert Augmenter(shift=0.2)(flat, np.random.default_rng(0)) is flat
    with pytest.raises(engine.DataError, match="rotation must be between"):
        Augmenter(rotation=400)
    with pytest.raises(engine.DataError, match="unknown augmentation"):
        Augmenter.from_config({"flip": True})


def _net(input_shape, layers, loss="cross_entropy"):
    return engine.compile(engine.Graph.from_dict(chain_doc(input_shape, layers, loss)))


def test_check_dataset_accepts_a_fitting_dataset():
    net = _net((2,), [("Dense", {"units": 2})])
    check_dataset(load_dataset("moons", n=20), net)
    check_dataset(load_dataset("moons", n=20), net.graph)


def test_input_shape_mismatch_names_both_shapes_and_the_node():
    net = _net((1, 28, 28), [("Flatten", {}), ("Dense", {"units": 10})])
    with pytest.raises(engine.DataError) as exc:
        check_dataset(load_dataset("digits"), net)
    msg = str(exc.value)
    assert "Input 'in'" in msg and "(1, 28, 28)" in msg and "(1, 8, 8)" in msg
    assert exc.value.node_id == "in"


def test_labels_out_of_range_for_the_output():
    net = _net((1, 8, 8), [("Flatten", {}), ("Dense", {"units": 3})])
    with pytest.raises(engine.DataError, match=r"scores 3 classes .* labels 0..9: give the "
                                               r"layer before it 10 units") as exc:
        check_dataset(load_dataset("digits"), net)
    assert exc.value.node_id == "n1"


def test_other_refusals():
    reg = _net((2,), [("Dense", {"units": 1})], loss="mse")
    sine = load_dataset("sine", n=10)
    problems = dataset_problems(sine, reg)
    assert [str(p) for p in problems] == [
        "Input 'in' expects samples shaped (2,), but dataset 'sine' has samples shaped (1,): "
        "change the Input's shape to (1,) or pick another dataset"]
    ce = _net((1,), [("Dense", {"units": 2})])
    with pytest.raises(engine.DataError, match="fractional values: use the mse loss"):
        check_dataset(sine, ce)
    bce = _net((1,), [("Dense", {"units": 1})], loss="bce")
    with pytest.raises(engine.DataError, match="bce, which needs targets in"):
        check_dataset(sine, bce)
    mse3 = _net((1,), [("Dense", {"units": 3})], loss="mse")
    with pytest.raises(engine.DataError, match=r"produces \(3,\) per sample"):
        check_dataset(sine, mse3)
    bad = Dataset({"x": np.array([[0.0], [np.nan]], np.float32), "y": np.zeros((2, 1),
                                                                            np.float32)}, "nan")
    with pytest.raises(engine.DataError, match=r"NaN or Inf values .*sample 1"):
        check_dataset(bad, _net((1,), [("Dense", {"units": 1})], loss="mse"))
    nolabels = Dataset({"x": np.zeros((3, 1), np.float32)}, "u")
    with pytest.raises(engine.DataError, match=r"learns the field 'y'.*no targets"):
        check_dataset(nolabels, ce)


def test_multi_output_targets_and_autoencoder():
    doc = graph_doc(
        [("in", "Input", {"shape": [1, 8, 8]}), ("f", "Flatten", {}),
         ("cls", "Dense", {"units": 6}), ("reg", "Dense", {"units": 1}),
         ("o1", "Output", {"loss": "cross_entropy"}),
         ("o2", "Output", {"loss": "mse", "target": "size"})],
        [("in", "f"), ("f", "cls"), ("f", "reg"), ("cls", "o1"), ("reg", "o2")])
    net = engine.compile(engine.Graph.from_dict(doc))
    ds = load_dataset("shapes", n=12, size=8)
    check_dataset(ds, net)
    problems = dataset_problems(ds.with_arrays().subset(slice(None)), net)
    assert problems == []
    no_size = Dataset({"x": ds.x, "y": ds.y}, "s")
    with pytest.raises(engine.DataError, match="Output 'o2' learns the field 'size'") as exc:
        check_dataset(no_size, net)
    assert exc.value.node_id == "o2"
    ae = engine.compile(engine.Graph.from_dict(graph_doc(
        [("in", "Input", {"shape": [4]}), ("d", "Dense", {"units": 4}),
         ("o", "Output", {"loss": "mse", "target": "x"})], [("in", "d"), ("d", "o")])))
    check_dataset(Dataset({"x": np.zeros((3, 4), np.float32)}, "u"), ae)


def test_fit_to_model_reshapes_flat_rows_only_when_sizes_match():
    net = _net((1, 2, 2), [("Flatten", {}), ("Dense", {"units": 2})])
    flat = Dataset({"x": np.zeros((5, 4), np.float32), "y": np.zeros(5, np.int64)}, "f")
    assert fit_to_model(flat, net).sample_shape == (1, 2, 2)
    wrong = Dataset({"x": np.zeros((5, 3), np.float32), "y": np.zeros(5, np.int64)}, "w")
    assert fit_to_model(wrong, net).sample_shape == (3,)
    flat_net = _net((64,), [("Dense", {"units": 10})])
    assert fit_to_model(load_dataset("digits"), flat_net).sample_shape == (64,)
    assert dataset_problems(load_dataset("digits"), flat_net) == []

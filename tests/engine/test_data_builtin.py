"""Built-in datasets: shapes, dtypes, seeding, parameters, speed."""


import numpy as np
import pytest

import engine
from engine.data import BUILTINS, SHAPE_CLASSES, Dataset, builtin_names, load_dataset
from engine.data.builtin import register_dataset

POINTS = ["xor", "spirals", "moons", "circles"]


def test_every_builtin_named_in_the_issue_exists():
    assert {"xor", "spirals", "moons", "circles", "sine", "digits", "shapes"} <= set(
        builtin_names())
    for b in BUILTINS.values():
        assert b.description


@pytest.mark.parametrize("name", POINTS)
def test_point_sets(name):
    ds = load_dataset(name, n=101, noise=0.1, seed=3)
    assert len(ds) == 101
    assert ds.x.shape == (101, 2) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and set(np.unique(ds.y)) == {0, 1}
    assert ds.task == "classification" and ds.n_classes == 2
    counts = ds.class_counts()
    assert abs(int(counts[0]) - int(counts[1])) <= 1
    # classes are interleaved, not in blocks: the first ten samples hold both classes
    assert len(set(ds.y[:10].tolist())) == 2
    again = load_dataset(name, n=101, noise=0.1, seed=3)
    np.testing.assert_array_equal(ds.x, again.x)
    other = load_dataset(name, n=101, noise=0.1, seed=4)
    assert not np.array_equal(ds.x, other.x)


def test_xor_truth_table_without_noise():
    ds = load_dataset("xor", n=4, noise=0.0)
    table = {tuple(int(v) for v in x): int(y) for x, y in zip(ds.x, ds.y)}
    assert table == {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0}


def test_spirals_more_classes_and_refusals():
    ds = load_dataset("spirals", n=300, classes=3)
    assert ds.n_classes == 3 and ds.class_counts().tolist() == [100, 100, 100]
    with pytest.raises(engine.DataError, match="classes"):
        load_dataset("spirals", classes=1)


def test_circles_radii():
    ds = load_dataset("circles", n=400, noise=0.0, factor=0.3)
    r = np.hypot(ds.x[:, 0], ds.x[:, 1])
    np.testing.assert_allclose(r[ds.y == 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(r[ds.y == 1], 0.3, atol=1e-5)


def test_sine_is_regression():
    ds = load_dataset("sine", n=50, noise=0.0, freq=2.0)
    assert ds.task == "regression" and ds.n_classes is None
    assert ds.x.shape == (50, 1) and ds.y.shape == (50, 1) and ds.y.dtype == np.float32
    np.testing.assert_allclose(ds.y, np.sin(2.0 * ds.x), atol=1e-6)
    assert np.all(np.abs(ds.x) <= np.pi)


def test_digits_shipped_dataset():
    ds = load_dataset("digits")
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.float32
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert ds.y.dtype == np.int64 and ds.n_classes == 10
    assert ds.class_counts().sum() == 1797 and ds.class_counts().min() >= 170
    assert ds.is_image and ds.class_name(3) == "3"


def test_shapes_images_and_extra_targets():
    ds = load_dataset("shapes", n=600, seed=1)
    assert ds.x.shape == (600, 1, 28, 28) and ds.x.dtype == np.float32
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    assert ds.class_names == list(SHAPE_CLASSES) and ds.class_counts().tolist() == [100] * 6
    assert ds.arrays["size"].shape == (600, 1) and ds.arrays["angle"].shape == (600, 1)
    assert ds.arrays["shift"].shape == (600, 2)
    assert np.all((ds.arrays["size"] >= 0.45) & (ds.arrays["size"] <= 0.85))
    assert np.all(np.abs(ds.arrays["angle"]) <= 1.0)
    # every image shows a shape: a clearly lit region well above the noise
    lit = (ds.x > 0.5).reshape(600, -1).sum(axis=1)
    assert lit.min() > 15
    # bigger shapes light more pixels, within each class
    sq = ds.y == SHAPE_CLASSES.index("square")
    corr = np.corrcoef(ds.arrays["size"][sq, 0], lit[sq])[0, 1]
    assert corr > 0.8
    # the border stays dark: shapes are kept inside the image
    border = np.concatenate([ds.x[:, 0, 0, :], ds.x[:, 0, -1, :], ds.x[:, 0, :, 0],
                             ds.x[:, 0, :, -1]], axis=1)
    assert border.max() < 0.5


def test_shapes_seeded_and_noise_free_option():
    a = load_dataset("shapes", n=60, noise=0.0, seed=5)
    b = load_dataset("shapes", n=60, noise=0.0, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    assert (a.x == 0).mean() > 0.5
    c = load_dataset("shapes", n=60, seed=6)
    assert not np.array_equal(a.x, c.x)


def test_shapes_6000_are_whole():
    """Its speed is measured in benchmarks/bench_load.py, never timed here."""
    ds = load_dataset("shapes", n=6000)
    assert len(ds) == 6000 and ds.x.shape[1:] == (1, 28, 28)
    assert np.isfinite(ds.x).all() and set(np.unique(ds.y)) == set(range(6))


def test_shapes_classes_are_distinguishable_by_nearest_mean():
    ds = load_dataset("shapes", n=1200, rotation=0.0, noise=0.0)
    x = ds.x.reshape(len(ds), -1)
    means = np.stack([x[ds.y == k].mean(0) for k in range(6)])
    # without rotation the class means alone classify far above chance (1/6)
    pred = np.argmin(((x[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == ds.y).mean() > 0.35


def test_shapes_color_is_cifar_sized_and_colour_carries_no_class():
    ds = load_dataset("shapes_color", n=600, seed=2)
    assert ds.x.shape == (600, 3, 32, 32) and ds.x.dtype == np.float32
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    assert ds.class_names == list(SHAPE_CLASSES)
    assert np.bincount(ds.y).tolist() == [100] * 6
    np.testing.assert_array_equal(ds.x, load_dataset("shapes_color", n=600, seed=2).x)
    colour = ds.x.mean(axis=(2, 3))  # each sample's mean colour
    means = np.stack([colour[ds.y == k].mean(0) for k in range(6)])
    assert np.ptp(means, axis=0).max() < 0.1  # every class has the same colours on average
    # the shape is there: one colour inside the mask, another outside, in every channel
    shape_only = load_dataset("shapes", n=600, noise=0.0, size=32, min_scale=0.4, seed=2)
    inside = shape_only.x[:, 0] > 0.5
    clean = load_dataset("shapes_color", n=600, noise=0.0, seed=2).x
    gap = [np.linalg.norm(clean[i][:, inside[i]].mean(1) - clean[i][:, ~inside[i]].mean(1))
           for i in range(600)]
    assert min(gap) > 0.2


@pytest.mark.parametrize("params, match", [
    ({"n": 0}, "n must be between"),
    ({"noise": -1.0}, "noise must be"),
    ({"n": 2.5}, "whole number"),
    ({"bogus": 1}, "unknown setting"),
    ({"noise": "high"}, "must be a number"),
])
def test_builtin_param_refusals(params, match):
    with pytest.raises(engine.DataError, match=match):
        load_dataset("moons", **params)


def test_register_dataset_adds_a_builtin():
    @register_dataset("_test_const", "constant test data")
    def const(n: int = 3) -> Dataset:
        return Dataset({"x": np.ones((n, 2), np.float32), "y": np.zeros(n, np.int64)},
                       "_test_const")
    try:
        assert len(load_dataset("_test_const:n=5")) == 5
        with pytest.raises(TypeError, match="twice"):
            register_dataset("_test_const", "again")(lambda: None)
    finally:
        BUILTINS.pop("_test_const")


def test_dataset_container():
    ds = Dataset({"x": np.zeros((4, 3), np.float32), "y": np.array([0, 1, 2, 1])},
                 "t", ["a", "b", "c"])
    assert len(ds) == 4 and ds.sample_shape == (3,) and ds.fields == ["x", "y"]
    assert ds.class_counts().tolist() == [1, 2, 1]
    sub = ds.subset([1, 3])
    assert sub.y.tolist() == [1, 1] and sub.class_names == ["a", "b", "c"]
    assert "4 samples" in ds.describe() and "3 classes" in ds.describe()
    with pytest.raises(engine.DataError, match="samples"):
        Dataset({"x": np.zeros((4, 3)), "y": np.zeros(3)})
    with pytest.raises(engine.DataError, match="no inputs"):
        Dataset({"y": np.zeros(3)})
    with pytest.raises(engine.DataError, match="numbers"):
        Dataset({"x": np.array(["a", "b"])})


def test_each_builtin_says_what_kind_of_data_it_makes():
    for name, b in BUILTINS.items():
        small = {"n": 24} if "n" in b.defaults else {}
        assert b.kind and b.kind == b.make(**small).meta["kind"], name

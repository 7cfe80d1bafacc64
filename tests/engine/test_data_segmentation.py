"""The generated segmentation dataset ``seg_shapes``: shapes, dtypes, seeding, labels that
match the pixels, parameter checks, and how it meets a model (labels per pixel)."""

import numpy as np
import pytest

import engine
from engine.data import SEG_CLASSES, load_dataset, split_dataset
from engine.errors import DataError


def test_images_and_a_label_per_pixel():
    ds = load_dataset("seg_shapes", n=120, seed=2)
    assert ds.x.shape == (120, 1, 32, 32) and ds.x.dtype == np.float32
    assert ds.y.shape == (120, 32, 32) and ds.y.dtype == np.int64
    assert ds.task == "classification" and ds.class_names == list(SEG_CLASSES)
    assert ds.class_names == ["background", "circle", "square", "triangle"]
    assert ds.meta["kind"] == "image" and ds.meta["segmentation"] is True
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    assert set(np.unique(ds.y)) == {0, 1, 2, 3}
    assert (ds.y.reshape(120, -1) > 0).any(axis=1).all()  # every image holds a shape
    counts = ds.class_counts()
    assert counts.sum() == 120 * 32 * 32 and counts[0] > counts[1:].max()


def test_the_same_seed_gives_the_same_arrays_and_another_seed_others():
    a = load_dataset("seg_shapes", n=40, seed=5)
    b = load_dataset("seg_shapes", n=40, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    c = load_dataset("seg_shapes", n=40, seed=6)
    assert not np.array_equal(a.y, c.y)


def test_labelled_pixels_are_the_bright_ones_without_noise():
    ds = load_dataset("seg_shapes", n=60, noise=0.0, seed=1)
    img, lab = ds.x[:, 0], ds.y
    assert img[lab > 0].min() >= 0.6 * 0.5 - 1e-6  # at least half covered, brightness ≥ 0.6
    assert img[lab == 0].max() < 0.6  # background pixels are at most partly covered
    assert np.mean(img[lab == 0] == 0.0) > 0.9


def test_shapes_do_not_overlap_and_each_image_has_at_most_max_shapes():
    ds = load_dataset("seg_shapes", n=80, noise=0.0, max_shapes=2, seed=3)
    from scipy import ndimage
    for lab in ds.y:
        _, blobs = ndimage.label(lab > 0)
        assert 1 <= blobs <= 2


@pytest.mark.parametrize("bad", [{"size": 4}, {"max_shapes": 0}, {"min_scale": 0.6,
                                                                  "max_scale": 0.5}])
def test_settings_out_of_range_are_refused(bad):
    with pytest.raises(DataError, match="seg_shapes"):
        load_dataset("seg_shapes", n=10, **bad)


def test_a_spec_string_and_other_sizes():
    ds = load_dataset("seg_shapes:n=16,size=48")
    assert ds.x.shape == (16, 1, 48, 48) and ds.y.shape == (16, 48, 48)


def test_splits_keep_the_masks_with_their_images():
    ds = load_dataset("seg_shapes", n=100, noise=0.0)
    sp = split_dataset(ds, val_split=0.2, test_split=0.1, seed=0)
    assert len(sp.train) + len(sp.val) + len(sp.test) == 100
    for part in (sp.train, sp.val, sp.test):
        assert part.y.shape[1:] == (32, 32)
        assert np.all((part.x[:, 0] >= 0.3) | (part.y == 0))


def _seg_model(filters: int, loss: str = "pixel_cross_entropy") -> engine.Graph:
    return engine.Graph.from_dict({
        "format": "netbuilder.graph", "version": 1, "name": "seg",
        "nodes": [{"id": "in", "type": "Input", "params": {"shape": [1, 32, 32]}},
                  {"id": "conv", "type": "Conv2D", "params": {"filters": filters,
                                                              "kernel_size": 1}},
                  {"id": "out", "type": "Output", "params": {"loss": loss}}],
        "edges": [{"src": "in", "dst": "conv"}, {"src": "conv", "dst": "out"}]})


def test_the_dataset_fits_a_model_scoring_four_classes_per_pixel():
    ds = load_dataset("seg_shapes", n=20)
    net = engine.compile(_seg_model(4))
    assert engine.data.dataset_problems(ds, net) == []
    problems = engine.data.dataset_problems(ds, engine.compile(_seg_model(3)))
    assert len(problems) == 1 and "give the layer before it 4 filters" in str(problems[0])


def test_the_output_refuses_pixel_cross_entropy_on_flat_scores():
    g = _seg_model(4)
    doc = g.to_dict()
    doc["nodes"].insert(2, {"id": "flat", "type": "Flatten", "params": {}})
    doc["edges"] = [{"src": "in", "dst": "conv"}, {"src": "conv", "dst": "flat"},
                    {"src": "flat", "dst": "out"}]
    with pytest.raises(engine.errors.ShapeError, match=r"\(C, H, W\)"):
        engine.compile(engine.Graph.from_dict(doc))

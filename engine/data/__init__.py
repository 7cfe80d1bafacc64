"""Datasets: built-in generators, file loaders, splits, normalisation, augmentation.

    ds = engine.load_dataset("digits")                # or a path, or "spirals:n=800"
                                                      # sequences: adding, parity, sine_freq, tokens
    splits = split_dataset(ds, val_split=0.1, test_split=0.1, seed=0)
    check_dataset(splits.train, net)                  # DataError naming the node if unfit
"""

from .builtin import BUILTINS, SHAPE_CLASSES, BuiltinDataset, builtin_names, register_dataset
from .dataset import Dataset, check_arrays_finite
from .images import read_image
from .loaders import load_csv, load_dataset, load_idx, load_image_folder, load_mnist, load_npz
from .sequences import load_sequence_csv
from .transforms import (
    NORMALIZE,
    Augmenter,
    Normalizer,
    Splits,
    check_dataset,
    dataset_problems,
    fit_to_model,
    normalize_splits,
    split_dataset,
)

__all__ = [
    "BUILTINS", "NORMALIZE", "SHAPE_CLASSES", "Augmenter", "BuiltinDataset", "Dataset",
    "Normalizer", "Splits", "builtin_names", "check_arrays_finite", "check_dataset",
    "dataset_problems", "fit_to_model", "load_csv", "load_dataset", "load_idx",
    "load_image_folder", "load_mnist", "load_npz", "load_sequence_csv", "normalize_splits",
    "read_image", "register_dataset", "split_dataset",
]

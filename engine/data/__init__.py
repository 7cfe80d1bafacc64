"""Datasets: built-in generators, file loaders, splits, normalisation, augmentation.

    ds = engine.load_dataset("digits")                # or a path, or "spirals:n=800"
                                                      # sequences: adding, parity, sine_freq, tokens
    ds = engine.load_dataset("mnist")                 # downloaded on first use (engine.data.remote):
                                                      # mnist, fashion_mnist, kmnist, cifar10
    splits = split_dataset(ds, val_split=0.1, test_split=0.1, seed=0)
    check_dataset(splits.train, net)                  # DataError naming the node if unfit
"""

from .builtin import BUILTINS, SHAPE_CLASSES, BuiltinDataset, builtin_names, register_dataset
from .catalogue import CATALOGUE, RemoteDataset, RemoteFile, remote_names
from .cifar import load_cifar10
from .dataset import Dataset, check_arrays_finite
from .images import read_image
from .loaders import load_csv, load_dataset, load_idx, load_image_folder, load_mnist, load_npz
from .remote import (
    CacheState,
    DownloadCancelledError,
    DownloadProgress,
    add_local_files,
    cache_state,
    data_root,
    fetch_dataset,
    load_remote_dataset,
    remove_dataset,
)
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
    "BUILTINS", "CATALOGUE", "NORMALIZE", "SHAPE_CLASSES", "Augmenter", "BuiltinDataset",
    "CacheState", "Dataset", "DownloadCancelledError", "DownloadProgress", "Normalizer",
    "RemoteDataset", "RemoteFile", "Splits", "add_local_files", "builtin_names", "cache_state",
    "check_arrays_finite", "check_dataset", "data_root", "dataset_problems", "fetch_dataset",
    "fit_to_model", "load_cifar10", "load_csv", "load_dataset", "load_idx", "load_image_folder",
    "load_mnist", "load_npz", "load_remote_dataset", "load_sequence_csv", "normalize_splits",
    "read_image", "register_dataset", "remote_names", "remove_dataset", "split_dataset",
]

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
from .dataset import Dataset, check_arrays_finite
from .idx import load_idx, load_mnist
from .images import read_image
from .loaders import load_csv, load_dataset, load_image_folder, load_npz
from .segmentation import SEG_CLASSES
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
    "BUILTINS", "CATALOGUE", "NORMALIZE", "SEG_CLASSES", "SHAPE_CLASSES", "Augmenter", "BuiltinDataset",
    "CacheState", "Dataset", "DownloadCancelledError", "DownloadProgress", "Normalizer",
    "RemoteDataset", "RemoteFile", "Splits", "add_local_files", "builtin_names", "cache_state",
    "check_arrays_finite", "check_dataset", "data_root", "dataset_problems", "fetch_dataset",
    "fit_to_model", "load_cifar10", "load_csv", "load_dataset", "load_idx", "load_image_folder",
    "load_mnist", "load_npz", "load_remote_dataset", "load_sequence_csv", "normalize_splits",
    "read_image", "register_dataset", "remote_names", "remove_dataset", "split_dataset",
]

# The downloader (urllib, ssl) and the CIFAR reader load on first use, so that `import engine`
# stays quick for programs that never download.
_LAZY = {"load_cifar10": "cifar", "CacheState": "remote", "DownloadCancelledError": "remote",
         "DownloadProgress": "remote", "add_local_files": "remote", "cache_state": "remote",
         "data_root": "remote", "fetch_dataset": "remote", "load_remote_dataset": "remote",
         "remove_dataset": "remote"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

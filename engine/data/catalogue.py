"""The datasets NetBuilder downloads on first use: where from, how large, and their checksums.

Every file has its mirrors (tried in order), its size in bytes and its SHA-256 (and, where
the publisher lists one, its MD5 as a second check). Nothing here touches the network;
``engine.data.remote`` downloads, verifies and caches.

Where the checksums come from (public references; no value here was computed by NetBuilder):

- MNIST, Fashion-MNIST, KMNIST: sizes and SHA-256 from TensorFlow Datasets'
  ``tensorflow_datasets/url_checksums/{mnist,fashion_mnist,kmnist}.txt``; the same SHA-256
  values are listed by torchvision's ``torchvision/prototype/datasets/_builtin/mnist.py``.
  MD5 from torchvision's ``torchvision/datasets/mnist.py`` (``resources``).
- CIFAR-10 (binary version): size and SHA-256 from TensorFlow Datasets'
  ``tensorflow_datasets/url_checksums/cifar10.txt``; MD5 from the dataset's page,
  https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version").

The mirrors of one file serve identical bytes (the same checksums are published for each).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One file of a downloadable dataset: its cache name, mirrors, size and checksums."""

    name: str                   # file name in the dataset's cache folder
    urls: tuple[str, ...]       # http(s) mirrors, tried in order
    size: int                   # bytes
    sha256: str                 # lower-case hex
    md5: str | None = None      # lower-case hex, a second check where published


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset NetBuilder can download: its files, how to read them, and what it holds."""

    name: str                   # what ``load_dataset`` and ``--data`` take, e.g. "mnist"
    title: str                  # for people, e.g. "Fashion-MNIST"
    description: str
    files: tuple[RemoteFile, ...]
    reader: str                 # "idx" (MNIST-style IDX .gz files) or "cifar10-binary"
    class_names: tuple[str, ...]
    sample_shape: tuple[int, ...]   # (C, H, W) of one input
    train_samples: int
    test_samples: int
    homepage: str
    credit: str                 # whom to credit (and the licence where the publisher states one)

    @property
    def size(self) -> int:
        """Bytes to download (all files)."""
        return sum(f.size for f in self.files)


def _idx_files(bases: tuple[str, ...], sums: dict[str, tuple[int, str, str]]
               ) -> tuple[RemoteFile, ...]:
    """The four IDX files, each with every base URL as a mirror."""
    return tuple(RemoteFile(name, tuple(b + name for b in bases), size, sha256, md5)
                 for name, (size, sha256, md5) in sums.items())


# name: (size, sha256, md5); sources in the module docstring
_MNIST_SUMS = {
    "train-images-idx3-ubyte.gz": (
        9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": (
        28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": (
        1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": (
        4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c"),
}
_FASHION_SUMS = {
    "train-images-idx3-ubyte.gz": (
        26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte.gz": (
        29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte.gz": (
        4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte.gz": (
        5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "bb300cfdad3c16e7a12a480ee83cd310"),
}
_KMNIST_SUMS = {
    "train-images-idx3-ubyte.gz": (
        18165135, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        "bdb82020997e1d708af4cf47b453dcf7"),
    "train-labels-idx1-ubyte.gz": (
        29497, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        "e144d726b3acfaa3e44228e80efcd344"),
    "t10k-images-idx3-ubyte.gz": (
        3041136, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        "5c965bf0a639b31b8f53240b1b52f4d7"),
    "t10k-labels-idx1-ubyte.gz": (
        5120, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        "7320c461ea6c1c855c0b718fb2a4b134"),
}

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",        # PyTorch's mirror
    "https://storage.googleapis.com/cvdf-datasets/mnist/",   # TensorFlow's mirror
    "http://yann.lecun.com/exdb/mnist/",                     # the original
)
FASHION_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
KMNIST_MIRRORS = ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)

CATALOGUE: dict[str, RemoteDataset] = {
    "mnist": RemoteDataset(
        "mnist", "MNIST", "handwritten digits 0-9, 28×28 grey",
        _idx_files(MNIST_MIRRORS, _MNIST_SUMS), "idx",
        tuple(str(d) for d in range(10)), (1, 28, 28), 60_000, 10_000,
        "http://yann.lecun.com/exdb/mnist/",
        "Yann LeCun, Corinna Cortes and Christopher J.C. Burges"),
    "fashion_mnist": RemoteDataset(
        "fashion_mnist", "Fashion-MNIST", "Zalando clothing photos in 10 classes, 28×28 grey",
        _idx_files(FASHION_MIRRORS, _FASHION_SUMS), "idx",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"), (1, 28, 28), 60_000, 10_000,
        "https://github.com/zalandoresearch/fashion-mnist", "Zalando Research; MIT licence"),
    "kmnist": RemoteDataset(
        "kmnist", "Kuzushiji-MNIST", "10 cursive hiragana characters, 28×28 grey",
        _idx_files(KMNIST_MIRRORS, _KMNIST_SUMS), "idx",
        # the characters お き す つ な は ま や れ を, by their romanizations
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), (1, 28, 28),
        60_000, 10_000, "https://github.com/rois-codh/kmnist",
        "ROIS-DS Center for Open Data in the Humanities (Clanuwat et al. 2018); CC BY-SA 4.0"),
    "cifar10": RemoteDataset(
        "cifar10", "CIFAR-10", "tiny colour photos in 10 classes, 32×32 RGB",
        (RemoteFile("cifar-10-binary.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                    170052171,
                    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                    "c32a1d4ab5d03f1284b67883e8d87530"),),
        "cifar10-binary",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"), (3, 32, 32), 50_000, 10_000,
        "https://www.cs.toronto.edu/~kriz/cifar.html",
        "Alex Krizhevsky, Vinod Nair and Geoffrey Hinton (Krizhevsky 2009, tech report)"),
}


def remote_names() -> list[str]:
    """Names of the downloadable datasets, in catalogue order."""
    return list(CATALOGUE)

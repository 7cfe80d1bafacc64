"""The model zoo: templates a new model starts from (File ▸ New from Template in the
application, ``netbuilder new NAME`` on the command line).

Each template is built here as a model file (``Template.graph()``), with the training
settings it was measured with; MobileNet-small, the U-Net and the transformer are the shipped
examples themselves (``resources/examples``), read afresh. What was measured (epoch time on
this class of machine, accuracy where the data could be had) lives in
``resources/zoo_measured.json``, written by ``benchmarks/bench_zoo.py``;
``Template.expected()`` reads it, so no number is typed twice.

There is no variational autoencoder: no layer samples (z = μ + σ·ε) or adds a KL term.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .graph import Graph
from .resources import example_path, resources_dir

Doc = dict[str, Any]


@dataclass(frozen=True)
class Template:
    """A model to start from: ``name`` (for ``netbuilder new``), a title and one line."""

    name: str
    title: str
    summary: str
    build: Callable[[], Doc]

    def graph(self) -> Graph:
        """The template as a fresh Graph (validated)."""
        return Graph.from_dict(self.build())

    def expected(self) -> str:
        """What was measured for this template, as one line ("" if nothing yet)."""
        m = measured().get(self.name)
        return m.get("text", "") if isinstance(m, dict) else ""


def measured() -> dict[str, Any]:
    """The measurements shipped in ``resources/zoo_measured.json`` (empty if missing)."""
    try:
        data = json.loads((resources_dir() / "zoo_measured.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("templates", {}) if isinstance(data, dict) else {}


# ----- building blocks of the templates -----------------------------------------------------
class _Builder:
    """Nodes and wires of one graph (or block body), added in order."""

    def __init__(self) -> None:
        self.nodes: list[Doc] = []
        self.edges: list[Doc] = []

    def add(self, nid: str, type_: str, src: str | list[str] | None = None, **params: Any) -> str:
        self.nodes.append({"id": nid, "type": type_, "params": params})
        for port, s in enumerate([src] if isinstance(src, str) else (src or [])):
            self.edges.append({"src": s, "dst": nid, "port": port})
        return nid

    def block(self, nid: str, name: str, src: str | list[str], body: _Builder,
              inputs: list[str], output: str) -> str:
        """A Block node holding ``body`` (its wires start from the names in ``inputs``)."""
        self.nodes.append({"id": nid, "type": "Block", "params": {},
                           "block": {"name": name, "inputs": inputs, "output": output,
                                     "nodes": body.nodes, "edges": body.edges,
                                     "ui": _layered(body.nodes, body.edges)}})
        for port, s in enumerate([src] if isinstance(src, str) else src):
            self.edges.append({"src": s, "dst": nid, "port": port})
        return nid

    def doc(self, name: str, training: Doc) -> Doc:
        has_blocks = any(n["type"] == "Block" for n in self.nodes)
        return {"format": "netbuilder.graph", "version": 2 if has_blocks else 1, "name": name,
                "nodes": self.nodes, "edges": self.edges, "ui": {}, "training": training}


def _layered(nodes: list[Doc], edges: list[Doc]) -> Doc:
    """Inner positions: one row per step from the block's input, side by side within a row."""
    depth: dict[str, int] = {}
    for n in nodes:  # nodes come in an order where each follows what feeds it
        srcs = [e["src"] for e in edges if e["dst"] == n["id"]]
        depth[n["id"]] = 1 + max((depth.get(s, -1) for s in srcs), default=-1)
    used: dict[int, int] = {}
    ui = {}
    for n in nodes:
        d = depth[n["id"]]
        col = used.get(d, 0)
        used[d] = col + 1
        ui[n["id"]] = {"pos": [220.0 * col, 100.0 * d]}
    return ui


def _conv(b: _Builder, nid: str, src: str, filters: int, k: int = 3, stride: int = 1,
          padding: Any = "same", bias: bool = False) -> str:
    return b.add(nid, "Conv2D", src, filters=filters, kernel_size=k, stride=stride,
                 padding=padding if stride == 1 else k // 2, bias=bias)


def _basic_block(filters: int, stride: int) -> tuple[_Builder, str]:
    """ResNet's basic block: conv-bn-relu-conv-bn, plus the shortcut (a strided 1×1
    convolution and BatchNorm where the shape changes), add, relu."""
    b = _Builder()
    _conv(b, "conv1", "x", filters, stride=stride)
    b.add("bn1", "BatchNorm", "conv1")
    b.add("relu1", "ReLU", "bn1")
    _conv(b, "conv2", "relu1", filters)
    b.add("bn2", "BatchNorm", "conv2")
    short = "x"
    if stride != 1:
        _conv(b, "proj", "x", filters, k=1, stride=stride, padding=0)
        short = b.add("proj_bn", "BatchNorm", "proj")
    b.add("add", "Add", ["bn2", short])
    b.add("relu2", "ReLU", "add")
    return b, "relu2"


CIFAR_TRAINING = {"dataset": "cifar10", "epochs": 30, "batch_size": 128, "seed": 0,
                  "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
                  "schedule": {"type": "cosine"}, "weight_decay": 0.0005,
                  "normalize": "standardize", "augment": {"shift": 0.125},
                  "val_split": 0.1}


def lenet5_mnist() -> Doc:
    """LeNet-5 (LeCun et al. 1998, ReLU and max-pooling): 61,706 parameters."""
    b = _Builder()
    b.add("in", "Input", shape=[1, 28, 28])
    b.add("c1", "Conv2D", "in", filters=6, kernel_size=5, padding=2)
    b.add("a1", "ReLU", "c1")
    b.add("s2", "MaxPool2D", "a1", pool_size=2)
    b.add("c3", "Conv2D", "s2", filters=16, kernel_size=5)
    b.add("a3", "ReLU", "c3")
    b.add("s4", "MaxPool2D", "a3", pool_size=2)
    b.add("flat", "Flatten", "s4")
    b.add("f5", "Dense", "flat", units=120)
    b.add("a5", "ReLU", "f5")
    b.add("f6", "Dense", "a5", units=84)
    b.add("a6", "ReLU", "f6")
    b.add("f7", "Dense", "a6", units=10)
    b.add("out", "Output", "f7", loss="cross_entropy")
    return b.doc("LeNet-5 (MNIST)", {"dataset": "mnist", "epochs": 10, "batch_size": 64,
                                     "seed": 0, "optimizer": {"type": "adam", "lr": 0.001},
                                     "normalize": "scale", "val_split": 0.1})


def vgg_cifar10() -> Doc:
    """A small VGG: three blocks of two 3×3 convolutions (32, 64, 128 filters) with
    BatchNorm, ReLU and 2×2 max-pooling, then a 128-unit Dense layer with dropout."""
    b = _Builder()
    src = b.add("in", "Input", shape=[3, 32, 32])
    for i, f in enumerate((32, 64, 128), start=1):
        body = _Builder()
        _conv(body, "conv1", "x", f)
        body.add("bn1", "BatchNorm", "conv1")
        body.add("relu1", "ReLU", "bn1")
        _conv(body, "conv2", "relu1", f)
        body.add("bn2", "BatchNorm", "conv2")
        body.add("relu2", "ReLU", "bn2")
        body.add("pool", "MaxPool2D", "relu2", pool_size=2)
        src = b.block(f"vgg{i}", f"VGG{f}", src, body, ["x"], "pool")
    b.add("flat", "Flatten", src)
    b.add("fc1", "Dense", "flat", units=128)
    b.add("relu", "ReLU", "fc1")
    b.add("drop", "Dropout", "relu", rate=0.5)
    b.add("fc2", "Dense", "drop", units=10)
    b.add("out", "Output", "fc2", loss="cross_entropy")
    return b.doc("VGG-style (CIFAR-10)", dict(CIFAR_TRAINING, epochs=30))


def resnet20_cifar10() -> Doc:
    """ResNet-20 (He et al. 2016, CIFAR variant): a 16-filter stem, three stages of three
    basic blocks (16, 32, 64 filters; the first block of stages 2 and 3 halves the size
    through a 1×1 projection shortcut), global average pooling and a 10-way Dense."""
    return resnet_cifar10(20)


def resnet_cifar10(depth: int) -> Doc:
    """The CIFAR ResNet of ``depth`` = 6n + 2 layers (20, 32, 44, 56, ...): n basic blocks
    per stage, built as ``resnet20_cifar10`` is."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has 6n + 2 layers, not {depth}")
    per_stage = (depth - 2) // 6
    b = _Builder()
    b.add("in", "Input", shape=[3, 32, 32])
    _conv(b, "conv0", "in", 16)
    b.add("bn0", "BatchNorm", "conv0")
    src = b.add("relu0", "ReLU", "bn0")
    for stage, f in enumerate((16, 32, 64), start=1):
        for k in range(1, per_stage + 1):
            stride = 2 if stage > 1 and k == 1 else 1
            body, out = _basic_block(f, stride)
            name = f"ResDown{f}" if stride == 2 else f"ResBlock{f}"
            src = b.block(f"s{stage}b{k}", name, src, body, ["x"], out)
    b.add("gap", "GlobalAvgPool2D", src)
    b.add("fc", "Dense", "gap", units=10)
    b.add("out", "Output", "fc", loss="cross_entropy")
    return b.doc(f"ResNet-{depth} (CIFAR-10)", dict(CIFAR_TRAINING, epochs=30))


def autoencoder_mnist() -> Doc:
    """A dense autoencoder: 784 → 256 → 32 → 256 → 784 with a sigmoid output, learning to
    give back its input (an Output with target "x")."""
    b = _Builder()
    b.add("in", "Input", shape=[1, 28, 28])
    b.add("flat", "Flatten", "in")
    b.add("enc1", "Dense", "flat", units=256)
    b.add("enc1_relu", "ReLU", "enc1")
    b.add("code", "Dense", "enc1_relu", units=32)
    b.add("code_relu", "ReLU", "code")
    b.add("dec1", "Dense", "code_relu", units=256)
    b.add("dec1_relu", "ReLU", "dec1")
    b.add("dec2", "Dense", "dec1_relu", units=784)
    b.add("sig", "Sigmoid", "dec2")
    b.add("image", "Reshape", "sig", shape=[1, 28, 28])
    b.add("out", "Output", "image", loss="mse", target="x")
    return b.doc("Autoencoder (MNIST)", {"dataset": "mnist", "epochs": 10, "batch_size": 128,
                                         "seed": 0, "optimizer": {"type": "adam", "lr": 0.001},
                                         "normalize": "scale", "val_split": 0.1})


def _from_example(name: str) -> Callable[[], Doc]:
    """A template that is a shipped example (``resources/examples/NAME.json``), read afresh
    each time, so the template and the example cannot drift apart."""
    def build() -> Doc:
        return json.loads(example_path(name).read_text("utf-8"))
    build.__name__ = name
    build.__doc__ = f"The shipped example {name} (resources/examples/{name}.json)."
    return build


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("lenet5_mnist", "LeNet-5 for MNIST", "the classic digit classifier", lenet5_mnist),
    Template("vgg_cifar10", "VGG-style net for CIFAR-10",
             "three blocks of two convolutions, BatchNorm and pooling", vgg_cifar10),
    Template("resnet20_cifar10", "ResNet-20 for CIFAR-10",
             "nine residual blocks in three stages", resnet20_cifar10),
    Template("autoencoder_mnist", "Autoencoder for MNIST",
             "784 → 32 → 784, learns to give back its input", autoencoder_mnist),
    Template("mobilenet_shapes", "MobileNet-small for shapes",
             "depthwise-separable blocks (3×3 depthwise + 1×1 pointwise, BatchNorm, ReLU)",
             _from_example("mobilenet_shapes")),
    Template("unet_shapes", "U-Net for segmentation (seg_shapes)",
             "two poolings down, two transposed convolutions up, concatenated skips, "
             "a class per pixel", _from_example("unet_shapes")),
    Template("transformer_sort", "Transformer that sorts tokens",
             "two pre-norm transformer blocks over embedded tokens, a class per step",
             _from_example("transformer_sort")),
)}

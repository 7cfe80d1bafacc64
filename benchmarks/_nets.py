"""The CIFAR-sized benchmark networks as NetBuilder model files (graph dicts): ResNet-8,
ResNet-20 and a BatchNorm-heavy VGG-style net, all on 3×32×32 inputs with 10 classes.

The same dict is compiled by the engine and exported to PyTorch by the project's exporter
(``_peers.torch_module``), so every library runs the same architecture. ResNet-20 is the
shipped example ``resources/examples/resnet20_cifar.json``: ``python benchmarks/_nets.py``
rewrites it from ``resnet20_cifar()`` below.

    python benchmarks/_nets.py            # rewrite resources/examples/resnet20_cifar.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class _Builder:
    """Nodes and edges added in topological order, each placed one row lower than the last
    (so every edge points down the canvas); a shortcut branch sits in a column to the right."""

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name = name
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.ui: dict[str, dict[str, list[int]]] = {}
        self.add("in", "Input", {"shape": list(shape)}, [])

    def add(self, nid: str, kind: str, params: dict[str, Any], srcs: list[str],
            column: int = 0) -> str:
        self.ui[nid] = {"pos": [100 + 220 * column, 90 * len(self.nodes)]}
        self.nodes.append({"id": nid, "type": kind, "params": params})
        for port, s in enumerate(srcs):
            self.edges.append({"src": s, "dst": nid, **({"port": port} if port else {})})
        return nid

    def conv_bn(self, nid: str, src: str, filters: int, k: int = 3, stride: int = 1,
                relu: bool = True, column: int = 0) -> str:
        """Conv2D (no bias, padding k // 2) -> BatchNorm (-> ReLU)."""
        x = self.add(f"{nid}_conv", "Conv2D", {
            "filters": filters, "kernel_size": k, "stride": stride,
            "padding": k // 2 if k > 1 else "valid", "bias": False}, [src], column)
        x = self.add(f"{nid}_bn", "BatchNorm", {}, [x], column)
        return self.add(f"{nid}_relu", "ReLU", {}, [x], column) if relu else x

    def block(self, nid: str, src: str, filters: int, stride: int, cin: int) -> str:
        """A basic residual block: conv-BN-ReLU, conv-BN, + shortcut, ReLU. The shortcut is
        the identity, or a 1×1 strided conv + BN where the size or channels change."""
        y = self.conv_bn(f"{nid}a", src, filters, stride=stride)
        y = self.conv_bn(f"{nid}b", y, filters, relu=False)
        short = src
        if stride != 1 or cin != filters:
            short = self.conv_bn(f"{nid}s", src, filters, k=1, stride=stride, relu=False,
                                 column=1)
        s = self.add(f"{nid}_add", "Add", {}, [y, short])
        return self.add(f"{nid}_out", "ReLU", {}, [s])

    def head(self, src: str, classes: int = 10) -> None:
        x = self.add("gap", "GlobalAvgPool2D", {}, [src])
        x = self.add("logits", "Dense", {"units": classes}, [x])
        self.add("out", "Output", {"loss": "cross_entropy"}, [x])

    def graph(self) -> dict[str, Any]:
        return {"format": "netbuilder.graph", "version": 1, "name": self.name,
                "nodes": self.nodes, "edges": self.edges, "ui": self.ui}


def resnet(name: str, blocks_per_stage: int, widths: tuple[int, ...] = (16, 32, 64)
           ) -> dict[str, Any]:
    """A CIFAR ResNet: conv-BN-ReLU stem of ``widths[0]``, then per width ``blocks_per_stage``
    basic blocks (the first of every stage after the first strided, with a 1×1 strided
    conv + BN shortcut), global average pool, Dense 10."""
    b = _Builder(name, (3, 32, 32))
    x = b.conv_bn("stem", "in", widths[0])
    cin = widths[0]
    for s, width in enumerate(widths):
        for i in range(blocks_per_stage):
            stride = 2 if s > 0 and i == 0 else 1
            x = b.block(f"s{s + 1}b{i + 1}", x, width, stride, cin)
            cin = width
    b.head(x)
    return b.graph()


def resnet8() -> dict[str, Any]:
    """Stem 16; block 16; strided block to 32 (1×1 strided conv + BN shortcut); block 32;
    global average pool; Dense 10."""
    return resnet("ResNet-8", 2, (16, 32))


def resnet20() -> dict[str, Any]:
    """3 stages × 3 blocks at 16 / 32 / 64 channels (He et al. 2016, CIFAR)."""
    return resnet("ResNet-20", 3, (16, 32, 64))


def vgg_bn() -> dict[str, Any]:
    """VGG-style, a BatchNorm after every conv: 2× conv-BN-ReLU at 32, 64 and 128 channels,
    each pair followed by a 2×2 max-pool; Dense 128 - BN - ReLU; Dense 10."""
    b = _Builder("VGG-BN", (3, 32, 32))
    x = "in"
    for s, width in enumerate((32, 64, 128)):
        x = b.conv_bn(f"c{s + 1}a", x, width)
        x = b.conv_bn(f"c{s + 1}b", x, width)
        x = b.add(f"pool{s + 1}", "MaxPool2D", {"pool_size": 2}, [x])
    x = b.add("flatten", "Flatten", {}, [x])
    x = b.add("fc", "Dense", {"units": 128, "bias": False}, [x])
    x = b.add("fc_bn", "BatchNorm", {}, [x])
    x = b.add("fc_relu", "ReLU", {}, [x])
    x = b.add("logits", "Dense", {"units": 10}, [x])
    b.add("out", "Output", {"loss": "cross_entropy"}, [x])
    return b.graph()


EXAMPLE = ROOT / "resources" / "examples" / "resnet20_cifar.json"
EXAMPLE_TRAINING = {"dataset": "shapes_color", "epochs": 10, "batch_size": 64, "seed": 0,
                    "optimizer": {"type": "adam", "lr": 0.003},
                    "schedule": {"type": "cosine"}, "val_split": 0.1, "test_split": 0.2}


def resnet20_cifar() -> dict[str, Any]:
    """The shipped example: ResNet-20 with a training section on ``shapes_color``."""
    g = resnet20()
    g["name"] = ("ResNet-20 (CIFAR layout: 3 stages × 3 residual blocks at 16/32/64 channels) "
                 "on coloured 3×32×32 shapes")
    g["training"] = dict(EXAMPLE_TRAINING)
    return g


if __name__ == "__main__":
    EXAMPLE.write_text(json.dumps(resnet20_cifar(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {EXAMPLE}", file=sys.stderr)

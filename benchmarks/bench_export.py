"""Export LeNet-5 to ONNX and to PyTorch code: time, file sizes, and what a viewer shows.

    python benchmarks/bench_export.py [--repeat 20] [--out DIR]

LeNet-5 here is the classic 10-class network: Conv 6@5×5 pad 2, ReLU, MaxPool 2,
Conv 16@5×5, ReLU, MaxPool 2, Flatten, Dense 120, ReLU, Dense 84, ReLU, Dense 10, Output.
Prints the median and best export time (build + check + write) of each format, the file
sizes, the ONNX graph as a netron-style listing, onnxruntime's agreement with the engine,
and the ONNX import time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_description

import engine
from engine.export import (
    build_onnx,
    describe_onnx,
    export_onnx,
    export_pytorch,
    import_onnx,
)

LENET5 = {
    "format": "netbuilder.graph", "version": 1, "name": "LeNet-5",
    "nodes": [{"id": i, "type": t, "params": p} for i, t, p in [
        ("in", "Input", {"shape": [1, 28, 28]}),
        ("c1", "Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}), ("a1", "ReLU", {}),
        ("s2", "MaxPool2D", {"pool_size": 2}),
        ("c3", "Conv2D", {"filters": 16, "kernel_size": 5}), ("a3", "ReLU", {}),
        ("s4", "MaxPool2D", {"pool_size": 2}), ("flatten", "Flatten", {}),
        ("f5", "Dense", {"units": 120}), ("a5", "ReLU", {}),
        ("f6", "Dense", {"units": 84}), ("a6", "ReLU", {}),
        ("f7", "Dense", {"units": 10}), ("out", "Output", {"loss": "cross_entropy"})]],
}
LENET5["edges"] = [{"src": a["id"], "dst": b["id"]}
                   for a, b in zip(LENET5["nodes"], LENET5["nodes"][1:])]


def timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, min(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", help="keep the exported files in this folder")
    args = ap.parse_args()
    net = engine.compile(engine.Graph.from_dict(LENET5), seed=0)
    folder = Path(args.out or tempfile.mkdtemp(prefix="nb_export_"))
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path, py_path = folder / "lenet5.onnx", folder / "lenet5.py"
    export_onnx(net, onnx_path)
    export_pytorch(net, py_path)
    onnx_ms = timed(lambda: export_onnx(net, onnx_path), args.repeat)
    py_ms = timed(lambda: export_pytorch(net, py_path), args.repeat)
    import_ms = timed(lambda: import_onnx(onnx_path), args.repeat)
    n_params = net.param_count()
    print(f"machine: {machine_description()}")
    print(f"LeNet-5: {n_params:,} parameters ({4 * n_params / 1024:.1f} KB as float32)")
    print(f"ONNX export:    median {onnx_ms[0]:6.1f} ms, best {onnx_ms[1]:6.1f} ms; "
          f"{onnx_path.name} {onnx_path.stat().st_size:,} bytes")
    print(f"PyTorch export: median {py_ms[0]:6.1f} ms, best {py_ms[1]:6.1f} ms; "
          f"{py_path.name} {py_path.stat().st_size:,} bytes + "
          f"{py_path.with_suffix('.npz').name} {py_path.with_suffix('.npz').stat().st_size:,} "
          "bytes")
    print(f"ONNX import:    median {import_ms[0]:6.1f} ms, best {import_ms[1]:6.1f} ms")
    model = build_onnx(net)
    print("\nwhat a viewer shows (netron-style):")
    print(describe_onnx(model))
    try:
        import onnxruntime as ort
    except ImportError:
        return
    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"in": x})[0]
    want = net.forward(x)
    print(f"\nonnxruntime {ort.__version__} vs engine: max relative difference "
          f"{np.abs(got - want).max() / np.abs(want).max():.1e}")


if __name__ == "__main__":
    main()

"""Epoch time of each model-zoo template on this machine, written for the templates to show.

    python benchmarks/bench_zoo.py [--steps 8] [--only NAME ...] [--write]

For each template (``engine.zoo``): compile it, then time ``--steps`` training steps (forward
+ loss + backward + the template's optimizer update, float32) at the template's batch size
on random data of its dataset's shape (MNIST, CIFAR-10: downloads are not assumed) or on the
first batch of its generated built-in dataset (shapes, seg_shapes, sort_tokens), after two
warm-up steps. The epoch time is the median step time × the steps of one epoch of the real
dataset's training part (MNIST 54,000 and CIFAR-10 45,000 samples after the template's 10 %
validation split; a built-in dataset's size less its validation and test splits). Data
loading and augmentation are not in it. Prints the median and the spread (min-max) per step.

``--torch`` times, in the same run, the template's PyTorch export (``engine.export``: the
same layers and initial weights) training on the same batch, one engine step and one
PyTorch step taken in turn (torch on as many threads as the engine), and prints the ratio
of the median step times. It is not written to the json.

``--write`` stores the results in ``resources/zoo_measured.json`` (what the templates show).
Accuracy is written there only when measured by a real training run (``--accuracy NAME=TEXT``
records a line measured elsewhere, e.g. with ``netbuilder train``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, import_torch_first, machine_description

clean_environment()
import_torch_first()

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine.zoo import TEMPLATES  # noqa: E402

TRAIN_SAMPLES = {"mnist": 60_000, "cifar10": 50_000}


def dataset_name(training: dict) -> str:
    spec = training["dataset"]
    return spec["name"] if isinstance(spec, dict) else str(spec).split(":", 1)[0]


def batch_of(net: engine.Network, training: dict, batch: int
             ) -> tuple[np.ndarray, np.ndarray, int]:
    """(x, y, training samples per epoch): random data for the downloaded datasets, the
    first batch of the real (prepared) data for a built-in one."""
    name = dataset_name(training)
    out = net.output_ids[0]
    if name in TRAIN_SAMPLES:
        rng = np.random.default_rng(0)
        x = rng.random((batch, *net.shapes[net.input_ids[0]]), dtype=np.float32)
        y = x if net.layers[out].p["target"] == "x" else \
            rng.integers(0, net.shapes[out][-1], batch)
        return x, y, int(TRAIN_SAMPLES[name] * (1 - float(training.get("val_split", 0.1))))
    settings = engine.TrainSettings.from_dict(training)
    splits = engine.training.prepare_data(engine.load_dataset(training["dataset"]), net, settings)
    x, ys = engine.training.batch_arrays(net, splits.train.arrays, slice(0, batch))
    return x, ys["y"], len(splits.train)


def measure(name: str, steps: int) -> dict:
    t = TEMPLATES[name]
    g = t.graph()
    tr = g.training
    batch = int(tr.get("batch_size", 32))
    net = engine.compile(g, seed=0)
    opt = engine.make_optimizer(tr.get("optimizer"))
    x, y, n_train = batch_of(net, tr, batch)
    for _ in range(2):
        net.train_step(x, y, opt)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        net.train_step(x, y, opt)
        times.append(time.perf_counter() - t0)
    per_epoch = math.ceil(n_train / batch)
    med = statistics.median(times)
    return {"batch": batch, "steps_timed": steps, "step_median_s": round(med, 4),
            "step_min_s": round(min(times), 4), "step_max_s": round(max(times), 4),
            "steps_per_epoch": per_epoch, "epoch_s": round(med * per_epoch, 1),
            "params": net.param_count(), "dataset": dataset_name(tr)}


def versus_torch(name: str, steps: int) -> str:
    """Median engine and PyTorch step times, taken in turn on the same batch."""
    import importlib.util
    import tempfile

    import torch

    from engine.export import export_pytorch

    t = TEMPLATES[name]
    g = t.graph()
    tr = g.training
    batch = int(tr.get("batch_size", 32))
    net = engine.compile(g, seed=0)
    opt = engine.make_optimizer(tr.get("optimizer"))
    folder = Path(tempfile.mkdtemp())
    report = export_pytorch(net, folder / f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"zoo_{name}", report["script"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = next(v for v in vars(mod).values() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and v.__module__ == mod.__name__
               and v.__name__ == engine.export.pytorch_export.class_name(g.name))
    model = mod.load_weights(cls()).train()
    torch.set_num_threads(engine.get_num_threads())
    o = tr.get("optimizer", {})
    if o.get("type") == "sgd":
        topt = torch.optim.SGD(model.parameters(), lr=o.get("lr", 0.01),
                               momentum=o.get("momentum", 0.0), nesterov=o.get("nesterov", False))
    else:
        topt = torch.optim.Adam(model.parameters(), lr=o.get("lr", 0.001))
    x, y, _ = batch_of(net, tr, batch)
    out = net.output_ids[0]
    auto = net.layers[out].p["target"] == "x"
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.MSELoss() if auto else torch.nn.CrossEntropyLoss()
    per_step = net.layers[out].p["loss"] == "cross_entropy" and len(net.shapes[out]) == 2

    def torch_loss(pred: torch.Tensor) -> torch.Tensor:
        # the engine's (T, classes) cross-entropy is PyTorch's (N, classes, T)
        return loss_fn(pred.transpose(1, 2) if per_step else pred, yt)

    def torch_step() -> None:
        topt.zero_grad(set_to_none=True)
        torch_loss(model(xt)).backward()
        topt.step()

    ours, theirs = [], []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        net.train_step(x, y, opt)
        t1 = time.perf_counter()
        torch_step()
        t2 = time.perf_counter()
        if i >= 2:
            ours.append(t1 - t0)
            theirs.append(t2 - t1)
    a, b = statistics.median(ours), statistics.median(theirs)
    return (f"{name}: engine {a:.3f} s ({min(ours):.3f}-{max(ours):.3f}), PyTorch "
            f"{torch.__version__} {b:.3f} s ({min(theirs):.3f}-{max(theirs):.3f}) per step of "
            f"{batch}; engine/PyTorch time {a / b:.2f}x")


def describe(r: dict, accuracy: str = "") -> str:
    mins = r["epoch_s"] / 60
    text = (f"about {mins:.0f} min per epoch" if mins >= 2 else
            f"about {r['epoch_s']:.0f} s per epoch")
    load = f", load average {r['load_average']:.0f}" if r.get("load_average") else ""
    text += (f" ({r['steps_per_epoch']} steps of {r['batch']}, median step "
             f"{r['step_median_s']:.2f} s over {r['steps_timed']}, measured on a 2-core CPU "
             f"shared with other work{load})")
    return text + (f"; {accuracy}" if accuracy else "; accuracy not measured yet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--only", nargs="*", default=list(TEMPLATES))
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--torch", action="store_true")
    ap.add_argument("--accuracy", action="append", default=[], metavar="NAME=TEXT")
    args = ap.parse_args()
    acc = dict(a.split("=", 1) for a in args.accuracy)
    print(f"# {machine_description()}, engine threads {engine.get_num_threads()}")
    path = ROOT / "resources" / "zoo_measured.json"
    data = json.loads(path.read_text()) if path.exists() else {"templates": {}}
    for name in args.only:
        load = os.getloadavg()[0]  # how busy the machine was: the times scale with it
        r = measure(name, args.steps)
        r["load_average"] = round(load, 1)
        print(f"{name:20s} batch {r['batch']:4d}  step median {r['step_median_s']:.3f} s "
              f"(min {r['step_min_s']:.3f}, max {r['step_max_s']:.3f})  "
              f"epoch ≈ {r['epoch_s']:.0f} s ({r['steps_per_epoch']} steps)", flush=True)
        old = data["templates"].get(name, {})
        accuracy = acc.get(name, old.get("accuracy", ""))
        r.update(accuracy=accuracy, text=describe(r, accuracy),
                 machine=machine_description(),
                 date=datetime.date.today().isoformat())
        data["templates"][name] = r
        if args.torch:
            print("  " + versus_torch(name, args.steps), flush=True)
    if args.write:
        data["command"] = "python benchmarks/bench_zoo.py --write"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

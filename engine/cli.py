"""Command-line interface without Qt: ``netbuilder train | info | gradcheck | export``.

    netbuilder train MODEL [--data NAME|PATH] [--epochs N] [--batch-size N|all]
                     [--optimizer NAME] [--lr LR] [--seed N] [--threads N] [--out DIR]
                     [--val-split F] [--test-split F] [--limit N] [--quiet]
    netbuilder info [MODEL]
    netbuilder gradcheck MODEL [--batch N] [--seed N] [--tolerance T]
    netbuilder export MODEL --format onnx|pytorch -o PATH [--data NAME|PATH] [--seed N]
    netbuilder datasets [list | fetch NAME... | add NAME PATH... | remove NAME...]

``--data mnist`` (or fashion_mnist, kmnist, cifar10) downloads the dataset on first use, with
a progress bar on stderr, into the user's data folder (see ``engine.data.remote``).

MODEL is a model file (``*.json``), a trained bundle (``*.nbmodel``; training a bundle
continues from its weights) or the name of a shipped example (``lenet5``, ``xor_mlp``, …; a
file of that name in the current folder wins). The model file's ``training`` section gives every default
(keys: see ``engine.training``); flags override it. ``train`` saves the trained bundle as
``DIR/<model>.nbmodel`` (default ``DIR`` = ``./runs/<model>``).

Exit codes: 0 done; 1 the run failed (loss became NaN/Inf) or a gradient check failed, or an
internal error; 2 bad input (one line on stderr: ``netbuilder: error: ...``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import cli_data, cli_runs, cli_zoo
from .bundle import EXTENSION, Bundle, is_bundle_path, load_bundle, save_bundle
from .cost import training_cost
from .data import BUILTINS, CATALOGUE, load_dataset
from .errors import NetBuilderError, ParamError, TrainingError
from .graph import Graph, load_graph
from .network import Network
from .registry import fmt_shape, layer_types
from .resources import ResourcesMissingError, example_names, resolve_model
from .text import fmt_time, plural
from .training import BatchEvent, EpochEvent, Trainer, TrainSettings

PROG = "netbuilder"


class UsageError(Exception):
    """A command line argparse cannot accept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _pct(v: float | None) -> str:
    return "  -  " if v is None else f"{100 * v:5.1f}%"


class Progress:
    """One-line ``\\r`` progress bar on a terminal (at most ~10 updates/s; loss and accuracy
    are running means over the epoch so far) and one line per epoch; only the epoch lines
    when the stream is not a terminal."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._width = 0
        self._sums: list[float] = [0.0, 0.0, 0]

    def _line(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self._width = len(text)
        self.stream.flush()

    def clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
            self.stream.flush()

    def __call__(self, ev: Any) -> None:
        if isinstance(ev, BatchEvent):
            if ev.batch == 1:
                self._sums = [0.0, 0.0, 0]
            self._sums[0] += ev.loss
            self._sums[1] += ev.accuracy or 0.0
            self._sums[2] += 1
        if isinstance(ev, BatchEvent) and self.tty and not self.quiet:
            now = time.monotonic()
            if now - self._last < 0.1 and ev.batch < ev.batches:
                return
            self._last = now
            filled = int(20 * ev.batch / ev.batches)
            bar = "#" * filled + "." * (20 - filled)
            loss, acc_sum, k = self._sums
            acc = "" if ev.accuracy is None else f" acc {100 * acc_sum / k:5.1f}%"
            self._line(f"epoch {ev.epoch}/{ev.epochs} [{bar}] {ev.batch}/{ev.batches} "
                       f"loss {loss / k:.4f}{acc} {ev.samples_per_s:,.0f} samples/s "
                       f"ETA {fmt_time(ev.eta)}")
        elif isinstance(ev, EpochEvent):
            self.clear()
            if self.quiet:
                return
            parts = [f"epoch {ev.epoch:>{len(str(ev.epochs))}}/{ev.epochs}",
                     f"loss {ev.train_loss:.4f}"]
            if ev.train_accuracy is not None:
                parts.append(f"acc {_pct(ev.train_accuracy)}")
            if ev.val_loss is not None:
                parts.append(f"val_loss {ev.val_loss:.4f}")
            if ev.val_accuracy is not None:
                parts.append(f"val_acc {_pct(ev.val_accuracy)}")
            if ev.val_iou is not None:
                parts.append(f"val_mIoU {ev.val_iou:.3f}")
            parts += [f"lr {ev.lr:.3g}", f"{ev.epoch_time:.1f}s",
                      f"{ev.samples_per_s:,.0f} samples/s"]
            if ev.epoch < ev.epochs:
                parts.append(f"ETA {fmt_time(ev.eta)}")
            lines = ["  ".join(parts)]
            if len(ev.heads) > 1:
                lines += [f"    {oid}: " + head_summary(h) for oid, h in ev.heads.items()]
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


def head_summary(h: dict[str, float]) -> str:
    """One head's train / validation loss and accuracy, e.g. ``loss 0.1 acc 97.0%  val_…``."""
    parts = []
    for prefix, label in (("train_", ""), ("val_", "val_")):
        if f"{prefix}loss" in h:
            parts.append(f"{label}loss {h[f'{prefix}loss']:.4f}")
        if f"{prefix}accuracy" in h:
            parts.append(f"{label}acc {_pct(h[f'{prefix}accuracy'])}")
        if f"{prefix}iou" in h:
            parts.append(f"{label}mIoU {h[f'{prefix}iou']:.3f}")
    return "  ".join(parts)


class set_threads:  # noqa: N801  (used like a function)
    """Use ``n`` threads in Numba kernels and in BLAS until ``restore()``."""

    def __init__(self, n: int) -> None:
        import numba
        most = int(numba.config.NUMBA_NUM_THREADS)
        if not 1 <= n <= most:
            raise ParamError(f"--threads must be between 1 and {most} on this machine, got {n}")
        from .threads import blas_threads, set_num_threads
        self._blas = blas_threads()
        self._numba_before = set_num_threads(n)  # BLAS too, from any thread

    def restore(self) -> None:
        from .threads import set_blas_threads, set_num_threads
        set_num_threads(self._numba_before)
        set_blas_threads(self._blas)


def load_model(path: str) -> tuple[Graph, Network | None, Bundle | None]:
    """(graph, trained net or None, bundle or None) from a model file, a bundle, or an
    ``.onnx`` file (imported with its weights, as File ▸ Open in the app does)."""
    if is_bundle_path(path) or str(path).endswith(EXTENSION):
        b = load_bundle(path)
        return b.graph, b.net, b
    if str(path).lower().endswith(".onnx"):
        from .export import import_onnx
        graph, state = import_onnx(path)
        net = Network(graph, seed=0)
        net.load_state_dict(state)
        return graph, net, None
    return load_graph(path), None, None


def _model_stem(path: str) -> str:
    name = Path(path).name
    for suffix in (EXTENSION, ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or "model"
    return Path(path).stem or "model"


# ----- train --------------------------------------------------------------------------------
def _settings_from_args(graph: Graph, args: argparse.Namespace) -> TrainSettings:
    section = dict(graph.training)
    opt = section.get("optimizer", {"type": "sgd", "lr": 0.01})
    if isinstance(opt, str):
        opt = {"type": opt}
    if args.optimizer and args.optimizer.lower() != str(opt.get("type", "sgd")).lower():
        opt = {"type": args.optimizer.lower()}
    if args.lr is not None:
        opt = {**opt, "lr": args.lr}
    section["optimizer"] = opt
    bs: Any = args.batch_size
    if bs is not None:
        bs = 0 if bs.lower() in ("all", "full", "0") else _int_arg(bs, "--batch-size")
    return TrainSettings.from_dict(section, epochs=args.epochs, batch_size=bs, seed=args.seed,
                                   val_split=args.val_split, test_split=args.test_split,
                                   limit=args.limit)


def _int_arg(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ParamError(f"{flag} must be a whole number or 'all', got {text!r}") from None


def threads_arg(text: str) -> int | str:
    """``--threads``: a whole number, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number or 'auto', got {text!r}") from None


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    fixed = isinstance(args.threads, int)
    limiter = set_threads(args.threads) if fixed else None
    try:
        return _train(args, out, err)
    finally:
        if limiter is not None:
            limiter.restore()


def _train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    graph, net, bundle = load_model(args.model)
    settings = _settings_from_args(graph, args)
    spec = args.data if args.data is not None else settings.dataset
    if spec is None:
        raise ParamError("no dataset: give --data NAME|PATH or set training.dataset in the "
                         "model file")
    base = None if args.data is not None else Path(args.model).resolve().parent
    cli_data.prefetch(spec, err, quiet=args.quiet)
    ds = load_dataset(spec, base_dir=base)
    if net is None:
        net = Network(graph, seed=settings.seed)
    record = cli_runs.start_run(args, graph, net, bundle, out)
    progress = Progress(err, quiet=args.quiet)
    trainer = Trainer(net, ds, settings, callbacks=[progress],
                      tune_threads=not isinstance(args.threads, int))
    recorder = cli_runs.make_recorder(trainer, net) if args.record else None
    tape = cli_runs.make_tape(trainer, net, record, bundle is not None or bool(args.init_from))
    sp = trainer.splits
    sizes = sp.sizes()
    print(f"model: {graph.name} ({net.param_count():,} parameters, {net.macs():,} "
          f"multiply-adds per sample)", file=out)
    print(f"data: {ds.describe()}; train {sizes['train']}, val {sizes['val']}, "
          f"test {sizes['test']}", file=out)
    opt = trainer.opt
    print(f"training: {plural(settings.epochs, 'epoch')}, batch {trainer.batch_size}, {opt.name} "
          f"lr {opt.lr:g}, seed {settings.seed}", file=out)
    out.flush()

    def on_sigint(signum: int, frame: Any) -> None:
        trainer.stop()
        signal.signal(signal.SIGINT, previous)

    previous: Callable[..., Any] | int | None = None
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = trainer.run()
    except TrainingError as exc:
        progress.clear()
        print(f"{PROG}: error: {exc.message}", file=err)
        return 1
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGINT, previous)
    progress.clear()
    status = {"completed": "done", "early_stopped": "stopped early (no better validation "
              "loss)", "stopped": "interrupted"}[result.status]
    line = f"{status}: {plural(result.epochs_done, 'epoch')}, {plural(result.steps, 'step')} in " \
           f"{fmt_time(result.elapsed)}"
    if result.restored_best:
        line += f"; kept the weights of epoch {result.best_epoch} (best validation loss)"
    print(line, file=out)
    record.epoch = result.best_epoch if result.restored_best else result.epochs_done
    if record.parent and record.parent.get("epoch") is not None and not args.init_from:
        record.epoch += record.parent["epoch"]  # a continuation counts on from its parent
    metrics: dict[str, Any] = {"status": result.status, "epochs": result.epochs_done,
                               "train_loss": result.train_loss,
                               "train_accuracy": result.train_accuracy,
                               "val_loss": result.val_loss, "val_accuracy": result.val_accuracy}
    final = sp.test or sp.val
    if final is not None:
        ev = trainer.evaluate(final)
        which = "test" if sp.test is not None else "validation"
        metrics[f"{which}_loss"] = ev.loss
        acc = f"{which} accuracy {100 * ev.accuracy:.2f}%, " if ev.accuracy is not None else \
            f"{which} "
        if ev.iou is not None:
            acc = f"{which} mean IoU {ev.iou:.4f}, pixel {acc.removeprefix(which + ' ')}"
        print(f"{acc}loss {ev.loss:.4f} on {plural(ev.n, 'sample')}", file=out)
        if ev.accuracy is not None:
            metrics[f"{which}_accuracy"] = ev.accuracy
        if ev.iou is not None:
            metrics[f"{which}_iou"] = ev.iou
        if len(ev.heads) > 1:
            for oid, h in ev.heads.items():
                kind = net.layers[oid].p["loss"]
                acc = f"accuracy {100 * h['accuracy']:.2f}%, " if "accuracy" in h else ""
                acc = (f"mean IoU {h['iou']:.4f}, " if "iou" in h else "") + acc
                print(f"  head {oid}: {acc}{kind} loss {h['loss']:.4f}", file=out)
            metrics[f"{which}_heads"] = ev.heads
    stem = _model_stem(args.model)
    folder = Path(args.out) if args.out else Path("runs") / stem
    path = folder / f"{stem}{EXTENSION}"
    dataset = {"name": ds.name, "spec": spec if isinstance(spec, str | dict) else str(spec),
               "task": ds.task, "class_names": ds.class_names,
               "sample_shape": list(ds.sample_shape), "sizes": sizes}
    history = trainer.history.to_json()
    extra = cli_runs.tape_members(tape, record, net, history, dataset, result.status)
    save_bundle(path, net, history=history,
                preprocess=sp.normalizer.to_json() if sp.normalizer else None,
                dataset=dataset, training=settings.to_dict(), metrics=metrics,
                run=record.to_dict(), extra={**extra, **(recorder.members() if recorder else {})},
                **({"recorder": recorder.describe()} if recorder else {}))
    print(f"saved {path}", file=out)
    return 130 if result.status == "stopped" else 0


# ----- info ---------------------------------------------------------------------------------
def _table(rows: list[tuple[str, ...]], out: TextIO, right: int = 0) -> None:
    """Print rows in columns; the last ``right`` columns right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [c.rjust(w) if i >= len(r) - right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells).rstrip(), file=out)


def layer_catalogue(out: TextIO) -> None:
    """Every registered layer type with what it can be exported to and imported from."""
    rows = [("type", "category", "ONNX export", "ONNX import", "PyTorch export")]
    for name, cls in layer_types().items():
        c = cls.capabilities()
        rows.append((name, cls.category, *("yes" if v else "no" for v in
                                           (c.onnx_export, c.onnx_import, c.pytorch_export))))
    _table(rows, out)


def export_summary(net: Network) -> str:
    """One line: which export formats take this model, naming the nodes that block one."""
    parts = []
    for fmt, field in (("ONNX", "onnx_export"), ("PyTorch", "pytorch_export")):
        bad = [f"{net.layers[n].type_name} '{n}'" for n in net.order
               if not getattr(net.layers[n].capabilities(), field)]
        parts.append(f"{fmt} yes" if not bad else
                     f"{fmt} no (no {fmt} equivalent for {', '.join(bad)})")
    return "export: " + ", ".join(parts)


def cmd_info(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.model is None:
        layer_catalogue(out)
        return 0
    graph, net, bundle = load_model(args.model)
    net = net or Network(graph, seed=0)
    rows = [("node", "type", "output shape", "params", "mult-adds")]
    for nid in net.order:
        layer = net.layers[nid]
        n_params = sum(a.size for k, a in net.params.items() if k.rsplit(".", 1)[0] == nid)
        rows.append((nid, layer.type_name, fmt_shape(layer.out_shape), f"{n_params:,}",
                     f"{layer.macs():,}"))
    rows.append(("total", plural(len(net.order), "node"), "", f"{net.param_count():,}",
                 f"{net.macs():,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"{graph.name} ({args.model})", file=out)
    for i, r in enumerate(rows):
        if i == len(rows) - 1:
            print("  ".join("-" * w for w in widths), file=out)
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]),
                 r[3].rjust(widths[3]), r[4].rjust(widths[4])]
        print("  ".join(cells).rstrip(), file=out)
    n_buf = sum(a.size for a in net.buffers.values())
    mb = 4 * (net.param_count() + n_buf) / 2**20
    print(f"weights: {mb:.2f} MB float32" + (f" (+{n_buf:,} buffer values)" if n_buf else ""),
          file=out)
    print(export_summary(net), file=out)
    print("training step: " + training_cost(net).summary(), file=out)
    if graph.training:
        t = graph.training
        opt = t.get("optimizer", {})
        opt_s = opt.get("type", opt) if isinstance(opt, dict) else opt
        epochs = t.get("epochs", TrainSettings().epochs)
        print(f"training: dataset {t.get('dataset', '-')}, {plural(epochs, 'epoch')}, "
              f"batch {t.get('batch_size', '-')}, optimizer {opt_s}", file=out)
    if bundle is not None:
        m = bundle.manifest.get("metrics") or {}
        shown = ", ".join(f"{k} {v:.4g}" for k, v in m.items()
                          if isinstance(v, float | int) and not isinstance(v, bool))
        print(f"bundle: saved {bundle.manifest.get('created', '?')}"
              + (f"; {shown}" if shown else ""), file=out)
        cli_runs.print_lineage(bundle, out)
        cli_runs.print_recording(bundle, out)
    return 0


# ----- gradcheck ----------------------------------------------------------------------------
def cmd_gradcheck(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .gradcheck import gradcheck
    limiter = set_threads(args.threads) if args.threads else None
    try:
        graph, net, _ = load_model(args.model)
        report = gradcheck(net if net is not None else graph, batch=args.batch, seed=args.seed)
    finally:
        if limiter is not None:
            limiter.restore()
    print(report.table(), file=out)
    worst = report.worst
    ok = worst <= args.tolerance
    print(f"worst relative error {worst:.2e}: "
          + ("ok" if ok else f"above {args.tolerance:g}; check the flagged parameters"),
          file=out)
    return 0 if ok else 1


# ----- export -------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .data import fit_to_model
    from .export import export_onnx, export_pytorch
    graph, net, bundle = load_model(args.model)
    model: Any = bundle if bundle is not None else (net or Network(graph, seed=args.seed))
    if args.data is not None and args.format != "pytorch":
        raise ParamError("--data goes with --format pytorch (it saves the dataset beside the "
                         "script)")
    if args.format == "onnx":
        r = export_onnx(model, args.output)
        print(f"wrote {r['path']} ({r['bytes'] / 1024:.1f} KB, {plural(r['nodes'], 'node')}, opset "
              f"{r['opset']}; inputs {', '.join(r['inputs'])}; outputs "
              f"{', '.join(r['outputs'])}) in {r['seconds']:.2f} s", file=out)
        return 0
    ds = None
    if args.data is not None:
        cli_data.prefetch(args.data, err)
        ds = fit_to_model(load_dataset(args.data), model.net if bundle is not None else model)
    r = export_pytorch(model, args.output, data=ds)
    print(f"wrote {r['script']} and its weights {r['weights']}"
          + (f" and the data {r['data']}" if r["data"] else ""), file=out)
    data = r["data"] or "DATA.npz"
    print(f"train it: torchrun --nproc-per-node 2 {r['script']} --data {data}", file=out)
    return 0


# ----- entry --------------------------------------------------------------------------------
COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
    "train": cmd_train, "info": cmd_info, "gradcheck": cmd_gradcheck, "export": cmd_export,
    "datasets": cli_data.cmd_datasets, "new": cli_zoo.cmd_new, "replay": cli_runs.cmd_replay}


def command_names() -> list[str]:
    return list(COMMANDS)


MODEL_HELP = "model file (.json), bundle (.nbmodel) or example name (e.g. lenet5)"


def _examples_epilog() -> str:
    try:
        names = example_names()
    except ResourcesMissingError as exc:
        return exc.message
    return ("MODEL may be the name of a shipped example (a file of that name in the current "
            f"folder wins): {', '.join(names)}.")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Design, train and inspect neural networks. "
                "'netbuilder' alone opens the application on the LeNet-5 example; "
                "'netbuilder FILE' or 'netbuilder EXAMPLE' (e.g. 'netbuilder lenet5') opens "
                "it on that model file, bundle or example.", epilog=_examples_epilog())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    t = sub.add_parser("train", help="train a model file or bundle from the command line")
    t.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    t.add_argument("--data", metavar="NAME|PATH",
                   help=f"built-in dataset ({', '.join(BUILTINS)}; settings as "
                        f"name:key=value,...), a dataset downloaded on first use "
                        f"({', '.join(CATALOGUE)}), or a .npz/.csv/IDX file, CIFAR-10 "
                        "binary archive or image folder")
    t.add_argument("--epochs", type=int, metavar="N")
    t.add_argument("--batch-size", metavar="N|all", help="samples per step; 'all' = full batch")
    t.add_argument("--optimizer", metavar="NAME", help="sgd, adam, adamw, rmsprop or adagrad")
    t.add_argument("--lr", type=float, metavar="LR", help="learning rate")
    t.add_argument("--seed", type=int, metavar="N", help="seed for weights, shuffling, splits")
    t.add_argument("--threads", type=threads_arg, default="auto", metavar="N|auto",
                   help="CPU threads for Numba and BLAS; auto (default) uses every core and "
                        "drops to one while other programs keep a core busy")
    t.add_argument("--out", metavar="DIR", help="folder for the trained bundle "
                                                "(default ./runs/<model>)")
    t.add_argument("--val-split", type=float, metavar="F", help="validation fraction")
    t.add_argument("--test-split", type=float, metavar="F", help="test fraction")
    t.add_argument("--limit", type=int, metavar="N", help="use at most N samples (quick trial)")
    t.add_argument("--init-from", metavar="BUNDLE", help="fine-tune: start from the weights "
                   "of this .nbmodel for every node whose id and shapes fit (the others start "
                   "fresh); the run records where its weights came from")
    t.add_argument("--freeze", metavar="ID,ID", help="node ids whose weights stay fixed (no "
                   "weight gradient is computed for them)")
    t.add_argument("--record", action="store_true", help="keep per-epoch snapshots (weights, "
                   "statistics, feature maps of a few validation samples) in the bundle")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress or epoch lines")
    i = sub.add_parser("info", help="per node: type, output shape, parameters, multiply-adds "
                                    "and the export formats; without MODEL: every layer type "
                                    "and what it exports to")
    i.add_argument("model", metavar="MODEL", nargs="?", help=MODEL_HELP)
    g = sub.add_parser("gradcheck", help="compare backprop gradients with finite differences")
    g.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    g.add_argument("--batch", type=int, default=2, metavar="N")
    g.add_argument("--seed", type=int, default=0, metavar="N")
    g.add_argument("--tolerance", type=float, default=1e-4, metavar="T",
                   help="largest accepted relative error (default 1e-4)")
    g.add_argument("--threads", type=int, metavar="N")
    e = sub.add_parser("export", help="write the model as ONNX or as a PyTorch script")
    e.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    e.add_argument("--format", required=True, choices=("onnx", "pytorch"))
    e.add_argument("-o", "--output", required=True, metavar="PATH",
                   help="the .onnx file, or the .py script (weights go beside it as .npz)")
    e.add_argument("--data", metavar="NAME|PATH",
                   help="pytorch: also save this dataset beside the script (<name>_data.npz)")
    e.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the initial weights when MODEL is an untrained model file")
    cli_data.add_parser(sub)
    cli_zoo.add_parser(sub)
    cli_runs.add_replay_parser(sub)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run one command; returns the exit code (never raises for bad input)."""
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return 2
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if not args.command:
        build_parser().print_help(out)
        return 0
    try:
        if getattr(args, "model", None) is not None:
            args.model = str(resolve_model(args.model)[0])
        return COMMANDS[args.command](args, out, err)
    except NetBuilderError as exc:
        print(f"{PROG}: error: {exc.message}", file=err)
        return 2
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=err)
        return 130
    except MemoryError:
        print(f"{PROG}: error: out of memory; try a smaller batch or model", file=err)
        return 2
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{PROG}: error: cannot access{where}: {exc.strerror or exc}", file=err)
        return 2
    except Exception as exc:
        if os.environ.get("NETBUILDER_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with "
              "NETBUILDER_DEBUG=1 for the traceback)", file=err)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The run-lineage side of ``netbuilder train`` and ``netbuilder info``: ``--freeze``,
``--init-from`` (fine-tuning through ``engine.carry``), the run record a bundle keeps
(``engine.lineage``), the replay log and run tree it keeps (``engine.replay``,
``engine.run_tree``), and ``netbuilder replay BUNDLE [--run ID]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .bundle import Bundle, load_bundle
from .carry import carry_over
from .errors import BundleError, ParamError
from .graph import Graph
from .lineage import RunRecord, child_record, new_run_id, run_of
from .network import Network
from .recorder import FlightRecorder
from .replay import Checkpoint, ReplayError, RunTape, compare, replay
from .run_tree import TreeRun, find_run, read_tree, tree_members
from .text import plural
from .training import EpochEvent, Trainer, batch_arrays


def freeze_ids(graph: Graph, text: str | None) -> list[str]:
    """The node ids of ``--freeze a,b``, checked against the model."""
    ids = [s.strip() for s in (text or "").split(",") if s.strip()]
    for nid in ids:
        if nid not in graph.nodes:
            raise ParamError(f"--freeze: the model has no node '{nid}' (it has "
                             f"{', '.join(graph.nodes)})")
    return ids


def start_run(args: argparse.Namespace, graph: Graph, net: Network, bundle: Bundle | None,
               out: TextIO) -> RunRecord:
    """Apply ``--freeze`` and ``--init-from`` to ``net`` and say what happened; the run
    record of this run (its parent and where its weights came from)."""
    frozen = freeze_ids(graph, args.freeze)
    for nid in frozen:
        net.set_training(nid, trainable=False)
    frozen = [nid for nid in net.order if not net.graph.nodes[nid].trainable]
    if args.init_from:
        source = load_bundle(args.init_from)
        report = carry_over(source.net, net)
        record = child_record(source.manifest, source.graph, net.graph, args.init_from,
                              report.to_dict(), frozen)
        print(f"{record.provenance()}: kept {plural(len(report.kept), 'node')}"
              + (f", reinitialised {', '.join(report.reinitialised)}"
                 if report.reinitialised else "")
              + (f", new {', '.join(report.added)}" if report.added else ""), file=out)
        if not report.kept:
            print("note: no node of the model fits the bundle's weights (ids and shapes "
                  "differ): training starts from scratch", file=out)
        return record
    if bundle is not None:
        return child_record(bundle.manifest, bundle.graph, net.graph, args.model,
                            frozen=frozen, fine_tune=False)
    return RunRecord(new_run_id(), frozen=frozen)


def print_lineage(bundle: Bundle, out: TextIO) -> None:
    """The bundle's run record in a few lines (nothing for a bundle saved without one)."""
    run = run_of(bundle.manifest)
    if run is None:
        return
    epoch = f", epoch {run.epoch}" if run.epoch is not None else ""
    print(f"run: {run.run_id}{epoch}", file=out)
    if run.parent:
        p = run.parent
        print(f"parent: run {p.get('run_id') or '(unrecorded)'}"
              + (f", epoch {p['epoch']}" if p.get("epoch") is not None else "")
              + (f" ({p['file']})" if p.get("file") else ""), file=out)
    if run.weights_from:
        print(run.provenance(), file=out)
    if run.diff is not None:
        print(f"graph against its parent: {run.diff.summary()}", file=out)
    if run.frozen:
        print(f"frozen: {', '.join(run.frozen)}", file=out)
    if bundle.path is None:
        return
    try:
        tree = read_tree(bundle.path)
    except BundleError as exc:
        print(f"replay: the run tree cannot be read ({exc.message})", file=out)
        return
    own = next((t for t in tree if t.run_id == run.run_id), None)
    if own is not None and own.replay is not None:
        log = own.replay
        print(f"replay: recorded ({plural(log.steps, 'step')} on "
              f"{plural(log.threads, 'thread')}, {plural(len(own.checkpoints), 'checkpoint')}"
              + (f", {plural(len(tree) - 1, 'ancestor')} kept" if len(tree) > 1 else "")
              + f"); check it with: netbuilder replay {bundle.path}", file=out)


def print_recording(bundle: Bundle, out: TextIO) -> None:
    """The flight recorder's manifest entry in one line (nothing without one)."""
    rec = bundle.manifest.get("recorder")
    if not isinstance(rec, dict) or not isinstance(rec.get("epochs"), list):
        return
    epochs = [e for e in rec["epochs"] if isinstance(e, int)]
    span = f"epochs {min(epochs)}–{max(epochs)}, " if epochs else ""
    print(f"recording: {span}{plural(len(epochs), 'snapshot')}, "
          f"{rec.get('bytes', 0) / 2**20:.1f} MiB of a {rec.get('budget', 0) / 2**20:.1f} MiB "
          "budget", file=out)


def make_recorder(trainer: Trainer, net: Network) -> FlightRecorder:
    """A flight recorder on ``net`` that snapshots it after every epoch of ``trainer``, with
    the first 8 validation samples (training samples when there is no validation part)."""
    part = trainer.splits.val or trainer.splits.train
    x, _ = batch_arrays(net, part.arrays, np.arange(min(8, len(part))))
    rec = FlightRecorder(net, samples=x)
    rec.attach(net)

    def on_event(ev: Any) -> None:
        if isinstance(ev, EpochEvent):
            rec.record(ev.epoch, net)

    trainer.callbacks.append(on_event)
    return rec


# ----- replay -------------------------------------------------------------------------------
def make_tape(trainer: Trainer, net: Network, record: RunRecord, from_weights: bool
              ) -> RunTape:
    """The replay tape of a ``netbuilder train`` run; ``from_weights``: the run starts from a
    bundle's weights (continued or fine-tuned), which the tape keeps as its start."""
    start = Checkpoint.of(trainer) if from_weights else None
    ref = {"run_id": record.parent.get("run_id")} if record.parent else {}
    return RunTape(trainer, net.graph, start=start, start_ref=ref)


def tape_members(tape: RunTape, record: RunRecord, net: Network, history: dict[str, Any],
                 dataset: dict[str, Any], status: str) -> dict[str, bytes]:
    """The bundle members of a ``netbuilder train`` run's tree (the run alone)."""
    parent = record.parent
    run = TreeRun(record.run_id, record.run_id, net.graph.to_dict(), dict(tape.log.settings),
                  {"run_id": parent.get("run_id"), "epoch": parent.get("epoch"),
                   "step": None} if parent else None, dataset, status, "", history,
                  record.diff.to_dict() if record.diff is not None else None, tape.log,
                  Checkpoint(record.epoch or 0, tape.log.steps, net.state_dict()),
                  dict(tape.checkpoints), tape.start)
    return tree_members([run])


def add_replay_parser(sub: Any) -> None:
    """The ``replay`` subcommand on ``netbuilder``'s subparsers."""
    r = sub.add_parser("replay", help="train a bundle's run again and check that the weights "
                       "come out bit for bit the same (exit 0: they match, 1: they do not)")
    r.add_argument("model", metavar="BUNDLE", help="a .nbmodel saved by the app or by "
                   "netbuilder train")
    r.add_argument("--run", metavar="ID", help="which of the bundle's runs (default: the "
                   "bundle's own; a unique start of the id will do)")


def cmd_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Replay one run of a bundle headless; 0 when the weights match, 1 when not (naming
    the first tensor that differs)."""
    run = find_run(read_tree(args.model), args.run)
    if run.replay is None or run.final is None:
        raise BundleError(f"run {run.run_id} has no replay log (it was not recorded for replay)")
    log = run.replay
    edits = f", {plural(len(log.edits), 'graph edit')}" if log.edits else ""
    branch = f", from epoch {log.start.get('epoch')} of its parent" if log.start else ""
    print(f"replaying run {run.run_id}: {plural(log.steps, 'step')} on "
          f"{plural(log.threads, 'thread')}, seed {log.seed}{edits}{branch}", file=out)
    out.flush()
    try:
        net, _ = replay(log, start=run.start, base_dir=Path(args.model).resolve().parent)
    except ReplayError as exc:
        print(f"mismatch: {exc.message}", file=out)
        return 1
    miss = compare(run.final.weights, net.state_dict())
    if miss is None:
        print(f"match: all {plural(len(run.final.weights), 'tensor')} are bit for bit the "
              "same", file=out)
        return 0
    print(f"mismatch: the first tensor that differs is {miss.text()}", file=out)
    return 1

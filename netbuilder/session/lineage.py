"""The session's runs as a tree (no Qt): branching a run from another run's checkpoint,
keeping the tree in a run's bundle (``engine.run_tree``) and reading it back, and replaying a
run to check its weights bit for bit (``engine.replay``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import engine
from engine.errors import NetBuilderError
from engine.lineage import graph_diff
from engine.optim import make_optimizer
from engine.replay import Checkpoint, ReplayError, branch_checkpoint, compare, replay
from engine.run_tree import TreeRun, read_tree, tree_members
from engine.text import plural

if TYPE_CHECKING:
    from .runs import RunRecord, RunsStore


def _parent_ref(run: RunRecord) -> dict[str, Any] | None:
    if run.parent_epoch is None:
        return None
    pid = run.parent_run.run_id if run.parent_run is not None else run.parent_id
    return {"run_id": pid, "epoch": run.parent_epoch, "step": run.parent_step}


def lineage_manifest(run: RunRecord) -> dict[str, Any]:
    """The ``engine.lineage`` record of ``run`` for its bundle's manifest (``"run"``)."""
    out: dict[str, Any] = {"run_id": run.run_id,
                           "epoch": run.epochs[-1].epoch if run.epochs else None}
    ref = _parent_ref(run)
    if ref is not None:
        out["parent"] = {"run_id": ref["run_id"], "epoch": ref["epoch"],
                         "file": (run.weights_from or {}).get("file")}
        if run.parent_run is not None:
            out["diff"] = graph_diff(run.parent_run.graph, run.graph).to_dict()
    if run.weights_from:
        out["weights_from"] = dict(run.weights_from)
    frozen = [nid for nid, n in run.graph.nodes.items() if not n.trainable]
    if frozen:
        out["frozen"] = frozen
    return out


def tree_entry(run: RunRecord) -> TreeRun:
    """``run`` as an entry of a bundle's run tree."""
    diff = graph_diff(run.parent_run.graph, run.graph).to_dict() \
        if run.parent_run is not None else None
    final = None
    if run.weights is not None:
        last = run.epochs[-1].epoch if run.epochs else 0
        final = Checkpoint(last, len(run.steps), dict(run.weights))
    return TreeRun(run.run_id, run.name, run.graph.to_dict(), dict(run.settings),
                   _parent_ref(run), dict(run.dataset), run.status, run.message,
                   run.history_json(), diff, run.replay, final, dict(run.checkpoints),
                   run.start)


def tree_of(run: RunRecord) -> dict[str, bytes]:
    """The bundle members keeping ``run`` and its ancestors (``engine.run_tree``)."""
    return tree_members([tree_entry(r) for r in [*run.lineage(), run]])


def _record(t: TreeRun, number: int, path: Path) -> RunRecord:
    from .runs import RunRecord, fill_curves, model_key

    graph = engine.Graph.from_dict(t.graph)
    run = RunRecord(number, graph.name or "model", model_key(graph), graph, dict(t.settings),
                    status=t.status or "saved", dataset=dict(t.dataset),
                    weights=t.final.weights if t.final is not None else None, source=path)
    run.message = f"opened from {path.name} (an ancestor of its run)"
    fill_curves(run, t.history or {})
    _take(run, t)
    return run


def _take(run: RunRecord, t: TreeRun) -> None:
    run.run_id = t.run_id
    run.replay, run.checkpoints, run.start = t.replay, dict(t.checkpoints), t.start
    if t.parent:
        run.parent_id = t.parent.get("run_id")
        run.parent_epoch = t.parent.get("epoch")
        run.parent_step = int(t.parent.get("step") or 0)


def attach_tree(run: RunRecord, path: str | Path, store: RunsStore | None,
                manifest_run_id: str | None) -> None:
    """Give ``run`` (read from the bundle at ``path``) its replay log, checkpoints and place
    in the tree the bundle keeps; ancestors not yet in ``store`` are added to it (ancestors
    first), the ones already there (the same run id) are linked."""
    p = Path(path)
    try:
        runs = read_tree(p)
    except NetBuilderError as exc:
        run.message += f" (its run tree could not be read: {exc.message})"
        return
    if not runs:
        return
    own = next((t for t in runs if t.run_id == manifest_run_id), runs[-1])
    _take(run, own)
    by_id: dict[str, RunRecord] = {}
    for t in runs:
        if t is own:
            break
        known = store.by_run_id(t.run_id) if store is not None else None
        if known is None:
            known = _record(t, store.next_number() if store is not None else 0, p)
            parent = by_id.get(known.parent_id or "") or (
                store.by_run_id(known.parent_id) if store is not None else None)
            known.parent_run = parent
            if store is not None:
                store.add(known)
        by_id[t.run_id] = known
    pid = run.parent_id or ""
    run.parent_run = by_id.get(pid) or (store.by_run_id(pid) if store is not None else None)


# ----- branching -------------------------------------------------------------------------------
def branch_start(parent: RunRecord, epoch: int, graph: engine.Graph,
                 settings: dict[str, Any]) -> tuple[Checkpoint, engine.carry.CarryReport]:
    """The checkpoint a branch of ``parent`` from ``epoch`` starts from, fitted to
    ``graph`` (the model as it is now, maybe edited): ``engine.replay.branch_checkpoint``.
    The optimizer state comes along when the branch trains with the same optimizer type."""
    ck = parent.checkpoints.get(epoch)
    if ck is None:
        raise NetBuilderError(f"{parent.name} kept no checkpoint of epoch {epoch} (it has "
                              f"{', '.join(map(str, sorted(parent.checkpoints))) or 'none'})")
    same = make_optimizer(parent.settings.get("optimizer")).name == \
        make_optimizer(settings.get("optimizer")).name
    seed = int(settings.get("seed") or 0)
    return branch_checkpoint(parent.graph, ck, graph, seed, same)


def fine_tune_start(source: RunRecord, graph: engine.Graph, settings: dict[str, Any]
                    ) -> tuple[Checkpoint, engine.carry.CarryReport, dict[str, Any]]:
    """Fine-tuning: the start of a run of ``graph`` (a trained model edited: another head,
    frozen nodes, other data) from the final weights of ``source`` (a run opened from a
    bundle), carried through ``engine.carry``; the optimizer starts afresh, as with
    ``netbuilder train --init-from``. Returns the checkpoint, the carry report and where the
    weights came from (``{"file", "run_id", "epoch"}``, ``RunRecord.weights_from``)."""
    if source.weights is None:
        raise NetBuilderError(f"{source.name} has no trained weights to start from")
    epoch = source.epochs[-1].epoch if source.epochs else 0
    ck = Checkpoint(epoch, len(source.steps), dict(source.weights))
    start, report = branch_checkpoint(source.graph, ck, graph, int(settings.get("seed") or 0),
                                      same_optimizer=False)
    origin = {"file": str(source.source) if source.source is not None else None,
              "run_id": source.run_id, "epoch": epoch}
    return start, report, origin


# ----- replay ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplayVerdict:
    """What replaying a run found: ``match``; ``text`` in words."""

    match: bool
    text: str


def replay_run(run: RunRecord, base_dir: Path | None = None) -> ReplayVerdict:
    """Train ``run`` again from its replay log (on the calling thread: a worker's) and
    compare the weights with the run's, bit for bit."""
    if run.replay is None or run.weights is None:
        return ReplayVerdict(False, f"{run.name} cannot be replayed: it kept no replay log")
    try:
        net, _ = replay(run.replay, start=run.start, base_dir=base_dir)
    except ReplayError as exc:
        return ReplayVerdict(False, f"replay differs: {exc.message}")
    miss = compare(run.weights, net.state_dict())
    if miss is None:
        return ReplayVerdict(True, f"replay matches: all {plural(len(run.weights), 'tensor')} "
                                   "bit for bit")
    return ReplayVerdict(False, f"replay differs: first at {miss.text()}")

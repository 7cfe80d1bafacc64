"""The Runs panel as a tree, with real widgets: train a model, widen a layer, branch a run
from epoch 1 of the first through the panel's context menu, see it as a child with its
diff, its curves continuing the parent's, and replay it from the context menu."""

from __future__ import annotations

from monitorkit import click, example, open_model, wait_idle
from PySide6.QtGui import QAction

from netbuilder.document import SetParams


def action(menu, name: str) -> QAction:
    found = [a for a in menu.actions() if a.objectName() == name]
    assert found, f"no {name} in the menu"
    return found[0]


def test_branch_from_epoch_1_shows_a_child_with_its_diff_and_replays(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp", epochs=3))
    combo = tc.panel.threads
    combo.setCurrentIndex(combo.findData(1))  # replay runs the same number of threads
    assert tc.panel.threads_choice() == 1
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    first = tc.store.latest()
    assert first.status == "completed" and sorted(first.checkpoints) == [1, 2, 3]
    panel = tc.runs_panel

    drv.w.push(SetParams("hidden", {"units": 8, "init": "xavier"},
                         {"units": 12, "init": "xavier"}))
    asked = []
    panel.ask_epoch = lambda _w, run: asked.append(run.name) or 1
    menu = panel.context_menu(first)
    branch = action(menu, "branchAction")
    assert branch.isEnabled() and branch.text() == "Branch from Here…"
    branch.trigger()
    assert asked == ["Run 1"]
    wait_idle(qtbot, tc)
    child = tc.store.latest()
    assert child is not first and child.status == "completed"
    assert child.parent_run is first and child.parent_epoch == 1

    parent_item, child_item = panel.items[first.number], panel.items[child.number]
    assert child_item.parent() is parent_item and parent_item.isExpanded()
    assert parent_item.childCount() == 1 and panel.tree.topLevelItemCount() == 1
    assert child_item.text(5) == "from Run 1 at epoch 1: changed hidden: units 8→12"
    assert "sgd, lr 0.1" in child_item.text(2) and "on xor" in child_item.text(2)
    assert child_item.text(4).endswith("%")

    panel.select(first)
    panel.select(child)
    curves = tc.curves
    assert curves.run is child and first in curves.overlays
    x, _ = curves.raw_curve.getData()
    assert x[0] == first.checkpoints[1].step + 1  # the branch goes on from its parent's step
    assert "from Run 1 at epoch 1" in panel.details.text()

    menu = panel.context_menu(child)
    replay = action(menu, "replayAction")
    assert replay.isEnabled()
    replay.trigger()
    qtbot.waitUntil(lambda: tc.replaying is None, timeout=120_000)
    assert child.replay_result.startswith("replay matches"), child.replay_result
    assert "replay matches: all 4 tensors bit for bit" in panel.details.text()
    assert "replay matches" in child_item.toolTip(0)


def test_the_tree_comes_back_after_a_crash_and_the_branch_still_replays(make_window, qtbot,
                                                                       tmp_path):
    import subprocess
    import sys

    from netbuilder.recovery import RecoveryStore

    rec = tmp_path / "rec"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    drv, tc = open_model(make_window, example("xor_mlp", epochs=2))
    drv.w.recovery = RecoveryStore(rec, dead.pid)  # this session's files, as if it died
    combo = tc.panel.threads
    combo.setCurrentIndex(combo.findData(1))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    first = tc.store.latest()
    drv.w.push(SetParams("hidden", {"units": 8, "init": "xavier"},
                         {"units": 10, "init": "xavier"}))
    assert tc.branch(first, 2)
    wait_idle(qtbot, tc)
    child = tc.store.latest()
    assert drv.w.recovery.run_file(2).is_file()
    drv.w.recovery = RecoveryStore(tmp_path / "elsewhere")  # the "crash": files stay

    nxt = make_window(recovery_dir=rec)
    nxt.w.ask_restore = lambda entry: True
    nxt.w.check_recovery()
    tc2 = nxt.w.training
    parent2, child2 = tc2.store.runs
    assert (parent2.run_id, child2.run_id) == (first.run_id, child.run_id)
    assert child2.parent_run is parent2 and child2.parent_epoch == 2
    panel = tc2.runs_panel
    item = panel.items[child2.number]
    assert item.parent() is panel.items[parent2.number]
    assert item.text(5) == f"from {parent2.name} at epoch 2: changed hidden: units 8→10"
    action(panel.context_menu(child2), "replayAction").trigger()
    qtbot.waitUntil(lambda: tc2.replaying is None, timeout=120_000)
    assert child2.replay_result.startswith("replay matches"), child2.replay_result

"""Blocks in the window, driven by real widget events: select a residual block's nodes,
Ctrl+G, expand by double-click, collapse, repeat ×3, undo back to the start; save and reopen;
the block library under My blocks in the palette."""

from __future__ import annotations

import math

import numpy as np
from guidocs import small_doc
from PySide6.QtCore import QPointF, Qt

import engine
from netbuilder.canvas.block_item import BlockItem
from netbuilder.palette import USER_BLOCKS

RES = ["c1", "r1", "c2", "add", "r2"]
DOC = small_doc(
    [("in", "Input", {"shape": [2, 6, 6]}),
     ("c0", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}),
     ("c1", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}), ("r1", "ReLU", {}),
     ("c2", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}), ("add", "Add", {}),
     ("r2", "ReLU", {}), ("gap", "GlobalAvgPool2D", {}), ("fc", "Dense", {"units": 2}),
     ("out", "Output", {})],
    [("in", "c0", 0), ("c0", "c1", 0), ("c1", "r1", 0), ("r1", "c2", 0), ("c2", "add", 0),
     ("c0", "add", 1), ("add", "r2", 0), ("r2", "gap", 0), ("gap", "fc", 0), ("fc", "out", 0)],
    positions={"add": (220.0, 480.0)})


def select_by_clicks(drv, ids):
    drv.click(drv.node_centre(ids[0]))
    for nid in ids[1:]:
        drv.click(drv.node_centre(nid), Qt.KeyboardModifier.ControlModifier)
    assert sorted(drv.w.scene.selected_node_ids()) == sorted(ids)


def double_click(drv, scene_pt):
    drv.qtbot.mouseDClick(drv.vp, Qt.MouseButton.LeftButton, pos=drv.vpos(scene_pt))


def test_group_expand_collapse_repeat_and_undo_to_the_start(make_window):
    drv = make_window(DOC)
    sc = drv.w.scene
    start = drv.graph.to_json()
    select_by_clicks(drv, RES)
    drv.key(Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    # what the user sees: one card for the five layers, its size badge, shapes on its wires
    assert "block1" in sc.nodes and not set(RES) & set(sc.nodes)
    card = sc.nodes["block1"]
    assert isinstance(card, BlockItem) and card.isSelected()
    assert card.badge_text() == "5 layers" and len(card.in_ports) == 1
    assert card.info.out_shape == (3, 6, 6) and card.info.params == 2 * (3 * 3 * 9 + 3)
    assert drv.edge_label("c0", "block1") == "3×6×6"
    assert drv.edge_label("block1", "gap") == "3×6×6"
    assert "Grouped 5 nodes" in drv.w.status_message.text()
    # double-click opens it in place: every wire inside and out has its shape, in a frame
    double_click(drv, drv.node_centre("block1"))
    inner = [f"block1-{n}" for n in RES]
    assert set(inner) <= set(sc.nodes) and "block1" not in sc.nodes
    assert drv.edge_label("block1-c2", "block1-add") == "3×6×6"
    assert drv.edge_label("c0", "block1-add", 1) == "3×6×6"
    assert drv.edge_label("block1-r2", "gap") == "3×6×6"
    frame = drv.w.blocks.frames["block1"]
    for nid in inner:
        assert frame.rect.contains(sc.nodes[nid].sceneBoundingRect().center())
    # double-click the frame's title folds it again
    title = frame.title_rect()
    double_click(drv, QPointF(title.left() + 30, title.center().y()))
    assert isinstance(sc.nodes["block1"], BlockItem) and not drv.w.blocks.frames
    # Repeat ×3 from the block's right-click menu
    assert drv.w.blocks.act_repeat in drv.view.context_actions
    drv.click(drv.node_centre("block1"))
    assert drv.w.blocks.act_repeat.isEnabled()
    drv.w.blocks.ask_count = lambda bid: 3
    drv.w.blocks.act_repeat.trigger()
    assert all(isinstance(sc.nodes[b], BlockItem) for b in ("block1", "block1_2", "block1_3"))
    assert drv.edge_label("block1_2", "block1_3") == "3×6×6"
    assert drv.edge_label("block1_3", "gap") == "3×6×6"
    net = engine.compile(drv.graph)
    assert net.param_count() == engine.compile(
        engine.Graph.from_dict(DOC)).param_count() + 2 * card.info.params
    while drv.w.undo_stack.canUndo():
        drv.w.undo_stack.undo()
    assert drv.graph.to_json() == start
    assert set(sc.nodes) == set(drv.graph.nodes)
    assert not any(isinstance(i, BlockItem) for i in sc.nodes.values())
    assert not drv.w.isWindowModified()


def test_save_and_reopen_keeps_the_block_and_the_network(make_window, tmp_path):
    drv = make_window(DOC)
    select_by_clicks(drv, RES)
    drv.w.blocks.act_group.trigger()
    path = tmp_path / "blocked.json"
    assert drv.w.save_as(str(path))
    net = engine.compile(drv.graph, seed=3)
    drv.w.new_file()
    assert "block1" not in drv.w.scene.nodes
    assert drv.w.open_file(str(path))
    assert isinstance(drv.w.scene.nodes["block1"], BlockItem)
    again = engine.compile(drv.graph, seed=3)
    flat = engine.compile(engine.Graph.from_dict(DOC), seed=3)
    assert again.param_count() == net.param_count() == flat.param_count()
    again.load_state_dict({(f"block1-{k}" if k.split(".")[0] in RES else k): v
                           for k, v in flat.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x, train=False), flat.forward(x, train=False))


def test_a_saved_block_shows_under_my_blocks_and_drops_into_another_model(make_window):
    drv = make_window(DOC)
    select_by_clicks(drv, RES)
    drv.key(Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    drv.w.blocks.ask_name = lambda current: "Residual"
    drv.w.blocks.act_rename.trigger()
    assert drv.graph.nodes["block1"].block.name == "Residual"
    drv.w.blocks.act_save.trigger()
    assert drv.w.blocks.library.find("Residual").path.exists()
    pal = drv.w.palette
    assert "block:Residual" in pal.visible_types()
    head = pal.items["block:Residual"].parent()
    assert head.data(0, Qt.ItemDataRole.UserRole + 2) == USER_BLOCKS
    drv.w.new_file()
    drv.drop("Input", QPointF(200, 60))
    drv.drop("block:Residual", QPointF(200, 260))
    assert isinstance(drv.w.scene.nodes["block1"], BlockItem)
    assert drv.graph.nodes["block1"].block.name == "Residual"
    drv.w.undo_stack.undo()
    assert "block1" not in drv.graph.nodes and "block1" not in drv.w.scene.nodes


def test_a_model_with_a_block_trains_in_the_window(make_window, qtbot):
    from monitorkit import click, open_model, small_cnn, wait_idle

    drv, tc = open_model(make_window, small_cnn())
    select_by_clicks(drv, ["conv", "relu"])
    drv.key(Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert isinstance(drv.w.scene.nodes["block1"], BlockItem)
    drv.click(drv.node_centre("block1"))  # the monitor's views get the block selected
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    run = tc.store.latest()
    assert run.status == "completed", run.message
    assert run.epochs[-1].val_loss < math.log(10)  # learnt something beyond chance
    assert drv.w.scene.nodes["fc"].badge is not None  # the nodes outside get their badges
    text, level, tip = drv.w.scene.nodes["block1"].badge  # the collapsed block, its layers'
    assert level in ("ok", "warn", "bad") and text
    assert "conv:" in tip and "relu:" in tip
    out_wire = next(e for e in drv.w.scene.edges.values() if e.edge.src == "block1")
    assert out_wire.flow is not None and out_wire.flow[0] > 0  # the gradient out of the block
    # the views follow the block: its output's maps, its conv's filters, its weights
    tc.docks.plots["maps"].raise_()
    qtbot.waitUntil(lambda: tc.maps.maps is not None, timeout=30_000)
    assert tc.maps.node == "block1-relu" and tc.maps.maps.shape == (4, 8, 8)
    assert tc.filters.conv == "block1-conv" and "block1-conv" in tc.filters.convs
    assert tc.grads.node == "block1-conv"
    assert drv.w.edit_lock is None
    drv.w.undo_stack.undo()
    assert "conv" in drv.graph.nodes


def test_a_block_whose_weighted_layers_are_all_frozen_is_drawn_frozen(make_window):
    """Freezing c1 and c2 and then grouping them: the block trains nothing, so its card is
    drawn frozen (cool body, snowflake, tooltip) as a frozen layer's card is."""
    drv = make_window(DOC)
    w = drv.w
    select_by_clicks(drv, ["c1", "c2"])
    w.run_edits.act_freeze.trigger()
    assert w.scene.nodes["c1"].frozen and w.scene.nodes["c2"].frozen
    select_by_clicks(drv, RES)
    w.blocks.act_group.trigger()
    (bid,) = w.scene.selected_node_ids()
    card = w.scene.nodes[bid]
    assert isinstance(card, BlockItem) and card.frozen and "Frozen" in card.toolTip()
    assert not w.scene.nodes["c0"].frozen
    w.undo_stack.undo()  # ungrouped: the layers keep their own marks
    assert w.scene.nodes["c1"].frozen and not w.scene.nodes["r1"].frozen
    select_by_clicks(drv, ["c1"])
    w.run_edits.act_thaw.trigger()
    select_by_clicks(drv, RES)
    w.blocks.act_group.trigger()  # c2 frozen, c1 trains: the block is not frozen
    assert not w.scene.nodes[w.scene.selected_node_ids()[0]].frozen

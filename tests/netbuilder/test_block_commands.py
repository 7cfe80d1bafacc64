"""Block edits on a Document (Qt-free): group, ungroup, expand/collapse, repeat, rename,
insert from the library; each one undoable, refusals change nothing."""

from __future__ import annotations

import numpy as np
import pytest
from guidocs import small_doc

import engine
from engine.errors import GraphStructureError
from netbuilder.block_commands import (
    CollapseBlock,
    ExpandBlock,
    GroupAsBlock,
    InsertBlock,
    RenameBlock,
    RepeatBlock,
    Ungroup,
)
from netbuilder.block_library import BlockLibrary
from netbuilder.document import Connect, Document

RES = ["c1", "r1", "c2", "add", "r2"]
DOC = small_doc(
    [("in", "Input", {"shape": [2, 6, 6]}),
     ("c0", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}),
     ("c1", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}), ("r1", "ReLU", {}),
     ("c2", "Conv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}), ("add", "Add", {}),
     ("r2", "ReLU", {}), ("gap", "GlobalAvgPool2D", {}), ("fc", "Dense", {"units": 2}),
     ("out", "Output", {})],
    [("in", "c0", 0), ("c0", "c1", 0), ("c1", "r1", 0), ("r1", "c2", 0), ("c2", "add", 0),
     ("c0", "add", 1), ("add", "r2", 0), ("r2", "gap", 0), ("gap", "fc", 0), ("fc", "out", 0)])


DOC_IDS = [nd["id"] for nd in DOC["nodes"]]


class Recorder:
    def __init__(self, doc: Document) -> None:
        self.doc, self.done = doc, []

    def run(self, cmd) -> None:
        self.doc.execute(cmd)
        self.done.append(cmd)

    def undo_all(self) -> None:
        while self.done:
            self.doc.revert(self.done.pop())


def fresh() -> tuple[Document, Recorder]:
    doc = Document(engine.Graph.from_dict(DOC, validate=False))
    return doc, Recorder(doc)


def test_group_repeat_collapse_undo_back_to_the_start():
    doc, rec = fresh()
    start = doc.graph.to_json()
    changes = []
    doc.subscribe(changes.append)
    rec.run(GroupAsBlock(doc, RES, name="ResBlock"))
    assert doc.graph.nodes["block1"].block.name == "ResBlock"
    assert set(doc.graph.nodes) == {"in", "c0", "block1", "gap", "fc", "out"}
    assert doc.analysis.nodes["block1"].out_shape == (3, 6, 6)
    assert doc.analysis.nodes["block1"].params == 2 * (3 * 3 * 9 + 3)
    assert changes[-1].structure and "block1" in changes[-1].params
    rec.run(RepeatBlock("block1", 3))
    assert [e.dst for e in doc.graph.out_edges("block1")] == ["block1_2"]
    assert [e.dst for e in doc.graph.out_edges("block1_3")] == ["gap"]
    assert doc.graph.diagnose().ok
    net = engine.compile(doc.graph)
    assert {"block1-c1.weight", "block1_2-c1.weight", "block1_3-c2.bias"} <= set(net.params)
    rec.run(ExpandBlock("block1_2"))
    assert "block1_2-add" in doc.graph.nodes
    assert doc.analysis.nodes["block1_2-add"].out_shape == (3, 6, 6)
    rec.run(CollapseBlock("block1_2"))
    assert doc.graph.nodes["block1_2"].block is not None
    assert doc.dirty
    rec.undo_all()
    assert doc.graph.to_json() == start
    assert not doc.dirty


def test_redo_gives_the_same_graph_again():
    doc, _ = fresh()
    cmd = GroupAsBlock(doc, RES)
    doc.execute(cmd)
    after = doc.graph.to_json()
    doc.revert(cmd)
    doc.execute(cmd)
    assert doc.graph.to_json() == after


def test_grouped_model_predicts_as_the_flat_one():
    doc, rec = fresh()
    flat = engine.compile(doc.graph, seed=4)
    rec.run(GroupAsBlock(doc, RES, name="R", block_id="b"))
    rec.run(Ungroup("b"))
    assert set(doc.graph.nodes) == set(DOC_IDS)
    rec.run(GroupAsBlock(doc, RES, block_id="b"))
    blocked = engine.compile(doc.graph, seed=4)
    assert blocked.param_count() == flat.param_count()
    blocked.load_state_dict({("b-" + k if k.split(".")[0] in RES else k): v
                             for k, v in flat.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(blocked.forward(x, train=False), flat.forward(x, train=False))


def test_a_refused_group_changes_nothing():
    doc, rec = fresh()
    before = doc.graph.to_json()
    with pytest.raises(GraphStructureError, match="both feed"):
        rec.run(GroupAsBlock(doc, ["c1", "c2"]))
    assert doc.graph.to_json() == before and not doc.dirty


def test_rename_and_library_round_trip(tmp_path):
    doc, rec = fresh()
    rec.run(GroupAsBlock(doc, RES))
    rec.run(RenameBlock("block1", "Residual"))
    assert doc.graph.nodes["block1"].block.name == "Residual"
    lib = BlockLibrary(tmp_path / "lib")
    path = lib.save(doc.graph.nodes["block1"].block)
    assert path.name == "Residual.json"
    [entry] = lib.entries()
    assert entry.name == "Residual" and entry.layers == 5
    other = Document(engine.Graph.from_dict(small_doc(
        [("in", "Input", {"shape": [3, 4, 4]}), ("out", "Output", {})], []), validate=False))
    cmd = InsertBlock(other, entry.body, (100.0, 40.0))
    other.execute(cmd)
    assert cmd.block_id == "block1" and other.position("block1") == (100.0, 40.0)
    other.execute(Connect("in", "block1", 0))
    assert other.analysis.nodes["block1"].out_shape == (3, 4, 4)
    other.execute(Connect("block1", "out", 0))
    assert other.graph.diagnose().ok


def test_copy_paste_of_a_block_keeps_its_contents():
    from netbuilder.document import make_fragment, paste_command
    doc, rec = fresh()
    rec.run(GroupAsBlock(doc, RES, name="R"))
    frag = make_fragment(doc, ["block1"])
    cmd = paste_command(doc, frag)
    rec.run(cmd)
    new = cmd.nodes[0].id
    assert new == "block2" and doc.graph.nodes[new].block.name == "R"
    assert list(doc.graph.nodes[new].block.nodes) == RES
    rec.run(Connect("c0", new, 0))
    assert doc.analysis.nodes[new].out_shape == (3, 6, 6)


def test_copy_paste_and_undo_keep_a_frozen_node_frozen():
    """trainable / lr_mult travel with a node through the clipboard, grouping and undo."""
    from netbuilder.document import DeleteItems, make_fragment, paste_command
    doc, rec = fresh()
    doc.graph.set_training("c1", trainable=False, lr_mult=0.25)
    cmd = paste_command(doc, make_fragment(doc, ["c1"]))
    rec.run(cmd)
    pasted = doc.graph.nodes[cmd.nodes[0].id]
    assert (pasted.trainable, pasted.lr_mult) == (False, 0.25)
    rec.run(DeleteItems([pasted.id], []))
    rec.undo_all()
    assert "c1" in doc.graph.nodes and cmd.nodes[0].id not in doc.graph.nodes
    rec.run(cmd)  # redo of the paste
    assert not doc.graph.nodes[cmd.nodes[0].id].trainable
    rec.run(GroupAsBlock(doc, RES, name="R"))
    flat = doc.graph.flatten()
    frozen = [n for n in flat.nodes.values() if n.id.endswith("c1")]
    assert frozen and all(not n.trainable and n.lr_mult == 0.25 for n in frozen)

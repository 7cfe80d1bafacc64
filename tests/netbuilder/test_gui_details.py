"""The smaller things a new user trips over: runs at the default learning rate say it, a
learning rate out of the box's range is refused with the reason (a large one is allowed),
a paste lands beside its original, selecting a node brings the Inspector to the front,
save and export dialogs start in the model's folder or the user's documents, and counts
take the right number ('1 epoch')."""

from __future__ import annotations

from pathlib import Path

from guidocs import small_doc
from monitorkit import click, example, open_model, wait_idle
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QFileDialog

from netbuilder.canvas import theme
from netbuilder.document import SetParams

REPO = Path(__file__).resolve().parents[2]


def type_into(qtbot, widget, text):
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClick(widget, Qt.Key.Key_Backspace)
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def test_runs_at_the_default_learning_rate_show_it(make_window, qtbot):
    _drv, tc = open_model(make_window, example("xor_mlp", epochs=1,
                                              optimizer={"type": "adam"}))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    row = tc.runs_panel.tree.topLevelItem(0)
    assert row.text(2).startswith("adam, lr 0.001, batch 16, 1 epoch")
    assert "?" not in row.text(2)
    # and the result says "1 epoch", not "1 epochs"
    assert ", 1 epoch," in tc.panel.message.text() and "1 epochs" not in tc.panel.message.text()


def test_a_learning_rate_of_1000_is_taken_and_one_too_large_is_refused_visibly(make_window,
                                                                                qtbot):
    drv, tc = open_model(make_window, example("xor_mlp"))
    lr = tc.panel.lr
    type_into(qtbot, lr, "1000")
    assert drv.graph.training["optimizer"]["lr"] == 1000.0
    assert lr.text() == "1e+03" and not tc.panel.message.isVisible()
    type_into(qtbot, lr, "1e9")
    assert drv.graph.training["optimizer"]["lr"] == 1000.0
    msg = tc.panel.message
    assert msg.isVisible() and "learning rate must be between 1e-07 and 1e+06" in msg.text()
    assert "1e+09 is not" in msg.text()
    assert drv.w.status_message.property("error") is True
    type_into(qtbot, lr, "0.05")  # a good value: the refusal goes
    assert drv.graph.training["optimizer"]["lr"] == 0.05 and not msg.isVisible()


def node_rect(drv, nid):
    it = drv.w.scene.nodes[nid]
    return QRectF(it.pos().x(), it.pos().y(), it.width, it.height)


def test_paste_lands_beside_the_original_and_keeps_moving_on(make_window, qtbot):
    doc = small_doc([("in", "Input", {"shape": [4]}), ("d1", "Dense", {"units": 3}),
                     ("out", "Output", {})], [("in", "d1", 0), ("d1", "out", 0)],
                    positions={"in": (0, 0), "d1": (0, 140), "out": (0, 280)})
    drv = make_window(doc)
    drv.click(drv.node_centre("d1"))
    drv.key(Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    drv.key(Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    drv.key(Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert set(drv.graph.nodes) == {"in", "d1", "out", "dense1", "dense2"}
    rects = {n: node_rect(drv, n) for n in drv.graph.nodes}
    for a in rects:
        for b in rects:
            assert a == b or not rects[a].intersects(rects[b]), (a, b)
    # the original's ports stay free to click, and the copies sit on the grid
    d1 = drv.w.scene.nodes["d1"]
    for port in (d1.out_port, d1.in_ports[0]):
        assert drv.w.scene.node_at(port.scenePos()) in (None, d1)
    for n in ("dense1", "dense2"):
        x, y = drv.w.document.position(n)
        assert x % theme.GRID == 0 and y == drv.w.document.position("d1")[1]
    assert drv.w.document.position("dense2")[0] > drv.w.document.position("dense1")[0]


def test_selecting_a_node_brings_the_inspector_to_the_front(make_window, qtbot):
    drv, tc = open_model(make_window, example("xor_mlp"))
    def in_front(dock):  # a dock behind another tab keeps isVisible(); nothing of it shows
        return dock.isVisible() and not dock.visibleRegion().isEmpty()

    tc.docks.training.raise_()
    qtbot.waitUntil(lambda: in_front(tc.docks.training) and not in_front(drv.w.inspector_dock))
    drv.click(drv.node_centre("hidden"))
    qtbot.waitUntil(lambda: in_front(drv.w.inspector_dock))
    assert drv.w.inspector.node_id == "hidden" and not in_front(tc.docks.training)
    # a refused Start still shows its reason in front
    drv.w.push(SetParams("logits", {"units": 2}, {"units": 1}))
    click(qtbot, tc.panel.start_button)
    qtbot.waitUntil(lambda: in_front(tc.docks.training))
    assert tc.panel.message.isVisible() and "Output 'out'" in tc.panel.message.text()


def test_save_and_export_dialogs_start_in_the_models_folder_or_documents(
        make_window, qtbot, tmp_path, monkeypatch):
    asked: list[str] = []

    def fake_dialog(_parent, _title, start, _filter):
        asked.append(start)
        return "", ""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    drv, tc = open_model(make_window, example("xor_mlp", epochs=1))
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    w = drv.w
    save_run = next(a for a in tc.menu.actions() if a.text().startswith("Save Trained"))
    actions = [save_run, w.exports.act_onnx, w.exports.act_pytorch, w.act_save_as]
    for a in actions:
        a.trigger()
    click(qtbot, tc.runs_panel.csv_button)
    tc.curves.export_button.menu().actions()[0].trigger()
    assert len(asked) == len(actions) + 2
    for start in asked:  # an untitled model: the documents folder (or home), absolute
        p = Path(start)
        assert p.is_absolute() and REPO not in p.parents and p.parent != Path.cwd(), start
    # a model that has a file: its folder
    model = tmp_path / "mine" / "xor.json"
    model.parent.mkdir()
    assert w.save_as(model)
    asked.clear()
    for a in actions:
        a.trigger()
    assert [Path(s).parent for s in asked] == [model.parent] * len(actions), asked

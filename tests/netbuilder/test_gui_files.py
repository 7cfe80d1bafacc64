"""Files: save and reopen, broken files, unsaved-changes prompt, recent files, examples,
recovery after a crash, settings, the app entry point and the exception hook."""

from __future__ import annotations

import json
import sys

from guidocs import small_doc
from PySide6.QtCore import QPointF

import engine
from netbuilder import settings
from netbuilder.document import AddNodes, NodeSpec, SetParams
from netbuilder.recovery import RecoveryStore

DOC = small_doc(
    [("in", "Input", {"shape": [1, 8, 8]}), ("c", "Conv2D", {"filters": 3, "kernel_size": 3}),
     ("fl", "Flatten", {}), ("d", "Dense", {"units": 4}), ("out", "Output", {})],
    [("in", "c", 0), ("c", "fl", 0), ("fl", "d", 0), ("d", "out", 0)], name="small")


def test_save_reopen_gives_an_identical_graph(make_window, tmp_path):
    drv = make_window(DOC)
    drv.drop("ReLU", QPointF(400, 100))
    drv.wire("d", "relu1")
    assert drv.w.isWindowModified()
    path = tmp_path / "model.json"
    assert drv.w.save_as(path)
    assert not drv.w.isWindowModified()
    assert drv.w.windowTitle() == "model.json[*] — NetBuilder"
    assert drv.w.undo_stack.isClean()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model")) == []
    saved = drv.graph.to_dict()
    other = make_window()
    assert other.w.open_file(path)
    assert other.graph.to_dict() == saved
    assert other.graph == engine.load_graph(path, validate=False)
    assert {n: other.w.scene.nodes[n].scenePos() for n in other.graph.nodes} == {
        n: drv.w.scene.nodes[n].scenePos() for n in drv.graph.nodes}
    assert set(other.w.scene.edges) == set(drv.graph.edges)
    assert settings.recent_files()[0] == str(path.resolve())
    # undo back past the save point makes the document dirty again; redo cleans it
    drv.w.undo_stack.undo()
    assert drv.w.isWindowModified()
    drv.w.undo_stack.redo()
    assert not drv.w.isWindowModified()


def test_ctrl_s_on_an_untitled_model_asks_where(make_window, tmp_path):
    drv = make_window(DOC)
    drv.w.choose_save_path = lambda: str(tmp_path / "picked")
    drv.w.push(SetParams("d", {"units": 4}, {"units": 5}))
    assert drv.w.save()
    assert (tmp_path / "picked.json").is_file()
    assert drv.w.document.path == tmp_path / "picked.json"


def test_broken_or_foreign_files_leave_the_document_untouched(make_window, tmp_path):
    drv = make_window(DOC)
    drv.w.push(SetParams("d", {"units": 4}, {"units": 9}))
    before = drv.graph.to_dict()
    stack = drv.w.undo_stack.count()
    cases = {
        "bad.json": ("{ nope", "not valid JSON"),
        "foreign.json": (json.dumps({"hello": "world"}), "not a NetBuilder model"),
        "unknown.json": (json.dumps({**small_doc([("x", "Warp", {})], []), "ui": {}}),
                         "unknown layer type 'Warp'"),
        "badparam.json": (json.dumps(small_doc([("x", "Dense", {"units": -3})], [])), "units"),
        "binary.json": (b"\xff\xfe\x00garbage", "not UTF-8"),
    }
    for name, (content, needle) in cases.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        drv.errors.clear()
        assert not drv.w.open_file(p)
        assert len(drv.errors) == 1, name
        title, text = drv.errors[0]
        assert title == "Cannot open model" and needle in text and name in text
        assert "unchanged" in text
        assert drv.graph.to_dict() == before
        assert drv.w.undo_stack.count() == stack and drv.w.isWindowModified()
    assert not drv.w.open_file(tmp_path / "missing.json")
    assert "no such model file" in drv.errors[-1][1]


def test_unsaved_changes_prompt_on_close_and_open(make_window, tmp_path):
    drv = make_window(DOC)
    drv.w.push(SetParams("d", {"units": 4}, {"units": 6}))
    asked = []
    drv.w.ask_save_changes = lambda: asked.append(1) or "cancel"
    assert not drv.w.close()
    assert drv.w.isVisible() and asked
    assert not drv.w.new_file()
    assert "d" in drv.graph.nodes
    drv.w.ask_save_changes = lambda: "save"
    drv.w.choose_save_path = lambda: str(tmp_path / "kept.json")
    assert drv.w.new_file()
    assert not drv.graph.nodes and (tmp_path / "kept.json").is_file()
    assert engine.load_graph(tmp_path / "kept.json").nodes["d"].params == {"units": 6}
    drv.w.push(AddNodes([NodeSpec("x", "Dense", {}, (0, 0))]))
    assert drv.w.isWindowModified()
    drv.w.ask_save_changes = lambda: "discard"
    assert drv.w.close()


def test_examples_menu_and_open_example(make_window, tmp_path):
    ex = tmp_path / "examples"
    ex.mkdir()
    (ex / "tiny.json").write_text(json.dumps(DOC))
    drv = make_window(examples_dir=ex)
    drv.w._fill_examples()
    actions = [a for a in drv.w.examples_menu.actions() if a.text()]
    assert [a.text() for a in actions] == ["small"]  # the short name; the file in the tip
    assert actions[0].statusTip() == "small (tiny.json)"
    actions[0].trigger()
    assert set(drv.graph.nodes) == {"in", "c", "fl", "d", "out"}
    assert drv.w.document.path is None  # an example opens as a new model
    assert drv.w.windowTitle().startswith("small[*]")


def test_recent_menu_lists_saved_files(make_window, tmp_path):
    drv = make_window(DOC)
    drv.w.save_as(tmp_path / "a.json")
    drv.w.save_as(tmp_path / "b.json")
    drv.w._fill_recent()
    names = [a.text() for a in drv.w.recent_menu.actions() if a.text()]
    assert names[:2] == ["b.json", "a.json"]
    new = make_window()
    new.w._fill_recent()
    next(a for a in new.w.recent_menu.actions() if a.text() == "a.json").trigger()
    assert new.w.document.path == tmp_path / "a.json"


def test_recovery_file_is_offered_after_a_crash(make_window, tmp_path):
    rec = tmp_path / "rec"
    crashed = make_window(DOC, recovery_dir=rec, pid=2**22 + 12345)  # a pid no process has
    crashed.drop("Dense", QPointF(300, 300))
    crashed.w.push(SetParams("d", {"units": 4}, {"units": 11}))
    f = crashed.w.autosave()
    assert f is not None and f.is_file()
    assert crashed.w.autosave() is None  # nothing new since
    lost = crashed.graph.to_dict()
    crashed.w.closeEvent = lambda ev: ev.accept()  # the crash: no clean shutdown
    # next start
    nxt = make_window(recovery_dir=rec)
    offered = []
    nxt.w.ask_restore = lambda entry: offered.append(entry.describe()) or True
    assert nxt.w.check_recovery()
    assert offered and "5 nodes" not in offered[0] and "6 nodes" in offered[0]
    assert nxt.graph.to_dict() == lost
    assert nxt.w.isWindowModified()
    assert not f.exists()
    assert nxt.w.recovery.file.is_file()  # the restored work is protected again
    # a clean save removes this session's recovery file
    nxt.w.save_as(tmp_path / "saved.json")
    assert not nxt.w.recovery.file.exists()
    assert not make_window(recovery_dir=rec).w.check_recovery()


def test_declined_recovery_is_discarded(make_window, tmp_path):
    rec = tmp_path / "rec"
    store = RecoveryStore(rec, pid=2**22 + 777)
    store.write(engine.Graph.from_dict(DOC), None)
    drv = make_window(recovery_dir=rec)
    drv.w.ask_restore = lambda entry: False
    assert not drv.w.check_recovery()
    assert not drv.graph.nodes and not store.file.exists()


def test_geometry_is_remembered(make_window):
    drv = make_window(DOC)
    drv.w.resize(760, 540)
    drv.w.close()
    again = make_window()
    again.w.layouts.restore()
    assert again.w.size().width() == 760 and again.w.size().height() == 540


def test_app_opens_a_file_given_on_the_command_line(qtbot, tmp_path, monkeypatch):
    from netbuilder import app

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    p = tmp_path / "cli.json"
    p.write_text(json.dumps(DOC))
    w = app.build_window([str(p)])
    qtbot.addWidget(w)
    assert w.document.path == p and set(w.document.graph.nodes) == {"in", "c", "fl", "d", "out"}
    assert w.windowTitle().startswith("cli.json")
    w.close()
    if app.DEFAULT_EXAMPLE.is_file():
        w2 = app.build_window([])
        qtbot.addWidget(w2)
        assert w2.document.graph.name == "LeNet-5" and w2.document.path is None
        assert w2.document.analysis.error_count == 0
        w2.close()


def test_excepthook_shows_a_message_not_a_traceback(monkeypatch, capsys):
    from netbuilder.app import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    shown = []
    install_excepthook(None, lambda title, text, details: shown.append((title, text, details)))
    try:
        raise engine.ShapeError("Dense 'd' expects a flat input", "d")
    except engine.ShapeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    try:
        raise KeyError("boom")
    except KeyError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    assert shown[0] == ("NetBuilder", "Dense 'd' expects a flat input", "")
    title, text, details = shown[1]
    assert title == "Unexpected error" and "KeyError" in text and "Traceback" not in text
    assert "Traceback" in details
    assert "Traceback" in capsys.readouterr().err


def test_open_a_trained_bundle_edits_its_model_as_a_new_file(make_window, tmp_path):
    from engine.bundle import save_bundle

    g = engine.Graph.from_dict(DOC)
    net = engine.compile(g, seed=0)
    p = save_bundle(tmp_path / "trained.nbmodel", net)
    drv = make_window()
    assert drv.w.open_file(p)
    assert set(drv.graph.nodes) == set(g.nodes) and drv.w.document.path is None
    assert p.is_file()


def test_paste_of_foreign_clipboard_text_is_refused(make_window):
    from PySide6.QtGui import QGuiApplication

    drv = make_window(DOC)
    QGuiApplication.clipboard().setText("hello")
    assert drv.w.paste() == []
    assert "no NetBuilder nodes" in drv.w.status_message.text()
    QGuiApplication.clipboard().setText(json.dumps({"format": "netbuilder.fragment",
                                                    "nodes": [{"id": "x", "type": "Nope"}]}))
    assert drv.w.paste() == []
    assert "unknown layer type 'Nope'" in drv.w.status_message.text()
    assert set(drv.graph.nodes) == {"in", "c", "fl", "d", "out"}

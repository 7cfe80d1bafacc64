"""GUI test fixtures: settings, recovery files and dialogs kept away from the user's home."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from guidocs import Driver

import engine


@pytest.fixture(autouse=True)
def _isolated_app_dirs(tmp_path, monkeypatch):
    """QSettings, QStandardPaths and platformdirs write under tmp_path only."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg_config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg_data"))
    try:
        from PySide6.QtCore import QSettings, QStandardPaths
    except ImportError:
        yield
        return
    QStandardPaths.setTestModeEnabled(True)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "qsettings"))
    yield


MODAL_PATIENCE_S = 20


@pytest.fixture(autouse=True)
def _no_forgotten_modal_dialog(request):
    """A message box nobody answers would hang the suite: close one that stays open for
    MODAL_PATIENCE_S and fail the test with its text."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("qapp")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    stuck: list[str] = []
    since: dict[int, int] = {}

    def check() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            since.clear()
            return
        ticks = since[id(box)] = since.get(id(box), 0) + 1
        if ticks * 2 >= MODAL_PATIENCE_S:
            stuck.append(f"{box.windowTitle()}: {box.text()}")
            box.reject()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(2000)
    yield
    timer.stop()
    assert not stuck, f"a modal dialog waited for an answer nobody gave: {stuck}"


@pytest.fixture
def make_window(qtbot, tmp_path):
    """make_window(doc_dict=None) -> Driver around a shown MainWindow."""
    from netbuilder.document import Document
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    def make(doc: dict | None = None, recovery_dir=None, pid=None, examples_dir=None):
        graph = engine.Graph.from_dict(doc, validate=False) if doc else None
        w = MainWindow(Document(graph) if graph is not None else None,
                       recovery=RecoveryStore(recovery_dir or tmp_path / "recovery", pid),
                       examples_dir=examples_dir or tmp_path / "examples")
        drv = Driver(qtbot, w)
        qtbot.addWidget(w)
        w.resize(1200, 800)
        w.show()
        qtbot.waitExposed(w)
        w.activateWindow()
        qtbot.waitUntil(w.isActiveWindow)
        w.view.fit_all()
        return drv

    return make


@pytest.fixture
def window_at(qtbot, tmp_path):
    """window_at(w, h) -> a MainWindow first shown at that size (as on a screen that size),
    on the real examples."""

    def make(width: int, height: int):
        from netbuilder.mainwindow import MainWindow
        from netbuilder.recovery import RecoveryStore

        w = MainWindow(recovery=RecoveryStore(tmp_path / "recovery"))
        qtbot.addWidget(w)
        w.ask_save_changes = lambda: "discard"
        w.ask_save_runs = lambda names: "discard"
        w.resize(width, height)
        w.show()
        qtbot.waitExposed(w)
        qtbot.wait(50)
        return w

    return make

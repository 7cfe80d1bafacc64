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

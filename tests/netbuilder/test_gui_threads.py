"""The CPU-threads setting of the Training panel: a preference of the computer (kept in the
application settings, not the model), applied to the next run; auto tunes while training."""

from __future__ import annotations

from monitorkit import click, example, open_model, wait_idle
from PySide6.QtCore import Qt

import engine
from engine.threads import max_threads
from netbuilder import settings
from netbuilder.panels.training_panel import THREADS_KEY


def choose(qtbot, box, data) -> None:
    """Pick the item with ``data`` the way a user does: open the list, click the item."""
    i = box.findData(data)
    assert i >= 0
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    view = box.view()
    qtbot.waitUntil(view.isVisible, timeout=2_000)
    qtbot.wait(400)  # a combo ignores a release that comes right after its popup opened
    rect = view.visualRect(box.model().index(i, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=2_000)
    assert box.currentIndex() == i


def test_a_fixed_thread_count_is_kept_and_used(make_window, qtbot, monkeypatch):
    from netbuilder.session import loop as worker

    tuners = []
    real = worker.Trainer

    def trainer(*a, **kw):
        t = real(*a, **kw)
        tuners.append(t.tuner)
        return t
    monkeypatch.setattr(worker, "Trainer", trainer)
    _drv, tc = open_model(make_window, example("xor_mlp", epochs=20))
    box = tc.panel.threads
    assert box.currentData() == "auto"  # the default
    assert box.count() == 1 + max_threads()
    choose(qtbot, box, 1)
    assert settings.get_value(THREADS_KEY) == "1"
    click(qtbot, tc.panel.start_button)
    assert not box.isEnabled()  # fixed while a run is active
    wait_idle(qtbot, tc)
    assert tuners == [None]
    assert engine.get_num_threads() == 1
    assert tc.store.latest().status == "completed"
    assert box.isEnabled()

    choose(qtbot, box, "auto")
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    tuner = tuners[-1]
    assert tuner is not None and tuner.most == max_threads()
    assert engine.get_num_threads() == max_threads()
    if max_threads() > 1:
        assert "thread" in tc.panel.status.text() or tc.store.latest().status == "completed"


def test_the_choice_survives_a_restart(make_window, qtbot):
    _drv, tc = open_model(make_window, example("xor_mlp"))
    choose(qtbot, tc.panel.threads, 1)
    drv2 = make_window(example("xor_mlp"))
    assert drv2.w.training.panel.threads.currentData() == 1

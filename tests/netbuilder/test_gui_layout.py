"""The window's arrangement: at 1024×700 and 1280×800, in the Build and the Monitor layout,
no two panels overlap, no tab or toolbar button is cut, every panel is listed under
View ▸ Panels, the arrangement survives a restart, and the chrome (examples, title,
shortcuts, about, zoom) reads well."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import QRect, QRectF, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox, QTabBar, QToolButton

import netbuilder
from netbuilder import settings
from netbuilder.docklayout import BUILD, LAYOUT_VERSION, MONITOR
from netbuilder.mainwindow import MainWindow

SIZES = [(1024, 700), (1280, 800)]


def open_example(qtbot, w: MainWindow, name: str) -> None:
    """File ▸ Examples ▸ ``name``, as the user picks it."""
    w.examples_menu.aboutToShow.emit()
    action = next(a for a in w.examples_menu.actions() if a.text() == name)
    action.trigger()
    qtbot.wait(50)


def click_mode(qtbot, w: MainWindow, mode: str) -> None:
    """The Build | Monitor switch at the right of the toolbar."""
    action = w.act_monitor_mode if mode == MONITOR else w.act_build_mode
    button = w.toolbar.widgetForAction(action)
    assert isinstance(button, QToolButton) and button.isVisible()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.layouts.mode == mode, timeout=5000)
    qtbot.wait(100)


def shown_docks(w: MainWindow) -> list[QDockWidget]:
    return [d for d in w.findChildren(QDockWidget)
            if d.isVisible() and not d.visibleRegion().isEmpty() and not d.isFloating()]


def tab_bars(w: MainWindow) -> list[QTabBar]:
    return [b for b in w.findChildren(QTabBar) if b.parent() is w and b.isVisible()]


def assert_nothing_overlaps_or_is_cut(w: MainWindow, size: tuple[int, int]) -> None:
    assert (w.width(), w.height()) == size  # no panel's minimum size grew the window
    area = QRect(0, w.menuBar().height(), w.width(),
                 w.height() - w.menuBar().height() - w.statusBar().height())
    boxes = [("canvas", w.view.geometry())] + [(d.windowTitle(), d.geometry())
                                               for d in shown_docks(w)]
    for name, r in boxes:
        assert area.contains(r), f"{name} {r} sticks out of {area}"
        assert r.width() >= 120 and r.height() >= 120, f"{name} is squeezed to {r}"
    for (a, ra), (b, rb) in itertools.combinations(boxes, 2):
        assert not ra.intersects(rb), f"{a} {ra} overlaps {b} {rb}"
    for bar in tab_bars(w):  # no tab bar left over a panel (Qt keeps old ones around)
        for name, r in boxes:
            assert not bar.geometry().intersects(r), f"a tab bar lies over {name}"
        need = sum(bar.tabSizeHint(i).width() for i in range(bar.count()))
        titles = [bar.tabText(i) for i in range(bar.count())]
        assert need <= bar.width(), f"tabs {titles} need {need} px, have {bar.width()}"
        for i in range(bar.count()):
            assert bar.tabRect(i).width() >= bar.tabSizeHint(i).width(), titles[i]
            assert bar.rect().contains(bar.tabRect(i)), titles[i]
    for a in w.toolbar.actions():
        if not a.isSeparator():
            assert w.toolbar.widgetForAction(a).isVisible(), f"{a.text()} in the overflow"


@pytest.mark.parametrize("size", SIZES)
def test_build_and_monitor_layouts_fit_without_overlap_or_cut_tabs(window_at, qtbot, size):
    w = window_at(*size)
    open_example(qtbot, w, "LeNet-5")
    assert w.layouts.mode == BUILD
    assert {d.windowTitle() for d in shown_docks(w)} >= {"Layers", "Inspector",
                                                         "Model Summary"}
    assert_nothing_overlaps_or_is_cut(w, size)
    click_mode(qtbot, w, MONITOR)
    shown = {d.windowTitle() for d in shown_docks(w)}
    assert {"Training Curves", "Training"} <= shown and "Layers" not in shown
    assert_nothing_overlaps_or_is_cut(w, size)
    # every monitor view is one click away: a tab of a group on screen
    titles = {b.tabText(i) for b in tab_bars(w) for i in range(b.count())}
    assert {"Training Curves", "Gradients", "Feature Maps", "Filters", "Data Fit",
            "Input vs Output", "Confusion", "Mistakes", "Runs", "Model Summary",
            "Data"} <= titles
    click_mode(qtbot, w, BUILD)
    assert "Layers" in {d.windowTitle() for d in shown_docks(w)}
    assert_nothing_overlaps_or_is_cut(w, size)
    click_mode(qtbot, w, MONITOR)  # and back: the user's own arrangement comes back
    assert_nothing_overlaps_or_is_cut(w, size)


@pytest.mark.parametrize("size", SIZES)
def test_lenet5_stays_readable_while_it_trains(window_at, qtbot, size):
    w = window_at(*size)
    open_example(qtbot, w, "LeNet-5")
    tc = w.training
    assert tc.data.wait_loaded(60)
    qtbot.mouseClick(tc.panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.layouts.mode == MONITOR, timeout=10_000)
    qtbot.wait(200)
    view = w.view
    assert view.zoom >= 0.7  # node titles: 9 pt bold at ≥ 70 %, 8.4 px and up
    vp = view.viewport().rect()
    whole = [n for n, it in w.scene.nodes.items()
             if vp.contains(view.mapFromScene(it.sceneBoundingRect()).boundingRect())]
    assert len(whole) >= 5, whole  # a good part of the graph, cards whole
    assert "in" in whole  # from its input down
    assert_nothing_overlaps_or_is_cut(w, size)
    qtbot.mouseClick(tc.panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tc.state == "idle" and tc.worker is None, timeout=120_000)


def test_arrangements_survive_a_restart_and_reset_layout_restores_them(window_at, qtbot):
    w = window_at(1280, 800)
    click_mode(qtbot, w, MONITOR)
    grads = w.training.docks.plots["grads"]
    grads.toggleViewAction().trigger()  # the user closes Gradients in the Monitor layout
    assert grads.isHidden()
    click_mode(qtbot, w, BUILD)
    w.history_dock.toggleViewAction().trigger()  # and History in the Build layout
    assert w.history_dock.isHidden()
    w.close()
    assert settings.get_value("layout/version") in (LAYOUT_VERSION, str(LAYOUT_VERSION))

    again = window_at(1280, 800)
    assert again.layouts.mode == BUILD
    assert again.history_dock.isHidden() and not again.inspector_dock.isHidden()
    click_mode(qtbot, again, MONITOR)
    assert again.training.docks.plots["grads"].isHidden()
    assert not again.training.docks.plots["curves"].isHidden()
    # View ▸ Reset Layout: the defaults of both layouts
    again.act_reset_layout.trigger()
    qtbot.wait(50)
    assert not again.training.docks.plots["grads"].isHidden()
    click_mode(qtbot, again, BUILD)
    assert not again.history_dock.isHidden()


def test_a_layout_saved_by_another_version_is_ignored(window_at, qtbot):
    w = window_at(1280, 800)
    w.history_dock.toggleViewAction().trigger()
    w.close()
    settings.set_value("layout/version", LAYOUT_VERSION - 1)
    again = window_at(1280, 800)
    assert not again.history_dock.isHidden()  # the default, not the stale state


def test_view_panels_lists_every_panel_before_and_after_the_plots_exist(window_at, qtbot):
    w = window_at(1280, 800)
    names = {a.text() for a in w.panels_menu.actions() if not a.isSeparator()}
    assert {"Layers", "Inspector", "Model Summary", "History", "Training", "Data", "Runs",
            "Training Curves", "Gradients", "Feature Maps", "Filters", "Data Fit",
            "Input vs Output", "Confusion", "Mistakes"} <= names
    assert not w.training.views_ready  # the plots cost start-up time: built on first use
    maps = next(a for a in w.panels_menu.actions() if a.text() == "Feature Maps")
    maps.trigger()
    qtbot.wait(50)
    dock = w.training.docks.plots["maps"]
    assert dock.isVisible() and not dock.visibleRegion().isEmpty()
    listed = set(w.panels_menu.actions())
    for d in w.findChildren(QDockWidget):
        assert d.toggleViewAction() in listed, d.windowTitle()


def test_examples_menu_and_title_use_short_names(window_at, qtbot):
    w = window_at(1280, 800)
    w.examples_menu.aboutToShow.emit()
    actions = [a for a in w.examples_menu.actions() if a.text()]
    assert len(actions) >= 10
    assert all(len(a.text()) <= 40 for a in actions)
    assert w.examples_menu.sizeHint().width() < 420
    stn = next(a for a in actions if a.text() == "STN on distorted shapes")
    assert "localisation net" in stn.toolTip() and "stn_shapes.json" in stn.statusTip()
    stn.trigger()
    assert w.windowTitle() == "STN on distorted shapes[*] — NetBuilder"


def _dialog_text(qtbot, trigger) -> str:
    seen: list[str] = []

    def grab() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.accept()
        else:
            QTimer.singleShot(20, grab)

    QTimer.singleShot(20, grab)
    trigger()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    return seen[0]


def test_shortcuts_dialog_lists_the_keys_of_every_menu(window_at, qtbot):
    w = window_at(1280, 800)
    text = _dialog_text(qtbot, w.act_shortcuts.trigger)
    for key, what in (("F5", "Start"), ("F6", "Pause / Resume"), ("F10", "Step One Batch"),
                      ("Shift+F5", "Stop"), ("Ctrl+L", "Automatic Layout"),
                      ("F8", "Go to Next Problem"), ("Ctrl+2", "Monitor Layout")):
        assert f"<code>{key}</code>" in text and what in text, key
    assert "Training" in text and "Mouse" in text


def test_about_names_the_version(window_at, qtbot):
    w = window_at(1280, 800)
    text = _dialog_text(qtbot, w.act_about.trigger)
    assert f"NetBuilder {netbuilder.__version__}" in text


def test_zoom_is_labelled_apart_from_progress(window_at, qtbot):
    w = window_at(1280, 800)
    w.view.set_zoom(0.57)
    assert w.zoom_label.text() == "Zoom 57 %"
    assert "zoom" in w.zoom_label.toolTip().lower()


def test_no_tab_bar_is_left_over_the_panels_after_runs_and_switches(window_at, qtbot):
    """Qt leaves the old tab bar of a regrouped dock on screen; it must not show."""
    w = window_at(1280, 800)
    tc = w.training
    for name in ("XOR MLP", "Digits CNN"):
        open_example(qtbot, w, name)  # back to Build
        assert w.layouts.mode == BUILD and tc.data.wait_loaded(60)
        assert_nothing_overlaps_or_is_cut(w, (1280, 800))
        qtbot.mouseClick(tc.panel.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: tc.state == "running" or tc.state == "idle", timeout=120_000)
        qtbot.wait(300)
        assert w.layouts.mode == MONITOR
        assert_nothing_overlaps_or_is_cut(w, (1280, 800))
        if tc.worker is not None:
            qtbot.mouseClick(tc.panel.stop_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: tc.state == "idle" and tc.worker is None, timeout=120_000)


def test_the_monitor_canvas_shows_both_columns_of_a_transformer_whole(window_at, qtbot):
    """transformer_sort's residual Adds sit in a column left of its layers; with b2_attn
    selected the Monitor's canvas column (354 px at 1280×800) showed b2_attn in the middle
    and cut the left column, Input included. Every card is now whole across, the selected
    one in sight (its badges may be cut on the right)."""
    w = window_at(1280, 800)
    open_example(qtbot, w, "Transformer")
    w.scene.select_nodes(["b2_attn"])
    click_mode(qtbot, w, MONITOR)
    qtbot.wait(50)
    view, vp = w.view, w.view.viewport().rect()
    for badges in (False, True):  # as the Monitor opens, and framed again while training
        if badges:
            w.scene.set_monitor({n: ("μ 0.05 σ 1.45", "ok", "") for n in w.scene.nodes})
            w.frame_canvas()
        assert view.zoom >= 0.7
        for nid, item in w.scene.nodes.items():
            card = item.mapRectToScene(QRectF(0, 0, item.width, item.height))
            box = view.mapFromScene(card).boundingRect()
            assert box.left() >= 0 and box.right() <= vp.right(), f"{nid} cut: {box}"
        sel = view.mapFromScene(w.scene.nodes["b2_attn"].sceneBoundingRect()).boundingRect()
        assert vp.contains(sel.center())
    titles = {b.tabText(i) for b in tab_bars(w) for i in range(b.count())}
    assert {"Training Curves", "Attention", "Filters", "Runs", "Model Summary"} <= titles

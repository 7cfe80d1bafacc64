"""Datasets on demand in the Data panel, driven through the real widgets: the grouped list
with sizes and cache states, a download with progress, Cancel and resume, a checksum
mismatch with Retry, offline with "Open files I already have…", a cached dataset opened
with no network, and training on the result. Fixture files in the real formats (IDX .gz,
CIFAR-10 binary tar.gz) are served from 127.0.0.1 (tests/engine/dataserver.py); any other
address fails the test, and the cache lives under tmp_path."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import time
from pathlib import Path

import pytest
from monitorkit import click, click_tab, example, open_model, wait_idle
from PySide6.QtCore import Qt, QTimer

from engine.data import CATALOGUE, add_local_files, cache_state
from engine.data import download as download_mod
from netbuilder.panels.data_download import RateMeter, breakable, fmt_left


def _dataserver():
    """tests/engine/dataserver.py (imported by path: this folder is not beside it)."""
    mod = sys.modules.get("dataserver")
    if mod is None:
        path = Path(__file__).resolve().parents[1] / "engine" / "dataserver.py"
        spec = importlib.util.spec_from_file_location("dataserver", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["dataserver"] = mod
        spec.loader.exec_module(mod)
    return mod


ds_mod = _dataserver()
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
CIFAR_FILE = "cifar-10-binary.tar.gz"
CIFAR_NAMES = list(CATALOGUE["cifar10"].class_names)


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    state = ds_mod.guard_loopback(monkeypatch)
    yield state
    assert not state["attempts"], f"tried to reach {state['attempts']}"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "datasets"
    monkeypatch.setenv("NETBUILDER_DATA_DIR", str(d))
    return d


@pytest.fixture
def server():
    s = ds_mod.FixtureServer()
    yield s
    s.stop()


@pytest.fixture
def mnist(server, monkeypatch):
    """The catalogue's "mnist" served by the fixture server: its files {name: bytes}."""
    files, _ = ds_mod.mnist_like()
    ds_mod.serve_dataset(monkeypatch, server, "mnist", files)
    return files


def served(name: str, file: str = TRAIN_IMAGES) -> str:
    return f"m1/{name}/{file}"


def lenet(dataset: str | None = None, **training) -> dict:
    """LeNet-5 (Input 1×28×28) for one quick epoch; its data chosen in the test."""
    doc = example("lenet5", epochs=1, batch_size=32, **training)
    if dataset is not None:
        doc["training"]["dataset"] = dataset
    return doc


def choose(qtbot, box, data) -> None:
    """Pick the item with ``data`` as a user does: open the list, click the item."""
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


def captions(dp) -> list[str]:
    """The class names under the preview's samples (whole, as in their tooltips)."""
    grid = dp.preview_grid
    return [grid.itemAt(i).widget().toolTip() for i in range(grid.count())]


def open_data_panel(make_window, qtbot, doc: dict):
    drv = make_window(doc)
    click_tab(qtbot, drv.w, "Data")
    return drv, drv.w.training


def start_disabled_because(tc, words: str) -> bool:
    p = tc.panel
    return (not p.start_button.isEnabled() and words in p.start_button.toolTip()
            and words in p.status.text())


# ----- the download area's arithmetic ---------------------------------------------------------
def test_speed_and_time_left_come_from_the_last_seconds():
    m = RateMeter()
    assert m.rate == 0 and fmt_left(m.seconds_left(100)) == ""
    m.add(5_000_000, now=0.0)  # a resume: what was there before is no speed
    m.add(5_000_000 + 2 * 2**20, now=1.0)
    assert m.rate == 2 * 2**20 and m.seconds_left(10 * 2**20) == 5.0
    for t in range(2, 12):  # slower later: only the last few seconds count
        m.add(5_000_000 + 2 * 2**20 + (t - 1) * 2**19, now=float(t))
    assert abs(m.rate - 2**19) < 1
    assert [fmt_left(s) for s in (8, 200, 1800, 3900)] == [
        "8 s left", "3 min 20 s left", "30 min left", "1 h 5 min left"]
    sha = "ab" * 32
    wrapped = breakable(f"its SHA-256 is {sha}, from http://x/y")
    assert wrapped.replace("\u200b", "") == f"its SHA-256 is {sha}, from http://x/y"
    assert max(len(w) for w in wrapped.replace("\u200b", " ").split()) <= 17


# ----- the list -------------------------------------------------------------------------------
def test_the_list_groups_the_datasets_with_their_size_and_whether_they_are_here(
        make_window, qtbot, server, monkeypatch, tmp_path):
    archive, _ = ds_mod.cifar_binary_targz()
    ds_mod.serve_dataset(monkeypatch, server, "cifar10", {CIFAR_FILE: archive})
    _drv, tc = open_model(make_window, lenet())
    box = tc.data.source
    texts = [box.itemText(i) for i in range(box.count())]
    assert texts[0] == "Built in" and "shapes" in texts and texts[-1] == "File or folder…"
    first_remote = texts.index("Download on first use") + 1
    titles = ["MNIST", "Fashion-MNIST", "Kuzushiji-MNIST", "CIFAR-10"]
    assert [t.split("   ")[0] for t in texts[first_remote:first_remote + 4]] == titles
    for heading in ("Built in", "Download on first use", "Your data"):  # not choosable
        item = box.model().item(texts.index(heading))
        assert not item.isEnabled() and not item.isSelectable()
    size = f"{CATALOGUE['cifar10'].size / 1024:.1f} KB"
    assert box.itemText(box.findData("cifar10")) == f"CIFAR-10   {size} · download"
    assert "airplane" in box.itemData(box.findData("cifar10"), Qt.ItemDataRole.ToolTipRole)
    # the real sizes of the others, as published
    assert box.itemText(box.findData("kmnist")).endswith("20.3 MB · download")
    # fetched elsewhere (the command line): the list says so the next time it opens
    (tmp_path / CIFAR_FILE).write_bytes(archive)
    add_local_files("cifar10", [tmp_path / CIFAR_FILE])
    box.showPopup()
    assert box.itemText(box.findData("cifar10")) == f"CIFAR-10   {size} · on this computer ✓"
    box.hidePopup()
    assert server.requests() == []


# ----- download, progress, train ------------------------------------------------------------
def test_choosing_mnist_downloads_it_with_progress_then_it_trains(make_window, qtbot, mnist,
                                                                 server, monkeypatch):
    threads = []
    real_run = download_mod.FileDownload.run

    def run(self):
        threads.append(threading.current_thread())
        return real_run(self)

    monkeypatch.setattr(download_mod.FileDownload, "run", run)
    server.slow_pause = 0.03  # ~1 s for the training images: several progress reports
    server.plan(served("mnist"), "slow")
    drv, tc = open_data_panel(make_window, qtbot, lenet())
    dp, box = tc.data, tc.data.download
    assert dp.wait_loaded(30) and dp.dataset.name == "shapes"
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    choose(qtbot, dp.source, "mnist")
    assert drv.graph.training["dataset"] == "mnist"
    # the download area: title, bar, Cancel, the address being read; Start waits
    assert box.isVisible() and box.title.text().startswith("Downloading MNIST")
    assert box.cancel_button.isVisible() and box.open_files_button.isVisible()
    assert start_disabled_because(tc, "MNIST is downloading")
    seen = set()
    qtbot.waitUntil(lambda: seen.add(box.bar.value()) or box.bar.value() > 100,
                    timeout=20_000)
    qtbot.waitUntil(lambda: "/s" in box.detail.text() and "left" in box.detail.text(),
                    timeout=20_000)
    assert TRAIN_IMAGES in box.detail.text()
    assert server.url(served("mnist")) in box.source.toolTip()
    assert " of " in box.bar.text() and "KB" in box.bar.text()
    assert dp.wait_loaded(30)
    timer.stop()
    assert len(seen) >= 3  # the bar advanced step by step
    assert threads and threading.main_thread() not in threads  # never on the GUI thread
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 20 and max(gaps) < 1.0, max(gaps)  # the window kept responding
    # loaded: the area goes, the preview shows digits with their names, LeNet-5 fits
    assert not box.isVisible()
    assert dp.dataset.name == "mnist" and len(dp.dataset) == 300
    assert set(captions(dp)) == {str(d) for d in range(10)}
    assert dp.problems == [] and not dp.fix_input_button.isVisible()
    assert dp.split_label.text() == "train 270 · validation 30 · test 50 (shipped)"
    assert "on this computer" in dp.source_note.text()
    assert dp.source.itemText(dp.source.findData("mnist")).endswith("on this computer ✓")
    assert cache_state("mnist").ready
    p = tc.panel
    assert p.start_button.isEnabled() and p.status.text() == "Ready"
    click(qtbot, p.start_button)
    wait_idle(qtbot, tc)
    run_ = tc.store.latest()
    assert run_.status == "completed", run_.message
    assert tc.confusion.row_names == [str(d) for d in range(10)]


def test_cancel_keeps_the_part_and_choosing_again_resumes(make_window, qtbot, mnist, server,
                                                          data_dir):
    server.slow_pause = 0.05
    server.plan(served("mnist"), "slow")
    # a model whose data is MNIST: opening it starts the download, visibly
    _drv, tc = open_data_panel(make_window, qtbot, lenet("mnist"))
    dp, box = tc.data, tc.data.download
    assert box.isVisible() and box.state == "downloading"
    qtbot.waitUntil(lambda: box.bar.value() > 50, timeout=20_000)
    click(qtbot, box.cancel_button)
    qtbot.waitUntil(lambda: box.state == "cancelled", timeout=5_000)  # within a read or two
    part = data_dir / "mnist" / ".download" / f"{TRAIN_IMAGES}.part"
    kept = part.stat().st_size
    assert 0 < kept < len(mnist[TRAIN_IMAGES])
    assert not (data_dir / "mnist" / TRAIN_IMAGES).exists()
    assert box.title.text() == "Download of MNIST cancelled"
    assert "kept" in box.detail.text() and box.retry_button.text() == "Resume download"
    assert dp.dataset is None and not dp.problem_label.isVisible()
    assert start_disabled_because(tc, "the download was cancelled")
    tc.act_start.trigger()  # F5 as well: no run, and no download on the training thread
    assert tc.worker is None and not tc.store.runs
    assert tc.panel.message.text().startswith("Waiting for the data: MNIST is not downloaded")
    assert dp.source.itemText(dp.source.findData("mnist")).endswith("% downloaded")
    # choosing it again continues from where it stopped
    choose(qtbot, dp.source, "mnist")
    assert dp.wait_loaded(30) and dp.dataset is not None
    ranges = [r[1] for r in server.requests(served("mnist"))]
    assert ranges[0] is None and ranges[-1] == f"bytes={kept}-"
    assert not part.exists() and tc.panel.start_button.isEnabled()


def test_a_checksum_mismatch_says_so_and_retry_downloads_again(make_window, qtbot, mnist,
                                                                server, data_dir):
    server.plan(served("mnist"), "wrong")
    _drv, tc = open_data_panel(make_window, qtbot, lenet())
    dp, box = tc.data, tc.data.download
    dp.wait_loaded(30)
    choose(qtbot, dp.source, "mnist")
    assert dp.wait_loaded(30)
    assert box.state == "failed" and box.title.text() == "MNIST could not be downloaded"
    msg = box.message_text  # the engine's message, shown whole
    assert f"{TRAIN_IMAGES} downloaded from {server.url(served('mnist'))}" in msg
    assert "is not the expected file: its SHA-256 is" in msg and "It was deleted" in msg
    assert box.message.isVisible() and box.message.text().replace("\u200b", "") == msg
    assert box.retry_button.isVisible() and box.retry_button.text() == "Retry"
    assert box.open_files_button.isVisible()
    assert start_disabled_because(tc, "MNIST is not on this computer")
    assert "MNIST is not on this computer" in tc.panel.data_note.text()
    assert not (data_dir / "mnist" / TRAIN_IMAGES).exists()
    click(qtbot, box.retry_button)
    assert dp.wait_loaded(30) and dp.dataset is not None and not box.isVisible()
    assert tc.panel.start_button.isEnabled()


def test_offline_the_files_i_already_have_are_checked_and_load(make_window, qtbot, server,
                                                               monkeypatch, tmp_path):
    files, _ = ds_mod.mnist_like()
    mine = tmp_path / "Downloads"
    mine.mkdir()
    for name, data in files.items():
        (mine / name).write_bytes(data)
    ds_mod.serve_dataset(monkeypatch, server, "mnist", files)
    server.stop()  # offline: every address refuses
    drv, tc = open_data_panel(make_window, qtbot, lenet())
    dp, box = tc.data, tc.data.download
    dp.wait_loaded(30)
    choose(qtbot, dp.source, "mnist")
    assert dp.wait_loaded(30) and box.state == "failed"
    assert box.message_text.startswith(f"could not download MNIST ({TRAIN_IMAGES}) from ")
    assert "connection refused" in box.message_text
    assert "check your connection" in box.message_text
    asked = []

    def answer(*paths):
        def choose_files(title, name_filter):
            asked.append((title, name_filter))
            return [str(p) for p in paths]
        drv.w.choose_dataset_files = choose_files

    # a file that is not MNIST's: refused by its checksum, said plainly
    (mine / "notes.gz").write_bytes(b"\0" * len(files["t10k-labels-idx1-ubyte.gz"]))
    answer(mine / "notes.gz")
    click(qtbot, box.open_files_button)
    assert dp.wait_loaded(30) and box.state == "failed"
    assert box.title.text() == "These are not MNIST's files"
    assert "none of these files is part of MNIST" in box.message_text
    assert box.retry_button.text() == "Download instead"
    title, name_filter = asked[0]
    assert title == "Open the MNIST files you already have"
    assert TRAIN_IMAGES in name_filter and "t10k-labels-idx1-ubyte.gz" in name_filter
    # two of the four: kept, the rest is named
    answer(mine / TRAIN_IMAGES, mine / "train-labels-idx1-ubyte.gz")
    click(qtbot, box.open_files_button)
    assert dp.wait_loaded(30) and box.state == "incomplete"
    assert "t10k-images-idx3-ubyte.gz" in box.detail.text()
    assert TRAIN_IMAGES not in box.detail.text()
    assert start_disabled_because(tc, "MNIST is not complete yet")
    # the others: the data loads from the cache
    answer(mine / "t10k-images-idx3-ubyte.gz", mine / "t10k-labels-idx1-ubyte.gz")
    click(qtbot, box.open_files_button)
    assert dp.wait_loaded(30) and dp.dataset is not None and dp.dataset.name == "mnist"
    assert not box.isVisible() and cache_state("mnist").ready
    assert set(captions(dp)) == {str(d) for d in range(10)}
    assert tc.panel.start_button.isEnabled()


def test_open_files_is_there_while_downloading_too(make_window, qtbot, mnist, server,
                                                   tmp_path):
    server.slow_pause = 0.05
    server.plan(served("mnist"), "slow")
    for name, data in mnist.items():
        (tmp_path / name).write_bytes(data)
    drv, tc = open_data_panel(make_window, qtbot, lenet("mnist"))
    dp, box = tc.data, tc.data.download
    qtbot.waitUntil(lambda: box.bar.value() > 20, timeout=20_000)
    drv.w.choose_dataset_files = lambda title, name_filter: [str(tmp_path / n) for n in mnist]
    click(qtbot, box.open_files_button)  # the download stops; the files are used instead
    assert dp.wait_loaded(30) and dp.dataset is not None
    assert cache_state("mnist").ready


# ----- the cache ----------------------------------------------------------------------------
def test_a_cached_dataset_opens_without_network_and_offers_the_input_shape(
        make_window, qtbot, server, monkeypatch, tmp_path, only_loopback):
    archive, _ = ds_mod.cifar_binary_targz(per_batch=8, n_test=6)
    ds_mod.serve_dataset(monkeypatch, server, "cifar10", {CIFAR_FILE: archive})
    (tmp_path / CIFAR_FILE).write_bytes(archive)
    add_local_files("cifar10", [tmp_path / CIFAR_FILE])  # downloaded before, say
    only_loopback["block_all"] = True  # from here on any connection fails the test
    _drv, tc = open_data_panel(make_window, qtbot, lenet("cifar10"))
    dp = tc.data
    assert dp.wait_loaded(30) and dp.dataset is not None
    assert not dp.download.isVisible() and tc.panel.data_wait is None
    assert dp.dataset.sample_shape == (3, 32, 32)
    assert captions(dp)[:2] == ["airplane", "airplane"] and captions(dp)[-1] == "truck"
    assert [line.split(":")[0] for line in dp.counts_plot.toolTip().splitlines()] == CIFAR_NAMES
    # LeNet-5 takes 1×28×28: the panel offers the data's shape, one click
    assert dp.problems and "(3, 32, 32)" in dp.problem_label.text()
    assert dp.fix_input_button.text() == "Set the Input to the data's shape (3, 32, 32)"
    click(qtbot, dp.fix_input_button)
    assert tc.doc.graph.nodes["in"].params["shape"] == [3, 32, 32]
    assert dp.problems == [] and not dp.fix_input_button.isVisible()
    click(qtbot, tc.panel.start_button)
    wait_idle(qtbot, tc)
    assert tc.store.latest().status == "completed", tc.store.latest().message
    assert tc.confusion.row_names == CIFAR_NAMES  # the monitor names the classes
    assert tc.gallery.class_names == CIFAR_NAMES
    assert server.requests() == []

"""Datasets on demand: the whole download path against a local HTTP server on 127.0.0.1
serving fixture files in the real formats (IDX .gz, CIFAR-10 binary tar.gz): progress,
cancel, resume or restart, mirror fallback, corrupt and oversized files refused, timeouts,
the offline message, cache hits with no network, and the CLI. No test reaches any address
but 127.0.0.1 (the ``only_loopback`` guard fails a test that tries)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import threading

import numpy as np
import pytest
from dataserver import (
    FixtureServer,
    cifar_binary_targz,
    closed_port_url,
    guard_loopback,
    mnist_like,
    serve_dataset,
)
from graphdocs import chain_doc

from engine import cli
from engine.data import (
    CATALOGUE,
    DownloadCancelledError,
    add_local_files,
    cache_state,
    data_root,
    fetch_dataset,
    load_cifar10,
    load_dataset,
    load_remote_dataset,
    remove_dataset,
)
from engine.data import download as download_mod
from engine.data.catalogue import RemoteFile
from engine.errors import DataError


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    """Fail any connection or name lookup beyond 127.0.0.1; ``state["block_all"]`` also
    forbids loopback (to prove a cache hit needs no network)."""
    state = guard_loopback(monkeypatch)
    yield state
    assert not state["attempts"], f"tried to reach {state['attempts']}"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "datasets"
    monkeypatch.setenv("NETBUILDER_DATA_DIR", str(d))
    return d


@pytest.fixture
def server():
    s = FixtureServer()
    yield s
    s.stop()


@pytest.fixture
def mnist(server, monkeypatch):
    """The catalogue's "mnist" served from the fixture server: (files, arrays)."""
    files, arrays = mnist_like()
    serve_dataset(monkeypatch, server, "mnist", files)
    return files, arrays


def path_of(name: str, file: str, mirror: str = "m1") -> str:
    return f"{mirror}/{name}/{file}"


TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


# ----- the guard and the real catalogue -------------------------------------------------------
def test_the_guard_refuses_any_address_but_loopback(only_loopback):
    for host in ("192.0.2.1", "ossci-datasets.s3.amazonaws.com"):
        with pytest.raises(AssertionError, match="network access"):
            socket.create_connection((host, 80), timeout=0.1)
    assert len(only_loopback["attempts"]) == 2
    only_loopback["attempts"].clear()


def test_the_catalogue_names_real_sources_sizes_and_checksums():
    assert list(CATALOGUE) == ["mnist", "fashion_mnist", "kmnist", "cifar10"]
    for name, entry in CATALOGUE.items():
        assert entry.name == name and len(entry.class_names) == 10
        assert len(set(entry.class_names)) == 10
        names = [f.name for f in entry.files]
        assert len(set(names)) == len(names)
        for f in entry.files:
            assert f.urls and all(re.fullmatch(r"https?://[^/]+/\S+", u) for u in f.urls)
            assert all(u.endswith("/" + f.name) for u in f.urls)
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and re.fullmatch(r"[0-9a-f]{32}", f.md5)
            assert f.size > 0
    mnist = {f.name: f for f in CATALOGUE["mnist"].files}
    # the published sizes, and the first mirror is the maintained https one
    assert mnist[TRAIN_IMAGES].size == 9912422 and mnist["t10k-labels-idx1-ubyte.gz"].size == 4542
    assert mnist[TRAIN_IMAGES].urls[0].startswith("https://ossci-datasets.s3.amazonaws.com/")
    assert mnist[TRAIN_IMAGES].urls[-1].startswith("http://yann.lecun.com/")
    assert CATALOGUE["cifar10"].files[0].name == "cifar-10-binary.tar.gz"  # not the pickles
    assert CATALOGUE["cifar10"].files[0].size == 170052171
    assert CATALOGUE["fashion_mnist"].class_names[0] == "T-shirt/top"
    assert CATALOGUE["kmnist"].class_names == ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya",
                                               "re", "wo")
    # the sums of different datasets' files differ (no value copied to the wrong file)
    sums = [f.sha256 for e in CATALOGUE.values() for f in e.files]
    assert len(set(sums)) == len(sums) == 13


def test_data_root_is_the_env_folder_or_the_user_data_folder(monkeypatch, data_dir):
    assert data_root() == data_dir
    monkeypatch.delenv("NETBUILDER_DATA_DIR")
    from platformdirs import user_data_dir
    assert data_root() == __import__("pathlib").Path(user_data_dir("netbuilder", appauthor=False),
                                                     "datasets")


# ----- download, progress, read -------------------------------------------------------------
def test_first_use_downloads_with_progress_verifies_and_reads_the_idx_files(mnist, server,
                                                                             data_dir):
    files, arrays = mnist
    events = []
    assert cache_state("mnist").state == "missing"
    server.plan(path_of("mnist", TRAIN_IMAGES), "slow")  # ~0.3 s: several progress reports
    ds = load_remote_dataset("mnist", progress=events.append)
    total = sum(map(len, files.values()))
    assert events and events[-1].done == events[-1].total == total
    assert events[-1].fraction == 1.0
    assert [e.done for e in events] == sorted(e.done for e in events)  # never goes back
    assert {e.file for e in events} == set(files) and {e.dataset for e in events} == {"mnist"}
    assert len([e for e in events if e.file == TRAIN_IMAGES]) > 2  # reported as it streams
    # the data, as published: train part and the t10k test part, scaled to [0, 1]
    assert ds.name == "mnist" and ds.x.shape == (300, 1, 28, 28) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x[:, 0], arrays["x"].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.y, arrays["y"])
    assert ds.test is not None and len(ds.test) == 50
    np.testing.assert_array_equal(ds.test.y, arrays["y_test"])
    assert ds.class_names == [str(d) for d in range(10)] == ds.test.class_names
    assert ds.meta["remote"] == "mnist" and ds.meta["title"] == "MNIST"
    state = cache_state("mnist")
    assert state.ready and state.have_bytes == state.total_bytes == total
    assert sorted(p.name for p in (data_dir / "mnist").iterdir()) == sorted(
        [*files, ".verified.json"])  # no partial files left behind
    assert all(r[1] is None for r in server.requests())  # nothing to resume: no Range


def test_load_dataset_and_a_model_files_setting_reach_the_download(mnist):
    assert len(load_dataset("mnist")) == 300
    assert len(load_dataset({"name": "mnist"})) == 300
    with pytest.raises(DataError, match="has no settings"):
        load_dataset("mnist", n=5)


def test_a_cache_hit_needs_no_network(mnist, server, only_loopback):
    load_remote_dataset("mnist")
    n = len(server.requests())
    server.stop()
    only_loopback["block_all"] = True  # any connection attempt now fails the test
    ds = load_dataset("mnist")
    assert len(ds) == 300 and cache_state("mnist").ready
    assert fetch_dataset("mnist") == data_root() / "mnist"
    assert len(server.requests()) == n


def test_a_file_changed_in_the_cache_is_checked_and_downloaded_again(mnist, server, data_dir):
    fetch_dataset("mnist")
    cached = data_dir / "mnist" / TRAIN_IMAGES
    raw = bytearray(cached.read_bytes())
    raw[100] ^= 0xFF
    cached.write_bytes(bytes(raw))
    assert cache_state("mnist").state == "partial"
    assert TRAIN_IMAGES in cache_state("mnist").missing
    before = len(server.requests(path_of("mnist", TRAIN_IMAGES)))
    fetch_dataset("mnist")
    assert len(server.requests(path_of("mnist", TRAIN_IMAGES))) == before + 1
    assert cached.read_bytes() == mnist[0][TRAIN_IMAGES] and cache_state("mnist").ready


# ----- cancel, resume, restart ---------------------------------------------------------------
def test_cancel_mid_download_leaves_no_cache_file_and_the_next_fetch_resumes(mnist, server,
                                                                             data_dir):
    files, arrays = mnist
    server.plan(path_of("mnist", TRAIN_IMAGES), "slow")
    stop = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.file == TRAIN_IMAGES and p.file_done > 3 * 8192:
            stop.set()

    with pytest.raises(DownloadCancelledError, match="cancelled"):
        fetch_dataset("mnist", progress=progress, cancel=stop)
    assert not (data_dir / "mnist" / TRAIN_IMAGES).exists()  # never a half file in the cache
    state = cache_state("mnist")
    assert state.state == "partial" and TRAIN_IMAGES in state.missing
    kept = data_dir / "mnist" / ".download" / f"{TRAIN_IMAGES}.part"
    kept_bytes = kept.stat().st_size
    assert 3 * 8192 < kept_bytes < len(files[TRAIN_IMAGES])
    with pytest.raises(DataError, match="not downloaded yet"):
        load_remote_dataset("mnist", download=False)

    ds = load_remote_dataset("mnist")  # resumes where it stopped
    ranges = [r[1] for r in server.requests(path_of("mnist", TRAIN_IMAGES))]
    assert ranges == [None, f"bytes={kept_bytes}-"]
    np.testing.assert_array_equal(ds.y, arrays["y"])
    assert not kept.exists() and not kept.parent.exists()


def test_a_cancel_callable_works_too_and_cancels_before_any_request(mnist, server):
    with pytest.raises(DownloadCancelledError):
        fetch_dataset("mnist", cancel=lambda: True)
    assert server.requests() == []


def test_a_dropped_connection_is_resumed_with_a_range_request(mnist, server):
    path = path_of("mnist", TRAIN_IMAGES)
    server.plan(path, "drop", "drop")
    ds = load_remote_dataset("mnist")
    log = server.requests(path)
    assert [r[2] for r in log] == ["drop", "drop", "ok"]
    size = len(mnist[0][TRAIN_IMAGES])
    first = size // 2
    assert log[0][1] is None and log[1][1] == f"bytes={first}-"
    assert log[2][1] == f"bytes={first + (size - first) // 2}-"
    assert len(ds) == 300


def test_a_server_that_ignores_range_makes_a_clean_restart(mnist, server):
    path = path_of("mnist", TRAIN_IMAGES)
    server.plan(path, "drop", "norange")
    ds = load_remote_dataset("mnist")
    assert [r[2] for r in server.requests(path)] == ["drop", "norange"]
    np.testing.assert_array_equal(ds.x[:, 0], mnist[1]["x"] / np.float32(255))


def test_too_many_drops_move_on_to_the_next_mirror(server, monkeypatch):
    files, _ = mnist_like()
    serve_dataset(monkeypatch, server, "mnist", files, mirrors=("m1", "m2"))
    for name, data in files.items():
        server.files[path_of("mnist", name, "m2")] = data
    server.plan(path_of("mnist", TRAIN_IMAGES), *["drop"] * 4)
    events = []
    fetch_dataset("mnist", progress=events.append, retries=3)
    assert [r[2] for r in server.requests(path_of("mnist", TRAIN_IMAGES))] == ["drop"] * 4
    m2 = server.requests(path_of("mnist", TRAIN_IMAGES, "m2"))
    assert len(m2) == 1 and m2[0][1] is not None  # the second mirror continues the part
    last = [e for e in events if e.file == TRAIN_IMAGES][-1]
    assert last.url == server.url(path_of("mnist", TRAIN_IMAGES, "m2"))
    assert last.file_done == last.file_total
    assert cache_state("mnist").ready


# ----- wrong content -------------------------------------------------------------------------
def test_a_corrupt_download_is_refused_deleted_and_named_with_both_hashes(mnist, server,
                                                                          data_dir):
    path = path_of("mnist", TRAIN_IMAGES)
    server.plan(path, "wrong")
    with pytest.raises(DataError) as err:
        fetch_dataset("mnist")
    msg = str(err.value)
    good = hashlib.sha256(mnist[0][TRAIN_IMAGES]).hexdigest()
    bad = server.files[path]
    bad = hashlib.sha256(bytes(255 - b for b in bad[:64]) + bad[64:]).hexdigest()
    assert TRAIN_IMAGES in msg and server.url(path) in msg
    assert f"SHA-256 is {bad}, expected {good}" in msg
    assert "deleted" in msg and "--data PATH" in msg
    assert not (data_dir / "mnist" / TRAIN_IMAGES).exists()
    assert not (data_dir / "mnist" / ".download" / f"{TRAIN_IMAGES}.part").exists()
    fetch_dataset("mnist")  # the server is fine again: so is the cache
    assert cache_state("mnist").ready


def test_a_resumed_file_with_a_wrong_checksum_is_downloaded_again_whole(mnist, server, data_dir):
    path = path_of("mnist", TRAIN_IMAGES)
    part = data_dir / "mnist" / ".download" / f"{TRAIN_IMAGES}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xff" * 1000)  # a kept part that is not the file's beginning
    fetch_dataset("mnist")
    assert [r[1] for r in server.requests(path)] == ["bytes=1000-", None]
    assert cache_state("mnist").ready


def test_a_file_larger_than_the_catalogue_says_is_refused(mnist, server, data_dir):
    server.plan(path_of("mnist", TRAIN_IMAGES), "big")
    with pytest.raises(DataError, match=r"announces [\d,]+ bytes, expected"):
        fetch_dataset("mnist")
    assert not (data_dir / "mnist" / TRAIN_IMAGES).exists()


def test_a_body_longer_than_announced_is_cut_off_at_the_catalogue_size(mnist, server, monkeypatch):
    # a server that sends no Content-Length cannot be checked up front: the stream is capped
    monkeypatch.setattr(download_mod.FileDownload, "_check_length", lambda self, r, s: None)
    server.plan(path_of("mnist", TRAIN_IMAGES), "big")
    with pytest.raises(DataError, match="sends more than the expected"):
        fetch_dataset("mnist")


# ----- mirrors, offline, timeouts, redirects --------------------------------------------------
def test_a_missing_file_falls_back_to_the_next_mirror(server, monkeypatch):
    files, _ = mnist_like()
    serve_dataset(monkeypatch, server, "mnist", files, mirrors=("m1", "m2"))
    for name, data in files.items():
        server.files[path_of("mnist", name, "m2")] = data
    server.plan(path_of("mnist", TRAIN_IMAGES), "404")
    events = []
    fetch_dataset("mnist", progress=events.append)
    urls = {e.url for e in events if e.file == TRAIN_IMAGES}
    assert urls == {server.url(path_of("mnist", TRAIN_IMAGES, "m2"))}
    assert len(server.requests(path_of("mnist", "train-labels-idx1-ubyte.gz", "m2"))) == 0


def test_offline_says_what_failed_where_and_what_to_do(monkeypatch, data_dir):
    first, second = closed_port_url("a/mnist.gz"), closed_port_url("b/mnist.gz")
    spec = RemoteFile(TRAIN_IMAGES, (first, second), 10, "0" * 64)
    entry = CATALOGUE["mnist"]
    monkeypatch.setitem(CATALOGUE, "mnist", entry.__class__(**{**entry.__dict__,
                                                               "files": (spec,)}))
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    msg = str(err.value)
    assert msg.startswith(f"could not download MNIST ({TRAIN_IMAGES}) from {first}: "
                          "connection refused; nor from " + second + ": connection refused")
    assert "check your connection" in msg
    assert "open them with Open… in the Data panel / `--data PATH`" in msg
    assert cache_state("mnist").state == "missing"


def test_a_stalled_server_times_out_and_the_next_mirror_serves(server, monkeypatch):
    files, _ = mnist_like()
    serve_dataset(monkeypatch, server, "mnist", files, mirrors=("m1", "m2"))
    for name, data in files.items():
        server.files[path_of("mnist", name, "m2")] = data
    server.stall_s = 1.0
    server.plan(path_of("mnist", TRAIN_IMAGES), "stall", "stall")
    fetch_dataset("mnist", timeout=0.2, retries=1)
    assert [r[2] for r in server.requests(path_of("mnist", TRAIN_IMAGES))] == ["stall", "stall"]
    assert len(server.requests(path_of("mnist", TRAIN_IMAGES, "m2"))) == 1


def test_a_stall_then_a_good_answer_resumes_on_the_same_mirror(mnist, server):
    server.stall_s = 1.0
    server.plan(path_of("mnist", TRAIN_IMAGES), "stall")
    fetch_dataset("mnist", timeout=0.2)
    assert [r[2] for r in server.requests(path_of("mnist", TRAIN_IMAGES))] == ["stall", "ok"]


def test_redirects_are_followed_to_http_only(mnist, server):
    path = path_of("mnist", TRAIN_IMAGES)
    server.files["elsewhere/train.gz"] = mnist[0][TRAIN_IMAGES]
    server.plan(path, f"redirect:{server.url('elsewhere/train.gz')}")
    fetch_dataset("mnist")
    assert len(server.requests("elsewhere/train.gz")) == 1
    remove_dataset("mnist")
    for target in ("file:///etc/passwd", "ftp://127.0.0.1/x"):
        server.plan(path, f"redirect:{target}")
        with pytest.raises(DataError, match=r"HTTP 302.*(not allowed|does not follow)"):
            fetch_dataset("mnist")
    assert not cache_state("mnist").ready


def test_two_threads_fetching_at_once_download_each_file_once(mnist, server):
    server.plan(path_of("mnist", TRAIN_IMAGES), "slow")
    errors = []

    def fetch():
        try:
            fetch_dataset("mnist")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(server.requests(path_of("mnist", TRAIN_IMAGES))) == 1


# ----- CIFAR-10 (binary version) --------------------------------------------------------------
def test_cifar10_downloads_and_reads_the_binary_batches(server, monkeypatch):
    archive, parts = cifar_binary_targz(per_batch=4, n_test=3)
    serve_dataset(monkeypatch, server, "cifar10", {"cifar-10-binary.tar.gz": archive})
    ds = load_dataset("cifar10")
    assert ds.x.shape == (20, 3, 32, 32) and ds.x.dtype == np.float32
    labels = np.concatenate([parts[f"data_batch_{i}"][0] for i in range(1, 6)])
    images = np.concatenate([parts[f"data_batch_{i}"][1] for i in range(1, 6)])
    np.testing.assert_array_equal(ds.y, labels)
    np.testing.assert_array_equal(ds.x, images.astype(np.float32) / np.float32(255))
    assert len(ds.test) == 3
    np.testing.assert_array_equal(ds.test.y, parts["test_batch"][0])
    assert ds.class_names[:3] == ["airplane", "automobile", "bird"] and ds.n_classes == 10


def test_cifar10_archive_or_folder_opens_by_path(tmp_path):
    archive, _ = cifar_binary_targz(per_batch=2, n_test=2)
    p = tmp_path / "cifar-10-binary.tar.gz"
    p.write_bytes(archive)
    ds = load_dataset(str(p))
    assert len(ds) == 10 and len(ds.test) == 2
    import tarfile
    with tarfile.open(p) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "cifar-10-batches-bin"
    ds2 = load_dataset(str(folder))
    np.testing.assert_array_equal(ds.x, ds2.x)


def test_the_cifar_python_version_is_refused_without_unpickling(tmp_path):
    archive, _ = cifar_binary_targz(python=True)
    p = tmp_path / "cifar-10-python.tar.gz"
    p.write_bytes(archive)
    with pytest.raises(DataError, match=r"pickles.*cifar-10-binary\.tar\.gz"):
        load_dataset(str(p))


@pytest.mark.parametrize("damage, message", [
    ("truncate", "not a whole number of CIFAR-10 records"),
    ("label", "has label 10"),
    ("meta", "not CIFAR-10's"),
    ("missing", "no test_batch.bin"),
])
def test_a_damaged_cifar_archive_is_refused_by_name(tmp_path, damage, message):
    import tarfile
    archive, _ = cifar_binary_targz(meta=b"apple\npear\n" if damage == "meta" else None)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as src, \
            tarfile.open(fileobj=out, mode="w:gz") as tar:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name.endswith("test_batch.bin"):
                if damage == "missing":
                    continue
                if damage == "truncate":
                    data = data[:-5]
                if damage == "label":
                    data = b"\x0a" + data[1:]
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    p = tmp_path / "cifar-10-binary.tar.gz"
    p.write_bytes(out.getvalue())
    with pytest.raises(DataError, match=message):
        load_cifar10(p)


def test_a_corrupt_gzip_is_a_clear_error(tmp_path):
    p = tmp_path / "cifar-10-binary.tar.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    with pytest.raises(DataError, match=r"not a readable tar\.gz"):
        load_cifar10(p)


# ----- files the user already has -------------------------------------------------------------
def test_files_the_user_already_has_are_checked_and_added(mnist, tmp_path, server):
    files, arrays = mnist
    mine = tmp_path / "downloads"
    mine.mkdir()
    for name, data in files.items():
        (mine / name.upper()).write_bytes(data)  # any names: matched by size and checksum
    (mine / "notes.txt").write_text("hello")
    state = add_local_files("mnist", [mine])
    assert state.ready
    np.testing.assert_array_equal(load_dataset("mnist").y, arrays["y"])
    assert server.requests() == []
    remove_dataset("mnist")
    assert cache_state("mnist").state == "missing"
    state = add_local_files("mnist", [mine / TRAIN_IMAGES.upper()])
    assert state.state == "partial" and TRAIN_IMAGES not in state.missing
    wrong = tmp_path / "wrong.gz"
    wrong.write_bytes(b"\0" * len(files["train-labels-idx1-ubyte.gz"]))
    with pytest.raises(DataError, match="none of these files is part of MNIST"):
        add_local_files("mnist", [wrong])
    with pytest.raises(DataError, match="no downloadable dataset named 'nope'"):
        add_local_files("nope", [wrong])


# ----- command line ---------------------------------------------------------------------------
def run(argv, tty=False):
    out, err = io.StringIO(), io.StringIO()
    if tty:
        err.isatty = lambda: True
    code = cli.main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def test_cli_lists_fetches_and_removes(mnist, server):
    code, out, err = run(["datasets"])
    assert code == 0, err
    assert re.search(r"mnist\s+MNIST\s+1×28×28\s+60,000/10,000\s+[\d.]+ MB\s+not downloaded", out)
    assert re.search(r"cifar10\s+CIFAR-10\s+3×32×32\s+50,000/10,000\s+162.2 MB", out)
    assert f"cache folder: {data_root()}" in out
    code, out, err = run(["datasets", "fetch", "mnist"])
    assert code == 0, err
    assert "MNIST is not in the cache yet: downloading" in err
    assert err.count(" from http://127.0.0.1") == 4 and "\r" not in err  # one line per file
    assert "MNIST: downloaded" in out
    code, out, _ = run(["datasets", "list"])
    assert re.search(r"mnist\s+MNIST.*downloaded", out) and "not downloaded" in out
    code, out, err = run(["datasets", "fetch", "mnist"])
    assert code == 0 and err == ""  # cached: nothing to say on stderr
    code, out, _ = run(["datasets", "remove", "mnist"])
    assert code == 0 and cache_state("mnist").state == "missing"
    code, _, err = run(["datasets", "fetch", "imagenet"])
    assert code == 2 and "no downloadable dataset named imagenet" in err


def test_cli_download_bar_on_a_terminal(mnist, server):
    server.plan(path_of("mnist", TRAIN_IMAGES), "slow")
    code, _, err = run(["datasets", "fetch", "mnist"], tty=True)
    assert code == 0, err
    assert "\r" in err and re.search(r"\[#+\.*\] [\d.]+/[\d.]+ MB [\d.]+ MB/s ETA", err)
    assert err.endswith("\r")  # the bar is cleared when done


def test_cli_train_with_data_mnist_downloads_then_trains(mnist, server, tmp_path):
    doc = chain_doc((1, 28, 28), [("Flatten", {}), ("Dense", {"units": 10})])
    doc["training"] = {"dataset": "mnist", "epochs": 1, "batch_size": 50}
    model = tmp_path / "m.json"
    model.write_text(json.dumps(doc))
    code, out, err = run(["train", str(model), "--out", str(tmp_path / "run"), "--threads", "1"])
    assert code == 0, err
    assert "downloading" in err
    assert "data: mnist: 300 samples, x (1, 28, 28), 10 classes, + 50 test samples" in out
    assert "test accuracy" in out and "on 50 samples" in out
    n = len(server.requests())
    code, out, err = run(["train", str(model), "--data", "mnist", "--out", str(tmp_path / "r2"),
                          "--threads", "1", "--quiet"])
    assert code == 0 and err == "" and len(server.requests()) == n  # cached


def test_cli_offline_is_one_clear_line_and_status_2(monkeypatch):
    spec = RemoteFile(TRAIN_IMAGES, (closed_port_url("m/x.gz"),), 10, "0" * 64)
    entry = CATALOGUE["kmnist"]
    monkeypatch.setitem(CATALOGUE, "kmnist", entry.__class__(**{**entry.__dict__,
                                                                "files": (spec,)}))
    code, _, err = run(["datasets", "fetch", "kmnist", "--quiet"])
    assert code == 2
    assert err.startswith("netbuilder: error: could not download Kuzushiji-MNIST")
    assert err.count("\n") == 1


def test_the_netbuilder_command_routes_datasets_to_the_engine_cli(capsys):
    from netbuilder.cli import main
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "fashion_mnist" in out and "Kuzushiji-MNIST" in out


def test_import_engine_and_its_cli_load_no_downloader():
    import subprocess
    import sys
    code = ("import sys, engine, engine.cli; print(sorted(m for m in sys.modules if m in "
            "('engine.data.download', 'engine.data.remote', 'engine.data.cifar', "
            "'urllib.request', 'ssl')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

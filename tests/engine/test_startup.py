"""Start-up: the kernel cache in the user's cache folder, engine.warmup, engine.set_num_threads."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numba
import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.errors import ParamError
from engine.warmup import kernel_cache_stats, warmup_tasks

warmup = sys.modules["engine.warmup"]  # the module (engine.warmup is also the function)

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import engine
from engine.warmup import kernel_cache_stats
doc = {"format": "netbuilder.graph", "version": 1, "nodes": [
    {"id": "in", "type": "Input", "params": {"shape": [3]}},
    {"id": "d", "type": "Dense", "params": {"units": 2}},
    {"id": "out", "type": "Output", "params": {"loss": "mse"}}],
    "edges": [{"src": "in", "dst": "d"}, {"src": "d", "dst": "out"}]}
net = engine.compile(engine.Graph.from_dict(doc))
x = np.ones((4, 3), np.float32)
net.train_step(x, np.zeros((4, 2), np.float32), engine.SGD(lr=0.1))
hits, misses = kernel_cache_stats()
print(json.dumps({"dir": os.environ["NUMBA_CACHE_DIR"], "hits": hits, "misses": misses}))
"""


def test_a_second_process_loads_the_kernels_from_the_user_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    env.pop("NUMBA_DISABLE_JIT", None)

    def run():
        out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT)], env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = run()
    assert Path(first["dir"]).parent == tmp_path / "netbuilder" / "numba"
    assert first["misses"] > 0
    assert any(Path(first["dir"]).rglob("*.nbi"))
    second = run()
    assert second["misses"] == 0
    # fewer hits than the first run's misses: a helper kernel compiled into its callers is
    # cached too, but the second process loads only the callers
    assert 0 < second["hits"] <= first["misses"]


def test_warmup_reports_progress_and_leaves_no_kernel_uncompiled():
    calls = []
    seconds = engine.warmup(lambda i, n, name: calls.append((i, n, name)))
    n = len(warmup_tasks())
    assert seconds > 0
    assert [c[0] for c in calls] == list(range(n + 1))
    assert {c[1] for c in calls} == {n}
    assert calls[-1][2] == "done"
    names = {c[2] for c in calls}
    assert {"Conv2D", "LSTM", "SpatialTransformer", "fused convolution"} <= names
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from engine import kernels
    cold = []
    for info in pkgutil.iter_modules(kernels.__path__):
        mod = importlib.import_module(f"engine.kernels.{info.name}")
        for name, obj in vars(mod).items():
            if (isinstance(obj, CPUDispatcher) and obj.__module__ == mod.__name__
                    and not name.startswith("_")
                    and not any("float32" in str(sig) for sig in obj.signatures)):
                cold.append(f"{info.name}.{name}")
    assert cold == []
    hits, misses = kernel_cache_stats()
    assert hits + misses > 0


@pytest.fixture
def restore_threads():
    before_numba = numba.get_num_threads()
    before = engine.get_num_threads()
    yield
    engine.set_num_threads(before)
    numba.set_num_threads(before_numba)


def test_set_num_threads_sets_numba_and_blas(restore_threads):
    from threadpoolctl import threadpool_info

    engine.set_num_threads(1)
    assert engine.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {1}
    most = engine.threads.max_threads()
    assert engine.set_num_threads(most) == 1
    assert numba.get_num_threads() == most
    for bad in (0, most + 1, 1.5, True, "2"):
        with pytest.raises(ParamError, match="threads must be"):
            engine.set_num_threads(bad)


def test_the_setting_reaches_a_training_thread(restore_threads):
    net = engine.compile(engine.Graph.from_dict(chain_doc((4,), [("Dense", {"units": 2})])))
    engine.set_num_threads(1)
    seen = []

    def work():
        net.forward(np.ones((2, 4), np.float32))
        seen.append(numba.get_num_threads())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [1]


def test_warmup_stops_before_the_next_task_when_cancelled():
    seen = []

    def progress(i, n, name):
        seen.append(i)

    with pytest.raises(engine.WarmupCancelledError, match="stopped at step 2 of"):
        engine.warmup(progress, cancelled=lambda: len(seen) >= 2)
    assert seen == [0, 1]


def test_cache_marker_follows_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    assert not warmup.cache_is_warm()
    warmup.mark_cache_warm()
    assert warmup.cache_is_warm()
    assert warmup.cache_marker().parent == tmp_path / "cache"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert warmup.cache_marker() is None and not warmup.cache_is_warm()


@pytest.fixture
def child_processes(monkeypatch):
    """The Popen objects compile_in_subprocess starts."""
    started = []
    real = subprocess.Popen

    def popen(*args, **kwargs):
        proc = real(*args, **kwargs)
        started.append(proc)
        return proc
    monkeypatch.setattr(warmup.subprocess, "Popen", popen)
    return started


def test_first_compile_in_a_child_is_killed_at_once_when_cancelled(tmp_path, monkeypatch,
                                                                   child_processes):
    """An empty cache: the child compiles for real; cancelling inside the long fused-
    convolution task kills it there, before the task ends, and marks nothing warm."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cold"))
    names = [name for name, _fn in warmup_tasks()]
    long_task = names.index("fused convolution")
    seen = []
    entered = threading.Event()

    def progress(i, n, name):
        seen.append((i, name))
        if i == long_task:
            threading.Timer(0.5, entered.set).start()

    with pytest.raises(engine.WarmupCancelledError, match="stopped"):
        warmup.compile_in_subprocess(progress, cancelled=entered.is_set)
    (proc,) = child_processes
    assert proc.returncode is not None and proc.returncode != 0  # killed, not finished
    assert seen[-1] == (long_task, "fused convolution")  # the next task never began
    assert not warmup.cache_is_warm()


def test_compile_in_a_child_fills_the_cache_and_reports_every_task(child_processes):
    calls = []
    assert warmup.compile_in_subprocess(lambda *c: calls.append(c))
    n = len(warmup_tasks())
    assert [c[0] for c in calls] == list(range(n + 1)) and calls[-1][2] == "done"
    (proc,) = child_processes
    assert proc.returncode == 0
    assert warmup.cache_is_warm()


def test_the_cache_folder_changes_with_any_kernel_module(tmp_path, monkeypatch):
    from engine import cachedir

    kernels = tmp_path / "kernels"
    kernels.mkdir()
    (kernels / "conv.py").write_text("def helper(): return 1\n")
    (kernels / "fused.py").write_text("from .conv import helper\n")
    monkeypatch.setattr(cachedir, "__file__", str(tmp_path / "cachedir.py"))
    first = cachedir.kernels_key()
    assert cachedir.kernels_key() == first
    (kernels / "conv.py").write_text("def helper(): return 2\n")  # fused.py itself unchanged
    assert cachedir.kernels_key() != first


def test_configure_uses_a_keyed_folder_and_drops_stale_ones(tmp_path, monkeypatch):
    from engine import cachedir

    root = tmp_path / "numba"
    monkeypatch.setattr(cachedir, "numba_cache_root", lambda: root)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    stale, recent, other = root / ("a" * 16), root / ("b" * 16), root / "not-a-key"
    for d in (stale, recent, other):
        d.mkdir(parents=True)
    old = 1_000_000
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    cachedir.configure_numba_cache()
    here = Path(os.environ["NUMBA_CACHE_DIR"])
    assert here == root / cachedir.kernels_key() and here.is_dir()
    assert not stale.exists()
    assert recent.exists() and other.exists()

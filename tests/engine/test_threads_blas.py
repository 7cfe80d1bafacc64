"""BLAS thread counts set from any Python thread: the app trains on a worker thread while the
main thread has set the count (threadpoolctl ignores every thread but the first that set a
limit, so the engine sets OpenBLAS itself)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import engine
from engine.kernels.conv import OneThreadBlas
from engine.threads import blas_threads, max_threads, set_blas_threads

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def real_counts() -> dict[str, int]:
    """Every BLAS's thread count as threadpoolctl reads it (independent of the engine)."""
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def on_worker(fn: Callable[[], object]) -> object:
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


@pytest.fixture
def restore_threads():
    before_blas = blas_threads()
    before = engine.get_num_threads()
    yield
    engine.set_num_threads(before)
    set_blas_threads(before_blas)


needs_two = pytest.mark.skipif(max_threads() < 2, reason="needs 2 CPU threads")


def test_blas_threads_reads_what_threadpoolctl_reads():
    assert blas_threads() and blas_threads() == real_counts()


@needs_two
def test_one_thread_blas_holds_on_a_worker_thread_after_the_main_thread_set_limits(
        restore_threads):
    engine.set_num_threads(2)  # main thread: takes threadpoolctl's "controlling thread"
    with OneThreadBlas():
        pass
    assert set(real_counts().values()) == {2}

    def inside() -> tuple[dict[str, int], dict[str, int]]:
        with OneThreadBlas():
            during = real_counts()
        return during, real_counts()

    during, after = on_worker(inside)
    assert set(during.values()) == {1}
    assert set(after.values()) == {2}


@needs_two
def test_set_num_threads_on_a_worker_thread_reaches_blas(restore_threads):
    engine.set_num_threads(2)
    on_worker(lambda: engine.set_num_threads(1))
    assert set(real_counts().values()) == {1}
    on_worker(lambda: engine.set_num_threads(2))
    assert set(real_counts().values()) == {2}


def test_set_blas_threads_returns_the_counts_before_and_takes_them_back(restore_threads):
    before = set_blas_threads(1)
    assert set(blas_threads().values()) == {1}
    set_blas_threads(before)
    assert blas_threads() == before


def test_a_training_step_on_a_worker_thread_gives_the_main_threads_bits(restore_threads):
    engine.set_num_threads(max_threads())
    graph = engine.load_graph(EXAMPLES / "digits_cnn.json")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 16)

    def train() -> tuple[list[float], dict[str, np.ndarray]]:
        net = engine.Network(graph, seed=3)
        opt = engine.SGD(lr=0.05, momentum=0.9)
        losses = [net.train_step(x, y, opt) for _ in range(3)]
        return losses, net.state_dict()

    main_losses, main_state = train()
    (work_losses, work_state) = on_worker(train)
    assert main_losses == work_losses
    assert main_state.keys() == work_state.keys()
    for k in main_state:
        np.testing.assert_array_equal(main_state[k], work_state[k])

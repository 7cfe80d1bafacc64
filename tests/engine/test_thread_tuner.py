"""The thread tuner: it keeps the faster of all threads and one, and what it picks never
changes the numbers a model learns."""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest

import engine
from engine.gradcheck import random_batch
from engine.optim import make_optimizer
from engine.threads import ThreadTuner, max_threads

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def feed(tuner: ThreadTuner, seconds_for: dict[int, float], steps: int) -> list[int]:
    used = []
    for _ in range(steps):
        n = tuner.before_step()
        used.append(n)
        tuner.after_step(seconds_for[n])
    return used


@pytest.fixture
def restore_numba_threads():
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


needs_two = pytest.mark.skipif(max_threads() < 2, reason="needs 2 CPU threads")


@needs_two
def test_a_busy_machine_moves_training_to_one_thread_and_back(restore_numba_threads):
    tuner = ThreadTuner(most=2, probe_every=0.1, probe_steps=4)
    used = feed(tuner, {2: 0.010, 1: 0.020}, 40)  # quiet: two threads are faster
    assert tuner.choice == 2 and tuner.switches == 0 and 1 in used  # it did look
    used = feed(tuner, {2: 0.200, 1: 0.020}, 40)  # another program takes a core
    assert tuner.choice == 1 and tuner.switches == 1
    probes = feed(tuner, {2: 0.200, 1: 0.020}, 200)
    assert probes.count(2) < 20  # a probe as slow as that stops after one step, and backs off
    assert numba.get_num_threads() == 1 or used[-1] == 2  # probing two now and then
    feed(tuner, {2: 0.010, 1: 0.020}, 300)  # quiet again (probes had backed off to ~3 s)
    assert tuner.choice == 2 and tuner.switches == 2
    tuner.finish()
    assert numba.get_num_threads() == 2


@needs_two
def test_small_differences_do_not_flip_the_choice(restore_numba_threads):
    tuner = ThreadTuner(most=2, probe_every=0.05, probe_steps=4, margin=0.9)
    feed(tuner, {2: 0.010, 1: 0.0095}, 100)
    assert tuner.choice == 2 and tuner.switches == 0
    tuner.finish()


def test_one_thread_machines_never_switch():
    tuner = ThreadTuner(most=1, probe_every=0.0)
    assert feed(tuner, {1: 0.01}, 10) == [1] * 10 and tuner.switches == 0


@needs_two
@pytest.mark.parametrize("name", ["lenet5", "digits_cnn", "residual", "birnn_sum_vs_concat",
                                  "stn_shapes", "multitask", "embedding_tokens"])
def test_the_pool_size_does_not_change_the_weights(name, restore_numba_threads):
    """Work is cut into the configured number of slices whatever runs them: training on one
    Numba thread gives the same bits as on two."""
    graph = engine.load_graph(EXAMPLES / f"{name}.json")
    results = []
    for pool in (2, 1):
        net = engine.Network(graph, seed=0)
        opt = make_optimizer({"type": "adam", "lr": 1e-3, "clip_norm": 1.0})
        xs, ys = random_batch(net, 16, np.random.default_rng(1))
        xs = {k: v.astype(np.float32) for k, v in xs.items()}
        numba.set_num_threads(pool)
        for _ in range(3):
            net.train_step(xs, ys, opt)
        results.append(net.flat_params.copy())
    np.testing.assert_array_equal(results[0], results[1])


@needs_two
def test_a_tuned_trainer_reports_its_threads():
    doc = engine.load_graph(EXAMPLES / "xor_mlp.json")
    net = engine.Network(doc, seed=0)
    events = []
    tr = engine.Trainer(net, engine.load_dataset("xor"), {"epochs": 30, "batch_size": 4},
                        callbacks=events.append, tune_threads=True)
    tr.tuner = ThreadTuner(probe_every=0.0)
    tr.run()
    threads = {e.threads for e in events if isinstance(e, engine.training.BatchEvent)}
    assert threads <= {1, 2} and threads
    assert set(tr.tuner.steps_on) == {1, 2}
    assert numba.get_num_threads() == 2  # the configured pool is back after the run

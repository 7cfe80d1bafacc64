"""Trainer: events, determinism, schedules, early stopping, best weights, batch sizes."""

import itertools
import math

import numpy as np
import pytest
from graphdocs import chain_doc, graph_doc

import engine
from engine.data import Dataset, load_dataset
from engine.training import (
    BatchEvent,
    EpochEvent,
    RunResult,
    Schedule,
    Trainer,
    TrainSettings,
    evaluate,
    train,
)

MLP = [("Dense", {"units": 16}), ("Tanh", {}), ("Dense", {"units": 2})]


def mlp(seed=0, layers=MLP, shape=(2,)):
    return engine.compile(engine.Graph.from_dict(chain_doc(shape, layers)), seed=seed)


def settings(**kw):
    base = {"epochs": 3, "batch_size": 16, "optimizer": {"type": "sgd", "lr": 0.1,
                                                         "momentum": 0.9},
            "val_split": 0.2, "test_split": 0.0}
    base.update(kw)
    return base


def test_events_history_and_result():
    events = []
    ds = load_dataset("moons", n=100)
    t = Trainer(mlp(), ds, settings(), events.append)
    assert t.batches_per_epoch == 5 and t.total_steps == 15
    result = t.run()
    batches = [e for e in events if isinstance(e, BatchEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert len(batches) == 15 and len(epochs) == 3 and events[-1] is result
    assert isinstance(result, RunResult) and result.status == "completed"
    assert [b.step for b in batches] == list(range(1, 16))
    assert [b.batch for b in batches[:5]] == [1, 2, 3, 4, 5] and batches[0].batches == 5
    b = batches[-1]
    assert b.epoch == 3 and b.epochs == 3 and b.lr == pytest.approx(0.1)
    assert set(b.losses) == {"out"} and 0 <= b.accuracy <= 1 and b.samples_per_s > 0
    assert b.loss == pytest.approx(b.losses["out"]) and b.grad_norm > 0
    e = epochs[-1]
    assert e.val_loss is not None and 0 <= e.val_accuracy <= 1
    assert set(e.heads["out"]) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert e.eta == 0 and e.elapsed > 0 and epochs[0].eta > 0
    h = t.history
    assert h.epoch == [1, 2, 3] and len(h.batch_loss) == 15 and len(h.val_loss) == 3
    assert h.heads["out"]["val_accuracy"] == h.val_accuracy
    assert result.epochs_done == 3 and result.steps == 15
    assert t.step_once() is None
    assert t.run() is result


def test_training_learns_moons():
    ds = load_dataset("moons", n=300, noise=0.1)
    result, t = train(mlp(), ds, settings(epochs=30, val_split=0.2))
    assert result.val_accuracy >= 0.95
    assert t.history.train_loss[-1] < t.history.train_loss[0] / 3


def test_same_seed_same_curve_bit_for_bit():
    def run(seed):
        ds = load_dataset("spirals", n=200)
        net = mlp(seed=seed)
        t = Trainer(net, ds, settings(epochs=2, seed=seed, batch_size=8,
                                      augment=None, optimizer={"type": "adam", "lr": 0.01}))
        t.run()
        return t.history.batch_loss, t.history.val_loss, net.state_dict()

    a, b, c = run(3), run(3), run(4)
    assert a[0] == b[0] and a[1] == b[1]
    for k in a[2]:
        np.testing.assert_array_equal(a[2][k], b[2][k])
    assert a[0] != c[0]


def test_determinism_with_dropout_batchnorm_and_augmentation():
    layers = [("Conv2D", {"filters": 4, "kernel_size": 3}), ("BatchNorm", {}), ("ReLU", {}),
              ("Flatten", {}), ("Dropout", {"rate": 0.3}), ("Dense", {"units": 10})]

    def run():
        net = engine.compile(engine.Graph.from_dict(chain_doc((1, 8, 8), layers)), seed=1)
        t = Trainer(net, load_dataset("digits").take(200),
                    settings(epochs=2, augment={"shift": 0.1, "rotation": 10, "scale": 0.1},
                             optimizer={"type": "adam", "lr": 0.01}))
        t.run()
        return t.history.batch_loss, t.history.val_loss

    assert run() == run()


def test_batch_size_one_and_full_batch():
    ds = load_dataset("xor", n=20)
    t1 = Trainer(mlp(), ds, settings(batch_size=1, epochs=1, val_split=0.0))
    assert t1.batches_per_epoch == 20
    assert t1.run().steps == 20
    tall = Trainer(mlp(), ds, settings(batch_size="all", epochs=2, val_split=0.0))
    assert tall.batch_size == 20 and tall.batches_per_epoch == 1
    assert tall.run().steps == 2
    t0 = Trainer(mlp(), ds, settings(batch_size=0, epochs=1, val_split=0.0))
    assert t0.batches_per_epoch == 1
    big = Trainer(mlp(), ds, settings(batch_size=1000, epochs=1, val_split=0.0))
    assert big.batch_size == 20


def test_schedules():
    step = Schedule.from_config({"type": "step", "step_size": 2, "gamma": 0.5})
    assert [step.lr(1.0, e, 0, 10) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    cos = Schedule.from_config({"type": "cosine", "min_lr": 0.1})
    assert cos.lr(1.0, 0, 0, 100) == pytest.approx(1.0)
    assert cos.lr(1.0, 0, 50, 100) == pytest.approx(0.55)
    assert cos.lr(1.0, 0, 100, 100) == pytest.approx(0.1)
    assert Schedule.from_config("none").lr(0.3, 5, 7, 10) == 0.3
    assert Schedule.from_config("cosine").kind == "cosine"
    with pytest.raises(engine.ParamError, match="none, step or cosine"):
        Schedule.from_config("linear")
    with pytest.raises(engine.ParamError, match="unknown setting"):
        Schedule.from_config({"type": "step", "min_lr": 1})


def test_step_schedule_in_a_run_and_cosine_per_batch():
    ds = load_dataset("xor", n=40)
    lrs = []
    t = Trainer(mlp(), ds, settings(epochs=4, batch_size=10, val_split=0.0,
                                    schedule={"type": "step", "step_size": 2, "gamma": 0.1}),
                lambda e: lrs.append(e.lr) if isinstance(e, BatchEvent) else None)
    t.run()
    assert t.history.lr == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert lrs[:4] == pytest.approx([0.1] * 4) and lrs[-1] == pytest.approx(0.01)
    lrs.clear()
    Trainer(mlp(), ds, settings(epochs=2, batch_size=10, val_split=0.0, schedule="cosine"),
            lambda e: lrs.append(e.lr) if isinstance(e, BatchEvent) else None).run()
    assert lrs[0] == pytest.approx(0.1) and all(a > b for a, b in itertools.pairwise(lrs))


def test_set_lr_takes_effect_at_the_next_batch():
    ds = load_dataset("xor", n=40)
    seen = []
    t = Trainer(mlp(), ds, settings(epochs=2, batch_size=10, val_split=0.0,
                                    schedule={"type": "step", "step_size": 1, "gamma": 0.5}),
                lambda e: seen.append(e.lr) if isinstance(e, BatchEvent) else None)
    t.step_once()
    t.step_once()
    t.set_lr(0.7)
    t.step_once()
    assert seen == pytest.approx([0.1, 0.1, 0.7])
    t.run()
    assert seen[4] == pytest.approx(0.35)  # the schedule carries on from the new rate
    with pytest.raises(engine.ParamError):
        t.set_lr(-1)


def test_early_stopping_and_best_weights():
    ds = load_dataset("moons", n=60)
    t = Trainer(mlp(), ds, settings(epochs=10, early_stopping=1,
                                    optimizer={"type": "sgd", "lr": 1e-30}))
    r = t.run()
    assert r.status == "early_stopped" and r.epochs_done == 2 and r.best_epoch == 1

    states = {}
    net = mlp()
    t = Trainer(net, load_dataset("spirals", n=200), settings(epochs=6, optimizer={
        "type": "sgd", "lr": 2.0}), lambda e: states.__setitem__(e.epoch, net.state_dict())
        if isinstance(e, EpochEvent) else None)
    r = t.run()
    best = int(np.argmin(t.history.val_loss)) + 1
    assert r.best_epoch == best and r.restored_best
    assert r.best_val_loss == pytest.approx(min(t.history.val_loss))
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, states[best][k])


def test_no_restore_without_validation_or_when_switched_off():
    ds = load_dataset("moons", n=60)
    r = Trainer(mlp(), ds, settings(val_split=0.0)).run()
    assert not r.restored_best and r.val_loss is None
    r = Trainer(mlp(), ds, settings(restore_best=False)).run()
    assert not r.restored_best


def test_evaluate_matches_a_manual_computation():
    net = mlp()
    ds = load_dataset("moons", n=50)
    ev = evaluate(net, ds, batch_size=7)
    logits = net.forward(ds.x)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(50), ds.y]))
    assert ev.loss == pytest.approx(loss, rel=1e-5)
    assert ev.accuracy == pytest.approx(np.mean(logits.argmax(1) == ds.y))
    assert ev.n == 50 and ev.heads["out"]["loss"] == pytest.approx(ev.loss)


def test_multi_task_heads_are_reported():
    doc = graph_doc(
        [("in", "Input", {"shape": [1, 12, 12]}), ("f", "Flatten", {}),
         ("h", "Dense", {"units": 16}), ("r", "ReLU", {}),
         ("cls", "Dense", {"units": 6}), ("reg", "Dense", {"units": 1}),
         ("o_cls", "Output", {"loss": "cross_entropy"}),
         ("o_size", "Output", {"loss": "mse", "target": "size", "weight": 0.5})],
        [("in", "f"), ("f", "h"), ("h", "r"), ("r", "cls"), ("r", "reg"), ("cls", "o_cls"),
         ("reg", "o_size")])
    net = engine.compile(engine.Graph.from_dict(doc))
    events = []
    t = Trainer(net, load_dataset("shapes", n=120, size=12), settings(epochs=1), events.append)
    t.run()
    b = next(e for e in events if isinstance(e, BatchEvent))
    assert set(b.losses) == {"o_cls", "o_size"} and set(b.metrics["o_cls"]) == {"accuracy"}
    assert b.loss == pytest.approx(b.losses["o_cls"] + 0.5 * b.losses["o_size"], rel=1e-5)
    e = next(e for e in events if isinstance(e, EpochEvent))
    assert "train_accuracy" not in e.heads["o_size"] and "val_loss" in e.heads["o_size"]
    assert e.val_accuracy == e.heads["o_cls"]["val_accuracy"]


def test_settings_from_a_training_section():
    s = TrainSettings.from_dict({"epochs": 5, "batch_size": "all", "optimizer": "adam",
                                 "schedule": {"type": "cosine", "min_lr": 1e-5},
                                 "dataset": "digits"}, epochs=7, seed=None)
    assert s.epochs == 7 and s.batch_size == 0 and s.optimizer == {"type": "adam"}
    assert s.schedule.kind == "cosine" and s.seed == 0 and s.dataset == "digits"
    back = TrainSettings.from_dict(s.to_dict())
    assert back == s
    opt = TrainSettings.from_dict({"weight_decay": 0.01, "clip_norm": 1.0}).make_optimizer()
    assert opt.weight_decay == 0.01 and opt.clip_norm == 1.0


@pytest.mark.parametrize("section, match", [
    ({"epochs": 0}, "training.epochs"),
    ({"epochs": 2.5}, "training.epochs"),
    ({"batch_size": -1}, "training.batch_size"),
    ({"batch_size": "some"}, "training.batch_size"),
    ({"val_split": 1.2}, "training.val_split"),
    ({"val_split": 0.6, "test_split": 0.5}, "below 1"),
    ({"optimizer": {"type": "lbfgs"}}, "unknown optimizer"),
    ({"optimizer": {"type": "sgd", "lr": -1}}, "learning rate"),
    ({"normalize": "minmax"}, "training.normalize"),
    ({"augment": {"flip": 1}}, "unknown augmentation"),
    ({"epoch": 3}, "unknown training setting"),
    ({"shuffle": "yes"}, "true or false"),
])
def test_settings_refusals(section, match):
    with pytest.raises(engine.NetBuilderError, match=match):
        TrainSettings.from_dict(section)


def test_trainer_refuses_unfit_data_before_training():
    with pytest.raises(engine.DataError, match="Input 'in' expects"):
        Trainer(mlp(), load_dataset("digits"), settings())
    with pytest.raises(engine.DataError, match=r"labels 0..1"):
        Trainer(mlp(layers=[("Dense", {"units": 2})], shape=(2,)),
                load_dataset("spirals", classes=3, n=30), settings())


def test_limit_and_normalisation_settings():
    ds = Dataset({"x": np.arange(200, dtype=np.float32).reshape(100, 2) + 100,
                  "y": np.arange(100) % 2}, "lin")
    t = Trainer(mlp(), ds, settings(limit=40, normalize="standardize", val_split=0.25))
    assert t.splits.sizes() == {"train": 30, "val": 10, "test": 0}
    assert abs(float(t.splits.train.x.mean())) < 1e-5
    assert t.splits.normalizer.mode == "standardize"
    assert math.isfinite(t.run().train_loss)


def test_limit_draws_a_random_subset_of_sorted_data():
    ds = Dataset({"x": np.zeros((100, 2), np.float32), "y": np.repeat([0, 1], 50)}, "sorted")
    t = Trainer(mlp(), ds, settings(limit=20, val_split=0.0))
    assert len(t.splits.train) == 20 and set(t.splits.train.y.tolist()) == {0, 1}



def test_regression_on_sine_has_no_accuracy():
    layers = [("Dense", {"units": 32}), ("Tanh", {}), ("Dense", {"units": 1})]
    net = engine.compile(engine.Graph.from_dict(chain_doc((1,), layers, loss="mse")))
    events = []
    t = Trainer(net, load_dataset("sine", n=300, noise=0.0), settings(
        epochs=300, batch_size="all", optimizer={"type": "adam", "lr": 0.02}), events.append)
    r = t.run()
    assert r.val_loss < 0.01 and r.val_accuracy is None and r.train_accuracy is None
    assert all(e.accuracy is None for e in events if isinstance(e, BatchEvent))

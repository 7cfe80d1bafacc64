"""Sequence data: the generated built-ins (adding, parity, sine_freq, tokens), the distorted
shapes for the STN, sequences from NPZ, and the sequence CSV loader with its refusals."""

from itertools import pairwise

import numpy as np
import pytest

import engine
from engine.data import BUILTINS, load_csv, load_dataset, load_npz, load_sequence_csv
from engine.data.sequences import is_sequence_csv

DataError = engine.DataError
SEQUENCES = ["adding", "parity", "sine_freq", "tokens"]


def lstm_net(shape, units, loss="cross_entropy", embed=None):
    nodes = [{"id": "in", "type": "Input", "params": {"shape": list(shape)}}]
    if embed:
        nodes.append({"id": "emb", "type": "Embedding", "params": {"vocab": embed, "dim": 4}})
    nodes += [{"id": "rnn", "type": "LSTM", "params": {"units": 4}},
              {"id": "fc", "type": "Dense", "params": {"units": units}},
              {"id": "out", "type": "Output", "params": {"loss": loss}}]
    ids = [n["id"] for n in nodes]
    edges = [{"src": a, "dst": b} for a, b in pairwise(ids)]
    return engine.compile(engine.Graph.from_dict({"format": "netbuilder.graph", "version": 1,
                                                  "nodes": nodes, "edges": edges}))


# ----- generated ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SEQUENCES)
def test_sequence_builtins_are_registered_seeded_and_float32(name):
    assert name in BUILTINS and BUILTINS[name].description
    ds = load_dataset(name, n=120, seed=3)
    assert len(ds) == 120 and ds.x.dtype == np.float32 and ds.meta["kind"] == "sequence"
    assert ds.x.ndim == (2 if name == "tokens" else 3)
    again = load_dataset(f"{name}:n=120,seed=3")
    np.testing.assert_array_equal(ds.x, again.x)
    np.testing.assert_array_equal(ds.y, again.y)
    assert not np.array_equal(ds.x, load_dataset(name, n=120, seed=4).x)


def test_adding_problem():
    ds = load_dataset("adding", n=2000, steps=20)
    assert ds.task == "regression" and ds.x.shape == (2000, 20, 2) and ds.y.shape == (2000, 1)
    marks = ds.x[:, :, 1]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert (marks.sum(axis=1) == 2).all()
    assert (marks[:, :10].sum(axis=1) == 1).all() and (marks[:, 10:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(ds.y[:, 0], (ds.x[:, :, 0] * marks).sum(axis=1), rtol=1e-6)
    assert ds.x[:, :, 0].min() >= 0 and ds.x[:, :, 0].max() <= 1
    trivial = float(np.mean((ds.y - 1.0) ** 2))
    assert abs(trivial - 1 / 6) < 0.02 and abs(ds.meta["baseline_mse"] - 1 / 6) < 1e-9


def test_parity_labels_count_the_ones():
    ds = load_dataset("parity", n=501, steps=7)
    assert ds.x.shape == (501, 7, 1) and ds.class_names == ["even", "odd"]
    assert set(np.unique(ds.x)) == {0.0, 1.0}
    np.testing.assert_array_equal(ds.y, ds.x.sum(axis=(1, 2)).astype(np.int64) % 2)
    assert abs(int(ds.class_counts()[0]) - int(ds.class_counts()[1])) <= 1
    run = load_dataset("parity", n=501, steps=7, running=True)
    np.testing.assert_array_equal(run.x, ds.x)
    assert run.y.shape == (501, 7) and run.meta["running"]
    np.testing.assert_array_equal(run.y, np.cumsum(run.x[:, :, 0], axis=1) % 2)
    np.testing.assert_array_equal(run.y[:, -1], ds.y)


def test_sine_freq_classes_are_the_cycle_counts():
    ds = load_dataset("sine_freq", n=300, steps=64, classes=4, noise=0.0)
    assert ds.x.shape == (300, 64, 1) and ds.n_classes == 4
    assert ds.class_names == ["2 cycles", "3 cycles", "4 cycles", "5 cycles"]
    peak = np.abs(np.fft.rfft(ds.x[:, :, 0], axis=1))[:, 1:].argmax(axis=1) + 1
    np.testing.assert_array_equal(peak, ds.y + 2)
    noisy = load_dataset("sine_freq", n=300, steps=64, classes=4, noise=0.5)
    assert noisy.x.std() > ds.x.std()


def test_tokens_label_is_the_topic_with_most_words_and_one_hot_matches():
    ds = load_dataset("tokens", n=400, steps=12, vocab=40, classes=4, seed=2)
    assert ds.x.shape == (400, 12) and ds.n_classes == 4
    ids = ds.x.astype(np.int64)
    assert (ids == ds.x).all() and ids.min() >= 0 and ids.max() < 40
    w = ds.meta["words_per_topic"]
    assert w == 5
    topic = np.where(ids < 4 * w, ids // w, -1)
    counts = np.stack([(topic == k).sum(axis=1) for k in range(4)], axis=1)
    np.testing.assert_array_equal(counts.argmax(axis=1), ds.y)
    top2 = np.sort(counts, axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0] >= 2).all() and (top2[:, 1] >= 3).all()
    hot = load_dataset("tokens", n=400, steps=12, vocab=40, classes=4, seed=2, one_hot=True)
    assert hot.x.shape == (400, 12, 40) and (hot.x.sum(axis=2) == 1).all()
    np.testing.assert_array_equal(hot.x.argmax(axis=2), ids)
    np.testing.assert_array_equal(hot.y, ds.y)


@pytest.mark.parametrize("task", ["sort", "reverse"])
def test_sort_tokens_gives_a_label_per_step(task):
    ds = load_dataset("sort_tokens", n=300, steps=6, vocab=7, task=task, seed=1)
    assert ds.x.shape == (300, 6) and ds.y.shape == (300, 6) and ds.x.dtype == np.float32
    assert ds.meta["kind"] == "sequence" and ds.class_names == [str(k) for k in range(7)]
    ids = ds.x.astype(np.int64)
    assert ((ids >= 0) & (ids < 7)).all() and set(np.unique(ids)) == set(range(7))
    want = np.sort(ids, axis=1) if task == "sort" else ids[:, ::-1]
    np.testing.assert_array_equal(ds.y, want)
    again = load_dataset(f"sort_tokens:n=300,steps=6,vocab=7,task={task},seed=1")
    np.testing.assert_array_equal(ds.x, again.x)


@pytest.mark.parametrize("name, params, match", [
    ("sort_tokens", {"task": "shuffle"}, "'sort' or 'reverse'"),
    ("sort_tokens", {"vocab": 1}, "vocab"),
    ("sort_tokens", {"steps": 1}, "steps"),
    ("adding", {"steps": 1}, "steps"),
    ("adding", {"n": 1_000_000, "steps": 100}, "lower n or steps"),
    ("parity", {"steps": 20_000}, "steps"),
    ("sine_freq", {"classes": 1}, "classes"),
    ("sine_freq", {"classes": 5, "steps": 10}, "steps"),
    ("tokens", {"vocab": 10}, "vocab"),
    ("tokens", {"steps": 4}, "steps"),
    ("tokens", {"n": 1_000_000, "steps": 10}, "lower n or steps"),
    ("tokens", {"one_hot": 1}, "true or false"),
    ("tokens", {"width": 3}, "unknown setting"),
])
def test_sequence_builtin_refusals(name, params, match):
    with pytest.raises(DataError, match=match):
        load_dataset(name, **params)


def test_sequence_builtins_fit_recurrent_and_embedding_models():
    ds = load_dataset("parity", n=32, steps=6)
    engine.data.check_dataset(ds, lstm_net((6, 1), 2))
    ds = load_dataset("parity", n=32, steps=6, running=True)
    nodes = {"format": "netbuilder.graph", "version": 1, "nodes": [
        {"id": "in", "type": "Input", "params": {"shape": [6, 1]}},
        {"id": "rnn", "type": "GRU", "params": {"units": 4, "return_sequences": True}},
        {"id": "fc", "type": "Dense", "params": {"units": 2}},
        {"id": "out", "type": "Output", "params": {}}],
        "edges": [{"src": "in", "dst": "rnn"}, {"src": "rnn", "dst": "fc"},
                  {"src": "fc", "dst": "out"}]}
    engine.data.check_dataset(ds, engine.compile(engine.Graph.from_dict(nodes)))
    ds = load_dataset("adding", n=32, steps=6)
    engine.data.check_dataset(ds, lstm_net((6, 2), 1, loss="mse"))
    ds = load_dataset("tokens", n=32, steps=10, vocab=16)
    net = lstm_net((10,), 4, embed=16)
    engine.data.check_dataset(ds, net)
    loss = net.train_step(ds.x, ds.y, engine.Adam(lr=1e-2))
    assert np.isfinite(loss)


# ----- distorted shapes -----------------------------------------------------------------------
def test_shapes_distorted_is_smaller_and_spread_out():
    ds = load_dataset("shapes_distorted", n=300, seed=1)
    assert ds.name == "shapes_distorted" and ds.x.shape == (300, 1, 40, 40)
    size = ds.arrays["size"][:, 0]
    assert size.min() >= 0.22 and size.max() <= 0.5
    shift = ds.arrays["shift"]
    assert np.abs(shift).max() > 0.4
    assert (np.abs(shift) <= 0.95 - size[:, None] + 1e-6).all()
    plain = load_dataset("shapes", n=300, seed=1)
    assert plain.arrays["size"].min() >= 0.45
    same = load_dataset("shapes", n=50, seed=1, min_scale=0.45, max_scale=0.85)
    np.testing.assert_array_equal(same.x, load_dataset("shapes", n=50, seed=1).x)
    with pytest.raises(DataError, match="min_scale"):
        load_dataset("shapes", min_scale=0.6, max_scale=0.5)
    with pytest.raises(DataError, match="min_scale"):
        load_dataset("shapes_distorted", max_scale=1.5)


# ----- NPZ ------------------------------------------------------------------------------------
def test_npz_sequences_and_token_ids_load_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "walks.npz"
    np.savez(p, x=rng.standard_normal((10, 7, 3)), y=np.arange(10) % 2,
             x_test=rng.standard_normal((4, 7, 3)), y_test=np.arange(4) % 2)
    ds = load_npz(p)
    assert ds.sample_shape == (7, 3) and ds.x.dtype == np.float32 and len(ds.test) == 4
    engine.data.check_dataset(ds, lstm_net((7, 3), 2))
    q = tmp_path / "ids.npz"
    np.savez(q, x=rng.integers(0, 16, (10, 9)), y=np.arange(10) % 4)
    ids = load_dataset(str(q))
    assert ids.sample_shape == (9,) and ids.x.dtype == np.float32
    engine.data.check_dataset(ids, lstm_net((9,), 4, embed=16))


# ----- CSV, one row per time step -------------------------------------------------------------
def write(tmp_path, text, name="seq.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


LONG = """sequence,t,temp,load,label
b,1,2.5,0.2,fault
a,0,1.0,0.1,ok
a,1,1.5,0.3,ok
b,0,2.0,0.4,fault
a,2,2.0,0.5,ok
b,2,3.0,0.6,fault
c,0,0.0,0.0,ok
c,2,0.2,0.2,ok
c,1,0.1,0.1,ok
"""


def test_long_csv_groups_orders_by_time_and_takes_one_label_per_sequence(tmp_path):
    p = write(tmp_path, LONG)
    ds = load_sequence_csv(p)
    assert ds.x.shape == (3, 3, 2) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[0], [[2.0, 0.4], [2.5, 0.2], [3.0, 0.6]])  # b, by t
    np.testing.assert_allclose(ds.x[1], [[1.0, 0.1], [1.5, 0.3], [2.0, 0.5]])  # a
    assert ds.class_names == ["fault", "ok"] and ds.y.tolist() == [0, 1, 1]
    assert ds.meta["columns"] == ["temp", "load"] and ds.meta["kind"] == "sequence"
    assert is_sequence_csv(p)
    via = load_dataset(str(p))
    np.testing.assert_array_equal(via.x, ds.x)
    engine.data.check_dataset(ds, lstm_net((3, 2), 2))


def test_long_csv_columns_by_name_or_index_file_order_and_regression(tmp_path):
    p = write(tmp_path, "run;v;score\n7;1;0.5\n7;2;0.5\n8;3;1.25\n8;4;1.25\n")
    assert not is_sequence_csv(p)
    ds = load_dataset({"path": str(p), "sequence_column": "run"})
    assert ds.x.shape == (2, 2, 1) and ds.x[:, :, 0].tolist() == [[1, 2], [3, 4]]
    assert ds.task == "regression" and ds.y.shape == (2, 1) and ds.y[:, 0].tolist() == [0.5, 1.25]
    ds = load_sequence_csv(p, sequence_column=0, label_column="", delimiter=";")
    assert ds.x.shape == (2, 2, 2) and ds.task == "unlabelled"
    ds = load_sequence_csv(p, sequence_column="run", task="regression")
    assert ds.task == "regression" and ds.y.dtype == np.float32
    q = write(tmp_path, "1,0,5,1\n1,1,6,1\n2,0,7,0\n2,1,8,0\n", "noheader.csv")
    ds = load_sequence_csv(q, sequence_column=0, time_column=1)
    assert ds.x.shape == (2, 2, 1) and ds.y.tolist() == [1, 0]


@pytest.mark.parametrize("text, kwargs, match", [
    ("sequence,v,label\na,1,0\na,2,0\nb,3,1\n", {}, r"different lengths: 'a' has 2 steps, "
                                                  r"'b' has 1 \(line 4\)"),
    ("sequence,v,label\na,1,0\na,x,0\n", {}, r"line 3, column 'v': 'x' is not a number"),
    ("sequence,v,label\na,1,0\na,nan,0\n", {}, "NaN"),
    ("sequence,v,label\na,1,0\na,2,1\n", {}, r"line 3: sequence 'a' changes its label"),
    ("sequence,t,v,label\na,0,1,0\na,0,2,0\n", {}, "time 0 twice"),
    ("sequence,t,v,label\na,0,1,0\na,q,2,0\n", {}, r"column 't': 'q' is not a number"),
    ("sequence,v,label\na,1,0\na,2\n", {}, "line 3: 2 values"),
    ("run,v,label\na,1,0\n", {}, "no sequence-id column"),
    ("sequence,v,label\na,1,0\n", {"sequence_column": "seq"}, "no column named 'seq'"),
    ("sequence,v,label\na,1,0\n", {"label_column": 7}, "label column 7 does not exist"),
    ("sequence,label\na,0\n", {}, "no feature columns"),
    ("sequence,v,label\na,1,0.5\n", {"task": "classification"}, "whole numbers"),
    ("sequence,v,label\na,1,cat\n", {"task": "regression"}, "not a number"),
    ("sequence,v,label\n", {}, "no data rows"),
    ("sequence,v,label\na,1,0\n", {"sequence_column": "label"}, "must be different"),
])
def test_long_csv_refusals(tmp_path, text, kwargs, match):
    p = write(tmp_path, text)
    with pytest.raises(DataError, match=match):
        load_sequence_csv(p, **kwargs)


def test_long_csv_refusals_reach_the_model_file_loader(tmp_path):
    p = write(tmp_path, "sequence,v,label\na,1,0\na,2,0\nb,3,1\n")
    with pytest.raises(DataError, match="different lengths"):
        load_dataset({"path": str(p)})
    with pytest.raises(DataError, match="unknown setting"):
        load_dataset({"path": str(p), "steps": 3})
    q = tmp_path / "bad.csv"
    q.write_bytes(b"sequence,v\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_sequence_csv(q)
    with pytest.raises(DataError, match="no such file"):
        load_sequence_csv(tmp_path / "missing.csv")


def test_wide_csv_one_row_per_sequence_fits_a_sequence_input(tmp_path):
    rows = ["t0f0,t0f1,t1f0,t1f1,t2f0,t2f1,label"]
    rows += [",".join(str(v) for v in [i, i + 0.5, i + 1, i + 1.5, i + 2, i + 2.5, i % 2])
             for i in range(6)]
    p = write(tmp_path, "\n".join(rows) + "\n", "wide.csv")
    ds = load_csv(p)
    assert ds.sample_shape == (6,)
    net = lstm_net((3, 2), 2)
    fitted = engine.data.fit_to_model(ds, net)
    assert fitted.sample_shape == (3, 2)
    np.testing.assert_array_equal(fitted.x[1], [[1, 1.5], [2, 2.5], [3, 3.5]])
    engine.data.check_dataset(ds, net)

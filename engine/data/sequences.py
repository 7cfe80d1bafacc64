"""Sequence data: generated built-ins that need memory across time, and a CSV loader for
sequences. Every x is (N, T, F) float32 (time first, as the recurrent layers read it), except
``tokens`` and ``sort_tokens``, whose x is (N, T) whole-number ids for an Embedding (or
``tokens``' (N, T, vocab) one-hot).

Name        x shape          y
adding      (T, 2)           regression (1,): the sum of the two marked values (0 … 2)
parity      (T, 1)           2 classes: even / odd number of ones in the bit stream (or, with
                             ``running``, at every step: y (T,))
sine_freq   (T, 1)           ``classes`` classes: how many cycles a noisy sine makes in T steps
tokens      (T,) or (T, V)   ``classes`` topics: the topic with the most words in the sequence
sort_tokens (T,)             (T,): the tokens sorted (or reversed), a class per step

Sequence CSV files ("long" format, one row per time step)::

    sequence,t,temp,load,label
    a,0,20.5,0.3,ok
    a,1,20.7,0.4,ok
    b,0,25.1,0.9,fault
    ...

``load_sequence_csv``: the rows of a sequence share its id (column ``sequence_column``,
default a column named sequence / sequence_id / seq / seq_id / series / series_id / id); a
time column (``time_column``, default one named t / time / step / timestep / time_step) orders
them, else the file order does; every other column but the label is a feature. All sequences
must have the same number of steps T, and each one label (the same on all its rows). The label
column is chosen as in ``load_csv`` (label / class / target / y, else the last column).
x is (N, T, F), sequences in order of first appearance. ``load_dataset`` reads a CSV this way
when its header has a column named sequence / sequence_id / seq_id / series_id, or when the
model file gives ``sequence_column``.

A "wide" table (one row per sequence, T·F feature columns ordered t0f0, t0f1, t1f0, … plus a
label) needs no special loader: ``load_csv`` reads it and an Input shaped (T, F) takes it.
An ``.npz`` with x shaped (N, T, F) (or (N, T) token ids) loads with ``load_npz`` as it is.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .builtin import register_dataset
from .dataset import Dataset
from .files import LABEL_NAMES, is_number, read_bytes

MAX_VALUES = 50_000_000
SEQUENCE_NAMES = ("sequence", "sequence_id", "seq", "seq_id", "series", "series_id", "id")
SEQUENCE_SNIFF = ("sequence", "sequence_id", "seq_id", "series_id")
TIME_NAMES = ("t", "time", "step", "timestep", "time_step")


def _check_size(name: str, n: int, steps: int, features: int, lo: int = 2) -> None:
    if not lo <= steps <= 10_000:
        raise DataError(f"dataset '{name}': steps must be between {lo} and 10,000, got {steps}")
    if n * steps * features > MAX_VALUES:
        raise DataError(f"dataset '{name}': {n:,} sequences × {steps} steps × {features} "
                        f"features is more than {MAX_VALUES:,} values; lower n or steps")


def _sequences(name: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
               class_names: list[str] | None, task: str, **meta: Any) -> Dataset:
    order = rng.permutation(len(x))
    arrays = {"x": np.ascontiguousarray(x[order], np.float32),
              "y": np.ascontiguousarray(y[order])}
    return Dataset(arrays, name, class_names, task, {"kind": "sequence", **meta})


# ----- generated ------------------------------------------------------------------------------
@register_dataset("adding", "the adding problem: (T, 2) values and markers; regress the sum "
                            "of the two marked values", kind="sequence")
def adding(n: int = 4000, steps: int = 50, seed: int = 0) -> Dataset:
    """Feature 0 holds values U(0, 1), feature 1 marks two steps with 1 (one in each half of
    the sequence); y (N, 1) is the sum of the two marked values (Hochreiter & Schmidhuber,
    1997). Always predicting the mean, 1, scores an MSE of 1/6 ≈ 0.167."""
    _check_size("adding", n, steps, 2)
    rng = np.random.default_rng(seed)
    x = np.zeros((n, steps, 2), np.float32)
    x[:, :, 0] = rng.uniform(0.0, 1.0, (n, steps))
    half = steps // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, steps, n)
    rows = np.arange(n)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = (x[rows, first, 0] + x[rows, second, 0]).astype(np.float32)[:, None]
    return _sequences("adding", x, y, rng, None, "regression", baseline_mse=1.0 / 6.0)


@register_dataset("parity", "bit streams (T, 1): is the number of ones even or odd? "
                            "(2 classes)", kind="sequence")
def parity(n: int = 4000, steps: int = 10, running: bool = False, seed: int = 0) -> Dataset:
    """Random bits, half the streams of each parity; a single flipped bit anywhere flips the
    class, so no summary short of counting works. Learning it from the end label alone is a
    long plateau for gradient descent; ``running`` gives y (N, T) instead, the parity of the
    bits so far at every step, for a recurrent layer with ``return_sequences``."""
    _check_size("parity", n, steps, 1)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, steps), dtype=np.int8)
    y = np.arange(n) % 2
    flip = bits.sum(axis=1) % 2 != y
    bits[flip, rng.integers(0, steps, int(flip.sum()))] ^= 1
    labels = np.cumsum(bits, axis=1) % 2 if running else y
    return _sequences("parity", bits[:, :, None].astype(np.float32), labels.astype(np.int64),
                      rng, ["even", "odd"], "classification", running=running)


@register_dataset("sine_freq", "noisy sines (T, 1): how many cycles in T steps? "
                               "(3 classes by default)", kind="sequence")
def sine_freq(n: int = 3000, steps: int = 50, classes: int = 3, noise: float = 0.3,
              seed: int = 0) -> Dataset:
    """Class k makes 2 + k cycles (±0.25) over the T steps, with a random phase, an amplitude
    of 0.5 … 1.5 and Gaussian noise (std ``noise``) added to every step."""
    if not 2 <= classes <= 10:
        raise DataError(f"dataset 'sine_freq': classes must be between 2 and 10, got {classes}")
    _check_size("sine_freq", n, steps, 1, lo=4 * (classes + 2))
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    cycles = 2.0 + y + rng.uniform(-0.25, 0.25, n)
    phase = rng.uniform(0.0, 2 * math.pi, n)
    amp = rng.uniform(0.5, 1.5, n)
    t = np.arange(steps) / steps
    x = amp[:, None] * np.sin(2 * math.pi * cycles[:, None] * t[None] + phase[:, None])
    x += noise * rng.standard_normal(x.shape)
    names = [f"{k + 2} cycles" for k in range(classes)]
    return _sequences("sine_freq", x[:, :, None], y.astype(np.int64), rng, names,
                      "classification", noise=noise)


@register_dataset("tokens", "token-id sequences (T,) from a small vocabulary: which topic do "
                            "most of the words belong to? (4 classes)", kind="sequence")
def tokens(n: int = 4000, steps: int = 20, vocab: int = 32, classes: int = 4,
           one_hot: bool = False, seed: int = 0) -> Dataset:
    """Ids 0 … vocab-1: topic k owns the ids k·w … (k+1)·w - 1 with w = vocab // (2·classes);
    the rest are neutral filler. A sequence of class k holds 3 … 5 words of topic k, fewer
    (0 … that minus 2) of one other topic, and filler, in random order. x is (N, T) float32
    whole-number ids for an Embedding, or with ``one_hot`` (N, T, vocab) one-hot rows."""
    if not 2 <= classes <= 16:
        raise DataError(f"dataset 'tokens': classes must be between 2 and 16, got {classes}")
    if not 4 * classes <= vocab <= 100_000:
        raise DataError(f"dataset 'tokens': vocab must be between {4 * classes} (4 × classes) "
                        f"and 100,000, got {vocab}")
    _check_size("tokens", n, steps, vocab if one_hot else 1, lo=8)
    if n * steps > MAX_VALUES // 10:
        raise DataError(f"dataset 'tokens': {n:,} sequences × {steps} steps is more than "
                        f"{MAX_VALUES // 10:,} tokens; lower n or steps")
    rng = np.random.default_rng(seed)
    w = vocab // (2 * classes)
    neutral = classes * w
    y = np.arange(n) % classes
    main = rng.integers(3, 6, n)[:, None]
    extra = rng.integers(0, main - 1)
    other = (y + rng.integers(1, classes, n)) % classes
    rank = rng.random((n, steps)).argsort(axis=1).argsort(axis=1)
    topic_word = y[:, None] * w + rng.integers(0, w, (n, steps))
    other_word = other[:, None] * w + rng.integers(0, w, (n, steps))
    filler = rng.integers(neutral, vocab, (n, steps))
    ids = np.where(rank < main, topic_word, np.where(rank < main + extra, other_word, filler))
    if one_hot:
        x = np.zeros((n, steps, vocab), np.float32)
        np.put_along_axis(x, ids[:, :, None], 1.0, axis=2)
    else:
        x = ids.astype(np.float32)
    names = [f"topic {chr(ord('A') + k)}" for k in range(classes)]
    return _sequences("tokens", x, y.astype(np.int64), rng, names, "classification",
                      vocab=vocab, words_per_topic=w, one_hot=one_hot)


@register_dataset("sort_tokens", "token-id sequences (T,): give back, step by step, the tokens "
                                 "sorted (or reversed); a label per step", kind="sequence")
def sort_tokens(n: int = 6000, steps: int = 8, vocab: int = 10, task: str = "sort",
                seed: int = 0) -> Dataset:
    """x (N, T) whole-number ids 0 … vocab-1 drawn uniformly; y (N, T) the same ids in
    ascending order (``task`` "sort") or back to front ("reverse"), one class per step for a
    per-step Dense and cross-entropy over (T, vocab). A per-step guess of the commonest
    token scores about 1 / vocab."""
    if task not in ("sort", "reverse"):
        raise DataError(f"dataset 'sort_tokens': task must be 'sort' or 'reverse', got "
                        f"{task!r}")
    if not 2 <= vocab <= 1000:
        raise DataError(f"dataset 'sort_tokens': vocab must be between 2 and 1,000, got {vocab}")
    _check_size("sort_tokens", n, steps, 1)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (n, steps))
    y = np.sort(ids, axis=1) if task == "sort" else ids[:, ::-1]
    return _sequences("sort_tokens", ids.astype(np.float32), np.ascontiguousarray(y), rng,
                      [str(k) for k in range(vocab)], "classification", vocab=vocab,
                      order=task)


# ----- CSV ------------------------------------------------------------------------------------
def _column(spec: str | int | None, header: list[str] | None, ncols: int, names: tuple[str, ...],
            what: str, p: Path) -> int | None:
    """Index of the column ``spec`` (name or index); by default the first column named one of
    ``names``; ``""`` = none."""
    if spec == "":
        return None
    if spec is None:
        if not header:
            return None
        low = [h.lower() for h in header]
        return next((low.index(nm) for nm in names if nm in low), None)
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not -ncols <= spec < ncols:
            raise DataError(f"{p}: {what} column {spec} does not exist ({ncols} columns)")
        return spec % ncols
    if not header or str(spec) not in header:
        cols = ", ".join(header) if header else "the file has no header row"
        raise DataError(f"{p}: no column named {spec!r} for the {what} ({cols})")
    return header.index(str(spec))


def _split_rows(text: str, p: Path, delimiter: str | None) -> list[list[str]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{p} holds no rows")
    if delimiter is None:
        delimiter = next((d for d in (",", ";", "\t") if d in lines[0]), ",")
    return [[c.strip() for c in r]
            for r in csv.reader(lines, delimiter=delimiter, skipinitialspace=True)]


def is_sequence_csv(path: str | os.PathLike) -> bool:
    """Whether the header row of the CSV at ``path`` names a sequence-id column."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            first = fh.readline(65536)
    except OSError:
        return False
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    names = {c.strip().strip('"').lower() for c in first.split(delimiter)}
    return bool(names & set(SEQUENCE_SNIFF))


def load_sequence_csv(path: str | os.PathLike, sequence_column: str | int | None = None,
                      label_column: str | int | None = None,
                      time_column: str | int | None = None, task: str | None = None,
                      delimiter: str | None = None) -> Dataset:
    """Sequences from a CSV with one row per time step (see the module docstring): x is
    (N, T, F) float32, y one label per sequence (classes: int64, sorted names when not
    numbers; regression: float32 (N, 1)). ``""`` for a column means none."""
    p = Path(path)
    data = read_bytes(p, "a CSV file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not UTF-8 text (byte {exc.start}); is it a CSV file?") from None
    rows = _split_rows(text, p, delimiter)
    header: list[str] | None = None
    if not all(is_number(c) for c in rows[0]):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise DataError(f"{p} has a header but no data rows")
    ncols = len(header) if header else len(rows[0])
    first_line = 2 if header else 1
    for i, r in enumerate(rows):
        if len(r) != ncols:
            raise DataError(f"{p}, line {i + first_line}: {len(r)} values where the first row "
                            f"has {ncols}; every row needs the same number of columns")
    seq = _column(sequence_column, header, ncols, SEQUENCE_NAMES, "sequence id", p)
    if seq is None:
        raise DataError(f"{p}: no sequence-id column; name one 'sequence' or give "
                        "sequence_column (a column name or index)")
    tcol = _column(time_column, header, ncols, TIME_NAMES, "time", p)
    if label_column is None:
        taken = {seq, tcol}
        low = [h.lower() for h in header] if header else []
        lab = next((low.index(nm) for nm in LABEL_NAMES if nm in low), None)
        if lab is None:
            lab = next(j for j in range(ncols - 1, -1, -1) if j not in taken)
    else:
        lab = _column(label_column, header, ncols, (), "label", p)
    if len({seq, tcol, lab} - {None}) < len([c for c in (seq, tcol, lab) if c is not None]):
        raise DataError(f"{p}: the sequence, time and label columns must be different columns")
    feats = [j for j in range(ncols) if j not in (seq, tcol, lab)]
    if not feats:
        raise DataError(f"{p}: no feature columns besides the sequence, time and label columns")

    def colname(j: int) -> str:
        return f"'{header[j]}'" if header else str(j + 1)

    def number(i: int, j: int) -> float:
        cell = rows[i][j]
        try:
            v = float(cell)
        except ValueError:
            raise DataError(f"{p}, line {i + first_line}, column {colname(j)}: {cell!r} is not "
                            "a number") from None
        if not math.isfinite(v):
            raise DataError(f"{p}, line {i + first_line}, column {colname(j)}: holds NaN or Inf")
        return v

    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r[seq], []).append(i)
    ids = list(groups)
    if tcol is not None:
        for sid, members in groups.items():
            times = [number(i, tcol) for i in members]
            if len(set(times)) != len(times):
                dup = next(t for t in times if times.count(t) > 1)
                raise DataError(f"{p}: sequence {sid!r} has time {dup:g} twice; every step of "
                                "a sequence needs its own time")
            groups[sid] = [i for _, i in sorted(zip(times, members))]
    lengths = {sid: len(m) for sid, m in groups.items()}
    steps = lengths[ids[0]]
    odd = next((sid for sid in ids if lengths[sid] != steps), None)
    if odd is not None:
        raise DataError(f"{p}: sequences have different lengths: {ids[0]!r} has {steps} steps, "
                        f"{odd!r} has {lengths[odd]} (line {groups[odd][0] + first_line}); pad "
                        "or cut them to one length")
    if len(ids) * steps * len(feats) > MAX_VALUES:
        raise DataError(f"{p}: more than {MAX_VALUES:,} values")
    x = np.empty((len(ids), steps, len(feats)), np.float32)
    for s, sid in enumerate(ids):
        for t, i in enumerate(groups[sid]):
            x[s, t] = [number(i, j) for j in feats]
    arrays: dict[str, np.ndarray] = {"x": x}
    class_names = None
    if lab is not None:
        raw = []
        for sid in ids:
            members = groups[sid]
            first = rows[members[0]][lab]
            changed = next((i for i in members if rows[i][lab] != first), None)
            if changed is not None:
                raise DataError(f"{p}, line {changed + first_line}: sequence {sid!r} changes its "
                                f"label from {first!r} to {rows[changed][lab]!r}; each sequence "
                                "takes one label")
            raw.append(first)
        if all(is_number(v) for v in raw):
            vals = np.array([float(v) for v in raw])
            whole = bool(np.all(vals == np.round(vals)))
            if task == "regression" or (task is None and not whole):
                arrays["y"] = vals.astype(np.float32)[:, None]
            elif not whole:
                raise DataError(f"{p}: class labels must be whole numbers")
            else:
                arrays["y"] = vals.astype(np.int64)
        elif task == "regression":
            bad = next(v for v in raw if not is_number(v))
            raise DataError(f"{p}: label {bad!r} is not a number (regression)")
        else:
            class_names = sorted(set(raw))
            index = {c: k for k, c in enumerate(class_names)}
            arrays["y"] = np.array([index[v] for v in raw], np.int64)
    forced = task if task in ("classification", "regression") and lab is not None else None
    return Dataset(arrays, p.stem, class_names, forced,
                   {"kind": "sequence", "source": str(p), "sequences": len(ids),
                    "columns": [header[j] for j in feats] if header else None})

"""The first compile on a computer: one model's kernels first (``warmup(first=)``), and its
progress counted in kernels with a time estimate (``engine.kernel_progress``)."""

import json
import sys

import pytest

from engine import kernel_progress
from engine.kernel_progress import CompileProgress, compiled_from_python, fmt_left
from engine.resources import example_path
from engine.warmup import FIRST_READY, compile_in_subprocess, warmup_tasks

warmup_module = sys.modules["engine.warmup"]


def example_doc(name):
    return json.loads(example_path(name).read_text())


def test_warmup_does_the_first_model_first_and_says_when_its_kernels_are_ready():
    calls = []
    warmup_module.warmup(lambda i, n, name: calls.append((i, n, name)),
                         first=example_doc("xor_mlp"), rest=False)
    assert [c[2] for c in calls] == ["BLAS", "this model", "optimizer",
                                     "losses on large batches", FIRST_READY, "done"]
    assert [c[0] for c in calls] == [0, 1, 2, 3, 4, 4] and {c[1] for c in calls} == {4}


def test_with_the_rest_the_ready_signal_comes_between_the_model_and_the_rest(monkeypatch):
    ran = []
    rest = [("BLAS", lambda: ran.append("BLAS")), ("Conv2D", lambda: ran.append("Conv2D")),
            ("LSTM", lambda: ran.append("LSTM"))]
    monkeypatch.setattr(warmup_module, "warmup_tasks", lambda: rest)
    monkeypatch.setattr(warmup_module, "mark_cache_warm", lambda: ran.append("marked"))
    calls = []
    warmup_module.warmup(lambda i, n, name: calls.append((i, name)),
                         first=example_doc("xor_mlp"))
    assert [name for _i, name in calls] == ["BLAS", "this model", "optimizer",
                                            "losses on large batches", FIRST_READY,
                                            "Conv2D", "LSTM", "done"]
    assert ran == ["Conv2D", "LSTM", "marked"]  # BLAS is not done twice


def test_a_model_that_cannot_run_does_not_stop_the_warm_up(capsys):
    doc = example_doc("xor_mlp")
    doc["nodes"][1]["type"] = "NoSuchLayer"
    calls = []
    warmup_module.warmup(lambda i, n, name: calls.append(name), first=doc, rest=False)
    assert calls[-2:] == [FIRST_READY, "done"]
    assert "warm-up of the open model skipped: UnknownLayerError" in capsys.readouterr().err


def test_the_kernels_a_model_needs_are_found_without_compiling_anything():
    xor = kernel_progress.model_kernels(example_doc("xor_mlp"))
    lenet = kernel_progress.model_kernels(example_doc("lenet5"))
    every = set(kernel_progress.kernel_dispatchers())
    assert xor and lenet and xor <= every and lenet <= every
    assert "engine.kernels.fused.dense_small_forward" in xor  # one slice at 2 samples
    assert "engine.kernels.fused.conv_block_forward" in lenet
    assert "engine.kernels.fused.conv_block_forward" not in xor
    assert "engine.kernels.optim.adam_update" in xor  # every optimizer is part of it
    assert len(xor) < len(every) / 2


def test_kernels_called_from_python_count_and_the_helpers_they_compile_in_do_not():
    jitted = {"k.outer": {"k.outer"}, "k.helper": {"k.helper"},
              "k._loss": {"k.loss_serial", "k.loss_parallel"}}
    calls = [["k.outer", "k.helper"], ["k.wrapper", "k._loss"], ["k.wrapper", "k.plain"]]
    assert compiled_from_python(["k.outer", "k.wrapper"], calls, jitted) == {
        "k.outer", "k.loss_serial", "k.loss_parallel"}


def test_the_progress_figure_counts_what_is_left_and_estimates_from_the_rate():
    total = {f"k{i}" for i in range(10)}
    p = CompileProgress.begin(total, {"k0", "k1", "other"}, now=100.0)
    assert p.figures({"k0", "k1"}, now=101.0) == (2, 10, None)  # no rate measured yet
    done, n, left = p.figures({"k0", "k1", "k2", "k3"}, now=120.0)  # 2 kernels in 20 s
    assert (done, n) == (4, 10) and left == pytest.approx(60.0)
    assert p.figures(total, now=130.0) == (10, 10, 0.0)
    assert fmt_left(None) == "time left not known yet"
    assert fmt_left(42.4) == "about 42 s left" and fmt_left(80) == "about 1:20 left"


def test_a_child_compiles_the_first_models_kernels_into_an_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    doc = example_doc("xor_mlp")
    needed = kernel_progress.model_kernels(doc)
    assert kernel_progress.cached_kernels() == set()
    names = []
    assert compile_in_subprocess(lambda i, n, name: names.append(name), first=doc, rest=False)
    assert FIRST_READY in names and "Conv2D" not in names
    cached = kernel_progress.cached_kernels()
    assert needed <= cached
    assert "engine.kernels.fused.conv_block_forward" not in cached  # only this model's
    assert not warmup_module.cache_is_warm()
    assert {n for n, _f in warmup_tasks()} - set(names)  # the rest was left for later

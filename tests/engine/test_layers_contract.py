"""Every registered layer type, example by example, through the layer contract
(``engine.testing``). A new type is checked here the moment it is registered; one without
examples fails ``test_every_registered_layer_type_has_a_contract_case``.

``test_without_jit.py`` runs this file again with ``NUMBA_DISABLE_JIT=1``: the numeric checks
then test the kernels as plain Python; the export and warm-up checks run once, with the JIT."""

import os

import pytest

import engine
from engine import testing

CASES = testing.contract_cases()
IDS = [f"{t}-{ex.name}" for t, ex in CASES]
NO_JIT = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
with_jit = pytest.mark.skipif(NO_JIT, reason="checked once, with the JIT")


def test_every_registered_layer_type_has_a_contract_case():
    types = engine.layer_types()
    assert not [t for t, cls in types.items() if not cls.examples], \
        "layer types without examples (Layer.examples): the contract cannot check them"
    assert {t for t, _ in CASES} == set(types)
    assert len(set(IDS)) == len(IDS), "two examples of one type share a name: give a label"


@pytest.mark.parametrize(("type_name", "example"), CASES, ids=IDS)
def test_shapes(type_name, example):
    testing.check_shapes(type_name, example)


@pytest.mark.parametrize(("type_name", "example"), CASES, ids=IDS)
def test_gradients_match_finite_differences(type_name, example):
    testing.check_gradients(type_name, example)


@pytest.mark.parametrize(("type_name", "example"), CASES, ids=IDS)
def test_kernels_match_the_reference(type_name, example):
    testing.check_reference(type_name, example)


@with_jit
@pytest.mark.parametrize(("type_name", "example"), CASES, ids=IDS)
def test_save_and_load(type_name, example, tmp_path):
    testing.check_save_load(type_name, example, tmp_path)


@with_jit
@pytest.mark.parametrize(("type_name", "example"), CASES, ids=IDS)
def test_onnx_export_matches_onnxruntime(type_name, example):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    testing.check_onnx_export(type_name, example)


@with_jit
@pytest.mark.parametrize(("type_name", "example"), CASES, ids=IDS)
def test_onnx_import_round_trip(type_name, example):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    testing.check_onnx_import(type_name, example)


@with_jit
@pytest.mark.parametrize(("type_name", "example"), CASES, ids=IDS)
def test_pytorch_export_matches_torch(type_name, example, tmp_path):
    pytest.importorskip("torch")
    testing.check_pytorch_export(type_name, example, tmp_path)


@pytest.fixture(scope="module")
def coverage():
    return testing.warmup_coverage()


@with_jit
@pytest.mark.parametrize("type_name", sorted(engine.layer_types()))
def test_warmup_compiles_everything_the_layer_runs(type_name, coverage):
    assert type_name in coverage
    assert coverage[type_name] == []


def test_a_type_without_hooks_is_refused_by_name_never_dropped(monkeypatch, tmp_path):
    from engine.layers.activation import Tanh

    for hook in ("to_onnx", "to_pytorch", "from_onnx"):
        monkeypatch.setattr(Tanh, hook, getattr(engine.Layer, hook))
    assert Tanh.capabilities().missing() == ["no ONNX export", "no ONNX import",
                                             "no PyTorch export"]
    ex = Tanh.examples[0]
    with pytest.raises(testing.ContractError, match="did not refuse"):
        testing._refused("Tanh", ex, lambda: None, "ONNX export")
    if not NO_JIT:
        testing.check_onnx_export("Tanh", ex)  # passes: the exporter refuses, naming Tanh
        testing.check_pytorch_export("Tanh", ex, tmp_path)

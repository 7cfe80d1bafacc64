"""Every node test of ``onnx.backend.test.case.node`` whose ops the importer claims runs
through the importer (weights as initialisers, see onnx_node_cases.py): each one imports
and matches the test's expected outputs, or is refused with a NetBuilderError that names
what it refuses. A mismatch, or any other exception, fails. Run with ``-s`` to see the list
of refusals and their reasons; docs/onnx-import.md lists them, and a test keeps it true."""
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnx.backend.test.case.node")

from onnx_node_cases import DOC, doc_block, markdown, run_all, table  # noqa: E402

from engine.export.onnx_import import supported_ops  # noqa: E402


@pytest.fixture(scope="module")
def outcomes():
    return run_all(supported_ops())


def test_no_node_test_mismatches_or_crashes(outcomes):
    print("\n" + table(outcomes))
    bad = [o for o in outcomes if o.kind in ("mismatch", "crash")]
    assert not bad, table(bad)


def test_the_suite_covers_the_claimed_ops(outcomes):
    """The supported ops really are exercised: most kinds import and match somewhere."""
    matched = {o.name for o in outcomes if o.kind == "match"}
    assert len(outcomes) > 300 and len(matched) > 100
    for name in ("test_basic_conv_with_padding", "test_gemm_default_vector_bias",
                 "test_maxpool_2d_precomputed_same_upper", "test_averagepool_2d_precomputed_pads",
                 "test_batchnorm_example", "test_lstm_defaults", "test_simple_rnn_bidirectional",
                 "test_softmax_axis_1", "test_concat_3d_axis_1", "test_reshape_negative_dim",
                 "test_cast_FLOAT16_to_FLOAT", "test_dropout_default"):
        assert name in matched, name


def test_refusals_name_what_they_refuse(outcomes):
    for o in outcomes:
        if o.kind == "refused":
            assert any(k in o.detail for k in ("node '", "input '", "output '",
                                               "initialiser '", "ONNX ops")), o


def test_the_refusal_list_in_the_docs_is_current(outcomes):
    have = doc_block(DOC.read_text(encoding="utf-8"))
    assert have == markdown(outcomes), (
        "docs/onnx-import.md is out of date: run PYTHONPATH=. python "
        "tests/engine/onnx_node_cases.py --write-docs")

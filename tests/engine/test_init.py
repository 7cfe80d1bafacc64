import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.init import INITS, fans, initialize


def test_fans_follow_pytorch_layouts():
    assert fans((10, 20)) == (20, 10)
    assert fans((6, 3, 5, 5)) == (75, 150)


@pytest.mark.parametrize("kind", INITS)
def test_same_seed_same_weights_bit_for_bit(kind):
    shape = (32, 32) if kind == "identity" else (64, 32)
    a = initialize(kind, shape, np.random.default_rng(3))
    b = initialize(kind, shape, np.random.default_rng(3))
    assert a.dtype == np.float32
    assert a.tobytes() == b.tobytes()


def test_init_statistics():
    rng = np.random.default_rng(0)
    he = initialize("he", (400, 500), rng)
    assert he.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    xa = initialize("xavier", (400, 500), rng)
    bound = np.sqrt(6 / 900)
    assert np.abs(xa).max() <= bound
    assert xa.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
    assert not initialize("zeros", (3, 3), rng).any()
    assert np.abs(initialize("uniform", (50, 50), rng)).max() <= 0.05


def test_compile_same_seed_same_network_bit_for_bit():
    g = engine.Graph.from_dict(chain_doc([5], [("Dense", {"units": 7}), ("Dense", {"units": 3})]))
    a, b = engine.compile(g, seed=11), engine.compile(g, seed=11)
    c = engine.compile(g, seed=12)
    for k in a.params:
        assert a.params[k].tobytes() == b.params[k].tobytes()
    assert any(a.params[k].tobytes() != c.params[k].tobytes() for k in a.params)


def test_adding_a_node_does_not_change_other_nodes_weights():
    small = engine.Graph.from_dict(chain_doc([5], [("Dense", {"units": 3})]))
    big = engine.Graph.from_dict(chain_doc([5], [("Dense", {"units": 3}), ("Dense", {"units": 3})]))
    np.testing.assert_array_equal(engine.compile(small).params["n0.weight"],
                                  engine.compile(big).params["n0.weight"])


def test_identity_init_is_the_unit_matrix_or_a_centred_delta():
    np.testing.assert_array_equal(initialize("identity", (4, 4), np.random.default_rng(0)),
                                  np.eye(4, dtype=np.float32))
    k = initialize("identity", (2, 2, 3, 5), np.random.default_rng(0))
    assert k.sum() == 2 and k[0, 0, 1, 2] == 1 and k[1, 1, 1, 2] == 1 and k[0, 1].sum() == 0
    with pytest.raises(ValueError, match="as many outputs as inputs"):
        initialize("identity", (4, 3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="odd kernel"):
        initialize("identity", (2, 2, 2, 3), np.random.default_rng(0))

import numpy as np
import pytest
from graphdocs import chain_doc

import engine


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def make_graph():
    def make(input_shape, layers, loss="cross_entropy", validate=True):
        return engine.Graph.from_dict(chain_doc(input_shape, layers, loss), validate=validate)
    return make

"""Shared check of a fused conv block's results against ``kernels.reference.fused``."""

from __future__ import annotations

import numpy as np


def assert_block_matches_reference(got: tuple, want: tuple, want_b: tuple, relu: bool,
                                   pool: bool, dtype) -> None:
    """``got`` = (yconv, yrelu, ypool, dx, gw, gb) from the kernels; ``want`` / ``want_b``:
    the float64 reference forward (yconv, yrelu, ypool) and backward (dx, gw, gb)."""
    yconv, yrelu, ypool, dx, gw, gb = got
    tol = 2e-5 if dtype == np.float32 else 1e-12
    pairs = [(yconv, want[0]), (dx, want_b[0]), (gw, want_b[1]), (gb, want_b[2])]
    if relu:
        pairs.append((yrelu, want[1]))
    if pool:
        pairs.append((ypool, want[2]))
    for value, exp in pairs:
        assert value.dtype == dtype and value.shape == exp.shape
        np.testing.assert_allclose(value, exp, rtol=tol, atol=tol * max(1.0, np.abs(exp).max()))

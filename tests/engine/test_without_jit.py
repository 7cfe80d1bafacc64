"""Runs every kernel and layer test again as plain Python (``NUMBA_DISABLE_JIT=1``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT", "0") != "0",
                    reason="already running without the JIT")
def test_kernel_and_layer_tests_pass_without_jit():
    files = sorted(str(p) for p in HERE.glob("test_*kernels*.py"))
    files += sorted(str(p) for p in HERE.glob("test_layers_*.py"))
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
         *files],
        cwd=HERE.parent.parent, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

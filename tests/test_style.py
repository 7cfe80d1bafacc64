import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it is in the 'test' extra)")
    proc = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-5000:]


def test_no_pickle_or_eval_in_the_code():
    bad = []
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("netbuilder/**/*.py")]:
        text = path.read_text()
        for pattern in (r"import pickle", r"allow_pickle\s*=\s*True", r"(?<![\w.])eval\(",
                        r"(?<![\w.])exec\("):
            if re.search(pattern, text):
                bad.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert not bad, bad

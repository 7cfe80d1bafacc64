"""The wheel: it carries the engine, the application and the shipped files (examples,
datasets, style), and an installed engine finds those through the installed package."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engine import resources

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("engine", "netbuilder", "resources", "setup.py", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of the source tree (the build leaves its
    ``build/`` folder in the copy, not in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                           str(out), str(src)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "No matching distribution found for setuptools" in proc.stderr:
        pytest.skip("no package index to fetch the build backend from")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("netbuilder-*.whl")
    return path


def test_the_wheel_carries_every_module_and_the_shipped_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("engine", "netbuilder"):
        for p in (ROOT / package).rglob("*.py"):
            rel = p.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} is not in the wheel"
    shipped = ROOT / "resources"
    for p in [*shipped.glob("examples/*.json"), *shipped.glob("datasets/*"),
              shipped / "style.qss"]:
        rel = "netbuilder_resources/" + p.relative_to(shipped).as_posix()
        assert rel in names, f"{rel} is not in the wheel"
    assert "netbuilder_resources/examples/lenet5.json" in names
    assert "netbuilder_resources/datasets/digits.npz" in names
    assert not any(n.startswith("resources/") for n in names)  # no top-level 'resources'
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
                if line.startswith("Requires-Dist:")]
    assert any(r.startswith("Requires-Dist: onnx>=") and "extra" not in r for r in requires)
    assert not any(r.startswith("Requires-Dist: onnxruntime") and "extra" not in r
                   for r in requires)


INSTALLED = """
import json, sys
import engine
from engine import resources
from engine.data import load_dataset
ds = load_dataset("digits")
print(json.dumps({"dir": str(resources.resources_dir()), "examples": resources.example_names(),
                  "style": resources.style_path().is_file(), "digits": len(ds),
                  "engine": engine.__file__,
                  "qt": [m for m in sys.modules if m.startswith("PySide6")]}))
"""


def test_an_installed_engine_finds_the_shipped_files_through_the_installed_package(
        wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure wheel unpacks as it installs
    cwd = tmp_path / "empty"
    cwd.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", INSTALLED], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(got["engine"]).parent == site / "engine"
    assert Path(got["dir"]) == site / "netbuilder_resources"
    assert "lenet5" in got["examples"] and "xor_mlp" in got["examples"]
    assert got["style"] and got["digits"] == 1797
    assert got["qt"] == []
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "info", "lenet5"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"({site / 'netbuilder_resources' / 'examples' / 'lenet5.json'})" in proc.stdout


def test_a_checkout_reads_its_own_resources_folder():
    assert resources.resources_dir() == ROOT / "resources"
    assert resources.checkout_resources() == ROOT / "resources"
    assert resources.example_path("lenet5") == ROOT / "resources" / "examples" / "lenet5.json"
    assert resources.style_path().is_file()


def test_without_checkout_or_package_the_error_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(resources, "checkout_resources", lambda: None)
    monkeypatch.setattr(resources, "installed_resources", lambda: None)
    with pytest.raises(resources.ResourcesMissingError, match="reinstall NetBuilder"):
        resources.resources_dir()


def test_resolve_model_prefers_a_file_then_an_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resources.resolve_model("lenet5") == (resources.example_path("lenet5"), True)
    assert resources.resolve_model("lenet5.json") == (resources.example_path("lenet5"), True)
    (tmp_path / "lenet5.json").write_text("{}")
    assert resources.resolve_model("lenet5.json") == (Path("lenet5.json"), False)
    assert resources.resolve_model("sub/lenet5") == (Path("sub/lenet5"), False)
    assert resources.resolve_model("x.nbmodel") == (Path("x.nbmodel"), False)
    with pytest.raises(resources.UnknownModelError, match=r"examples: .*lenet5"):
        resources.resolve_model("lenet6")

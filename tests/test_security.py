"""Nothing NetBuilder opens can run code: no pickle (or its relatives) anywhere in engine/ and
netbuilder/, no eval/exec, every np.load with allow_pickle=False; and a pickle bomb hidden in a
bundle or a dataset is refused without ever being unpickled."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.data import load_npz

ROOT = Path(__file__).resolve().parent.parent
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal",
                  "joblib", "copyreg"}
UNSAFE_ATTR_CALLS = {("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
                     ("pd", "read_pickle"), ("pandas", "read_pickle"), ("np", "fromfile"),
                     ("numpy", "fromfile")}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def problems(source: str, where: str) -> tuple[list[str], int]:
    """(unsafe constructs in ``source``, number of np.load calls seen)."""
    out: list[str] = []
    loads = 0
    for node in ast.walk(ast.parse(source)):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            out += [f"{line}: import {a.name}" for a in node.names
                    if a.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".")[0]
            if mod in PICKLE_MODULES:
                out.append(f"{line}: from {node.module} import ...")
            if mod == "numpy" and any(a.name in ("load", "fromfile") for a in node.names):
                out.append(f"{line}: from numpy import load (use np.load with allow_pickle=False)")
        elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                out.append(f"{line}: allow_pickle is not the constant False")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if isinstance(node.func, ast.Name) and name in ("eval", "exec", "__import__"):
                out.append(f"{line}: {name}()")
            parts = tuple(name.split("."))
            if parts[-2:] in UNSAFE_ATTR_CALLS or parts[-1:] == ("read_pickle",):
                out.append(f"{line}: {name}()")
            if name in ("np.load", "numpy.load"):
                loads += 1
                kw = {k.arg: k.value for k in node.keywords}
                flag = kw.get("allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    out.append(f"{line}: {name}() without allow_pickle=False")
            if name == "torch.load":
                kw = {k.arg: k.value for k in node.keywords}
                flag = kw.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    out.append(f"{line}: torch.load() without weights_only=True")
    return out, loads


def test_the_checker_catches_each_unsafe_construct():
    bad = ("import pickle\nfrom shelve import open\nimport numpy as np\n"
           "np.load(p)\nnp.load(p, allow_pickle=True)\nnp.load(p, allow_pickle=flag)\n"
           "eval(s)\nexec(s)\n__import__(s)\nimport yaml\nyaml.load(s)\ntorch.load(p)\n"
           "from numpy import load\nnp.save(p, a, allow_pickle=True)\npd.read_pickle(p)\n")
    found, loads = problems(bad, "bad.py")
    assert len(found) == 15 and loads == 3, found
    good = ("import numpy as np\nnp.load(p, allow_pickle=False)\nmenu.exec()\nmodel.eval()\n"
            "torch.load(p, weights_only=True)\nast.literal_eval(s)\n")
    assert problems(good, "good.py") == ([], 1)


def test_no_module_can_unpickle_or_evaluate_file_content():
    files = [*ROOT.glob("engine/**/*.py"), *ROOT.glob("netbuilder/**/*.py")]
    assert len(files) > 40
    found: list[str] = []
    loads = 0
    for path in files:
        f, n = problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
        found += f
        loads += n
    assert not found, "\n".join(found)
    assert loads >= 1  # the scan does see the np.load calls there are


class _Payload:
    """Unpickling this creates ``marker``: the proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil_npy(marker: Path) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def test_pickle_payloads_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = _evil_npy(marker)
    np.load(io.BytesIO(evil), allow_pickle=True)  # the payload works when unpickled ...
    assert marker.exists()
    marker.unlink()

    net = engine.compile(engine.Graph.from_dict({
        "format": "netbuilder.graph", "version": 1, "name": "m",
        "nodes": [{"id": "in", "type": "Input", "params": {"shape": [4]}},
                  {"id": "d", "type": "Dense", "params": {"units": 2}},
                  {"id": "out", "type": "Output", "params": {}}],
        "edges": [{"src": "in", "dst": "d"}, {"src": "d", "dst": "out"}]}))
    good = engine.save_bundle(tmp_path / "good.nbmodel", net)
    bad = tmp_path / "bad.nbmodel"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "weights.npz":
                inner = io.BytesIO()
                with zipfile.ZipFile(inner, "w") as z:
                    z.writestr("d.weight.npy", evil)
                    z.writestr("d.bias.npy", evil)
                data = inner.getvalue()
            zout.writestr(info.filename, data)
    with pytest.raises(engine.BundleError, match="Python objects"):  # ... but not here
        engine.load_bundle(bad)
    npz = tmp_path / "data.npz"
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("x.npy", evil)
    with pytest.raises(engine.DataError, match="Python objects"):
        load_npz(npz)
    assert not marker.exists()

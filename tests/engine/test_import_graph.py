"""The engine's module structure: no import cycles (counting imports inside functions, which
only hide a cycle), the layers below the network and the exporters, and optional packages
(onnx, onnxruntime, torch) and Qt never needed to import it."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) for every module of the engine."""
    out = {}
    for p in ENGINE.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


class ImportVisitor(ast.NodeVisitor):
    """Collects the engine modules one module imports, skipping code that never runs on
    import (``if TYPE_CHECKING:``, ``if __name__ == "__main__":``)."""

    def __init__(self, mod: str, is_pkg: bool, mods: dict[str, tuple[Path, bool]]) -> None:
        self.mod, self.is_pkg, self.mods = mod, is_pkg, mods
        self.deps: set[str] = set()

    def visit_If(self, n: ast.If) -> None:
        test = ast.unparse(n.test)
        if "TYPE_CHECKING" in test or "__main__" in test:
            for s in n.orelse:
                self.visit(s)
            return
        self.generic_visit(n)

    def visit_ImportFrom(self, n: ast.ImportFrom) -> None:
        if n.level:
            base = self.mod.split(".") if self.is_pkg else self.mod.split(".")[:-1]
            base = base[:len(base) - n.level + 1]
            target = ".".join(base + ([n.module] if n.module else []))
        else:
            target = n.module or ""
        if target in self.mods:
            self.deps.update(f"{target}.{a.name}" if f"{target}.{a.name}" in self.mods
                             else target for a in n.names)

    def visit_Import(self, n: ast.Import) -> None:
        self.deps.update(a.name for a in n.names if a.name in self.mods)


def import_graph() -> dict[str, set[str]]:
    """Module -> the engine modules it imports anywhere in its code (functions included)."""
    mods = modules()
    graph = {}
    for mod, (path, is_pkg) in mods.items():
        visitor = ImportVisitor(mod, is_pkg, mods)
        visitor.visit(ast.parse(path.read_text()))
        graph[mod] = visitor.deps - {mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_the_engine_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40 and "engine.layers.dense" in graph
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_layers_sit_below_the_network_and_the_exporters():
    graph = import_graph()
    below = {m for m in graph if m.startswith(("engine.layers", "engine.kernels"))}
    above = {"engine.network", "engine.fusion", "engine.plan", "engine.training",
             "engine.warmup", "engine.testing", "engine.cli", "engine.bundle"}
    above |= {m for m in graph if m.startswith("engine.export")}
    for mod in sorted(below):
        assert not reaches(graph, mod) & above, mod
    assert not reaches(graph, "engine.kernels.fused") & {
        m for m in graph if m.startswith("engine.layers")}
    assert "engine.network" not in reaches(graph, "engine.fusion")
    assert "engine.network" not in reaches(graph, "engine.plan")


def test_importing_the_engine_needs_neither_qt_nor_the_export_packages():
    code = ("import sys\n"
            "for m in ('PySide6', 'pyqtgraph', 'onnx', 'onnxruntime', 'torch'):\n"
            "    sys.modules[m] = None\n"
            "import engine, engine.export, engine.testing, engine.plan, engine.hooks\n"
            "from engine.export import onnx_export, onnx_import, pytorch_export\n"
            "print(len(engine.layer_types()))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) >= 29


def test_the_onnx_rewrite_pass_knows_no_layer_type():
    """ONNX import is two passes: ``onnx_patterns`` rewrites exporters' idioms ONNX to ONNX,
    op by op; only the Importer and the layers' hooks map ops to layer types. The rewrite
    pass therefore reaches no layer module (nor the Importer, which reads the registry)."""
    graph = import_graph()
    rewrite = {"engine.export.onnx_patterns", "engine.export.onnx_fold",
               "engine.export.onnx_sequence_patterns"}
    for mod in sorted(rewrite):
        reached = reaches(graph, mod)
        assert not {m for m in reached if m.startswith("engine.layers")}, mod
        assert not reached & {"engine.export.onnx_import", "engine.network"}, mod
    assert rewrite <= reaches(graph, "engine.export.onnx_import")

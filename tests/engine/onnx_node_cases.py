"""The ONNX backend node tests (the generators inside ``onnx.backend.test.case.node``) as
import cases: each test whose ops the importer claims is converted so that weights are
initialisers and data inputs keep (or get) a batch axis, imported, run, and compared with
the test's expected outputs. Shared by test_import_onnx_node_tests.py and usable from a shell::

    PYTHONPATH=. python tests/engine/onnx_node_cases.py               # prints the outcome table
    PYTHONPATH=. python tests/engine/onnx_node_cases.py --write-docs  # rewrites the list in
                                                                       # docs/onnx-import.md
"""

from __future__ import annotations

import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import engine

# Inputs (by position) that carry data; every other input becomes an initialiser. Default:
# input 0. Ops whose every input is data are listed with None.
DATA_INPUTS: dict[str, tuple[int, ...] | None] = {
    "Add": None, "Sum": None, "Concat": None, "Mul": None, "Gather": (1,), "GridSample": None,
}
# Ops whose result for a sample does not depend on the others: a missing batch axis may be
# added in front of inputs and outputs without changing what they compute.
PER_ELEMENT = frozenset({"Relu", "Tanh", "Sigmoid", "LeakyRelu", "HardSigmoid", "Clip",
                         "Identity", "Cast", "Dropout", "Softmax"})


@dataclass
class Outcome:
    name: str
    kind: str  # "match", "mismatch", "refused", "crash"
    detail: str = ""


def node_cases(supported: frozenset[str]) -> list[Any]:
    """Every node test case whose ops are all in ``supported``."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return [c for c in cases if c.kind == "node" and c.model is not None and c.data_sets and
            all(n.op_type in supported and n.domain in ("", "ai.onnx")
                for n in c.model.graph.node)]


def _data_positions(model: Any) -> set[int]:
    """Graph-input positions that are data (the rest become initialisers)."""
    g = model.graph
    out = set()
    for pos, inp in enumerate(g.input):
        for node in g.node:
            if inp.name not in node.input:
                continue
            slot = list(node.input).index(inp.name)
            rule = DATA_INPUTS.get(node.op_type, (0,))
            if rule is None or slot in rule:
                out.add(pos)
    return out


def _array(v: Any) -> np.ndarray:
    """A test's input or output (an array, or a TensorProto for exotic types) as an array."""
    if hasattr(v, "data_type") and hasattr(v, "dims"):
        from onnx import numpy_helper
        return np.asarray(numpy_helper.to_array(v))
    return np.asarray(v)


def convert(case: Any) -> tuple[Any, dict[str, np.ndarray], list[np.ndarray], bool]:
    """(model with weights as initialisers, data inputs by name, expected outputs, whether a
    batch axis was added)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    inputs, expected = case.data_sets[0]
    inputs = [_array(v) for v in inputs]
    g = model.graph
    data_pos = _data_positions(model)
    ops = {n.op_type for n in g.node}
    data = {g.input[p].name: np.asarray(inputs[p]) for p in sorted(data_pos) if p < len(inputs)}
    add_batch = bool(data) and ops <= PER_ELEMENT and \
        all(np.ndim(v) < 2 for v in data.values())
    keep = []
    for pos, inp in enumerate(g.input):
        if pos in data_pos:
            keep.append(inp)
        elif pos < len(inputs):
            g.initializer.append(numpy_helper.from_array(np.asarray(inputs[pos]), inp.name))
    del g.input[:]
    g.input.extend(keep)
    expected = [_array(e) for e in expected]
    if add_batch:
        data = {k: v[None] for k, v in data.items()}
        expected = [e[None] for e in expected]
        for vi in (*g.input, *g.output):
            dims = vi.type.tensor_type.shape.dim
            if vi.type.tensor_type.HasField("shape"):
                dims.insert(0, onnx.TensorShapeProto.Dimension(dim_value=1))
    return model, data, expected, add_batch


def run_case(case: Any) -> Outcome:
    """Import, run and compare one node test."""
    try:
        model, data, expected, _ = convert(case)
    except Exception as exc:  # a case this conversion cannot express: not the importer's
        return Outcome(case.name, "refused", f"(conversion) {type(exc).__name__}: {exc}")
    from engine.export import import_onnx
    notes: list[str] = []
    try:
        graph, state = import_onnx(model, notes=notes)
        net = engine.compile(graph)
        net.load_state_dict(state)
        in_ids = [nid for nid, n in graph.nodes.items() if n.type == "Input"]
        xs = {nid: np.asarray(_batch_first(v, name, notes, "input"), np.float32)
              for nid, (name, v) in zip(in_ids, data.items())}
        out = net.forward(xs if len(xs) > 1 else next(iter(xs.values())))
    except engine.NetBuilderError as exc:
        msg = str(exc)
        if not msg.strip() or "malformed ONNX model (" in msg:  # a Python error, relabelled
            return Outcome(case.name, "crash", f"{type(exc).__name__}: {msg}")
        return Outcome(case.name, "refused", msg)
    except Exception as exc:  # the bug this suite looks for
        return Outcome(case.name, "crash", f"{type(exc).__name__}: {exc}")
    outs = out if isinstance(out, dict) else {net.output_ids[0]: out}
    got = [outs[o] for o in net.output_ids]
    expected = [_batch_first(e, o.name, notes, "output")
                for e, o in zip(expected, model.graph.output)]
    if len(got) != len(expected):
        return Outcome(case.name, "mismatch", f"{len(got)} outputs, expected {len(expected)}")
    for k, (a, e) in enumerate(zip(got, expected)):
        if a.shape != e.shape:
            return Outcome(case.name, "mismatch", f"output {k} shaped {a.shape}, expected "
                                                  f"{e.shape}")
        if not np.allclose(a, e.astype(np.float64), rtol=max(case.rtol, 1e-4),
                           atol=max(case.atol, 1e-6), equal_nan=True):
            err = float(np.max(np.abs(a - e)))
            return Outcome(case.name, "mismatch", f"output {k} differs by up to {err:.3g}")
    return Outcome(case.name, "match")


def _batch_first(v: np.ndarray, name: str, notes: list[str], kind: str) -> np.ndarray:
    """A time-major input or output (the import notes say so) as the imported model has it:
    batch-first, axes 0 and 1 swapped."""
    return np.swapaxes(v, 0, 1) if f"{kind} '{name}' is time-major" in " ".join(notes) else v


def run_all(supported: frozenset[str]) -> list[Outcome]:
    return [run_case(c) for c in node_cases(supported)]


def table(outcomes: list[Outcome]) -> str:
    counts = Counter(o.kind for o in outcomes)
    lines = [f"ONNX backend node tests: {len(outcomes)} run, " +
             ", ".join(f"{counts[k]} {k}" for k in ("match", "refused", "mismatch", "crash"))]
    for o in outcomes:
        if o.kind != "match":
            lines.append(f"  {o.kind:8} {o.name}: {o.detail}")
    return "\n".join(lines)


DOC = Path(__file__).resolve().parents[2] / "docs" / "onnx-import.md"
BEGIN, END = "<!-- node-tests:begin (generated) -->", "<!-- node-tests:end -->"


def markdown(outcomes: list[Outcome]) -> str:
    """The outcome counts and every refusal with its reason, as docs/onnx-import.md shows
    them (between BEGIN and END)."""
    counts = Counter(o.kind for o in outcomes)
    lines = [BEGIN, "", f"{len(outcomes)} node tests use only ops the importer claims: "
             f"{counts['match']} import and match, {counts['refused']} are refused, "
             f"{counts['mismatch']} mismatch, {counts['crash']} crash.", "",
             "| node test | why it is refused |", "|---|---|"]
    for o in outcomes:
        if o.kind == "refused":
            why = re.sub(r"^model: ", "", o.detail).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{o.name}` | {why} |")
    return "\n".join([*lines, "", END])


def doc_block(text: str) -> str:
    """The generated part of docs/onnx-import.md's text."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def write_docs(outcomes: list[Outcome]) -> None:
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(doc_block(text), markdown(outcomes)), encoding="utf-8")


if __name__ == "__main__":
    from engine.export.onnx_import import supported_ops
    results = run_all(supported_ops())
    if "--write-docs" in sys.argv:
        write_docs(results)
    print(table(results))

"""The layer contract: one set of checks every registered layer type passes, example by
example (Keras' ``run_layer_test`` is the model). ``tests/engine/test_layers_contract.py``
runs it over the whole registry, so a new type is checked as soon as it is registered.

    from engine.testing import check_layer_contract
    check_layer_contract("Dense", engine.get_layer_class("Dense").examples[0], tmp_path)

The checks, each a function of (type name, ``Example``) raising ``ContractError`` (an
AssertionError) with a message naming the type, example and what differs:

- ``check_shapes``: the layer builds, shape inference agrees with the graph's and with what
  forward returns, parameters and buffers match ``param_shapes`` / ``buffer_shapes`` in
  float32, params survive a JSON round trip, backward returns one gradient per input;
- ``check_gradients``: float64 central differences against backward, for every input and
  parameter, in training and in inference mode;
- ``check_reference``: the kernels (float64 and float32) against ``reference_forward``, and
  float32 gradients against float64 ones; a type with ``kernels`` must have a reference;
- ``check_save_load``: a model around the example survives the file format and a bundle;
- ``check_onnx_export`` (onnxruntime), ``check_pytorch_export`` (torch), ``check_onnx_import``
  (export, import, same graph and outputs); a type without the hook must be refused with a
  message naming it (what ``capabilities()`` says), never dropped;
- ``warmup_coverage``: in a fresh interpreter, after ``engine.warmup()``, running every
  example (fused and node by node) compiles nothing, and every declared kernel is compiled.

Run the numeric checks with ``NUMBA_DISABLE_JIT=1`` too (the kernels as plain Python).
Shapes are kept tiny: the whole registry runs in well under a minute with a warm cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NetBuilderError
from .gradcheck import check_layer
from .graph import Graph
from .network import Network
from .registry import Example, Layer, get_layer_class, layer_types

BATCH = 3
GRAD_TOL = 1e-5
REF_TOL64 = 1e-9
REF_TOL32 = 2e-4
EXPORT_TOL = 1e-4
SEED = 11


class ContractError(AssertionError):
    """A layer type breaks its contract."""


def _fail(type_name: str, ex: Example, what: str) -> ContractError:
    return ContractError(f"{type_name} [{ex.name}]: {what}")


def contract_cases() -> list[tuple[str, Example]]:
    """(type name, example) for every example of every registered type."""
    return [(name, ex) for name, cls in layer_types().items() for ex in cls.examples]


def build(type_name: str, ex: Example, node_id: str = "n") -> Layer:
    return get_layer_class(type_name)(node_id, dict(ex.params), list(ex.in_shapes))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-8))


def random_state(layer: Layer, rng: np.random.Generator, dtype: Any = np.float64
                 ) -> dict[str, np.ndarray]:
    """The layer's initial parameters and buffers, moved off their starting values (so that
    e.g. a bias of zeros or a variance of ones hides nothing)."""
    state = layer.init_params(rng)
    return {k: (np.asarray(v, np.float64) + 0.1 * rng.standard_normal(np.shape(v))).astype(dtype)
            for k, v in state.items()}


# ----- models around one layer ----------------------------------------------------------------
def layer_doc(type_name: str, ex: Example) -> dict[str, Any]:
    """Input(s) -> the layer -> an mse Output; an Input or Output example: Input -> Output."""
    if type_name == "Input":
        nodes = [{"id": "in", "type": "Input", "params": dict(ex.params)},
                 {"id": "out", "type": "Output", "params": {"loss": "mse"}}]
        edges = [{"src": "in", "dst": "out"}]
    elif type_name == "Output":
        nodes = [{"id": "in", "type": "Input", "params": {"shape": list(ex.in_shapes[0])}},
                 {"id": "out", "type": "Output", "params": dict(ex.params)}]
        edges = [{"src": "in", "dst": "out"}]
    else:
        nodes = [{"id": f"in{p}", "type": "Input", "params": {"shape": list(s)}}
                 for p, s in enumerate(ex.in_shapes)]
        nodes += [{"id": "n", "type": type_name, "params": _json(ex.params)},
                  {"id": "out", "type": "Output", "params": {"loss": "mse"}}]
        edges = [{"src": f"in{p}", "dst": "n", "port": p} for p in range(len(ex.in_shapes))]
        edges.append({"src": "n", "dst": "out"})
    return {"format": "netbuilder.graph", "version": 1, "name": f"{type_name} contract",
            "nodes": nodes, "edges": edges}


def _json(params: Any) -> Any:
    return json.loads(json.dumps(dict(params), default=list))


def model_inputs(net: Network, type_name: str, ex: Example, batch: int = BATCH,
                 seed: int = SEED) -> dict[str, np.ndarray]:
    """float32 inputs by Input id, as the layer's ``sample_inputs`` draws them."""
    rng = np.random.default_rng(seed)
    if type_name in ("Input", "Output"):
        return {"in": rng.standard_normal((batch, *net.shapes["in"])).astype(np.float32)}
    xs = net.layers["n"].sample_inputs(batch, rng)
    return {f"in{p}": x.astype(np.float32) for p, x in enumerate(xs)}


def model_net(type_name: str, ex: Example, seed: int = SEED) -> Network:
    """The compiled ``layer_doc`` with every parameter and buffer moved off its start."""
    net = Network(Graph.from_dict(layer_doc(type_name, ex)), seed=seed)
    rng = np.random.default_rng(seed + 1)
    for nid in net.order:
        layer = net.layers[nid]
        for name, arr in random_state(layer, rng, np.float32).items():
            target = net.params.get(f"{nid}.{name}")
            target = net.buffers[f"{nid}.{name}"] if target is None else target
            target[...] = arr
    return net


def _outputs(out: Any, net: Network) -> dict[str, np.ndarray]:
    return out if isinstance(out, dict) else {net.output_ids[0]: out}


def _forward(net: Network, xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in _outputs(net.forward(xs, train=False), net).items()}


# ----- the checks -----------------------------------------------------------------------------
def check_shapes(type_name: str, ex: Example) -> None:
    cls = get_layer_class(type_name)
    n_in = len(ex.in_shapes)
    if n_in < cls.min_inputs or (cls.max_inputs is not None and n_in > cls.max_inputs):
        raise _fail(type_name, ex, f"{n_in} inputs, outside {cls.min_inputs}..{cls.max_inputs}")
    layer = build(type_name, ex)
    shapes = Graph.from_dict(layer_doc(type_name, ex)).infer_shapes()
    node = "in" if type_name == "Input" else "out" if type_name == "Output" else "n"
    if tuple(shapes[node]) != layer.out_shape:
        raise _fail(type_name, ex, f"the graph infers {shapes[node]}, the layer {layer.out_shape}")
    resolved = cls.resolve_params(json.loads(json.dumps(
        {s.name: s.to_json(layer.p[s.name]) for s in cls.param_specs})))
    if resolved != layer.p:
        raise _fail(type_name, ex, f"params change in a JSON round trip: {layer.p} -> {resolved}")
    state = layer.init_params(np.random.default_rng(0))
    want = {**layer.param_shapes(), **layer.buffer_shapes()}
    got = {k: tuple(np.shape(v)) for k, v in state.items()}
    if got != {k: tuple(v) for k, v in want.items()}:
        raise _fail(type_name, ex, f"init_params gives {got}, param/buffer shapes say {want}")
    if any(np.asarray(v).dtype != np.float32 for v in state.values()):
        raise _fail(type_name, ex, "init_params must give float32 arrays")
    if layer.param_count() != sum(int(np.prod(s)) for s in layer.param_shapes().values()):
        raise _fail(type_name, ex, "param_count disagrees with param_shapes")
    if not isinstance(layer.macs(), int) or layer.macs() < 0 or not isinstance(layer.summary(), str):
        raise _fail(type_name, ex, "macs() must be an int >= 0 and summary() a str")
    if type_name == "Input":
        return
    rng = np.random.default_rng(SEED)
    for dtype in (np.float64, np.float32):
        xs = [x.astype(dtype) for x in layer.sample_inputs(BATCH, rng)]
        params = random_state(layer, rng, dtype)
        y = layer.forward(xs, params, True)
        if y.shape != (BATCH, *layer.out_shape) or y.dtype != dtype:
            raise _fail(type_name, ex, f"forward gives {y.dtype}{y.shape} for a {dtype.__name__} "
                                       f"batch of {BATCH}, expected {(BATCH, *layer.out_shape)}")
        grads = {k: np.zeros_like(params[k]) for k in layer.param_shapes()}
        dxs = layer.backward(np.ones_like(y), params, grads)
        if len(dxs) != n_in:
            raise _fail(type_name, ex, f"backward returns {len(dxs)} gradients for {n_in} inputs")
        for x, dx in zip(xs, dxs):
            if dx is not None and (np.shape(dx) != x.shape or np.asarray(dx).dtype != dtype):
                raise _fail(type_name, ex, f"an input gradient is {np.asarray(dx).dtype}"
                                           f"{np.shape(dx)}, its input {x.dtype}{x.shape}")


def check_gradients(type_name: str, ex: Example, tol: float = GRAD_TOL,
                    max_elements: int | None = 60) -> None:
    """float64 central differences of every input and parameter, training and inference."""
    if type_name == "Input":
        return
    layer = build(type_name, ex)
    for train in (True, False):
        xs = layer.sample_inputs(2, np.random.default_rng(SEED))
        report = check_layer(type_name, dict(ex.params), list(ex.in_shapes), batch=2, seed=SEED,
                             train=train, inputs=xs, max_elements=max_elements)
        want = {f"x{p}" for p in range(len(xs)) if layer.index_range(p) is None}
        want |= set(layer.param_shapes())
        if set(report.errors) != want:
            raise _fail(type_name, ex, f"gradient check covered {sorted(report.errors)}, "
                                       f"expected {sorted(want)}")
        if report.worst > tol:
            raise _fail(type_name, ex, f"gradients ({'training' if train else 'inference'}) "
                                       f"differ from finite differences: {report.errors}")


def check_reference(type_name: str, ex: Example) -> None:
    """forward's kernels against ``reference_forward``: float64 to ``REF_TOL64``, float32 to
    ``REF_TOL32``; float32 gradients against float64 ones; buffers updated alike."""
    cls = get_layer_class(type_name)
    if type_name == "Input":
        return
    for train in (True, False):
        layer = build(type_name, ex)
        rng = np.random.default_rng(SEED)
        xs = layer.sample_inputs(BATCH, rng)
        params = random_state(layer, rng)
        p_ref = {k: v.copy() for k, v in params.items()}
        layer.rng = np.random.default_rng(3)
        want = layer.reference_forward([x.copy() for x in xs], p_ref, train)
        if want is None:
            if cls.kernels:
                raise _fail(type_name, ex, "declares kernels but has no reference_forward")
            continue
        results = {}
        for dtype, tol in ((np.float64, REF_TOL64), (np.float32, REF_TOL32)):
            p = {k: v.astype(dtype) for k, v in params.items()}
            layer.rng = np.random.default_rng(3)
            y = layer.forward([x.astype(dtype) for x in xs], p, train)
            err = _rel(y, want)
            if err > tol:
                raise _fail(type_name, ex, f"{np.dtype(dtype).name} forward "
                                           f"({'training' if train else 'inference'}) differs "
                                           f"from the reference by {err:.2e} (> {tol:g})")
            for k in layer.buffer_shapes():
                if _rel(p[k], p_ref[k]) > tol:
                    raise _fail(type_name, ex, f"buffer {k} updated differently from the "
                                               "reference")
            dy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
            grads = {k: np.zeros_like(p[k]) for k in layer.param_shapes()}
            results[dtype] = (layer.backward(dy, p, grads), grads)
        (dx64, g64), (dx32, g32) = results[np.float64], results[np.float32]
        pairs = [(f"x{i}", a, b) for i, (a, b) in enumerate(zip(dx32, dx64)) if b is not None]
        pairs += [(k, g32[k], g64[k]) for k in g64]
        for name, a, b in pairs:
            if _rel(a, b) > 10 * REF_TOL32:
                raise _fail(type_name, ex, f"float32 gradient {name} differs from float64 by "
                                           f"{_rel(a, b):.2e}")


def check_save_load(type_name: str, ex: Example, tmp_path: Path) -> None:
    """The model file round trip keeps the params; a bundle keeps the weights."""
    from .bundle import load_bundle, save_bundle

    doc = layer_doc(type_name, ex)
    graph = Graph.from_dict(doc)
    again = Graph.from_dict(json.loads(graph.to_json()))
    for nid, node in graph.nodes.items():
        cls = get_layer_class(node.type)
        if cls.resolve_params(again.nodes[nid].params) != cls.resolve_params(node.params):
            raise _fail(type_name, ex, f"node {nid} changes in the file round trip")
    net = model_net(type_name, ex)
    xs = model_inputs(net, type_name, ex)
    want = _forward(net, xs)
    path = save_bundle(Path(tmp_path) / f"{type_name}.nbmodel", net)
    loaded = load_bundle(path).net
    got = _forward(loaded, xs)
    for k in want:
        if not np.array_equal(got[k], want[k]):
            raise _fail(type_name, ex, f"output {k} changes after a bundle round trip")


def _refused(type_name: str, ex: Example, fn: Any, what: str) -> None:
    try:
        fn()
    except NetBuilderError as exc:
        if type_name not in str(exc):
            raise _fail(type_name, ex, f"{what} refused without naming the layer: {exc}") \
                from None
        return
    raise _fail(type_name, ex, f"has no {what} hook, yet {what} did not refuse it")


def onnx_model(net: Network) -> Any:
    from .export.onnx_export import build_onnx
    return build_onnx(net)


def run_onnx(model: Any, xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, xs)))


def check_onnx_export(type_name: str, ex: Example) -> None:
    """The exported model computes what the engine computes (onnxruntime, inference)."""
    net = model_net(type_name, ex)
    if not get_layer_class(type_name).capabilities().onnx_export:
        _refused(type_name, ex, lambda: onnx_model(net), "ONNX export")
        return
    xs = model_inputs(net, type_name, ex)
    want = _forward(net, xs)
    got = run_onnx(onnx_model(net), xs)
    for k, ref in want.items():
        if _rel(got[k], ref) > EXPORT_TOL:
            raise _fail(type_name, ex, f"onnxruntime output {k} differs by {_rel(got[k], ref):.2e}")


def check_onnx_import(type_name: str, ex: Example) -> None:
    """Export then import: the same layer with the same params, the same outputs."""
    from .export.onnx_import import import_onnx

    cls = get_layer_class(type_name)
    net = model_net(type_name, ex)
    if not cls.capabilities().onnx_export:
        return
    model = onnx_model(net)
    if not cls.capabilities().onnx_import:
        _refused(type_name, ex, lambda: import_onnx(model), "ONNX import")
        return
    graph, state = import_onnx(model)
    imported = Network(graph, seed=0)
    orig = net.layers[_node_of(type_name)]
    same = [layer for layer in imported.layers.values() if layer.type_name == type_name
            and layer.out_shape == orig.out_shape and layer.param_shapes() == orig.param_shapes()
            and layer.buffer_shapes() == orig.buffer_shapes()]
    if not same:  # (params may be spelt differently: padding 1 for "same", stride = pool size)
        found = {n.id: (n.type, n.params) for n in graph.nodes.values()}
        raise _fail(type_name, ex, f"the imported graph has no {type_name} like {orig.p}: "
                                   f"{found}")
    imported.load_state_dict(state, strict=False)
    xs = model_inputs(net, type_name, ex)
    if set(imported.input_ids) != set(xs) or set(imported.output_ids) != set(net.output_ids):
        raise _fail(type_name, ex, f"the imported model has inputs {imported.input_ids} and "
                                   f"outputs {imported.output_ids}")
    want = _forward(net, xs)
    got = _forward(imported, xs)
    for k, ref in want.items():
        if _rel(got[k], ref) > EXPORT_TOL:
            raise _fail(type_name, ex, f"the imported model's output {k} differs by "
                                       f"{_rel(got[k], ref):.2e}")


def _node_of(type_name: str) -> str:
    return {"Input": "in", "Output": "out"}.get(type_name, "n")


def check_pytorch_export(type_name: str, ex: Example, tmp_path: Path) -> None:
    """The generated PyTorch module computes what the engine computes (eval mode)."""
    import torch

    from .export.pytorch_export import export_pytorch

    net = model_net(type_name, ex)
    folder = Path(tmp_path) / f"torch_{type_name}_{abs(hash(ex.name)) % 10**8}"
    folder.mkdir(parents=True, exist_ok=True)
    if not get_layer_class(type_name).capabilities().pytorch_export:
        _refused(type_name, ex, lambda: export_pytorch(net, folder / "model.py"),
                 "PyTorch export")
        return
    report = export_pytorch(net, folder / "model.py")
    spec = importlib.util.spec_from_file_location(f"nb_contract_{folder.name}", report["script"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model_cls = next(v for v in vars(mod).values() if isinstance(v, type)
                     and issubclass(v, torch.nn.Module) and v.__module__ == mod.__name__)
    model = mod.load_weights(model_cls()).eval()
    xs = model_inputs(net, type_name, ex)
    want = _forward(net, xs)
    with torch.no_grad():
        got = model(*[torch.from_numpy(xs[i]) for i in net.input_ids])
    got = got if isinstance(got, dict) else {net.output_ids[0]: got}
    for k, ref in want.items():
        if _rel(got[k].numpy(), ref) > EXPORT_TOL:
            raise _fail(type_name, ex, f"torch output {k} differs by "
                                       f"{_rel(got[k].numpy(), ref):.2e}")


def check_layer_contract(type_name: str, ex: Example, tmp_path: Path,
                         exports: bool = True) -> None:
    """Every check but warm-up coverage, for one example (exports need onnx, onnxruntime
    and torch)."""
    check_shapes(type_name, ex)
    check_gradients(type_name, ex)
    check_reference(type_name, ex)
    check_save_load(type_name, ex, tmp_path)
    if exports:
        check_onnx_export(type_name, ex)
        check_onnx_import(type_name, ex)
        check_pytorch_export(type_name, ex, tmp_path)


# ----- warm-up coverage (in a fresh interpreter) ---------------------------------------------
def _dispatchers() -> dict[str, Any]:
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from . import kernels

    out = {}
    for info in pkgutil.iter_modules(kernels.__path__):
        mod = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.__name__:
                out[f"{info.name}.{name}"] = obj
    return out


def _kernel_name(fn: Any) -> str:
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{getattr(fn, '__name__', repr(fn))}"


def _coverage_here() -> dict[str, list[str]]:
    """Run ``warmup()``, then every example; per type, the kernels that still compiled and
    the declared kernels warm-up left without a float32 variant."""
    from .gradcheck import random_batch
    from .optim import SGD
    from .warmup import example_doc, warmup

    warmup()
    disp = _dispatchers()
    out: dict[str, list[str]] = {}
    for name, cls in layer_types().items():
        problems = []
        for fn in cls.kernels:
            sigs = getattr(fn, "signatures", None)
            if sigs is not None and not any("float32" in str(s) for s in sigs):
                problems.append(f"{_kernel_name(fn)} not compiled by warm-up")
        for ex in cls.examples:
            before = {k: len(d.signatures) for k, d in disp.items()}
            for fuse in (True, False):
                net = Network(Graph.from_dict(example_doc(name, ex)), seed=0, fuse=fuse)
                xs, ys = random_batch(net, 4, np.random.default_rng(0))
                xs = {k: v.astype(np.float32) for k, v in xs.items()}
                net.train_step(xs, ys, SGD(lr=1e-3, momentum=0.9))
                o = net.forward(xs)
                net.backward({k: np.ones_like(v) for k, v in o.items()} if isinstance(o, dict)
                             else np.ones_like(o))
            problems += [f"{k} compiled after warm-up by example {ex.name}"
                         for k, d in disp.items() if len(d.signatures) > before[k]]
        out[name] = problems
    return out


def warmup_coverage(timeout: float = 1800) -> dict[str, list[str]]:
    """``_coverage_here`` in a fresh interpreter (nothing compiled yet in it): per registered
    type, its warm-up problems (empty when warm-up covers it)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run([sys.executable, "-m", "engine.testing", "warmup-coverage"],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ContractError(f"warm-up coverage run failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    if argv[:1] == ["warmup-coverage"]:
        print(json.dumps(_coverage_here()))
        return 0
    print("usage: python -m engine.testing warmup-coverage", file=sys.stderr)
    return 2


if __name__ == "__main__":  # python -m engine.testing: runpy has imported engine (cache folder)
    sys.exit(main(sys.argv[1:]))

"""Small models covering every layer type and option, shared by the export/import tests.

``CASES[type_name]`` lists (case id, model document): the hand-written cases below, and for
any registered type without them its own ``examples`` (``engine.testing.layer_doc``), so a
new layer type is exported and imported here without an entry. ``STOCHASTIC`` names cases
whose training step draws random numbers (dropout), so only their inference is compared."""
import itertools
import json
from pathlib import Path

import numpy as np
from graphdocs import chain_doc, graph_doc

import engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "resources" / "examples").glob("*.json"))


def chain(shape, layers, loss="mse", name="case"):
    doc = chain_doc(shape, layers, loss)
    doc["name"] = name
    return doc


def _rnn_cases(type_name):
    out = []
    for direction, seq, merge in itertools.product(("forward", "backward", "bidirectional"),
                                                   (True, False), ("sum", "concat")):
        if direction != "bidirectional" and merge == "concat":
            continue
        params = {"units": 4, "direction": direction, "return_sequences": seq, "merge": merge}
        cid = f"{direction}-{'seq' if seq else 'last'}-{merge}"
        out.append((cid, chain((5, 3), [(type_name, params)])))
    return out


def _stn_doc(out_size=None, theta_input=False):
    params = {} if out_size is None else {"out_size": list(out_size)}
    if theta_input:
        nodes = [("img", "Input", {"shape": [2, 6, 7]}), ("theta", "Input", {"shape": [6]}),
                 ("stn", "SpatialTransformer", params), ("out", "Output", {"loss": "mse"})]
        edges = [("img", "stn", 0), ("theta", "stn", 1), ("stn", "out")]
    else:
        nodes = [("img", "Input", {"shape": [2, 6, 7]}), ("flat", "Flatten", {}),
                 ("loc", "Dense", {"units": 6}), ("stn", "SpatialTransformer", params),
                 ("out", "Output", {"loss": "mse"})]
        edges = [("img", "flat"), ("flat", "loc"), ("img", "stn", 0), ("loc", "stn", 1),
                 ("stn", "out")]
    return graph_doc(nodes, edges, name="stn")


def _merge_docs():
    add3 = graph_doc(
        [("in", "Input", {"shape": [5]}), ("a", "Dense", {"units": 4}),
         ("b", "Dense", {"units": 4}), ("c", "Dense", {"units": 4}), ("sum", "Add", {}),
         ("out", "Output", {"loss": "mse"})],
        [("in", "a"), ("in", "b"), ("in", "c"), ("a", "sum", 0), ("b", "sum", 1),
         ("c", "sum", 2), ("sum", "out")], name="add3")
    add2 = graph_doc(
        [("in", "Input", {"shape": [2, 4, 4]}), ("conv", "Conv2D", {"filters": 2,
                                                                    "kernel_size": 3,
                                                                    "padding": 1}),
         ("res", "Add", {}), ("out", "Output", {"loss": "mse"})],
        [("in", "conv"), ("in", "res", 0), ("conv", "res", 1), ("res", "out")], name="add2")
    cat_img = graph_doc(
        [("in", "Input", {"shape": [2, 5, 5]}),
         ("c1", "Conv2D", {"filters": 3, "kernel_size": 1}),
         ("c2", "Conv2D", {"filters": 2, "kernel_size": 3, "padding": "same"}),
         ("cat", "Concat", {}), ("out", "Output", {"loss": "mse"})],
        [("in", "c1"), ("in", "c2"), ("c1", "cat", 0), ("c2", "cat", 1), ("cat", "out")],
        name="concat_channels")
    cat_seq = graph_doc(
        [("in", "Input", {"shape": [3, 4]}), ("d", "Dense", {"units": 2}),
         ("cat", "Concat", {"axis": -1}), ("out", "Output", {"loss": "mse"})],
        [("in", "d"), ("in", "cat", 0), ("d", "cat", 1), ("cat", "out")], name="concat_last")
    return add2, add3, cat_img, cat_seq


_ADD2, _ADD3, _CAT_IMG, _CAT_SEQ = _merge_docs()

CASES = {
    "Input": [("identity", chain((3,), []))],
    "Output": [
        ("ce", chain((4,), [("Dense", {"units": 3})], "cross_entropy")),
        ("bce", chain((4,), [("Dense", {"units": 2})], "bce")),
        ("two-heads", graph_doc(
            [("in", "Input", {"shape": [4]}), ("h", "Dense", {"units": 5}), ("r", "Tanh", {}),
             ("cls", "Dense", {"units": 3}), ("reg", "Dense", {"units": 1}),
             ("out_cls", "Output", {"loss": "cross_entropy"}),
             ("out_reg", "Output", {"loss": "mse", "weight": 0.5, "target": "size"})],
            [("in", "h"), ("h", "r"), ("r", "cls"), ("r", "reg"), ("cls", "out_cls"),
             ("reg", "out_reg")], name="multitask")),
        ("autoencoder", graph_doc(
            [("in", "Input", {"shape": [6]}), ("enc", "Dense", {"units": 2}),
             ("dec", "Dense", {"units": 6}), ("out", "Output", {"loss": "mse", "target": "x"})],
            [("in", "enc"), ("enc", "dec"), ("dec", "out")], name="autoencoder")),
    ],
    "Dense": [
        ("vector", chain((5,), [("Dense", {"units": 4})])),
        ("vector-nobias", chain((5,), [("Dense", {"units": 3, "bias": False})])),
        ("sequence", chain((3, 5), [("Dense", {"units": 4})])),
        ("sequence-nobias", chain((3, 5), [("Dense", {"units": 2, "bias": False})])),
    ],
    "Flatten": [("image", chain((2, 3, 4), [("Flatten", {})]))],
    "Reshape": [("to-seq", chain((12,), [("Reshape", {"shape": [3, 4]})])),
                ("image", chain((2, 3, 4), [("Reshape", {"shape": [4, 6]})]))],
    "Conv2D": [
        ("same-stride2", chain((2, 7, 7), [("Conv2D", {"filters": 3, "kernel_size": 3,
                                                       "stride": 2, "padding": "same"})])),
        ("same-even-kernel", chain((2, 6, 5), [("Conv2D", {"filters": 2, "kernel_size": 2,
                                                           "padding": "same"})])),
        ("pad1", chain((2, 6, 6), [("Conv2D", {"filters": 3, "kernel_size": 3, "padding": 1})])),
        ("rect-valid-nobias", chain((1, 6, 8), [("Conv2D", {"filters": 2, "kernel_size": [2, 3],
                                                            "stride": [1, 2],
                                                            "bias": False})])),
    ],
    "MaxPool2D": [
        ("valid", chain((2, 6, 6), [("MaxPool2D", {"pool_size": 2})])),
        ("same", chain((2, 7, 5), [("MaxPool2D", {"pool_size": 2, "padding": "same"})])),
        ("pad1-stride2", chain((2, 7, 7), [("MaxPool2D", {"pool_size": 3, "stride": 2,
                                                          "padding": 1})])),
    ],
    "AvgPool2D": [
        ("valid", chain((2, 6, 6), [("AvgPool2D", {"pool_size": 2})])),
        ("same", chain((2, 7, 5), [("AvgPool2D", {"pool_size": 2, "padding": "same"})])),
        ("same-3x3", chain((1, 5, 5), [("AvgPool2D", {"pool_size": 3, "stride": 1,
                                                      "padding": "same"})])),
        ("pad1", chain((2, 7, 7), [("AvgPool2D", {"pool_size": 3, "stride": 2,
                                                  "padding": 1})])),
    ],
    "GlobalAvgPool2D": [("image", chain((3, 4, 5), [("GlobalAvgPool2D", {})]))],
    "ReLU": [("image", chain((2, 3, 4), [("ReLU", {})]))],
    "LeakyReLU": [("vector", chain((6,), [("LeakyReLU", {"alpha": 0.2})]))],
    "PReLU": [("vector", chain((4,), [("PReLU", {})])),
              ("sequence", chain((3, 4), [("PReLU", {})])),
              ("image", chain((2, 3, 3), [("PReLU", {})]))],
    "Sigmoid": [("vector", chain((6,), [("Sigmoid", {})])),
                ("before-bce", chain((4,), [("Dense", {"units": 2}), ("Sigmoid", {})], "bce"))],
    "Tanh": [("sequence", chain((3, 4), [("Tanh", {})]))],
    "HardSigmoid": [("vector", chain((8,), [("HardSigmoid", {})]))],
    "HardTanh": [("vector", chain((8,), [("HardTanh", {"min_val": -0.5, "max_val": 0.7})]))],
    "Swish": [("silu", chain((6,), [("Swish", {})])),
              ("beta", chain((2, 3, 3), [("Swish", {"beta": 1.7})]))],
    "Softmax": [
        ("last", chain((5,), [("Softmax", {})])),
        ("axis0", chain((3, 4), [("Softmax", {"axis": 0})])),
        ("before-ce", chain((4,), [("Dense", {"units": 3}), ("Softmax", {})], "cross_entropy")),
    ],
    "BatchNorm": [("vector", chain((4,), [("BatchNorm", {"momentum": 0.8})])),
                  ("sequence", chain((3, 4), [("BatchNorm", {"eps": 1e-3})])),
                  ("image", chain((2, 3, 3), [("BatchNorm", {})]))],
    "Dropout": [("rate0.3", chain((6,), [("Dropout", {"rate": 0.3})])),
                ("rate0", chain((6,), [("Dense", {"units": 3}), ("Dropout", {"rate": 0.0})]))],
    "Add": [("residual", _ADD2), ("three", _ADD3)],
    "Concat": [("channels", _CAT_IMG), ("last-axis", _CAT_SEQ)],
    "SimpleRNN": _rnn_cases("SimpleRNN"),
    "LSTM": _rnn_cases("LSTM"),
    "GRU": _rnn_cases("GRU"),
    "Embedding": [("ids", chain((6,), [("Embedding", {"vocab": 10, "dim": 4})])),
                  ("into-lstm", chain((5,), [("Embedding", {"vocab": 7, "dim": 3}),
                                             ("LSTM", {"units": 4})]))],
    "SpatialTransformer": [("loc-net", _stn_doc()), ("out-size", _stn_doc((4, 5))),
                           ("theta-input", _stn_doc(theta_input=True))],
}
STOCHASTIC = {("Dropout", "rate0.3")}


def _registry_cases():
    """Cases from the examples of every registered type the table above leaves out."""
    from engine.testing import layer_doc
    for t, cls in engine.layer_types().items():
        if t not in CASES:
            CASES[t] = [(f"example-{ex.name}", layer_doc(t, ex)) for ex in cls.examples]
            if cls.uses_rng:
                STOCHASTIC.update((t, cid) for cid, _ in CASES[t])


_registry_cases()


def all_cases():
    """(type, case id, doc) for every case of a registered type."""
    known = engine.layer_types()
    return [(t, cid, doc) for t, cases in CASES.items() if t in known for cid, doc in cases]


def example_docs():
    return [(p.stem, json.loads(p.read_text())) for p in EXAMPLES]


def compiled(doc, seed=0):
    """A Network of ``doc`` with every parameter and buffer randomised (non-trivial values)."""
    net = engine.compile(engine.Graph.from_dict(doc), seed=seed)
    rng = np.random.default_rng(seed + 99)
    for key, arr in {**net.params, **net.buffers}.items():
        name = key.split(".", 1)[1]
        if name == "running_var":
            arr[...] = rng.uniform(0.5, 1.5, arr.shape)
        elif net.layers[key.split(".")[0]].type_name == "PReLU":
            arr[...] = rng.uniform(0.0, 0.5, arr.shape)
        elif net.layers[key.split(".")[0]].type_name == "SpatialTransformer":
            arr[...] = rng.normal(0, 0.1, arr.shape)
        else:
            scale = 0.015 if net.layers[key.split(".")[0]].type_name == "Dense" and \
                _feeds_stn(net, key.split(".")[0]) else 0.5
            arr[...] = rng.normal(0, scale, arr.shape)
    return net


def _feeds_stn(net, nid):
    return any(net.layers[c].type_name == "SpatialTransformer"
               for c, _ in net.consumers[nid])


def inputs_for(net, batch=3, seed=0):
    """Random inputs by Input id (integer ids for Inputs feeding an Embedding)."""
    rng = np.random.default_rng(seed)
    out = {}
    for iid in net.input_ids:
        shape = (batch, *net.shapes[iid])
        vocab = [net.layers[c].p["vocab"] for c, _ in net.consumers[iid]
                 if net.layers[c].type_name == "Embedding"]
        if vocab:
            out[iid] = rng.integers(0, min(vocab), shape).astype(np.float32)
        elif net.layers[net.consumers[iid][0][0]].type_name == "SpatialTransformer" and \
                net.consumers[iid][0][1] == 1:
            out[iid] = rng.normal(0, 0.2, shape).astype(np.float32)
        else:
            out[iid] = rng.normal(0, 1.5, shape).astype(np.float32)
    return out


def targets_for(net, batch=3, seed=1):
    """Random targets by target name for every Output (labels, 0/1 or reals)."""
    rng = np.random.default_rng(seed)
    ys = {}
    for oid in net.output_ids:
        p = net.layers[oid].p
        shape = net.shapes[oid]
        if p["target"] == "x":
            continue
        if p["loss"] == "cross_entropy":
            ys[p["target"]] = rng.integers(0, shape[-1], (batch, *shape[:-1]))
        elif p["loss"] == "pixel_cross_entropy":
            ys[p["target"]] = rng.integers(0, shape[0], (batch, *shape[1:]))
        elif p["loss"] == "bce":
            ys[p["target"]] = rng.integers(0, 2, (batch, *shape)).astype(np.float32)
        else:
            ys[p["target"]] = rng.normal(0, 1, (batch, *shape)).astype(np.float32)
    return ys


def as_dict(out, net):
    return out if isinstance(out, dict) else {net.output_ids[0]: out}


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-6)) if b.size else 0.0

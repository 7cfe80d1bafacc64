"""Export a model as a standalone, readable PyTorch script and its weights.

Each layer writes its own lines (``Layer.to_pytorch`` with a ``PytorchContext``).
``export_pytorch(model, "lenet5.py")`` writes ``lenet5.py`` (an ``nn.Module`` mirroring the
graph: one submodule per layer with weights, named after its node, and a ``forward`` that
follows the topological order with one local variable per node; a block is a submodule of
a class of its own, ``engine.export.pytorch_blocks``) and ``lenet5.npz`` (the
weights by NetBuilder's full names, which are the module's ``state_dict`` keys). The script
imports only numpy and torch; run as a program it trains the model on an ``.npz`` dataset,
data-parallel (DDP) under ``torchrun``. The text here is generated without torch installed.
"""

from __future__ import annotations

import io
import json
import keyword
import os
import pprint
import re
from pathlib import Path
from typing import Any

import numpy as np

from .common import ModelView, model_view, py_identifier, refuse_unsupported, write_file
from .pytorch_blocks import BlockWriter
from .pytorch_template import RUNTIME

# Attributes every nn.Module has: a submodule may not take these names.
MODULE_ATTRS = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward",
    "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu",
    "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules",
    "named_parameters", "parameters", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad"
})


class PytorchContext:
    """Names chosen for one script (submodule attribute names, local variables, renamed
    parameters); the ``ctx`` of ``Layer.to_pytorch``, with the text helpers emitters share."""

    def __init__(self, view: ModelView) -> None:
        self.view = view
        self.locals: dict[str, str] = {}
        self.renamed: dict[str, str] = {}
        taken = {"self", "torch", "nn", "F", "np", "math", "loss_inputs", "outputs", "y", "h_n",
                 "affine", "grid"}
        for nid in view.order:
            self.locals[nid] = py_identifier(nid, taken)
        self.taken = taken
        self.module_names: set[str] = set()
        self.param_names: dict[str, dict[str, str]] = {}
        self.module_path: dict[str, str] = {}  # node inside a block -> "res1.conv1"
        self.scope_name: dict[str, str] = {}  # node inside a block -> its attribute there

    def state_keys(self) -> dict[str, str]:
        """NetBuilder full name -> state_dict key, where they differ."""
        out = {}
        for key in self.view.state:
            nid, param = key.split(".", 1)
            mod = self.module_path.get(nid) or self.renamed.get(nid, nid)
            tkey = f"{mod}.{self.param_names.get(nid, {}).get(param, param)}"
            if tkey != key:
                out[key] = tkey
        return out

    def module(self, nid: str) -> tuple[str, str]:
        """(name the submodule is registered under, expression reaching it from ``self``)."""
        if nid in self.scope_name:
            return self.scope_name[nid], f"self.{self.scope_name[nid]}"
        name = nid
        if nid in MODULE_ATTRS or nid.startswith("_"):
            name = nid + "_" if not nid.startswith("_") else "n" + nid
            while name in self.view.layers:
                name += "_"
            self.renamed[nid] = name
        self.module_names.add(name)
        if name.isidentifier() and not keyword.iskeyword(name):
            return name, f"self.{name}"
        return name, f"getattr(self, {name!r})"

    def register(self, nid: str, ctor: str) -> tuple[list[str], str]:
        """Make the node's submodule ``ctor`` (e.g. ``"nn.Linear(4, 3)"``): (the ``__init__``
        lines, the expression that reaches it in ``forward``)."""
        name, ref = self.module(nid)
        if ref.startswith("self."):
            return [f"{ref} = {ctor}"], ref
        return [f"self.add_module({name!r}, {ctor})"], ref

    def rename_params(self, nid: str, names: dict[str, str]) -> None:
        """The submodule's state_dict names for the node's parameters, where they differ."""
        self.param_names[nid] = dict(names)

    @staticmethod
    def num(v: float) -> str:
        """A float literal."""
        return repr(float(v))

    @staticmethod
    def pair(v: Any) -> str:
        """An (h, w) tuple literal."""
        return f"({int(v[0])}, {int(v[1])})"

    @staticmethod
    def padding(layer: Any) -> tuple[bool, str, str]:
        """A windowed layer's padding as (symmetric?, ``padding=`` argument, ``F.pad`` tuple
        (left, right, top, bottom))."""
        t, b, l, r = layer.pads
        return t == b and l == r, f"({t}, {l})", f"({l}, {r}, {t}, {b})"


# ----- the script ---------------------------------------------------------------------------
def class_name(name: str) -> str:
    """A Python class name from a model or block name: its head (before a colon, a
    parenthesis, a dash or a comma: the shipped examples' names are sentences), at most six
    words, CamelCased."""
    head = re.split(r"[:(;,\u2014\u2013]| - ", name, maxsplit=1)[0]
    parts = re.findall(r"[A-Za-z0-9]+", head)[:6] or re.findall(r"[A-Za-z0-9]+", name)[:6]
    ident = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    return ident if ident[0].isalpha() else "Model" + ident


def _literal(value: Any) -> str:
    """A Python literal for JSON-like data, wrapped at 100 columns."""
    return pprint.pformat(json.loads(json.dumps(value)), width=88, sort_dicts=False)


def pytorch_source(model: Any, weights_file: str = "model.npz", seed: int = 0) -> str:
    """The text of the generated script for a Network, Graph or Bundle."""
    view = model if isinstance(model, ModelView) else model_view(model, seed)
    refuse_unsupported(view, "pytorch_export", "PyTorch")
    ctx = PytorchContext(view)
    src_graph = view.source
    classes: dict[str, str] = {}
    if src_graph is not None and src_graph.has_blocks() and all(
            view.loss_source(o) in src_graph.nodes for o in view.output_ids):
        writer = BlockWriter(ctx, view, MODULE_ATTRS, class_name, doc_text)
        for nid, node in src_graph.nodes.items():
            if node.block is not None:
                ctx.locals[nid] = py_identifier(nid, ctx.taken)
        init_lines, fwd_lines = writer.scope_lines("", "", src_graph.nodes, src_graph.edges,
                                                   ctx.locals)
        classes = writer.classes
    else:
        init_lines, fwd_lines = [], []
        for nid in view.order:
            layer = view.layers[nid]
            xs = [ctx.locals[s] for s in view.inputs_of[nid]]
            init, fwd = layer.to_pytorch(ctx, xs, ctx.locals[nid])
            if fwd and layer.type_name not in ("Output",):
                fwd_lines.append(f"# {nid}: {layer.type_name} -> {_shape_text(view.shapes[nid])}")
            init_lines += init
            fwd_lines += fwd
    cname = class_name(view.name)
    args = ", ".join(f"{ctx.locals[i]}: torch.Tensor" for i in view.input_ids)
    outs = view.output_ids
    src = {o: ctx.locals[view.inputs_of[o][0]] for o in outs}
    ret = src[outs[0]] if len(outs) == 1 else "{" + ", ".join(f"{o!r}: {src[o]}"
                                                               for o in outs) + "}"
    loss_in = "{" + ", ".join(f"{o!r}: {ctx.locals[view.loss_source(o)]}" for o in outs) + "}"
    fused = [o for o in outs if o in view.fused]
    lines = [f"class {cname}(nn.Module):",
             f'    """{doc_text(view.name)}: {len(view.order)} nodes, '
             f'{sum(a.size for k, a in view.state.items() if _trainable(view, k)):,} parameters.'
             '"""', "",
             "    def __init__(self) -> None:", "        super().__init__()"]
    lines += ["        " + ln for ln in init_lines] or []
    lines += ["", f"    def forward(self, {args}, loss_inputs: bool = False):",
              '        """The output(s); with ``loss_inputs``, what each Output\'s loss '
              'reads (by id)."""']
    lines += ["        " + ln for ln in fwd_lines]
    lines += ["        if loss_inputs:"]
    if fused:
        lines += [f"            # the loss of {', '.join(fused)} reads the logits (the "
                  "Softmax/Sigmoid is part of the loss)"]
    lines += [f"            return {loss_in}", f"        return {ret}"]
    body = "\n\n\n".join([*classes.values(), "\n".join(lines)])
    header = _header(view, cname, weights_file, ctx, uses_f="F." in body)
    return header + "\n\n\n" + body + "\n\n\n" + RUNTIME.replace("MODEL_CLASS", cname)


def doc_text(text: str) -> str:
    """User text made safe inside a generated docstring (one line, no quotes or escapes)."""
    return " ".join(text.replace("\\", "/").replace('"', "'").split()) or "model"


def _trainable(view: ModelView, key: str) -> bool:
    nid, name = key.split(".", 1)
    return name in view.layers[nid].param_shapes()


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(N, " + ", ".join(str(d) for d in shape) + ")"


def _header(view: ModelView, cname: str, weights_file: str, ctx: PytorchContext,
            uses_f: bool) -> str:
    stem = Path(weights_file).stem
    fields = ["x"] if len(view.input_ids) == 1 else list(view.input_ids)
    inputs = {f: list(view.shapes[i]) for f, i in zip(fields, view.input_ids)}
    heads = {o: {k: view.layers[o].p[k] for k in ("loss", "weight", "target")}
             for o in view.output_ids}
    training = {k: v for k, v in view.training.items() if k != "dataset"}
    if isinstance(training.get("batch_size"), str):
        training["batch_size"] = 0
    doc_in = ", ".join(f'"{f}" {_shape_text(tuple(s))}' for f, s in inputs.items())
    targets = sorted({h["target"] for h in heads.values() if h["target"] != "x"})
    doc_t = ", ".join(f'"{t}"' for t in targets) or "none (the model reconstructs its input)"
    return f'''"""{doc_text(view.name)}: a PyTorch model generated by NetBuilder.

Weights: {weights_file} beside this file, by NetBuilder's parameter names ("<node>.<param>"),
which are this module's state_dict keys.

Use it:
    from {py_identifier(stem)} import {cname}, load_weights
    model = load_weights({cname}()).eval()
    y = model({", ".join(ctx.locals[i] for i in view.input_ids)})

Train it, on one process or data-parallel (DDP) with torchrun:
    python {stem}.py --data DATA.npz --epochs 10
    torchrun --nproc-per-node 4 {stem}.py --data DATA.npz
DATA.npz holds the inputs {doc_in}, the targets {doc_t}, and optionally "x_test" and the
targets with a "_test" suffix, as NetBuilder reads them. --batch-size is per process.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
{"import torch.nn.functional as F" + chr(10) if uses_f else ""}from torch import nn

WEIGHTS = Path(__file__).resolve().with_name({weights_file!r})
INPUTS = {_literal(inputs)}
OUTPUTS = {_literal(heads)}
TRAINING = {_literal(training)}
PREPROCESS = {_literal(view.preprocess)}
STATE_KEYS = {_literal(ctx.state_keys())}'''


def export_pytorch(model: Any, path: str | os.PathLike, seed: int = 0,
                   data: Any = None) -> dict[str, Any]:
    """Write the script at ``path`` (``.py``) and its weights beside it (same stem, ``.npz``).

    ``data``: optionally a Dataset to save beside them as ``<stem>_data.npz`` in the layout
    the script reads. Returns ``{"script", "weights", "data", "bytes"}``."""
    import time
    t0 = time.perf_counter()
    p = Path(path)
    if p.suffix != ".py":
        p = p.with_suffix(".py")
    view = model if isinstance(model, ModelView) else model_view(model, seed)
    weights = p.with_suffix(".npz")
    source = pytorch_source(view, weights.name, seed)
    buf = io.BytesIO()
    np.savez(buf, **view.state)
    write_file(weights, buf.getvalue())
    write_file(p, source.encode("utf-8"))
    data_path = None
    if data is not None:
        data_path = p.with_name(p.stem + "_data.npz")
        save_dataset_npz(data, data_path, view)
    return {"script": str(p), "weights": str(weights), "data": str(data_path) if data_path else
            None, "bytes": len(source.encode()) + len(buf.getvalue()),
            "seconds": time.perf_counter() - t0}


def save_dataset_npz(ds: Any, path: str | os.PathLike, view: ModelView | None = None) -> None:
    """Save a Dataset as the ``.npz`` NetBuilder and the generated script read: its arrays,
    the test part with a ``_test`` suffix, ``class_names`` when known."""
    arrays = dict(ds.arrays)
    if ds.test is not None:
        arrays.update({f"{k}_test": v for k, v in ds.test.arrays.items()})
    if ds.class_names:
        arrays["class_names"] = np.asarray(ds.class_names, dtype=str)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_file(Path(path), buf.getvalue())

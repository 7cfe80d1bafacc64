"""The peers a training step is compared with, each set up at its best, and the count of
executed work that GFLOP/s are computed from.

Every peer trains the same architecture from the same initial weights: the PyTorch ones run
the module the project's PyTorch exporter writes for the graph (``engine.export``); the JAX
one interprets the compiled network's nodes. One step = forward + softmax cross-entropy +
backward + SGD-momentum update (lr 0.01, momentum 0.9), float32, on a fixed batch.

- ``torch eager``: default (NCHW contiguous) layout, ``torch.optim.SGD`` as constructed by
  default;
- ``torch channels_last``: model and batch in channels_last memory format, SGD with
  ``foreach=True`` (one multi-tensor update);
- ``torch.compile``: the model compiled by inductor (forward and backward graphs; the
  first call compiles), channels_last and foreach SGD as above. Needs a C compiler: when it
  cannot compile, ``make_peers`` says why and leaves it out;
- ``jax.jit``: a whole train step (forward, backward, update) jitted by XLA on NHWC data,
  buffers donated. Only when ``jax`` is installed (it is never a runtime dependency).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import engine

LR, MOMENTUM = 0.01, 0.9
_count = itertools.count()


# ----- executed work -------------------------------------------------------------------------
def executed_macs(net: engine.Network) -> int:
    """Multiply-adds per sample of one training step that are actually executed.

    Forward: every layer's ``macs()``. Backward: a layer with parameters computes their
    gradient (as many multiply-adds as its forward) and, unless its step skips it because
    nothing upstream learns (``Step.needs_input_grad``: the first conv of a model), the
    gradient of its input (as many again); a layer without parameters computes its input
    gradient only where it is needed. PyTorch and JAX skip the same input gradient (the batch
    does not require grad), so the count is the same for every library."""
    total = 0
    for st in net.plan.steps:
        for i, nid in enumerate(st.ids):
            layer = net.layers[nid]
            m = layer.macs()
            total += m
            if layer.param_shapes():
                total += m
            if i > 0 or st.needs_input_grad:
                total += m
    return total


# ----- PyTorch -------------------------------------------------------------------------------
def torch_module(torch: Any, net: engine.Network) -> Any:
    """The exporter's ``nn.Module`` for ``net`` with ``net``'s current weights loaded."""
    from engine.export.pytorch_export import export_pytorch

    with tempfile.TemporaryDirectory() as tmp:
        report = export_pytorch(net, Path(tmp) / "peer_model.py")
        spec = importlib.util.spec_from_file_location(f"nb_peer_{next(_count)}",
                                                      report["script"])
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        cls = next(v for k, v in vars(mod).items()
                   if isinstance(v, type) and issubclass(v, torch.nn.Module)
                   and v.__module__ == mod.__name__)
        model = mod.load_weights(cls(), report["weights"])
    return model.train()


def torch_step(torch: Any, net: engine.Network, x: np.ndarray, y: np.ndarray,
               channels_last: bool = False, foreach: bool | None = None,
               compiled: bool = False) -> Callable[[], None]:
    """A PyTorch train step on the exported module (see the module note)."""
    model = torch_module(torch, net)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if channels_last and xt.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, foreach=foreach)
    fwd = torch.compile(model) if compiled else model
    loss_fn = torch.nn.functional.cross_entropy

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(fwd(xt), yt)
        loss.backward()
        opt.step()

    return step


# ----- JAX -----------------------------------------------------------------------------------
def jax_step(net: engine.Network, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """A jitted JAX train step interpreting ``net``'s nodes (images as NHWC), with ``net``'s
    weights. Raises NotImplementedError for a layer type it has no rule for."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    params: dict[str, Any] = {}
    buffers: dict[str, Any] = {}
    for key, arr in net.params.items():
        nid, name = key.split(".", 1)
        layer = net.layers[nid]
        if layer.type_name == "Conv2D" and name == "weight":
            arr = arr.transpose(2, 3, 1, 0)  # HWIO
        params[key] = jnp.asarray(arr)
    for key, arr in net.buffers.items():
        buffers[key] = jnp.asarray(arr)
    order = [n for n in net.order if net.layers[n].type_name not in ("Input", "Output")]
    srcs = {n: net.inputs_of[n] for n in order}
    logits_id = net.inputs_of[net.output_ids[0]][0]

    def apply(p, bufs, xb):
        acts = {net.input_ids[0]: xb}
        new_bufs = {}
        for nid in order:
            layer = net.layers[nid]
            t, q = layer.type_name, layer.p
            xs = [acts[s] for s in srcs[nid]]
            a = xs[0]
            if t == "Conv2D":
                pt, pb, pl, pr = layer.pads
                out = lax.conv_general_dilated(a, p[f"{nid}.weight"], tuple(q["stride"]),
                                               ((pt, pb), (pl, pr)),
                                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
                if q["bias"]:
                    out = out + p[f"{nid}.bias"]
            elif t == "BatchNorm":
                axes = tuple(range(a.ndim - 1))  # channels last in NHWC and (N, F)
                mean = a.mean(axes)
                var = a.var(axes)
                out = (a - mean) * lax.rsqrt(var + q["eps"]) * p[f"{nid}.weight"] \
                    + p[f"{nid}.bias"]
                count = a.size // a.shape[-1]
                m = q["momentum"]
                new_bufs[f"{nid}.running_mean"] = m * bufs[f"{nid}.running_mean"] + (1 - m) * mean
                new_bufs[f"{nid}.running_var"] = (m * bufs[f"{nid}.running_var"]
                                                  + (1 - m) * var * count / (count - 1))
            elif t == "ReLU":
                out = jnp.maximum(a, 0)
            elif t == "Add":
                out = sum(xs[1:], xs[0])
            elif t == "GlobalAvgPool2D":
                out = a.mean((1, 2))
            elif t == "MaxPool2D":
                k, s = tuple(q["pool_size"]), tuple(q["stride"] or q["pool_size"])
                if q["padding"] != "valid":
                    raise NotImplementedError("padded MaxPool2D")
                out = lax.reduce_window(a, -jnp.inf, lax.max, (1, *k, 1), (1, *s, 1), "VALID")
            elif t == "Flatten":
                out = (a.transpose(0, 3, 1, 2) if a.ndim == 4 else a).reshape(a.shape[0], -1)
            elif t == "Dense":
                out = a @ p[f"{nid}.weight"].T
                if q["bias"]:
                    out = out + p[f"{nid}.bias"]
            else:
                raise NotImplementedError(f"no JAX rule for {t}")
            acts[nid] = out
        return acts[logits_id], new_bufs

    def loss_fn(p, bufs, xb, yb):
        logits, new_bufs = apply(p, bufs, xb)
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, yb[:, None], 1).mean(), new_bufs

    @jax.jit
    def train(p, v, bufs, xb, yb):
        (loss, new_bufs), g = jax.value_and_grad(loss_fn, has_aux=True)(p, bufs, xb, yb)
        v = jax.tree_util.tree_map(lambda vi, gi: MOMENTUM * vi + gi, v, g)
        p = jax.tree_util.tree_map(lambda pi, vi: pi - LR * vi, p, v)
        return p, v, {**bufs, **new_bufs}, loss

    train = jax.jit(train.__wrapped__, donate_argnums=(0, 1, 2))
    xj = jnp.asarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x)
    yj = jnp.asarray(y.astype(np.int32))
    state = [params, jax.tree_util.tree_map(jnp.zeros_like, params), buffers]

    def step() -> None:
        p, v, b, loss = train(state[0], state[1], state[2], xj, yj)
        state[:] = [p, v, b]
        loss.block_until_ready()

    return step


# ----- all peers -----------------------------------------------------------------------------
def make_peers(torch: Any, net: engine.Network, x: np.ndarray, y: np.ndarray,
               compile_torch: bool = True, use_jax: bool = True,
               log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)
               ) -> dict[str, Callable[[], None]]:
    """name -> train step of every peer that can run here (each called once, so compiling
    peers compile now); a peer that cannot is left out and ``log`` says why."""
    peers: dict[str, Callable[[], None]] = {}
    makers: list[tuple[str, Callable[[], Callable[[], None]]]] = []
    if torch is not None:
        makers += [
            ("torch eager", lambda: torch_step(torch, net, x, y)),
            ("torch channels_last", lambda: torch_step(torch, net, x, y, channels_last=True,
                                                       foreach=True)),
        ]
        if compile_torch:
            makers.append(("torch.compile", lambda: torch_step(torch, net, x, y,
                                                               channels_last=True,
                                                               foreach=True, compiled=True)))
    if use_jax and importlib.util.find_spec("jax") is not None:
        makers.append(("jax.jit", lambda: jax_step(net, x, y)))
    elif use_jax:
        log("# jax.jit: jax is not installed (pip install jax jaxlib), left out")
    for name, make in makers:
        try:
            step = make()
            step()
        except Exception as exc:  # a peer that cannot run here is reported, not fatal
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            log(f"# {name} left out for {net.graph.name}: {last[:300]}")
            continue
        peers[name] = step
    return peers

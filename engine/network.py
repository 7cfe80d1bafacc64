"""Network: a compiled graph that runs forward, backward and training steps on batches."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import DataError, NetBuilderError, TrainingError
from .fusion import plan_execution
from .graph import Graph, fmt_bytes
from .heap import keep_freed_pages
from .hooks import BackwardEvent, BackwardHook, ForwardHook, HookHandle, Hooks
from .kernels.conv import OneThreadBlas
from .losses import compute_loss
from .optim import Optimizer
from .plan import ExecutionPlan, Step
from .registry import Layer, fmt_shape
from .threads import current as current_threads
from .threads import sync as sync_threads

ArrayOrDict = np.ndarray | dict[str, np.ndarray]
ALIGN = 16  # elements: each parameter starts 64 bytes into the flat vector (float32)


def node_seed(seed: int, node_id: str) -> np.random.Generator:
    """The generator that initialises one node: same seed and id, same weights, whatever
    else the graph holds."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(node_id.encode())])


class Network:
    """A graph compiled to layer instances with their parameters.

    ``params`` / ``grads``: trainable arrays by full name ``"<node>.<param>"`` (same keys);
    ``buffers``: non-trainable state (BatchNorm running statistics). Updates are in place, so
    the arrays may be held by views (the monitor, the optimizer). They are themselves views of
    two flat vectors, ``flat_params`` and ``flat_grads`` (M,), so that an optimizer step is one
    pass over all of them (the gaps between parameters stay zero). ``acts``: every node's output
    of the last forward; arrays of fused chains are reused by the next forward of the same
    batch size, so copy what you keep. ``plan``: the execution plan (``engine.plan``, built
    by ``engine.fusion``), ``steps`` its steps; ``fuse=False`` runs every node through its
    own layer. ``add_hook`` lets a monitor see every node's output and gradient
    (``engine.hooks``). ``graph`` is the model as it runs, blocks flattened (node ids
    derived, ``engine.blocks``); ``source_graph`` the model as given (what bundles store).
    """

    def __init__(self, graph: Graph, seed: int = 0, dtype: Any = np.float32,
                 fuse: bool = True) -> None:
        keep_freed_pages()
        self.source_graph = graph.copy()
        self.graph = self.source_graph.flatten() if graph.has_blocks() else self.source_graph
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        self.layers: dict[str, Layer] = self.graph.build_layers()
        self.order = list(self.layers)
        self.shapes = {nid: layer.out_shape for nid, layer in self.layers.items()}
        self.inputs_of = {nid: [e.src for e in self.graph.in_edges(nid)] for nid in self.order}
        self.consumers: dict[str, list[tuple[str, int]]] = {nid: [] for nid in self.order}
        for e in self.graph.edges:
            self.consumers[e.src].append((e.dst, e.port))
        self.input_ids = [n for n in self.order if self.layers[n].type_name == "Input"]
        self.output_ids = [n for n in self.order if self.layers[n].type_name == "Output"]
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._local: dict[str, dict[str, np.ndarray]] = {}
        self._local_grads: dict[str, dict[str, np.ndarray]] = {}
        self.rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 7])
        fresh: dict[str, dict[str, np.ndarray]] = {}
        offsets: dict[str, int] = {}
        size = 0
        for nid in self.order:
            layer = self.layers[nid]
            layer.rng = self.rng
            fresh[nid] = layer.init_params(node_seed(self.seed, nid))
            for name in layer.param_shapes():
                offsets[f"{nid}.{name}"] = size
                size += -(-int(np.asarray(fresh[nid][name]).size) // ALIGN) * ALIGN
        self.offsets = offsets  # "<node>.<param>" -> where it starts in the flat vectors
        self.flat_params = np.zeros(size, self.dtype)
        self.flat_grads = np.zeros(size, self.dtype)
        for nid in self.order:
            trainable = set(self.layers[nid].param_shapes())
            local: dict[str, np.ndarray] = {}
            local_g: dict[str, np.ndarray] = {}
            for name, arr in fresh[nid].items():
                key = f"{nid}.{name}"
                arr = np.asarray(arr)
                if name in trainable:
                    at = offsets[key]
                    p = self.flat_params[at:at + arr.size].reshape(arr.shape)
                    p[...] = arr
                    g = self.flat_grads[at:at + arr.size].reshape(arr.shape)
                    local[name] = self.params[key] = p
                    local_g[name] = self.grads[key] = g
                else:
                    local[name] = self.buffers[key] = np.array(arr, dtype=self.dtype,
                                                               order="C")
            self._local[nid] = local
            self._local_grads[nid] = local_g
        self.acts: dict[str, np.ndarray] = {}
        self.last_losses: dict[str, float] = {}
        self.last_metrics: dict[str, dict[str, float]] = {}
        self.loss_logits = self._fused_loss_sources()
        self._loss_skip = set(self.loss_logits)
        self._loss_skip.update(self.inputs_of[oid][0] for oid in self.loss_logits)
        self._memory_ok: set[int] = set()
        self.fuse = bool(fuse)
        self.frozen: set[str] = set()
        self.lr_mults: dict[str, float] = {}
        self._read_training_keys()
        self.plan: ExecutionPlan = plan_execution(self, self._local, self._local_grads,
                                                  fuse=self.fuse)
        self._input_set = frozenset(self.input_ids)
        self._ports = {nid: tuple(e.port for e in self.graph.in_edges(nid)) for nid in self.order}
        self.hooks = Hooks()

    def _read_training_keys(self) -> None:
        """``frozen`` (nodes with parameters whose ``trainable`` is false) and ``lr_mults``
        (each node's learning-rate multiplier, 0 when frozen) from the graph's nodes."""
        self.frozen = {nid for nid in self.order
                       if self._local_grads[nid] and not self.graph.nodes[nid].trainable}
        self.lr_mults = {nid: 0.0 if nid in self.frozen else self.graph.nodes[nid].lr_mult
                         for nid in self.order if self._local_grads[nid]}

    def set_training(self, node_id: str, trainable: bool | None = None,
                     lr_mult: float | None = None) -> None:
        """Freeze or thaw a node and/or set its learning-rate multiplier in this network
        (and its graph) between steps. A node frozen here has its gradients zeroed."""
        self.graph.set_training(node_id, trainable, lr_mult)
        self._read_training_keys()
        self.plan.set_frozen(self.frozen)
        for nid in self.frozen:
            for g in self._local_grads[nid].values():
                g.fill(0)

    def lr_segments(self) -> list[tuple[int, int, float]] | None:
        """Ranges ``(start, stop, multiplier)`` of the flat vectors, in order and covering
        them, where a node's learning rate differs from the run's; None when none does."""
        if all(m == 1.0 for m in self.lr_mults.values()):
            return None
        segs: list[tuple[int, int, float]] = []
        starts = [(self.offsets[f"{nid}.{next(iter(self._local_grads[nid]))}"], m)
                  for nid, m in self.lr_mults.items()]
        starts.sort()
        for i, (a, m) in enumerate(starts):
            b = starts[i + 1][0] if i + 1 < len(starts) else self.flat_params.size
            if segs and segs[-1][2] == m:
                segs[-1] = (segs[-1][0], b, m)
            else:
                segs.append((a, b, m))
        return segs

    @property
    def steps(self) -> list[Step]:
        """The execution plan's steps, in order."""
        return self.plan.steps

    def add_hook(self, on_forward: ForwardHook | None = None,
                 on_backward: BackwardHook | None = None) -> HookHandle:
        """Call ``on_forward(node_id, output)`` after every node's forward and
        ``on_backward(event)`` after every backward step (``engine.hooks``); returns a
        handle whose ``remove()`` stops it."""
        return self.hooks.add(on_forward, on_backward)

    # ----- description ---------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"Network({self.graph.name!r}, {len(self.order)} nodes, "
                f"{self.param_count():,} parameters)")

    def param_count(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def macs(self) -> int:
        return int(sum(layer.macs() for layer in self.layers.values()))

    def _fused_loss_sources(self) -> dict[str, str]:
        """Output id -> node whose output is the loss's logits.

        A layer whose ``folds_into_loss()`` names the Output's loss (a Softmax before a
        cross-entropy Output, a Sigmoid before a bce one) is fused into the loss: the loss
        reads the logits and the layer's backward is skipped, so a user who draws the Softmax
        still gets a correct, stable gradient."""
        fused = {}
        for oid in self.output_ids:
            src = self.inputs_of[oid][0]
            kind = self.layers[oid].p["loss"]
            if self.layers[src].folds_into_loss() == kind and len(self.consumers[src]) == 1:
                fused[oid] = self.inputs_of[src][0]
        return fused

    # ----- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers by full name."""
        return {k: v.copy() for k, v in {**self.params, **self.buffers}.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays into the network in place; shapes must match."""
        targets = {**self.params, **self.buffers}
        if strict:
            missing = sorted(set(targets) - set(state))
            extra = sorted(set(state) - set(targets))
            if missing or extra:
                raise NetBuilderError(
                    "weights do not fit this model: "
                    + (f"missing {', '.join(missing[:5])}" if missing else "")
                    + ("; " if missing and extra else "")
                    + (f"unexpected {', '.join(extra[:5])}" if extra else ""))
        for k, arr in state.items():
            if k not in targets:
                continue
            arr = np.asarray(arr)
            if arr.shape != targets[k].shape:
                raise NetBuilderError(f"weights for {k} have shape {fmt_shape(arr.shape)}, the "
                                      f"model needs {fmt_shape(targets[k].shape)}",
                                      k.split(".")[0])
            targets[k][...] = arr

    def astype(self, dtype: Any) -> Network:
        """A copy of this network computing in ``dtype`` (float64 for gradient checks)."""
        other = Network(self.source_graph, self.seed, dtype, fuse=self.fuse)
        other.load_state_dict(self.state_dict())
        return other

    # ----- forward / backward --------------------------------------------------------------
    def _as_inputs(self, x: ArrayOrDict) -> dict[str, np.ndarray]:
        if isinstance(x, Mapping):
            xs = dict(x)
            missing = [i for i in self.input_ids if i not in xs]
            if missing:
                raise DataError(f"no data given for Input '{missing[0]}'", missing[0])
        else:
            if len(self.input_ids) != 1:
                raise DataError(f"the model has {len(self.input_ids)} Inputs "
                                f"({', '.join(self.input_ids)}): pass a dict of arrays")
            xs = {self.input_ids[0]: x}
        out = {}
        n = None
        for iid in self.input_ids:
            a = np.asarray(xs[iid])
            want = self.shapes[iid]
            if a.dtype.kind not in "fiub":
                raise DataError(f"Input '{iid}': data must be numbers, got {a.dtype}", iid)
            if a.shape[1:] != want:
                raise DataError(f"Input '{iid}' expects samples shaped {fmt_shape(want)}, "
                                f"got a batch shaped {fmt_shape(a.shape)}", iid)
            if n is None:
                n = a.shape[0]
            elif a.shape[0] != n:
                raise DataError(f"Input '{iid}': batch of {a.shape[0]} samples, other inputs "
                                f"have {n}", iid)
            out[iid] = np.ascontiguousarray(a, dtype=self.dtype)
        self._check_memory(n or 0)
        return out

    def _check_memory(self, batch: int) -> None:
        if batch in self._memory_ok:
            return
        from .graph import available_memory_bytes
        need = 3 * batch * sum(math.prod(s) for s in self.shapes.values()) * self.dtype.itemsize
        have = available_memory_bytes()
        if need > have:
            raise DataError(f"a batch of {batch} needs about {fmt_bytes(need)} of activations; "
                            f"this machine has {fmt_bytes(have)}: use a smaller batch")
        self._memory_ok.add(batch)

    def forward(self, x: ArrayOrDict, train: bool = False) -> ArrayOrDict:
        """Run the graph on a batch. ``x``: array (one Input) or {input_id: array}.
        Returns the Output's array, or {output_id: array} when there are several."""
        acts = self.acts = self._as_inputs(x)
        inputs = self._input_set
        hooks = self.hooks.forward
        if hooks:
            for iid in self.input_ids:
                for fn in hooks:
                    fn(iid, acts[iid])
        with OneThreadBlas(sync_threads() > 1):
            for st in self.steps:
                if st.last not in inputs:
                    st.forward(acts, train)
                    if hooks:
                        for nid in st.ids:
                            if nid in acts:
                                for fn in hooks:
                                    fn(nid, acts[nid])
        if len(self.output_ids) == 1:
            return acts[self.output_ids[0]]
        return {o: acts[o] for o in self.output_ids}

    def backward(self, dout: ArrayOrDict) -> ArrayOrDict:
        """Backpropagate ``dout`` (shaped like ``forward``'s result) through the last forward.
        Sets ``grads``; returns the gradient for the Input (or {input_id: grad})."""
        if not self.acts:
            raise NetBuilderError("backward() needs a forward() first")
        if isinstance(dout, Mapping):
            douts = dict(dout)
        else:
            if len(self.output_ids) != 1:
                raise DataError("the model has several Outputs: pass {output_id: gradient}")
            douts = {self.output_ids[0]: dout}
        return self._backward(douts, skip=set())

    def _backward(self, douts: dict[str, np.ndarray], skip: set[str]) -> ArrayOrDict:
        for oid, d in list(douts.items()):
            d = np.asarray(d, dtype=self.dtype)
            if d.shape != self.acts[oid].shape:
                raise DataError(f"gradient for Output '{oid}' has shape {fmt_shape(d.shape)}, "
                                f"expected {fmt_shape(self.acts[oid].shape)}", oid)
            douts[oid] = d
        dxs = self._backward_from(douts, skip, input_grads=True)
        for iid in self.input_ids:
            dxs.setdefault(iid, np.zeros_like(self.acts[iid]))
        return dxs[self.input_ids[0]] if len(self.input_ids) == 1 else dxs

    # ----- losses and training -------------------------------------------------------------
    def targets_for(self, y: ArrayOrDict, x: ArrayOrDict | None = None) -> dict[str, Any]:
        """Map the dataset's targets onto each Output by its ``target`` name."""
        out = {}
        for oid in self.output_ids:
            name = self.layers[oid].p["target"]
            if name == "x":
                if x is None:
                    raise DataError(f"Output '{oid}' reconstructs its input, which was not given",
                                    oid)
                out[oid] = x if not isinstance(x, Mapping) else x[self.input_ids[0]]
            elif isinstance(y, Mapping):
                if name in y:
                    out[oid] = y[name]
                elif oid in y:
                    out[oid] = y[oid]
                else:
                    raise DataError(f"Output '{oid}' learns target {name!r}, which the data "
                                    f"does not have (it has {', '.join(sorted(y))})", oid)
            else:
                out[oid] = y
        return out

    def loss(self, y: ArrayOrDict, x: ArrayOrDict | None = None
             ) -> tuple[float, dict[str, np.ndarray]]:
        """Total weighted loss of the last forward and the gradient for each loss source."""
        targets = self.targets_for(y, x)
        total = 0.0
        grads: dict[str, np.ndarray] = {}
        self.last_losses, self.last_metrics = {}, {}
        for oid in self.output_ids:
            p = self.layers[oid].p
            src = self.loss_logits.get(oid, oid)
            value, g, metrics = compute_loss(p["loss"], self.acts[src], targets[oid],
                                             f"Output '{oid}'")
            w = p["weight"]
            total += w * value
            grads[src] = g * w if w != 1.0 else g
            self.last_losses[oid] = value
            self.last_metrics[oid] = metrics
        return total, grads

    def train_step(self, x: ArrayOrDict, y: ArrayOrDict, opt: Optimizer) -> float:
        """forward(train=True) + loss + backward + one optimizer update; returns the loss.

        BLAS stays on one thread for the whole step when Numba runs several (a BLAS pool
        woken between kernels would spin on the cores Numba's threads need)."""
        with OneThreadBlas(sync_threads() > 1):
            self.forward(x, train=True)
            total, grads = self.loss(y, x)
            if not math.isfinite(total):
                bad = self.first_nonfinite_node()
                where = f" (first non-finite output at node '{bad}')" if bad else ""
                raise TrainingError(f"the loss became {total}{where}", bad)
            self.loss_backward(grads)
            segments = self.lr_segments()
            extra = {"segments": segments} if segments else {}
            opt.step(self.params, self.grads, flat=(self.flat_params, self.flat_grads), **extra)
        return total

    def loss_backward(self, grads: dict[str, np.ndarray], input_grads: bool = False
                      ) -> dict[str, np.ndarray]:
        """Backward from the gradients ``loss()`` returned (seeded at the loss sources, past
        any Softmax/Sigmoid fused into the loss); fills ``grads``. With ``input_grads`` every
        step computes the gradient of its inputs (as ``backward`` does) and the result maps
        each Input to its gradient; otherwise steps skip what nothing upstream learns from
        and the result holds what arrives anyway."""
        return self._backward_from(grads, self._loss_skip, input_grads)

    def _backward_from(self, seeds: dict[str, np.ndarray], skip: set[str],
                       input_grads: bool = False) -> dict[str, np.ndarray]:
        """Backward with gradients seeded at any nodes (Outputs or loss sources); fills
        ``grads`` (zero where no gradient arrives) and, with ``input_grads``, returns the
        gradient reaching each Input (otherwise only what arrives anyway)."""
        dys = dict(seeds)
        dxs: dict[str, np.ndarray] = {}
        untouched: list[str] = []
        with OneThreadBlas(current_threads() > 1):
            self._backward_steps(dys, dxs, skip, input_grads, untouched)
        for last in untouched:
            for g in self.plan.grads[last]:
                g.fill(0)
        return dxs

    def _backward_steps(self, dys: dict[str, np.ndarray], dxs: dict[str, np.ndarray],
                        skip: set[str], input_grads: bool, untouched: list[str]) -> None:
        inputs = self._input_set
        for st in reversed(self.steps):
            last = st.last
            dy = dys.pop(last, None)
            if dy is None or last in skip:
                if st.trains:
                    untouched.append(last)
                continue
            if last in inputs:
                dxs[last] = dy
                continue
            need = input_grads or st.needs_input_grad
            if not (need or st.trains):
                continue
            grads_in = st.backward(dy, need)
            if self.hooks.backward:
                self._backward_event(st, dy, grads_in)
            if not need:
                continue
            for src, g in zip(st.srcs, grads_in):
                if g is not None:
                    dys[src] = dys[src] + g if src in dys else g

    def _backward_event(self, st: Step, dy: np.ndarray, grads_in: list[np.ndarray | None]
                        ) -> None:
        ports = getattr(st, "ports", None) or self._ports[st.first]
        event = BackwardEvent(
            nodes=st.ids, grad_output=dy, inputs=tuple(zip(st.srcs, ports)),
            grad_inputs=tuple(grads_in[i] if i < len(grads_in) else None
                              for i in range(len(st.srcs))),
            param_grads={f"{nid}.{k}": g for nid in st.ids if nid not in self.frozen
                         for k, g in self._local_grads[nid].items()})
        for fn in self.hooks.backward:
            fn(event)

    def first_nonfinite_node(self) -> str | None:
        """The first node (topological order) whose last output holds NaN or Inf."""
        for nid in self.order:
            a = self.acts.get(nid)
            if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all():
                return nid
        return None

    def predict(self, x: ArrayOrDict, batch_size: int = 256) -> ArrayOrDict:
        """forward(train=False) in batches; same result shape as forward."""
        xs = self._as_inputs(x)
        n = next(iter(xs.values())).shape[0]
        parts: list[ArrayOrDict] = []
        for i in range(0, max(n, 1), batch_size):
            parts.append(self.forward({k: v[i:i + batch_size] for k, v in xs.items()}))
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)


def compile(graph: Graph, seed: int = 0, fuse: bool = True) -> Network:
    """Validate ``graph`` and build a Network with freshly initialised float32 weights.
    ``fuse=False`` keeps every node a step of its own (slower; for comparisons)."""
    return Network(graph, seed=seed, fuse=fuse)

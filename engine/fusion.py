"""The fusion planner: builds a network's ``ExecutionPlan`` (``engine.plan``), one step per
node or one fused op for a chain of nodes.

``plan_execution`` walks the graph in topological order and joins, where each node but the
last feeds only the next one, by the layers' ``fusion_stage()`` (their ``fusion_role``):

- "conv" (+ "relu") (+ "pool2") -> ``ConvBlock`` (a lone Conv2D too: it then skips the input
  gradient when nothing upstream needs it), run by ``kernels.fused`` or, for stride 1, on a
  padded grid by ``kernels.convgrid``, forward and backward each as ``conv_modes`` picks from
  the shapes;
- "relu" + "pool2" (a MaxPool2D 2×2, stride 2, unpadded), or such a pool alone ->
  ``PoolBlock``;
- "dense" (+ "relu") -> ``DenseBlock`` (split over output features, or over samples when the
  weight is no larger than the input);
- "norm" -> "add" <- skip, -> "relu" (the end of a residual block) -> ``NormAddBlock``, run
  where the Add is;
- "norm" + "relu" (BatchNorm, ReLU) -> ``NormBlock``, "add" + "relu" (an Add of two inputs,
  ReLU: the end of a residual block) -> ``AddBlock``: one pass each way instead of two, the
  batch split over the threads (``kernels.normact``), unless a 2×2 pool follows the ReLU
  (the ReLU then joins the pool's ``PoolBlock``); a lone BatchNorm or Add runs the same
  kernels through its layer.

A Conv2D or Dense run on its own (``fuse=False``) calls the same kernels through its layer.

Every parallel kernel splits the batch over Numba's threads and calls BLAS single-threaded
inside; the network holds BLAS to one thread while it runs (``OneThreadBlas``), so that the
two thread pools never compete for the cores.

A step reads its inputs from ``acts`` and publishes the output of *every* node it covers
there (a fused op writes the intermediate tensors too), so the monitor sees the same feature
maps as without fusion; a ``ConvBlock`` told not to (``publish = False``) writes only its last
output. ``backward(dy, need_dx)`` takes the gradient of the step's last
output, fills the covered nodes' parameter gradients and returns one input gradient per
source of the first node (``None`` entries when ``need_dx`` is false).

Fused ops keep their outputs in buffers reused from step to step while the batch size and
dtype stay the same (``reuse``), except where the network hands the output to its caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .kernels import conv as kconv
from .kernels import convgrid as kgrid
from .kernels import fused as kfused
from .kernels import normact as knorm
from .kernels.blas import blas_address
from .layers.dense import dense_chunks
from .plan import ExecutionPlan, Step, Wiring
from .registry import Layer

EMPTY4 = (0, 0, 0, 0)
KEEP_BYTES = 8 * 2**20
KEEP_ROWS_BELOW = 16
COMPACT, GRID, SHIFT = "compact", "grid", "shift"
SHIFT_MIN_CHANNELS = 32
SHIFT_MIN_CHANNELS_LONG = 16
SHIFT_LONG_COLUMNS = 512
GRID_MAX_WASTE = 1.1


def conv_modes(c: int, oh: int, ow: int, stride: tuple[int, int], wb: int,
               plain: bool = False) -> tuple[str, str]:
    """(forward, backward) way to compute a Conv2D block of ``c`` input channels: ``COMPACT``
    (``kernels.fused``: unfold into (C·KH·KW, OH·OW), any stride), or for stride 1 on the padded
    grid of row length ``wb`` (``kernels.convgrid``): ``SHIFT`` (shifted products, no unfolding)
    from ``SHIFT_MIN_CHANNELS`` channels, or from ``SHIFT_MIN_CHANNELS_LONG`` when the grid
    has at least ``SHIFT_LONG_COLUMNS`` columns (OH·Wb: each shifted product is then long
    enough for BLAS to pack well), ``GRID`` (contiguous unfolding) for the forward when
    rows are long (nothing kept) and the grid adds at most ``GRID_MAX_WASTE`` of columns.
    Measured on 2 cores, batch 64: WideCNN's 32->64 conv on 14×14 10-15% faster both ways with
    SHIFT; a CIFAR ResNet's 16->16 conv on 32×32 (1 thread, idle BLAS threads) forward
    ~3× and backward ~1.3× faster with SHIFT than GRID / COMPACT (flipped): the (16, 144) @
    (144, 1024) product of the unfolded image runs at a third of the shifted (16, 16) @
    (16, 1088) ones' rate, and the unfolding is saved; WideCNN's 1->32 conv on 28×28 forward
    up to 20% faster with GRID when other work shares the cores (as fast on idle ones); the
    grid's backward there, 8×8 images and LeNet-5's 5×5
    convs slower than COMPACT. ``plain`` (a 1×1 conv of stride 1 without padding,
    ``kernels.fused.is_plain_gemm``): ``COMPACT``, which multiplies the image itself."""
    if stride != (1, 1) or plain:
        return COMPACT, COMPACT
    if c >= SHIFT_MIN_CHANNELS or (c >= SHIFT_MIN_CHANNELS_LONG
                                   and oh * wb >= SHIFT_LONG_COLUMNS):
        return SHIFT, SHIFT
    if ow >= KEEP_ROWS_BELOW and wb <= GRID_MAX_WASTE * ow:
        return GRID, COMPACT
    return COMPACT, COMPACT


class _Buffers:
    """Output arrays kept while (batch size, dtype) stays the same."""

    def __init__(self, reuse: bool) -> None:
        self.reuse = reuse
        self.key: tuple[int, Any] | None = None
        self.arrays: tuple[np.ndarray, ...] = ()

    def get(self, n: int, dtype: Any, shapes: tuple[tuple[tuple[int, ...], Any], ...]
            ) -> tuple[np.ndarray, ...]:
        key = (n, dtype)
        if not self.reuse or key != self.key:
            self.arrays = tuple(np.empty((n, *s) if s else EMPTY4, dtype=dt or dtype)
                                for s, dt in shapes)
            self.key = key
        return self.arrays


_NO_BIAS = {np.dtype(np.float32): np.zeros(0, np.float32),
            np.dtype(np.float64): np.zeros(0, np.float64)}


def _bias(params: dict[str, np.ndarray], dtype: Any) -> np.ndarray:
    """The node's bias (or grad), or an empty array when it has none."""
    b = params.get("bias")
    if b is None:
        b = _NO_BIAS.get(np.dtype(dtype))
    return b if b is not None else np.zeros(0, dtype)


class ConvBlock(Step):
    """Conv2D (+ bias), then optionally ReLU, then optionally 2×2 max-pool, in one kernel.

    ``publish`` (default True): write every node's output into ``acts``. False: only the
    chain's last output (the conv and ReLU outputs before it stay in per-thread scratch, which
    saves their memory traffic: ~0.7 ms of a WideCNN training step at batch 64); for steps
    whose intermediate activations nobody looks at."""

    fused = True
    publish = True

    def __init__(self, layers: list[Layer], srcs: list[str], local: dict[str, np.ndarray],
                 local_grads: dict[str, np.ndarray]) -> None:
        super().__init__(layers[0], srcs, local, local_grads)
        ids = [layer.id for layer in layers]
        self.ids = tuple(ids)
        self.last = ids[-1]
        stages = [layer.fusion_stage() for layer in layers]
        self.relu = "relu" in stages
        self.pool = "pool2" in stages
        self.conv = layers[0]
        self.relu_id = ids[1] if self.relu else None
        self.pool_id = ids[-1] if self.pool else None
        self.stride = self.conv.p["stride"]
        self.pt, self.pl = self.conv.pads[0], self.conv.pads[2]
        o, oh, ow = self.conv.out_shape
        self.oh, self.ow = oh, ow
        self.shapes = ((o, oh, ow), None), ((o, oh, ow) if self.relu else None, None), \
            ((o, oh // 2, ow // 2) if self.pool else None, None), \
            ((o, oh // 2, ow // 2) if self.pool else None, np.int8)
        self.buffers = _Buffers(reuse=True)
        self.k = self.conv.in_channels * math.prod(self.conv.p["kernel_size"])
        c, h, w = self.conv.in_shapes[0]
        kh, kw = self.conv.p["kernel_size"]
        self.wb = kgrid.grid_shape(oh, ow, kh, kw, h, w, self.pt, self.pl)[1]
        self.plain = kfused.is_plain_gemm(kh, kw, *self.stride, self.pt, self.pl, h, w, oh, ow)
        self.fwd_mode, self.bwd_mode = conv_modes(c, oh, ow, self.stride, self.wb, self.plain)
        self.flipped = kfused.flipped_dx_pays(tuple(self.stride), tuple(self.conv.pads),
                                              (kh, kw), (c, h, w), (oh, ow))
        self._keep: np.ndarray | None = None

    def _keep_for(self, n: int, dtype: Any) -> np.ndarray:
        """Where a training forward keeps each sample's im2col for the backward pass:
        (N, K, P), or empty (``n`` = 0 in inference): the backward unfolds the input again.
        Keeping pays where unfolding is slow
        (output rows shorter than ``KEEP_ROWS_BELOW``: many short copies) and the buffer is
        small (``KEEP_BYTES``): a large one costs more memory traffic than it saves; never
        for a frozen conv, whose backward needs no im2col, nor a 1×1 one that multiplies the
        image itself (``plain``). The columns are the output's
        (OH·OW) in ``COMPACT`` mode, the grid's (OH·Wb) otherwise."""
        cols = self.oh * (self.ow if self.fwd_mode == COMPACT else self.wb)
        shape = (n, self.k, cols)
        if (n == 0 or not self.trains or self.ow >= KEEP_ROWS_BELOW or self.plain
                or self.fwd_mode != self.bwd_mode
                or math.prod(shape) * np.dtype(dtype).itemsize > KEEP_BYTES):
            return np.empty((0, self.k, cols), dtype)
        k = self._keep
        if k is None or k.shape != shape or k.dtype != dtype:
            k = self._keep = np.empty(shape, dtype)
        return k

    def forward(self, acts: dict[str, np.ndarray], train: bool) -> None:
        x = np.ascontiguousarray(acts[self.srcs[0]])
        self._x = x
        n = x.shape[0]
        yconv, yrelu, ypool, arg = self.buffers.get(n, x.dtype, self.shapes)
        w = self.local["weight"]
        keep = self._keep_for(n if train else 0, x.dtype)
        b = _bias(self.local, x.dtype)
        inner = not self.publish and (self.relu or self.pool)
        yc = yconv[:0] if inner else yconv
        yr = yrelu[:0] if inner and self.pool else yrelu
        if self.fwd_mode == COMPACT:
            kfused.conv_block_forward(x, w, b, *self.stride, self.pt, self.pl, self.relu,
                                      self.pool, kconv.batch_chunks(n), yc, yr, ypool, arg, keep)
        else:
            kgrid.conv_grid_forward(x, w, b, self.pt, self.pl, self.relu, self.pool,
                                    self.fwd_mode == SHIFT, kconv.batch_chunks(n), yc, yr,
                                    ypool, arg, keep)
        self._kept = keep
        self._arg = arg
        if not inner:
            acts[self.first] = yconv
        if self.relu and not (inner and self.pool):
            acts[self.relu_id] = yrelu
        if self.pool:
            acts[self.pool_id] = ypool
        self._mask = ypool if self.pool else yrelu if inner else yconv

    def backward(self, dy: np.ndarray, need_dx: bool) -> list[np.ndarray | None]:
        x = self._x
        dy = np.ascontiguousarray(dy, dtype=x.dtype)
        g = self.grad_arrays()
        w, gw, gb = self.local["weight"], g["weight"], _bias(g, x.dtype)
        chunks = kconv.batch_chunks(x.shape[0])
        if self.bwd_mode == COMPACT:
            dx = kfused.conv_block_backward(
                x, w, dy, self._mask, self._arg, *self.stride, self.pt, self.pl, self.oh,
                self.ow, self.relu, self.pool, need_dx, self.flipped, chunks, gw, gb,
                self._kept)
        else:
            dx = kgrid.conv_grid_backward(
                x, w, dy, self._mask, self._arg, self.pt, self.pl, self.oh, self.ow, self.relu,
                self.pool, need_dx, self.bwd_mode == SHIFT, chunks, gw, gb, self._kept)
        return [dx if need_dx else None]


class PoolBlock(Step):
    """(ReLU +) MaxPool2D 2×2 / stride 2 / no padding, in one kernel."""

    fused = True

    def __init__(self, layers: list[Layer], srcs: list[str], local: dict[str, np.ndarray],
                 local_grads: dict[str, np.ndarray]) -> None:
        super().__init__(layers[0], srcs, local, local_grads)
        ids = [layer.id for layer in layers]
        self.ids = tuple(ids)
        self.last = ids[-1]
        self.relu = len(ids) == 2
        c, h, w = layers[-1].in_shapes[0]
        self.h, self.w = h, w
        self.shapes = (((c, h, w) if self.relu else None, None), ((c, h // 2, w // 2), None),
                       ((c, h // 2, w // 2), np.int8))
        self.buffers = _Buffers(reuse=True)

    def forward(self, acts: dict[str, np.ndarray], train: bool) -> None:
        x = np.ascontiguousarray(acts[self.srcs[0]])
        yrelu, ypool, arg = self.buffers.get(x.shape[0], x.dtype, self.shapes)
        kfused.relu_pool2_forward(x, self.relu, yrelu, ypool, arg)
        self._ypool, self._arg = ypool, arg
        if self.relu:
            acts[self.first] = yrelu
        acts[self.last] = ypool

    def backward(self, dy: np.ndarray, need_dx: bool) -> list[np.ndarray | None]:
        if not need_dx:
            return [None]
        dy = np.ascontiguousarray(dy, dtype=self._ypool.dtype)
        return [kfused.relu_pool2_backward(dy, self._ypool, self._arg, self.relu, self.h,
                                           self.w)]


# Kernels a DenseBlock calls in place of one another, with the same argument types, by the
# batch size (``DenseBlock.splits_rows``): a step traced at one batch size
# (``engine.compile_ahead``) stands for both.
SAME_ARGUMENTS = ((kfused.dense_forward, kfused.dense_rows_forward, kfused.dense_small_forward),
                  (kfused.dense_backward, kfused.dense_rows_backward,
                   kfused.dense_small_backward))


class DenseBlock(Step):
    """Dense (+ bias) (+ ReLU) on the last axis, split over Numba's threads.

    The split is by output features (``kernels.fused.dense_forward``: each thread packs only
    its block of the weight) unless the weight holds no more numbers than the batch's input,
    then by samples (``dense_rows_forward``): each thread then reads only its own samples,
    which the conv block before it wrote on the same core. Reading the other core's samples
    instead makes that core's next write to them wait until the copies are invalidated;
    when the two cores share no cache (a host that spreads a VM's cores, a second CCD) that
    added ~110 µs to the conv before digits_cnn's 512->64 Dense (batch 64, 2 threads), and
    the sample split made the training step 10 % faster there (1.6 % slower with a shared
    cache). A weight larger than the input (LeNet-5's, WideCNN's, the MLP's) is cheaper to
    split: sample-splitting the MLP's 784->256 took 17 % more time."""

    fused = True

    def __init__(self, layers: list[Layer], srcs: list[str], local: dict[str, np.ndarray],
                 local_grads: dict[str, np.ndarray]) -> None:
        super().__init__(layers[0], srcs, local, local_grads)
        ids = [layer.id for layer in layers]
        self.ids = tuple(ids)
        self.last = ids[-1]
        self.relu = len(ids) == 2
        self.shape = layers[0].out_shape
        units = self.shape[-1]
        self.units = units
        self.shapes = ((self.shape, None), (self.shape if self.relu else None, None))
        self.buffers = _Buffers(reuse=True)
        self.n_in = layers[0].n_in
        self.weight_size = units * self.n_in  # also the multiply-adds per row
        self._chunks = 1
        self._by_rows = False

    def _chunks_for(self, rows: int) -> int:
        """Slices of the product, as a lone Dense layer uses (``layers.dense.dense_chunks``)."""
        return dense_chunks(rows, self.weight_size)

    def splits_rows(self, rows: int) -> bool:
        """Whether a batch of ``rows`` input rows is split by samples (see the class note)."""
        return self.weight_size <= rows * self.n_in

    def forward(self, acts: dict[str, np.ndarray], train: bool) -> None:
        x = acts[self.srcs[0]]
        self._xshape = x.shape
        x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        self._x = x2
        y, yrelu = self.buffers.get(x.shape[0], x.dtype, self.shapes)
        y2 = y.reshape(-1, self.units)
        self._chunks = chunks = self._chunks_for(x2.shape[0])
        self._by_rows = self.splits_rows(x2.shape[0])
        kernel = kfused.dense_kernels(chunks, self._by_rows)[0]
        kernel(x2, self.local["weight"], _bias(self.local, x.dtype), self.relu, chunks, y2,
               yrelu.reshape(-1, self.units) if self.relu else y2[:0])
        self._y = y2
        acts[self.first] = y
        if self.relu:
            acts[self.last] = yrelu

    def backward(self, dy: np.ndarray, need_dx: bool) -> list[np.ndarray | None]:
        x = self._x
        dy2 = np.ascontiguousarray(dy, dtype=x.dtype).reshape(-1, self.units)
        g = self.grad_arrays()
        kernel = kfused.dense_kernels(self._chunks, self._by_rows)[1]
        dx = kernel(x, self.local["weight"], dy2, self._y, self.relu, need_dx, self._chunks,
                    g["weight"], _bias(g, x.dtype), blas_address(x.dtype))
        return [dx.reshape(self._xshape) if need_dx else None]


class _ReluTailBlock(Step):
    """A chain of element-wise layers ending in a ReLU, run by its first layer's kernels:
    ``outputs`` arrays of the first layer's output shape, reused from step to step."""

    fused = True
    outputs = 2  # the first layer's output, the ReLU's

    def __init__(self, layers: list[Layer], srcs: list[str], local: dict[str, np.ndarray],
                 local_grads: dict[str, np.ndarray]) -> None:
        super().__init__(layers[0], srcs, local, local_grads)
        self.ids = tuple(layer.id for layer in layers)
        self.last = self.ids[-1]
        self.shapes = ((layers[0].out_shape, None),) * self.outputs
        self.buffers = _Buffers(reuse=True)


class NormBlock(_ReluTailBlock):
    """BatchNorm then ReLU: the normalised values and their ReLU written in one pass after
    the statistics' pass, and in the backward one pass for the gradient's sums and one for
    the input gradient, the ReLU's mask recomputed from the input on the way (the BatchNorm
    layer's ``run_forward`` / ``run_backward``, ``kernels.normact``)."""


    def forward(self, acts: dict[str, np.ndarray], train: bool) -> None:
        x = np.ascontiguousarray(acts[self.srcs[0]])
        y, yrelu = self.buffers.get(x.shape[0], x.dtype, self.shapes)
        self.layer.run_forward(x, self.local, train, y, yrelu)
        self._yrelu = yrelu
        acts[self.first] = y
        acts[self.last] = yrelu

    def backward(self, dy: np.ndarray, need_dx: bool) -> list[np.ndarray | None]:
        dy = np.ascontiguousarray(dy, dtype=self._yrelu.dtype)
        dx = self.layer.run_backward(dy, self._yrelu, self.local, self.local_grads)
        return [dx if need_dx else None]


class AddBlock(_ReluTailBlock):
    """Add of two inputs then ReLU: sum and ReLU written in one pass; the backward masks the
    gradient once and sends the same array to both inputs."""


    def forward(self, acts: dict[str, np.ndarray], train: bool) -> None:
        a = np.ascontiguousarray(acts[self.srcs[0]])
        y, yrelu = self.buffers.get(a.shape[0], a.dtype, self.shapes)
        self.layer.run_forward(a, acts[self.srcs[1]], True, y, yrelu)
        self._yrelu = yrelu
        acts[self.first] = y
        acts[self.last] = yrelu

    def backward(self, dy: np.ndarray, need_dx: bool) -> list[np.ndarray | None]:
        if not need_dx:
            return [None, None]
        mask = self._yrelu
        dy = np.ascontiguousarray(dy, dtype=mask.dtype)
        dx = np.empty_like(dy)
        knorm.relu_mask_backward(dy.reshape(-1), mask.reshape(-1),
                                 kconv.batch_chunks(dy.shape[0]), dx.reshape(-1))
        return [dx, dx]


class NormAddBlock(_ReluTailBlock):
    """The end of a residual block: BatchNorm, Add of the block's shortcut, ReLU
    (``bn -> add <- skip; add -> relu``) in one parallel pass each way in training
    (``kernels.normact.bn_add_relu_train_forward`` / ``_backward``, through the BatchNorm
    layer). Runs where the Add does (after both of its inputs); ``srcs`` = (the BatchNorm's
    input, the skip input), ``ports`` their ports on the BatchNorm and on the Add."""

    outputs = 3  # the normalised values, the sum, the ReLU

    def __init__(self, layers: list[Layer], srcs: list[str], local: dict[str, np.ndarray],
                 local_grads: dict[str, np.ndarray], ports: tuple[int, int]) -> None:
        super().__init__(layers, srcs, local, local_grads)
        self.ports = ports

    def forward(self, acts: dict[str, np.ndarray], train: bool) -> None:
        x = np.ascontiguousarray(acts[self.srcs[0]])
        y, yadd, yrelu = self.buffers.get(x.shape[0], x.dtype, self.shapes)
        self.layer.run_forward_add_relu(x, acts[self.srcs[1]], self.local, train, y, yadd,
                                        yrelu)
        self._yrelu = yrelu
        for nid, a in zip(self.ids, (y, yadd, yrelu)):
            acts[nid] = a

    def backward(self, dy: np.ndarray, need_dx: bool) -> list[np.ndarray | None]:
        dy = np.ascontiguousarray(dy, dtype=self._yrelu.dtype)
        dx, dskip = self.layer.run_backward_add_relu(dy, self._yrelu, self.local,
                                                     self.local_grads)
        return [dx, dskip] if need_dx else [None, None]


def _residual_ends(net: Wiring) -> dict[str, tuple[str, str, str]]:
    """Add node -> (BatchNorm, Add, ReLU) for each ``bn -> add <- skip; add -> relu`` where
    the BatchNorm feeds only the Add, the Add (of two inputs) only the ReLU, and no 2×2 pool
    follows the ReLU (it joins the pool's block). A BatchNorm on port 0 is taken first."""
    ends = {}
    for nid in net.order:
        layer = net.layers[nid]
        if layer.fusion_stage() != "add":
            continue
        relu = _next_in_chain(net, nid)
        if relu is None or net.layers[relu].fusion_stage() != "relu":
            continue
        if len(net.shapes[nid]) == 3 and len(_chain(net, relu, ("pool2",))) == 2:
            continue
        srcs = net.inputs_of[nid]
        for bn in srcs:
            if (net.layers[bn].fusion_stage() == "norm" and len(net.consumers[bn]) == 1
                    and srcs.count(bn) == 1):
                ends[nid] = (bn, nid, relu)
                break
    return ends


def _next_in_chain(net: Wiring, nid: str) -> str | None:
    """The only consumer of ``nid`` when ``nid`` feeds nothing else and it has no other input."""
    cons = net.consumers[nid]
    if len(cons) != 1:
        return None
    nxt, port = cons[0]
    if port != 0 or len(net.inputs_of[nxt]) != 1:
        return None
    return nxt


def _chain(net: Wiring, nid: str, stages: tuple[str, ...]) -> list[str]:
    """``nid`` and the nodes after it in a single-consumer chain whose fusion stages follow
    ``stages`` in order (each optional)."""
    chain = [nid]
    nxt = _next_in_chain(net, nid)
    for stage in stages:
        if nxt is None:
            break
        if net.layers[nxt].fusion_stage() == stage:
            chain.append(nxt)
            nxt = _next_in_chain(net, nxt)
    return chain


def plan_execution(net: Wiring, local: Mapping[str, dict[str, np.ndarray]],
                   local_grads: Mapping[str, dict[str, np.ndarray]], fuse: bool = True
                   ) -> ExecutionPlan:
    """The network's steps in topological order (see the module note). ``local`` /
    ``local_grads``: each node's parameters and gradients by local name."""
    steps: list[Step] = []
    taken: set[str] = set()
    ends = _residual_ends(net) if fuse else {}
    deferred = {bn for bn, _, _ in ends.values()}  # run with their Add
    for nid in net.order:
        if nid in taken or nid in deferred:
            continue
        layer = net.layers[nid]
        if nid in ends:
            bn, add, relu = ends[nid]
            skip_port = 1 - net.inputs_of[add].index(bn)
            skip = net.inputs_of[add][skip_port]
            steps.append(NormAddBlock([net.layers[i] for i in (bn, add, relu)],
                                      [net.inputs_of[bn][0], skip], local[bn], local_grads[bn],
                                      (0, skip_port)))
            taken.update((bn, add, relu))
            continue
        stage = layer.fusion_stage() if fuse else ""
        kind: type[Step] = Step
        chain = [nid]
        if stage == "conv":
            kind, chain = ConvBlock, _chain(net, nid, ("relu", "pool2"))
        elif stage == "dense":
            kind, chain = DenseBlock, _chain(net, nid, ("relu",))
        elif stage == "relu" and len(net.shapes[nid]) == 3:
            chain = _chain(net, nid, ("pool2",))
            kind = PoolBlock if len(chain) == 2 else Step
        elif stage == "pool2":
            kind = PoolBlock
        elif stage in ("norm", "add"):
            chain = _chain(net, nid, ("relu",))
            if len(chain) == 2 and len(net.shapes[nid]) == 3 \
                    and len(_chain(net, chain[1], ("pool2",))) == 2:
                chain = [nid]  # the ReLU goes with the pool after it (PoolBlock)
            kind = (NormBlock if stage == "norm" else AddBlock) if len(chain) == 2 else Step
        srcs = list(net.inputs_of[nid])
        if kind is Step:
            step = Step(layer, srcs, local[nid], local_grads[nid])
        else:
            step = kind([net.layers[i] for i in chain], srcs, local[nid], local_grads[nid])
        taken.update(chain)
        steps.append(step)
    returned = {net.inputs_of[o][0] for o in net.output_ids}
    for st in steps:
        if st.fused and st.last in returned:
            st.buffers.reuse = False
    return ExecutionPlan(steps, net, local_grads)

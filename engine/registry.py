"""The one registry of layer types: ParamSpec, the Layer base class and ``register``.

A Layer subclass is the whole description of a layer type, and every consumer reads it from
here: the palette and inspector (category, help, ``param_specs``, ``glyph`` / ``icon_curve``),
new node ids (``id_prefix``), shape inference and the compiler (``infer_shape``,
``param_shapes``, ``forward`` / ``backward``), the fusion planner (``fusion_role``,
``loss_fold``), warm-up and the contract harness (``examples``, ``kernels``,
``reference_forward``), the ONNX exporter and importer (``to_onnx``, ``onnx_ops`` /
``from_onnx``) and the PyTorch exporter (``to_pytorch``). Adding a layer type is one module
in ``engine/layers`` (found by ``engine.layers`` on its own), its kernels if new, and its test;
``engine.testing.check_layer_contract`` runs every registered type through the same checks.
A type that lacks an exporter or importer says so through ``capabilities()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import ParamError, ShapeError, UnknownLayerError, short_repr

if TYPE_CHECKING:  # the exporters' builders; never imported at run time from here
    from .export.onnx_export import OnnxBuilder
    from .export.onnx_import import Importer
    from .export.pytorch_export import PytorchContext

Shape = tuple[int, ...]

PARAM_KINDS = ("int", "float", "bool", "choice", "shape", "size", "padding", "str")


@dataclass(frozen=True)
class ParamSpec:
    """One editable layer parameter.

    kind: ``int`` | ``float`` | ``bool`` | ``choice`` (one of ``choices``) | ``shape`` (tuple of
    positive ints; one whole number n means (n,)) | ``size`` (int or (h, w) pair, each in
    [low, high]) | ``padding`` ("valid", "same" or an int ≥ 0) | ``str``.
    ``optional`` lets the value be ``None`` (meaning "derived", e.g. pool stride = pool size).
    """

    name: str
    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    unit: str = ""
    required: bool = False
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise TypeError(f"ParamSpec {self.name!r}: unknown kind {self.kind!r}")

    def range_text(self) -> str:
        """The allowed range in words ("between 0 and 1", "at least 1", "any value")."""
        lo = "" if self.low is None else f"{self.low:g}"
        hi = "" if self.high is None else f"{self.high:g}"
        if lo and hi:
            return f"between {lo} and {hi}"
        if lo:
            return f"at least {lo}"
        return f"at most {hi}" if hi else "any value"

    def _check_range(self, v: float, where: str, node_id: str | None) -> None:
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ParamError(
                f"{where}: {self.name} = {short_repr(v, 30) if isinstance(v, int) else f'{v:g}'} "
                f"is out of range; it must be {self.range_text()}",
                node_id,
            )

    def _fail(self, where: str, what: str, value: Any, node_id: str | None) -> ParamError:
        return ParamError(f"{where}: {self.name} must be {what}, got {short_repr(value)}", node_id)

    def _as_int(self, value: Any, where: str, node_id: str | None) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise self._fail(where, "a whole number", value, node_id)
        if isinstance(value, float | np.floating) and (not math.isfinite(value) or value != int(value)):
            raise self._fail(where, "a whole number", value, node_id)
        v = int(value)
        self._check_range(v, where, node_id)
        return v

    def coerce(self, value: Any, where: str = "", node_id: str | None = None) -> Any:
        """Return ``value`` in canonical form, or raise ParamError naming the param and node."""
        where = where or "layer"
        if value is None:
            if self.optional:
                return None
            raise ParamError(f"{where}: {self.name} must be set", node_id)
        k = self.kind
        if k == "int":
            return self._as_int(value, where, node_id)
        if k == "float":
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise self._fail(where, "a number", value, node_id)
            v = float(value) if abs(value) < 2**1023 else math.inf
            if not math.isfinite(v):
                raise self._fail(where, "finite", value, node_id)
            self._check_range(v, where, node_id)
            return v
        if k == "bool":
            if not isinstance(value, bool | np.bool_):
                raise self._fail(where, "true or false", value, node_id)
            return bool(value)
        if k == "choice":
            if value not in self.choices:
                opts = ", ".join(repr(c) for c in self.choices)
                raise self._fail(where, f"one of {opts}", value, node_id)
            return value
        if k == "str":
            if not isinstance(value, str) or not value or len(value) > 200:
                raise self._fail(where, "a non-empty name", value, node_id)
            return value
        if k == "padding":
            if isinstance(value, str):
                if value not in ("valid", "same"):
                    raise ParamError(
                        f"{where}: {self.name} must be 'valid', 'same' or a whole number ≥ 0, "
                        f"got {short_repr(value)}", node_id)
                return value
            return self._as_int(value, where, node_id)
        if k in ("shape", "size"):
            if isinstance(value, list | tuple):
                items = list(value)
            elif k == "size":
                items = [value, value]
            elif isinstance(value, int | np.integer) and not isinstance(value, bool):
                items = [value]  # one size is a one-dimensional shape: 784 means (784,)
            else:
                raise self._fail(where, "a list of sizes", value, node_id)
            if k == "size" and len(items) != 2:
                raise ParamError(f"{where}: {self.name} must be one number or a pair (h, w), "
                                 f"got {short_repr(value)}", node_id)
            if k == "shape" and not 1 <= len(items) <= 4:
                raise ParamError(f"{where}: {self.name} must have 1 to 4 dimensions, "
                                 f"got {len(items)}", node_id)
            return tuple(self._as_int(v, where, node_id) for v in items)
        raise AssertionError(k)

    def to_json(self, value: Any) -> Any:
        """Canonical value -> JSON-ready value."""
        if isinstance(value, tuple):
            return list(value)
        return value


@dataclass(frozen=True)
class Example:
    """One small configuration of a layer type: its params and the per-sample shape of each
    input. A type's ``examples`` together reach every code path of its kernels: warm-up
    compiles them (float32) and the contract harness checks each one."""

    params: Mapping[str, Any]
    in_shapes: tuple[Shape, ...]
    label: str = ""

    @property
    def name(self) -> str:
        """A short id for test names: the label, else the input shapes (or the params)."""
        if self.label:
            return self.label
        if self.in_shapes:
            return "-".join("x".join(map(str, s)) for s in self.in_shapes)
        return "-".join(f"{k}{'x'.join(map(str, v)) if isinstance(v, tuple | list) else v}"
                        for k, v in self.params.items()) or "defaults"


def example(*in_shapes: Shape, label: str = "", **params: Any) -> Example:
    """``example((2, 6, 6), filters=3)``: an Example with these input shapes and params."""
    return Example(dict(params), tuple(tuple(int(d) for d in s) for s in in_shapes), label)


@dataclass(frozen=True)
class Capabilities:
    """What a layer type can do beyond training, for the UI and ``netbuilder info``."""

    type_name: str
    onnx_export: bool
    onnx_import: bool
    pytorch_export: bool
    onnx_ops: tuple[str, ...] = field(default=())

    def missing(self) -> list[str]:
        """What the type cannot do, in words (empty when it can do everything)."""
        out = []
        if not self.onnx_export:
            out.append("no ONNX export")
        if not self.onnx_import:
            out.append("no ONNX import")
        if not self.pytorch_export:
            out.append("no PyTorch export")
        return out


class Layer:
    """Base class of a layer type, and a node built from it.

    Class attributes describe the type for the registry; an instance is one node with resolved
    params and known input shapes: ``Layer(node_id, params, in_shapes)`` infers
    ``self.out_shape`` or raises ShapeError / ParamError naming the node.

    Arrays are batches ``(N, *per_sample_shape)``. ``forward`` caches what ``backward`` needs
    on the instance; ``backward(dy, params, grads)`` fills the preallocated ``grads`` arrays
    (overwriting) and returns the gradient for each input.
    """

    type_name: ClassVar[str] = ""
    category: ClassVar[str] = "Other"
    help: ClassVar[str] = ""
    param_specs: ClassVar[tuple[ParamSpec, ...]] = ()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    input_names: ClassVar[tuple[str, ...]] = ("in",)
    has_output_port: ClassVar[bool] = True
    uses_rng: ClassVar[bool] = False

    # ----- the rest of the description (see the module note and docs/adding-a-layer.md) ----
    glyph: ClassVar[str] = ""
    """Up to 3 characters drawn on the layer's icon ("" = ``icon_curve``, else the first two
    letters of the type name)."""
    icon_curve: ClassVar[Callable[[np.ndarray], np.ndarray] | None] = None
    """Activations: y = f(x) drawn on the icon, vectorised over x in [-3, 3]; y is clipped to
    ±2.6 (shapes may be exaggerated to read at 32 px)."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Other names users look for this type by (Swish: "SiLU"). The palette lists each as an
    entry of its own that adds this type; the file format knows only ``type_name``."""
    id_prefix: ClassVar[str] = ""
    """New node ids are ``<id_prefix><n>`` ("" = the type name lower-cased, "2d" dropped)."""
    examples: ClassVar[tuple[Example, ...]] = ()
    """Small configurations reaching every code path: warm-up compiles them, the contract
    harness (``engine.testing``) checks each one. A registered type needs at least one."""
    kernels: ClassVar[tuple[Any, ...]] = ()
    """The Numba kernels ``forward`` / ``backward`` call: warm-up must leave each compiled for
    float32, and a type with kernels has a ``reference_forward``."""
    fusion_role: ClassVar[str] = ""
    """What the layer computes inside a fused block (``engine.fusion``): "conv", "dense",
    "relu" or "pool2"; "" = always a step of its own. ``fusion_stage`` may refine it per node."""
    loss_fold: ClassVar[str] = ""
    """The loss that takes this layer into itself when it feeds that Output alone ("" = none):
    a Softmax before cross-entropy, a Sigmoid before bce; the loss then reads its input."""
    output_bounds: ClassVar[tuple[float, float] | None] = None
    """The range the output is confined to, where that matters to a monitor: (0, inf) for a
    ReLU (units stuck at 0 are dead), (0, 1) or (-1, 1) for squashing functions (outputs near
    the ends are saturated). ``output_range()`` may refine it per node."""
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    """ONNX op types whose nodes ``from_onnx`` turns into this layer (or a close relative)."""
    onnx_shared_ops: ClassVar[tuple[str, ...]] = ()
    """ONNX op types another type owns (in its ``onnx_ops``) whose ``from_onnx`` hands the
    nodes that fit this type over to it (an ``Add`` of a position table, a 1-D ``Conv``)."""
    onnx_const_ops: ClassVar[tuple[str, ...]] = ()
    """ONNX op types whose nodes with one constant operand ``from_onnx`` converts (Scale:
    Mul, Add, Sub, Div by a number). The layer that lists such an op in ``onnx_ops`` (Swish:
    Mul, Add: Add) hands those nodes over (``Importer.const_handlers``); the importer sends
    the others."""
    onnx_graph_io: ClassVar[bool] = False
    """Input and Output: made by the importer from the ONNX graph's own inputs and outputs."""

    def __init__(self, node_id: str, params: dict[str, Any], in_shapes: list[Shape]):
        self.id = node_id
        self.p = self.resolve_params(params, node_id)
        self.in_shapes = [tuple(int(d) for d in s) for s in in_shapes]
        self.rng: np.random.Generator = np.random.default_rng(0)
        self.out_shape: Shape = tuple(int(d) for d in self.infer_shape())

    # ----- type description -------------------------------------------------------------
    @classmethod
    def spec(cls, name: str) -> ParamSpec:
        for s in cls.param_specs:
            if s.name == name:
                return s
        raise KeyError(name)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {s.name: s.default for s in cls.param_specs}

    @classmethod
    def resolve_params(cls, params: dict[str, Any], node_id: str | None = None) -> dict[str, Any]:
        """Validate ``params`` (explicit values only) and fill in defaults."""
        where = f"{cls.type_name} '{node_id}'" if node_id else cls.type_name
        if not isinstance(params, dict):
            raise ParamError(f"{where}: params must be an object, got {type(params).__name__}", node_id)
        known = {s.name for s in cls.param_specs}
        for name in params:
            if name not in known:
                hint = ", ".join(sorted(known)) or "none"
                raise ParamError(f"{where}: unknown param {short_repr(name)} (known: {hint})", node_id)
        out: dict[str, Any] = {}
        for s in cls.param_specs:
            if s.name in params:
                out[s.name] = s.coerce(params[s.name], where, node_id)
            elif s.required:
                raise ParamError(f"{where}: param {s.name!r} is required", node_id)
            else:
                out[s.name] = s.coerce(s.default, where, node_id) if s.default is not None else None
        return out

    # ----- shape and size ------------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"{self.type_name} '{self.id}'"

    def shape_error(self, message: str) -> ShapeError:
        return ShapeError(f"{self.where} {message}", self.id)

    def infer_shape(self) -> Shape:
        """Per-sample output shape from ``self.in_shapes``; raise ``self.shape_error`` if unfit."""
        return self.in_shapes[0]

    def param_shapes(self) -> dict[str, Shape]:
        """Trainable parameters, PyTorch names and layouts."""
        return {}

    def buffer_shapes(self) -> dict[str, Shape]:
        """Non-trainable state saved with the weights (e.g. running statistics)."""
        return {}

    def param_count(self) -> int:
        return int(sum(math.prod(s) for s in self.param_shapes().values()))

    def macs(self) -> int:
        """Multiply-adds per sample (forward)."""
        return 0

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Fresh float32 parameters and buffers."""
        return {}

    # ----- compute -------------------------------------------------------------------------
    def forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray], train: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(
        self, dy: np.ndarray, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]
    ) -> list[np.ndarray]:
        raise NotImplementedError

    def frozen_grads(self, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What ``backward`` writes its parameter gradients into while the node is frozen
        (``Node.trainable`` false), given the node's own gradient arrays: by default scratch
        arrays of the same shapes, filled and never read. A layer that can skip its weight
        gradient returns arrays its backward takes as "skip" (Dense and Conv2D: empty ones,
        and their kernels leave the weight-gradient product out)."""
        return {k: np.zeros_like(g) for k, g in grads.items()}

    def summary(self) -> str:
        """Key params in a few words, for the canvas node."""
        parts = []
        for s in self.param_specs[:3]:
            v = self.p.get(s.name)
            if v is None:
                continue
            parts.append(f"{s.name}={'×'.join(map(str, v)) if isinstance(v, tuple) else v}")
        return ", ".join(parts)

    # ----- inputs, references, fusion ------------------------------------------------------
    def index_range(self, port: int) -> int | None:
        """For inputs that are integer ids (an Embedding's): ids run from 0 to this - 1."""
        return None

    def sample_inputs(self, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Random float64 inputs this layer is meant to see (tests and warm-up): standard
        normal values, or whole-number ids in ``index_range``."""
        xs = []
        for port, shape in enumerate(self.in_shapes):
            hi = self.index_range(port)
            if hi is not None:
                xs.append(rng.integers(0, hi, (batch, *shape)).astype(np.float64))
            else:
                xs.append(rng.standard_normal((batch, *shape)))
        return xs

    def reference_forward(self, xs: list[np.ndarray], params: dict[str, np.ndarray],
                          train: bool) -> np.ndarray | None:
        """The output computed in plain float64 numpy, the oracle for ``forward``'s kernels
        (None: ``forward`` is plain numpy itself). Draws the same random numbers from
        ``self.rng`` as ``forward``; may update buffers as ``forward`` does."""
        return None

    def fusion_stage(self) -> str:
        """This node's role in a fused block (``fusion_role``, or "" when its params do not
        fit the fused kernel)."""
        return self.fusion_role

    def folds_into_loss(self) -> str:
        """The loss that absorbs this node (``loss_fold``, or "" when its params rule it out)."""
        return self.loss_fold

    def output_range(self) -> tuple[float, float] | None:
        """This node's ``output_bounds``."""
        return self.output_bounds

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b: OnnxBuilder, xs: list[str], out: str,
                params: dict[str, np.ndarray]) -> None:
        """Add the ONNX nodes computing ``out`` from the tensors ``xs`` (inference
        semantics); ``params`` are float32 copies by local name. Not overridden: no ONNX
        equivalent (``capabilities`` says so and the exporter refuses the model)."""
        raise NotImplementedError

    @classmethod
    def rewrite_onnx(cls, rw: Any) -> None:
        """Before the importer folds shapes: rewrite what other tools write for this layer
        type into the form ``from_onnx`` reads (``rw``: the rewrite pass,
        ``export.onnx_patterns``: its ``nodes``, ``consts``, ``shapes``, ``notes``, and
        ``misses`` for what a refusal should say). Most layers need none."""

    @classmethod
    def claim_onnx(cls, imp: Importer, index: int, node: Any) -> None:
        """Before any conversion: claim helper nodes around ``node`` (one of ``onnx_ops``)
        that belong to the same layer, e.g. by adding their indices to ``imp.skip``."""

    @classmethod
    def from_onnx(cls, imp: Importer, index: int, node: Any) -> None:
        """Convert the ONNX ``node`` (op in ``onnx_ops``) with ``imp.add`` and bind its output
        tensor(s) in ``imp.vals``; raise ``imp.fail(node, why)`` where it does not fit."""
        raise NotImplementedError

    def to_pytorch(self, ctx: PytorchContext, xs: list[str], out: str
                   ) -> tuple[list[str], list[str]]:
        """(lines for ``__init__``, lines for ``forward``) of the generated PyTorch module;
        ``xs`` and ``out`` are local variable names. Not overridden: no PyTorch equivalent."""
        raise NotImplementedError

    @classmethod
    def capabilities(cls) -> Capabilities:
        """Which exporters and the importer handle this type (derived from its hooks)."""
        return Capabilities(
            cls.type_name, onnx_export=cls.to_onnx is not Layer.to_onnx,
            onnx_import=cls.onnx_graph_io or bool(cls.onnx_shared_ops) or (
                bool(cls.onnx_ops or cls.onnx_const_ops)
                and cls.from_onnx.__func__ is not Layer.from_onnx.__func__),
            pytorch_export=cls.to_pytorch is not Layer.to_pytorch,
            onnx_ops=cls.onnx_ops + cls.onnx_shared_ops + cls.onnx_const_ops)

    @classmethod
    def new_id_prefix(cls) -> str:
        return cls.id_prefix or re.sub(r"2d$", "", cls.type_name.lower()) or "node"


_REGISTRY: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator adding a layer type to the registry."""
    if not cls.type_name:
        raise TypeError(f"{cls.__name__} has no type_name")
    if cls.type_name in _REGISTRY and _REGISTRY[cls.type_name] is not cls:
        raise TypeError(f"layer type {cls.type_name!r} registered twice")
    _REGISTRY[cls.type_name] = cls
    return cls


_STRUCTURAL: dict[str, type[Layer]] = {}


def register_structural(cls: type[Layer]) -> type[Layer]:
    """Add a node type that is not a layer of its own (the Block of ``engine.graph``): nodes
    may have it, but palettes, docs, exporters and the contract harness (which read
    ``layer_types()``) never list it."""
    _STRUCTURAL[cls.type_name] = cls
    return cls


def get_layer_class(type_name: str, node_id: str | None = None) -> type[Layer]:
    """The registered class of ``type_name``, or UnknownLayerError listing the known ones.
    (``import engine`` registers the built-in types: it imports ``engine.layers``.)"""
    try:
        return _REGISTRY.get(type_name) or _STRUCTURAL[type_name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY))
        where = f"node '{node_id}': " if node_id else ""
        raise UnknownLayerError(f"{where}unknown layer type {short_repr(type_name)} (known: {known})",
                                node_id) from None


def layer_types() -> dict[str, type[Layer]]:
    """All registered layer types by name, in registration order."""
    return dict(_REGISTRY)


CATEGORY_ORDER = ("Input/Output", "Core", "Convolution", "Pooling", "Activation",
                  "Normalization", "Merge", "Recurrent", "Attention", "Spatial", "Other")


def layers_by_category() -> dict[str, list[type[Layer]]]:
    """Layer types grouped by category, in palette order."""
    out: dict[str, list[type[Layer]]] = {c: [] for c in CATEGORY_ORDER}
    for cls in layer_types().values():
        out.setdefault(cls.category, []).append(cls)
    return {c: v for c, v in out.items() if v}


def fmt_shape(shape: Iterable[int]) -> str:
    """(16, 5, 5) style; a single dimension keeps its comma: (784,)."""
    dims = [str(d) for d in shape]
    return "(" + (dims[0] + "," if len(dims) == 1 else ", ".join(dims)) + ")"

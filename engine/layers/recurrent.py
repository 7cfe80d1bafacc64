"""Recurrent layers on sequences (T, F): SimpleRNN (tanh), LSTM and GRU.

Parameters are PyTorch's, name for name: ``weight_ih`` (G·H, F), ``weight_hh`` (G·H, H),
``bias_ih``, ``bias_hh`` (G·H,) with G = 1 (SimpleRNN), 4 (LSTM, gates i, f, g, o) or 3 (GRU,
gates r, z, n). The backward-in-time direction's parameters carry the suffix ``_reverse``
(also when ``direction`` is "backward" alone). Initialisation is PyTorch's:
U(-1/√H, 1/√H) for every weight and bias.

Directions: "forward" reads x[0] … x[T-1]; "backward" reads x[T-1] … x[0], and with
``return_sequences`` its output at position t is the state after reading x[T-1] … x[t] (as
the reverse half of PyTorch's bidirectional layer); "bidirectional" runs both and merges them
by ``merge``: "sum" (H outputs) or "concat" (2H outputs, forward first). Without
``return_sequences`` the output is the last state: h after x[T-1] going forward, h after x[0]
going backward (PyTorch's ``h_n``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..kernels import recurrent as rk
from ..kernels.reference import recurrent as rr
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register
from ..text import plural

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
TORCH_CLASS = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}
# ONNX gate block k comes from PyTorch gate block ONNX_GATES[cell][k] (ONNX: LSTM i, o, f, c;
# GRU z, r, h).
ONNX_GATES = {"rnn": [0], "lstm": [0, 3, 1, 2], "gru": [1, 0, 2]}
ONNX_DIRECTIONS = {"forward": "forward", "backward": "reverse", "bidirectional": "bidirectional"}
ONNX_ACTIVATIONS = {"rnn": ["Tanh"], "lstm": ["Sigmoid", "Tanh", "Tanh"],
                    "gru": ["Sigmoid", "Tanh"]}
_REFERENCE = {"rnn": rr.rnn_forward, "lstm": lambda *a: rr.lstm_forward(*a)[0],
              "gru": lambda *a: rr.gru_forward(*a)[0]}


def _to_onnx_gates(a: np.ndarray, cell: str, h: int) -> np.ndarray:
    return np.concatenate([a[k * h:(k + 1) * h] for k in ONNX_GATES[cell]], axis=0)


def _from_onnx_gates(a: np.ndarray, cell: str, h: int) -> np.ndarray:
    out = np.empty_like(a)
    for k, src in enumerate(ONNX_GATES[cell]):
        out[src * h:(src + 1) * h] = a[k * h:(k + 1) * h]
    return out


def _examples() -> tuple[Any, ...]:
    seq = {"return_sequences": True}
    return (example((5, 3), units=3, direction="bidirectional", label="bidi-seq-sum", **seq),
            example((5, 3), units=4, label="forward-last"),
            example((5, 3), units=3, direction="backward", label="backward-seq", **seq),
            example((4, 2), units=3, direction="bidirectional", merge="concat",
                    label="bidi-last-concat"))


class RecurrentLayer(Layer):
    """Shared machinery of SimpleRNN, LSTM and GRU; ``cell`` names the kernel family."""

    cell: ClassVar[str] = ""
    category = "Recurrent"
    param_specs = (
        ParamSpec("units", "int", 32, low=1, high=4096, help="size of the hidden state H"),
        ParamSpec("return_sequences", "bool", False,
                  help="output the state at every time step (T, H) instead of only the last (H,)"),
        ParamSpec("direction", "choice", "forward",
                  choices=("forward", "backward", "bidirectional"),
                  help="read the sequence forward, backward, or both ways"),
        ParamSpec("merge", "choice", "sum", choices=("sum", "concat"),
                  help="bidirectional only: add the two directions (H) or stack them (2H)"),
    )

    # ----- description ---------------------------------------------------------------------
    @property
    def gates(self) -> int:
        return rk.GATES[self.cell]

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Parameter-name suffix of each direction run, in output order."""
        return {"forward": ("",), "backward": ("_reverse",),
                "bidirectional": ("", "_reverse")}[self.p["direction"]]

    @property
    def out_units(self) -> int:
        both = self.p["direction"] == "bidirectional" and self.p["merge"] == "concat"
        return 2 * self.p["units"] if both else self.p["units"]

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if len(s) != 2:
            if len(s) == 1:
                hint = f"({s[0]}, 1) to read one value per step"
            else:
                hint = f"({math.prod(s[:-1])}, {s[-1]})"
            raise self.shape_error(f"expects a sequence (T, F), got {fmt_shape(s)}: add a Reshape "
                                   f"to (T, F), e.g. {hint}")
        if self.p["return_sequences"]:
            return (s[0], self.out_units)
        return (self.out_units,)

    def param_shapes(self) -> dict[str, Shape]:
        gh, h, f = self.gates * self.p["units"], self.p["units"], self.in_shapes[0][1]
        out: dict[str, Shape] = {}
        for sfx in self.suffixes:
            out.update({f"weight_ih{sfx}": (gh, f), f"weight_hh{sfx}": (gh, h),
                        f"bias_ih{sfx}": (gh,), f"bias_hh{sfx}": (gh,)})
        return out

    def macs(self) -> int:
        t, f = self.in_shapes[0]
        h = self.p["units"]
        return len(self.suffixes) * t * self.gates * h * (f + h)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        k = 1.0 / math.sqrt(self.p["units"])
        return {name: rng.uniform(-k, k, shape).astype(np.float32)
                for name, shape in self.param_shapes().items()}

    def summary(self) -> str:
        p = self.p
        text = plural(p["units"], "unit")
        if p["direction"] == "bidirectional":
            text += f", bidirectional ({p['merge']})"
        elif p["direction"] == "backward":
            text += ", backward"
        return text + (", sequences" if p["return_sequences"] else "")

    # ----- compute -------------------------------------------------------------------------
    def _weights(self, params: dict[str, np.ndarray], sfx: str) -> list[np.ndarray]:
        return [params[name + sfx] for name in PARAM_NAMES]

    def _buffers(self, sfx: str) -> rk.Buffers:
        """The kernels' arrays of one direction, kept from step to step (``rk.buffer``)."""
        bufs = self.__dict__.setdefault("_bufs", {})
        return bufs.setdefault(sfx, {})

    def forward(self, xs, params, train):
        x = xs[0]
        n = x.shape[0]
        chunks = rk.n_chunks(n)
        self._n = n
        self._chunks = chunks
        self._states = []
        outs = []
        for sfx in self.suffixes:
            reverse = sfx == "_reverse"
            w_ih, w_hh, b_ih, b_hh = self._weights(params, sfx)
            bufs = self._buffers(sfx)
            state = rk.sequence_forward(self.cell, rk.to_chunks(x, chunks, reverse, bufs, "x"),
                                        w_ih, w_hh, b_ih, b_hh, bufs)
            self._states.append(state)
            hid = state["hid"]
            if self.p["return_sequences"]:
                outs.append(rk.from_chunks(hid, n, reverse))
            else:
                outs.append(rk.from_chunks(hid[:, -1:], n)[:, 0])
        if len(outs) == 1:
            return outs[0]
        if self.p["merge"] == "sum":
            return outs[0] + outs[1]
        return np.concatenate(outs, axis=-1)

    def backward(self, dy, params, grads):
        n, chunks, h = self._n, self._chunks, self.p["units"]
        concat = len(self.suffixes) == 2 and self.p["merge"] == "concat"
        dx = None
        for k, (sfx, state) in enumerate(zip(self.suffixes, self._states)):
            reverse = sfx == "_reverse"
            part = dy[..., k * h:(k + 1) * h] if concat else dy
            bufs = self._buffers(sfx)
            if self.p["return_sequences"]:
                dhid = rk.to_chunks(part, chunks, reverse, bufs, "dhid")
            else:
                dhid = rk.buffer(bufs, "dhid", state["hid"].shape, state["hid"].dtype)
                dhid[:, :-1] = 0
                dhid[:, -1:] = rk.to_chunks(part[:, None, :], chunks)
            w_ih, w_hh, _, _ = self._weights(params, sfx)
            dxc, g = rk.sequence_backward(self.cell, state, w_ih, w_hh, dhid, bufs)
            for name in PARAM_NAMES:
                grads[name + sfx][...] = g[name]
            d = rk.from_chunks(dxc, n, reverse)
            dx = d if dx is None else dx + d
        return [dx]


    def reference_forward(self, xs, params, train):
        x = np.asarray(xs[0], np.float64)
        outs = []
        for sfx in self.suffixes:
            reverse = sfx == "_reverse"
            h = _REFERENCE[self.cell](x[:, ::-1] if reverse else x,
                                      *self._weights(params, sfx))
            if self.p["return_sequences"]:
                outs.append(h[:, ::-1] if reverse else h)
            else:
                outs.append(h[:, -1])
        if len(outs) == 1:
            return outs[0]
        return outs[0] + outs[1] if self.p["merge"] == "sum" else np.concatenate(outs, -1)

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        """x (N, T, F) -> Transpose (T, N, F) -> op -> Y (T, D, N, H) with return_sequences,
        else Y_h (D, N, H) -> Transpose to batch first -> Reshape (concat, or one direction)
        or ReduceSum over the direction axis (sum). Gates reordered to ONNX's; GRU with
        linear_before_reset = 1, which is PyTorch's formula."""
        nid, cell, h = self.id, self.cell, self.p["units"]
        op = ONNX_OP[cell]
        sfx = self.suffixes
        w = np.stack([_to_onnx_gates(params[f"weight_ih{s}"], cell, h) for s in sfx])
        r = np.stack([_to_onnx_gates(params[f"weight_hh{s}"], cell, h) for s in sfx])
        bias = np.stack([np.concatenate([_to_onnx_gates(params[f"bias_ih{s}"], cell, h),
                                         _to_onnx_gates(params[f"bias_hh{s}"], cell, h)])
                         for s in sfx])
        x_t = b.op("Transpose", xs, f"{nid}/time_major", perm=[1, 0, 2])
        attrs: dict[str, Any] = {"hidden_size": h,
                                 "direction": ONNX_DIRECTIONS[self.p["direction"]]}
        if op == "GRU":
            attrs["linear_before_reset"] = 1
        seq = self.p["return_sequences"]
        y = f"{nid}/Y" if seq else f"{nid}/Y_h"
        outputs = [y, ""] if seq else ["", y]
        if op == "LSTM":
            outputs.append("")
        b.op(op, [x_t, b.const(f"{nid}.W", w), b.const(f"{nid}.R", r),
                  b.const(f"{nid}.B", bias)], y, name=nid, outputs=outputs, **attrs)
        perm = [2, 0, 1, 3] if seq else [1, 0, 2]
        bf = b.op("Transpose", [y], f"{nid}/batch_first", perm=perm)
        d_axis = 2 if seq else 1
        if len(sfx) == 2 and self.p["merge"] == "sum":
            axes = b.const(f"{nid}/direction_axis", [d_axis], np.int64)
            b.op("ReduceSum", [bf, axes], out, name=f"{nid}/merge", keepdims=0)
        else:
            shape = b.const(f"{nid}/merged_shape", [0, 0, -1] if seq else [0, -1], np.int64)
            b.op("Reshape", [bf, shape], out, name=f"{nid}/merge")

    @classmethod
    def from_onnx(cls, imp, index, node):
        """Read an ONNX RNN / LSTM / GRU node into a pending recurrent output: it becomes a
        node once the transposes and reshapes after it make it batch-first
        (``Importer.finish_pending``)."""
        cell, op = cls.cell, node.op_type
        a = imp.attrs(node)
        x = imp.value(node, allow_perm=True)
        layout = int(a.get("layout", 0))
        want = () if layout == 1 else (1, 0, 2)
        if len(x.shape) != 2 or tuple(x.perm) != want:
            raise imp.fail(node, "reads a sequence NetBuilder cannot express: it needs "
                                 "(N, T, F) samples transposed to (T, N, F), or layout = 1")
        for i, what in ((4, "sequence_lens"), (5, "initial_h"), (6, "initial_c"), (7, "P")):
            if len(node.input) > i and node.input[i]:
                raise imp.fail(node, f"has {what}; NetBuilder's recurrent layers start from "
                                     "zeros and read whole sequences")
        if a.get("clip") is not None or a.get("input_forget", 0):
            raise imp.fail(node, "uses clip or input_forget, which NetBuilder does not have")
        default_acts = ONNX_ACTIVATIONS[cell]
        acts = a.get("activations")
        if acts and [s.lower() for s in acts[:len(default_acts)]] != \
                [s.lower() for s in default_acts]:
            raise imp.fail(node, f"uses activations {acts}; NetBuilder's are {default_acts}")
        if op == "GRU" and not a.get("linear_before_reset", 0):
            raise imp.fail(node, "has linear_before_reset = 0 (the reset gate applied before the "
                                 "recurrent product, as Keras' reset_after=False); NetBuilder's "
                                 "GRU is PyTorch's (linear_before_reset = 1): export a GRU with "
                                 "reset_after=True, or from PyTorch")
        direction = {"forward": "forward", "reverse": "backward",
                     "bidirectional": "bidirectional"}.get(a.get("direction", "forward"))
        if direction is None:
            raise imp.fail(node, f"has direction {a.get('direction')!r}; ONNX knows forward, "
                                 "reverse and bidirectional")
        h = int(a.get("hidden_size", 0))
        if not 0 < h <= 1 << 20:
            raise imp.fail(node, f"has hidden_size {a.get('hidden_size')}")
        sfx = ("", "_reverse") if direction == "bidirectional" else \
            ("_reverse",) if direction == "backward" else ("",)
        w, r, bias = cls._onnx_weights(imp, node, h, len(sfx), x.shape[1])
        gh = len(ONNX_GATES[cell]) * h
        state = {}
        for d, s in enumerate(sfx):
            state[f"weight_ih{s}"] = _from_onnx_gates(w[d], cell, h)
            state[f"weight_hh{s}"] = _from_onnx_gates(r[d], cell, h)
            state[f"bias_ih{s}"] = _from_onnx_gates(bias[d, :gh], cell, h)
            state[f"bias_hh{s}"] = _from_onnx_gates(bias[d, gh:], cell, h)
        used = [i for i, t in enumerate(node.output)
                if t and (t in imp.consumers or t in imp.outputs)]
        if used != [0] and used != [1]:
            raise imp.fail(node, "must have exactly one of Y (all steps) or Y_h (last step) used")
        seq = used == [0]
        if layout == 1:
            labels = ("N", "T", "D", "H") if seq else ("N", "D", "H")
        else:
            labels = ("T", "D", "N", "H") if seq else ("D", "N", "H")
        pend = imp.PendingRNN(node=imp.hint(node), onnx_node=node, type_name=cls.type_name,
                              params={"units": h, "return_sequences": seq,
                                      "direction": direction},
                              state=state, x=x, labels=labels, dirs=len(sfx))
        imp.vals[node.output[used[0]]] = pend
        imp.finish_pending(node.output[used[0]], pend)

    @classmethod
    def _onnx_weights(cls, imp: Any, node: Any, h: int, dirs: int,
                      features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """W, R and B of a recurrent op, checked against its hidden size, directions and input
        (a damaged file must not reach the gate slicing with other shapes)."""
        gh = len(ONNX_GATES[cls.cell]) * h
        w = imp.need_const(node, 1, "W").astype(np.float32)
        r = imp.need_const(node, 2, "R").astype(np.float32)
        b = None
        if len(node.input) > 3 and node.input[3]:
            b = imp.need_const(node, 3, "B").astype(np.float32)
        b = np.zeros((dirs, 2 * gh), np.float32) if b is None else b
        for name, arr, want in (("W", w, (dirs, gh, features)), ("R", r, (dirs, gh, h)),
                                ("B", b, (dirs, 2 * gh))):
            if arr.shape != want:
                raise imp.fail(node, f"has {name} shaped {list(arr.shape)}; a {dirs}-direction "
                                     f"{node.op_type} of hidden size {h} on {features} features "
                                     f"needs {list(want)}")
        return w, r, b

    def to_pytorch(self, ctx, xs, out):
        """nn.RNN / LSTM / GRU with batch_first; "backward" alone runs a one-way layer on the
        time-flipped sequence (our ``*_reverse`` parameters are its ``*_l0``)."""
        p = self.p
        h, direction = p["units"], p["direction"]
        both = direction == "bidirectional"
        ctor = f"{TORCH_CLASS[self.cell]}({self.in_shapes[0][1]}, {h}, batch_first=True"
        ctor += ", bidirectional=True)" if both else ")"
        init, ref = ctx.register(self.id, ctor)
        names = {}
        for sfx in self.suffixes:
            torch_sfx = "_l0_reverse" if both and sfx == "_reverse" else "_l0"
            names.update({f"{n}{sfx}": f"{n}{torch_sfx}" for n in PARAM_NAMES})
        ctx.rename_params(self.id, names)
        x = xs[0]
        if direction == "backward":
            x = f"torch.flip({x}, [1])"
        state = "(h_n, _)" if self.cell == "lstm" else "h_n"
        seq = p["return_sequences"]
        lines = [f"y, {state} = {ref}({x})"] if seq else [f"_, {state} = {ref}({x})"]
        if seq:
            if direction == "backward":
                expr = "torch.flip(y, [1])  # back in input order"
            elif both and p["merge"] == "sum":
                expr = f"y[..., :{h}] + y[..., {h}:]  # forward + backward"
            else:
                expr = "y"
        elif both:
            expr = ("h_n[0] + h_n[1]" if p["merge"] == "sum"
                    else "torch.cat([h_n[0], h_n[1]], dim=1)")
            expr += "  # last states: forward, backward"
        else:
            expr = "h_n[0]  # last state"
        return init, [*lines, f"{out} = {expr}"]


@register
class SimpleRNN(RecurrentLayer):
    """Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    type_name = "SimpleRNN"
    cell = "rnn"
    kernels = (rk.rnn_forward, rk.rnn_backward)
    help = "Plain recurrent layer (tanh) over a sequence (T, F); fast but forgets quickly."
    glyph = "RNN"
    onnx_ops = ("RNN",)
    examples = _examples()


@register
class LSTM(RecurrentLayer):
    """Long short-term memory, PyTorch's equations and gate order (i, f, g, o)."""

    type_name = "LSTM"
    cell = "lstm"
    kernels = (rk.lstm_forward, rk.lstm_backward)
    help = "Long short-term memory over a sequence (T, F): gated cell state that remembers long."
    glyph = "LS"
    onnx_ops = ("LSTM",)
    examples = _examples()


@register
class GRU(RecurrentLayer):
    """Gated recurrent unit, PyTorch's equations and gate order (r, z, n)."""

    type_name = "GRU"
    cell = "gru"
    kernels = (rk.gru_forward, rk.gru_backward)
    help = "Gated recurrent unit over a sequence (T, F): like an LSTM with fewer parameters."
    glyph = "GR"
    onnx_ops = ("GRU",)
    examples = _examples()

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
from typing import ClassVar

import numpy as np

from ..kernels import recurrent as rk
from ..registry import Layer, ParamSpec, Shape, fmt_shape, register
from ..text import plural

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


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
            state = rk.sequence_forward(self.cell, rk.to_chunks(x, chunks, reverse),
                                        w_ih, w_hh, b_ih, b_hh)
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
            if self.p["return_sequences"]:
                dhid = rk.to_chunks(part, chunks, reverse)
            else:
                dhid = np.zeros_like(state["hid"])
                dhid[:, -1:] = rk.to_chunks(part[:, None, :], chunks)
            w_ih, w_hh, _, _ = self._weights(params, sfx)
            dxc, g = rk.sequence_backward(self.cell, state, w_ih, w_hh, dhid)
            for name in PARAM_NAMES:
                grads[name + sfx][...] = g[name]
            d = rk.from_chunks(dxc, n, reverse)
            dx = d if dx is None else dx + d
        return [dx]


@register
class SimpleRNN(RecurrentLayer):
    """Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    type_name = "SimpleRNN"
    cell = "rnn"
    help = "Plain recurrent layer (tanh) over a sequence (T, F); fast but forgets quickly."


@register
class LSTM(RecurrentLayer):
    """Long short-term memory, PyTorch's equations and gate order (i, f, g, o)."""

    type_name = "LSTM"
    cell = "lstm"
    help = "Long short-term memory over a sequence (T, F): gated cell state that remembers long."


@register
class GRU(RecurrentLayer):
    """Gated recurrent unit, PyTorch's equations and gate order (r, z, n)."""

    type_name = "GRU"
    cell = "gru"
    help = "Gated recurrent unit over a sequence (T, F): like an LSTM with fewer parameters."

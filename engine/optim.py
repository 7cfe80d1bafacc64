"""Optimizers: SGD (momentum, Nesterov), Adam, AdamW, RMSProp, AdaGrad.

All update ``params`` in place from ``grads`` (same keys). ``weight_decay`` is L2 added to the
gradient (AdamW: decoupled). ``clip_norm`` rescales all gradients together when their global
L2 norm exceeds it; the norm before clipping is kept in ``last_grad_norm``. ``segments``
(``Network.lr_segments``: frozen nodes and per-node learning-rate multipliers) scale the
learning rate over ranges of the flat vector; a range at 0 is not touched at all (its
parameters and optimizer state stay as they are, weight decay included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ParamError

FLAT = "*"  # the state key of updates over a network's flat parameter vector
KERNEL_MIN = 4096  # arrays at least this long are updated by one Numba kernel pass


def _kernel_ok(p: np.ndarray, g: np.ndarray) -> bool:
    return p.size >= KERNEL_MIN and p.flags.c_contiguous and g.flags.c_contiguous \
        and g.dtype == p.dtype


def flat_norm(g: np.ndarray) -> float:
    """L2 norm of a flat array (M,), accumulated in float64."""
    from .kernels.optim import sum_squares

    return math.sqrt(sum_squares(g))


def global_norm(grads: dict[str, np.ndarray]) -> float:
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale ``grads`` in place so their global norm is at most ``max_norm``; return the norm."""
    norm = global_norm(grads)
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


class Optimizer:
    name = "optimizer"

    def __init__(self, lr: float, weight_decay: float = 0.0, clip_norm: float = 0.0) -> None:
        if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise ParamError(f"learning rate must be a positive number, got {lr!r}")
        if weight_decay < 0:
            raise ParamError(f"weight decay must be ≥ 0, got {weight_decay!r}")
        if clip_norm < 0:
            raise ParamError(f"gradient clipping norm must be ≥ 0 (0 = off), got {clip_norm!r}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.clip_norm = float(clip_norm)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0
        self.last_grad_norm = 0.0
        self._view: slice | None = None  # the range of the flat slots ``slot`` returns

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray],
             flat: tuple[np.ndarray, np.ndarray] | None = None,
             norm: float | None = None,
             segments: Sequence[tuple[int, int, float]] | None = None) -> None:
        """One update of every parameter in place.

        ``flat``: the same parameters and gradients as two flat arrays (M,) that ``params``
        and ``grads`` are views of (``Network.flat_params``, ``flat_grads``); the update then
        runs once over all of them. ``norm``: their global gradient norm, if already known.
        ``segments`` (with ``flat``): ``(start, stop, lr multiplier)`` ranges covering it."""
        if flat is not None:
            p, g = flat
            if norm is None and not self.clip_norm and not segments \
                    and not (self.weight_decay and not self.decoupled):
                # the norm of the gradient the update reads: summed by the update's own pass
                self.t += 1
                sq = self.update_with_norm(FLAT, p, g)
                self.last_grad_norm = flat_norm(g) if sq is None else math.sqrt(sq)
                return
            if norm is None:
                norm = flat_norm(g)
            if self.clip_norm and norm > self.clip_norm:
                g *= self.clip_norm / (norm + 1e-12)
            pairs = [(FLAT, p, g)]
        else:
            norm = (clip_by_global_norm(grads, self.clip_norm) if self.clip_norm
                    else global_norm(grads))
            pairs = [(name, p, grads[name]) for name, p in params.items()]
        self.last_grad_norm = norm
        self.t += 1
        if segments and flat is not None:
            self._step_segments(flat[0], pairs[0][2], segments)
            return
        for name, p, g in pairs:
            if self.weight_decay and not self.decoupled:
                g = g + self.weight_decay * p
            self.update(name, p, g)

    def _step_segments(self, p: np.ndarray, g: np.ndarray,
                       segments: Sequence[tuple[int, int, float]]) -> None:
        """The flat update range by range, each at its learning rate; ranges at 0 skipped."""
        base = self.lr
        for key in self._slot_keys:
            self.slot(FLAT, key, p)
        try:
            for a, b, mult in segments:
                if mult <= 0 or b <= a:
                    continue
                self.lr = base * mult
                self._view = slice(a, b)
                pa, ga = p[a:b], g[a:b]
                if self.weight_decay and not self.decoupled:
                    ga = ga + self.weight_decay * pa
                self.update(FLAT, pa, ga)
        finally:
            self.lr = base
            self._view = None

    decoupled = False

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def update_with_norm(self, name: str, p: np.ndarray, g: np.ndarray) -> float | None:
        """``update``, returning Σ g² (float64) when its kernel sums it on the way (one pass
        over the gradient, one parallel region: ``kernels.optim``), else None."""
        self.update(name, p, g)
        return None

    _slot_keys: tuple[str, ...] = ()  # the state each update keeps per parameter

    def slot(self, name: str, key: str, like: np.ndarray) -> np.ndarray:
        """The optimizer state ``key`` of ``name`` (zeros like ``like`` at first); inside a
        segmented update, its range of the flat slot."""
        s = self.state.setdefault(name, {})
        if key not in s:
            s[key] = np.zeros_like(like)
        arr = s[key]
        return arr[self._view] if self._view is not None and name == FLAT else arr

    def config(self) -> dict[str, Any]:
        """Settings as stored in a model file's ``training.optimizer``."""
        out: dict[str, Any] = {"type": self.name, "lr": self.lr}
        if self.weight_decay:
            out["weight_decay"] = self.weight_decay
        if self.clip_norm:
            out["clip_norm"] = self.clip_norm
        return out


class SGD(Optimizer):
    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float = 0.0) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        if not 0 <= momentum < 1:
            raise ParamError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    @property
    def _slot_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("v",) if self.momentum else ()

    def update_with_norm(self, name: str, p: np.ndarray, g: np.ndarray) -> float | None:
        t = p.dtype.type
        if not _kernel_ok(p, g):
            self.update(name, p, g)
            return None
        if self.momentum:
            from .kernels.optim import sgd_momentum_update  # one pass, same bits

            v = self.slot(name, "v", p)
            return sgd_momentum_update(p.reshape(-1), g.reshape(-1), v.reshape(-1),
                                       t(self.lr), t(self.momentum), self.nesterov, True)
        from .kernels.optim import sgd_update

        return sgd_update(p.reshape(-1), g.reshape(-1), t(self.lr), True)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        t = p.dtype.type
        if self.momentum:
            v = self.slot(name, "v", p)
            if _kernel_ok(p, g):
                from .kernels.optim import sgd_momentum_update  # one pass, same bits
                sgd_momentum_update(p.reshape(-1), g.reshape(-1), v.reshape(-1), t(self.lr),
                                    t(self.momentum), self.nesterov, False)
                return
            v *= self.momentum
            v += g
            if self.nesterov:
                p -= self.lr * (g + self.momentum * v)
            else:
                p -= self.lr * v
        elif _kernel_ok(p, g):
            from .kernels.optim import sgd_update

            sgd_update(p.reshape(-1), g.reshape(-1), t(self.lr), False)
        else:
            p -= self.lr * g

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    name = "adam"
    _slot_keys = ("m", "v")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, clip_norm: float = 0.0) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def update_with_norm(self, name: str, p: np.ndarray, g: np.ndarray) -> float | None:
        if not _kernel_ok(p, g):
            self.update(name, p, g)
            return None
        return self._kernel_update(name, p, g, True)

    def _kernel_update(self, name: str, p: np.ndarray, g: np.ndarray, with_norm: bool
                       ) -> float:
        from .kernels.optim import adam_update  # one pass, same rounding

        m = self.slot(name, "m", p)
        v = self.slot(name, "v", p)
        bc1 = 1 - self.beta1 ** self.t
        bc2 = 1 - self.beta2 ** self.t
        t = p.dtype.type
        decay = 1 - self.lr * self.weight_decay if self.decoupled else 1.0
        return adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                           t(self.beta1), t(1 - self.beta1), t(self.beta2), t(1 - self.beta2),
                           t(self.lr / bc1), t(bc2), t(self.eps), t(decay), with_norm)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if _kernel_ok(p, g):
            self._kernel_update(name, p, g, False)
            return
        m = self.slot(name, "m", p)
        v = self.slot(name, "v", p)
        bc1 = 1 - self.beta1 ** self.t
        bc2 = 1 - self.beta2 ** self.t
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        if self.decoupled and self.weight_decay:
            p *= 1 - self.lr * self.weight_decay
        p -= (self.lr / bc1) * m / (np.sqrt(v / bc2) + self.eps)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2}


class AdamW(Adam):
    name = "adamw"
    decoupled = True


class RMSProp(Optimizer):
    name = "rmsprop"
    _slot_keys = ("s",)

    def __init__(self, lr: float = 1e-3, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float = 0.0) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.alpha, self.eps = float(alpha), float(eps)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        s = self.slot(name, "s", p)
        s *= self.alpha
        s += (1 - self.alpha) * (g * g)
        p -= self.lr * g / (np.sqrt(s) + self.eps)


class AdaGrad(Optimizer):
    name = "adagrad"
    _slot_keys = ("s",)

    def __init__(self, lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0,
                 clip_norm: float = 0.0) -> None:
        super().__init__(lr, weight_decay, clip_norm)
        self.eps = float(eps)

    def update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        s = self.slot(name, "s", p)
        s += g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    c.name: c for c in (SGD, Adam, AdamW, RMSProp, AdaGrad)
}


def make_optimizer(config: dict[str, Any] | str | None = None, **overrides: Any) -> Optimizer:
    """Build an optimizer from a model file's ``training.optimizer`` section (or a name)."""
    if config is None:
        config = {"type": "sgd"}
    if isinstance(config, str):
        config = {"type": config}
    cfg = {**config, **{k: v for k, v in overrides.items() if v is not None}}
    kind = str(cfg.pop("type", "sgd")).lower()
    if kind not in OPTIMIZERS:
        raise ParamError(f"unknown optimizer {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[kind]
    import inspect
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(cfg) - allowed
    if unknown:
        raise ParamError(f"optimizer {kind}: unknown setting(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(allowed))})")
    try:
        return cls(**cfg)
    except TypeError as exc:
        raise ParamError(f"optimizer {kind}: {exc}") from None

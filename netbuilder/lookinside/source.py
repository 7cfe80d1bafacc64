"""The network a user questions (Qt-free): the open model with the weights of its latest
finished run (or fresh ones), and how an input becomes what the Input sees.

``TrySource.prepare(ink)`` maps ink (H, W) in 0..1 onto the dataset's value range, copies it
to every channel and applies the run's normalisation (the Data panel's mode, fitted on the
dataset, when there is no run yet): (1, C, H, W), ready for ``predict``. ``input_kind`` says
how the panel lets the user make an input (an image, a 2-D point, tokens, a sequence) and
``answers(x)`` reads every Output: class probabilities, per-step classes, regression values
or a reconstruction of the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import engine
from engine.data.transforms import Normalizer
from engine.errors import NetBuilderError
from engine.explain import class_scores, explainable, probabilities


@dataclass
class Answer:
    """One Output's answer for one input: ``probs`` (K,) or (T, K) for classes, ``value``
    the Output's array for the sample."""

    output: str
    kind: str
    probs: np.ndarray | None
    value: np.ndarray


@dataclass
class TrySource:
    """An unfused network with the weights to question, and how inputs are prepared."""

    net: engine.Network
    label: str
    normalizer: Normalizer = field(default_factory=Normalizer)
    raw_range: tuple[float, float] = (0.0, 1.0)
    class_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.net.shapes[self.net.input_ids[0]])

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    vocab: int = 0  # token ids run 0 … vocab-1 (0: the Input takes no tokens)
    one_hot: bool = False  # tokens are fed as one-hot rows (T, vocab)
    words: list[str] | None = None  # the dataset's vocabulary: words[id]

    @property
    def input_kind(self) -> str:
        """"image" (C, H, W), "points" (2,), "tokens" (ids, or one-hot rows),
        "sequence" (T, F), else "vector"."""
        shape = self.input_shape
        if len(shape) == 3:
            return "image"
        if self.vocab:
            return "tokens"
        if shape == (2,):
            return "points"
        return "sequence" if len(shape) == 2 else "vector"

    @property
    def classifies(self) -> bool:
        """The first Output answers with one class per sample (the Why views need it)."""
        return self.output_kind(self.net.output_ids[0]) == "classes"

    def output_kind(self, oid: str) -> str:
        """"classes", "steps" (a class per step), "reconstruction" (learns its input) or
        "regression"."""
        p = self.net.layers[oid].p
        shape = tuple(self.net.shapes[self.score(oid)])
        if p.get("target") == "x":
            return "reconstruction"
        if p["loss"] == "cross_entropy":
            return "classes" if len(shape) == 1 else "steps"
        if p["loss"] == "bce" and int(np.prod(shape)) == 1:
            return "classes"
        return "regression"

    def score(self, oid: str) -> str:
        return self.net.loss_logits.get(oid, oid)

    def answers(self, x: np.ndarray) -> list[Answer]:
        """Every Output's answer for a batch of one (inference forward)."""
        self.net.forward(x, train=False)
        out = []
        for oid in self.net.output_ids:
            kind = self.output_kind(oid)
            v = np.array(self.net.acts[self.score(oid)][0], dtype=np.float64)
            probs = None
            if kind in ("classes", "steps"):
                if self.net.layers[oid].p["loss"] == "bce":
                    p1 = float(v.reshape(-1)[0])
                    if oid in self.net.loss_logits:
                        p1 = 1.0 / (1.0 + np.exp(-np.clip(p1, -60, 60)))
                    probs = np.array([1.0 - p1, p1])
                else:
                    probs = probabilities(v)
            out.append(Answer(oid, kind, probs, np.array(self.net.acts[oid][0])))
        return out

    def tokens_input(self, ids: list[int]) -> np.ndarray:
        """Token ids -> the Input's batch of one: (1, T) ids or (1, T, vocab) one-hot rows."""
        t = self.input_shape[0]
        ids = list(ids)[:t]
        if self.one_hot:
            x = np.zeros((1, t, self.vocab), np.float32)
            x[0, np.arange(len(ids)), ids] = 1.0
            return x
        x = np.zeros((1, t), np.float32)
        x[0, :len(ids)] = ids
        return x

    def token_ids(self, x: np.ndarray) -> list[int]:
        """One sample of the Input (T,) or (T, vocab) -> its token ids."""
        a = np.asarray(x)
        return [int(v) for v in (a.argmax(axis=-1) if self.one_hot else np.rint(a))]

    def token_text(self, ids: list[int]) -> str:
        return " ".join(self.words[i] if self.words and 0 <= i < len(self.words) else str(i)
                        for i in ids)

    def parse_tokens(self, text: str) -> tuple[list[int], list[str]]:
        """Typed tokens (ids, or the dataset's words; spaces or commas between) -> ids, and
        the tokens it could not read (unknown words, ids outside 0 … vocab-1)."""
        index = {w: i for i, w in enumerate(self.words or [])}
        ids, bad = [], []
        for tok in text.replace(",", " ").split():
            if tok in index:
                ids.append(index[tok])
            elif tok.lstrip("-").isdigit() and 0 <= int(tok) < self.vocab:
                ids.append(int(tok))
            else:
                bad.append(tok)
        return ids, bad

    @property
    def n_classes(self) -> int:
        return int(self.net.shapes[self.net.loss_logits.get(self.net.output_ids[0],
                                                             self.net.output_ids[0])][-1])

    def class_name(self, k: int) -> str:
        if self.class_names and 0 <= k < len(self.class_names):
            return self.class_names[k]
        return str(k)

    def prepare(self, ink: np.ndarray) -> np.ndarray:
        """Ink (H, W) in 0..1 -> a normalised batch of one (1, C, H, W)."""
        c, h, w = self.input_shape
        ink = np.asarray(ink, dtype=np.float32)
        if ink.shape != (h, w):
            raise NetBuilderError(f"the drawing is {ink.shape}, the Input wants {(h, w)}")
        lo, hi = self.raw_range
        raw = lo + ink * (hi - lo)
        x = np.repeat(raw[None, None], c, axis=1)
        return self.normalizer.apply(x).astype(np.float32)

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """A raw dataset batch -> what the network sees."""
        return self.normalizer.apply(np.asarray(raw, dtype=np.float32))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (classes,) of a batch of one (softmax of the class scores)."""
        return probabilities(class_scores(self.net, x).reshape(1, -1, self.n_classes)[0, 0])

    def copy_net(self) -> engine.Network:
        """Another unfused network with the same weights (for a background thread)."""
        other = engine.Network(self.net.graph, self.net.seed, self.net.dtype, fuse=False)
        other.load_state_dict(self.net.state_dict())
        return other


def build_source(graph: engine.Graph, weights: dict[str, np.ndarray] | None = None,
                 normalizer: dict[str, Any] | None = None, dataset: Any = None,
                 norm_mode: str = "none", seed: int = 0, label: str | None = None
                 ) -> TrySource:
    """The source for ``graph`` with ``weights`` (a run's; fresh ones from ``seed`` when
    None), the run's ``normalizer`` (JSON) or ``norm_mode`` fitted on ``dataset``."""
    net = engine.Network(graph, seed=seed)
    if weights is not None:
        net.load_state_dict(weights, strict=False)
    net = explainable(net)
    if len(net.input_ids) != 1 or not net.output_ids:
        raise NetBuilderError("Try it needs a model with one Input and an Output")
    if normalizer is not None:
        norm = Normalizer.from_json(normalizer)
    elif dataset is not None and norm_mode != "none":
        norm = Normalizer(norm_mode).fit(dataset.x)
    else:
        norm = Normalizer()
    lo, hi = 0.0, 1.0
    names = None
    if dataset is not None:
        x = np.asarray(dataset.x)
        lo, hi = float(x.min()), float(x.max())
        if hi <= lo:
            hi = lo + 1.0
        names = list(dataset.class_names) if getattr(dataset, "class_names", None) else None
    src_vocab, one_hot, words = token_vocab(net, dataset)
    text = label or ("trained weights" if weights is not None else
                     f"untrained weights (seed {seed}): train the model to get answers")
    return TrySource(net, text, norm, (lo, hi), names, src_vocab, one_hot, words)


def token_vocab(net: engine.Network, dataset: Any = None) -> tuple[int, bool, list[str] | None]:
    """(vocab, one_hot, words) when the Input takes tokens: ids (T,) read by an Embedding,
    or one-hot rows (T, vocab) of a dataset made that way; (0, False, None) otherwise."""
    iid = net.input_ids[0]
    shape = tuple(net.shapes[iid])
    meta = getattr(dataset, "meta", {}) or {}
    words = meta.get("vocabulary") or meta.get("words")
    words = [str(w) for w in words] if isinstance(words, (list, tuple)) else None
    if len(shape) == 1:
        for n in net.order:
            if iid in net.inputs_of.get(n, ()) and net.layers[n].type_name == "Embedding":
                return int(net.layers[n].p["vocab"]), False, words
    v = meta.get("vocab")
    if len(shape) == 2 and meta.get("one_hot") and isinstance(v, int) and v == shape[1]:
        return v, True, words
    return 0, False, None

"""The network a user questions (Qt-free): the open model with the weights of its latest
finished run (or fresh ones), and how a drawn image becomes the Input as the data are.

``TrySource.prepare(ink)`` maps ink (H, W) in 0..1 onto the dataset's value range, copies it
to every channel and applies the run's normalisation (the Data panel's mode, fitted on the
dataset, when there is no run yet): (1, C, H, W), ready for ``predict``.
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
    text = label or ("trained weights" if weights is not None else
                     f"untrained weights (seed {seed}): train the model to get answers")
    return TrySource(net, text, norm, (lo, hi), names)

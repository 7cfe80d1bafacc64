"""Try it for sequence models with attention: type a sequence of tokens (or show a dataset
sample), see the prediction per step and each head's attention weights for that input.

``SequenceTry`` questions the same ``TrySource`` as the image pad: the open model with its
latest run's weights. Tokens are typed as ids (``3 1 4 1 5``) or, when the data names them,
by name; a sequence of feature rows (T, F) can only be picked from the dataset."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

from engine.errors import NetBuilderError
from engine.explain import class_scores, probabilities

from ..monitor.attention import AttentionGrid
from .source import TrySource


def attention_node_ids(src: TrySource) -> list[str]:
    """The MultiHeadAttention nodes of the source's network, in execution order."""
    return [n for n in src.net.order if src.net.layers[n].type_name == "MultiHeadAttention"]


def vocabulary(dataset: Any) -> list[str]:
    """Token names by id from a dataset's metadata (``vocab`` ids, ``words`` names), else []."""
    meta = getattr(dataset, "meta", None) or {}
    n = meta.get("vocab")
    if not isinstance(n, int) or n <= 0:
        return []
    words = meta.get("words")
    return [str(w) for w in words] if isinstance(words, list | tuple) and len(words) == n \
        else [str(k) for k in range(n)]


def parse_tokens(text: str, vocab: list[str], steps: int) -> np.ndarray:
    """Token ids (T,) from typed text: ids or names, separated by spaces or commas."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if len(parts) != steps:
        raise NetBuilderError(f"the model reads {steps} tokens, you typed {len(parts)}")
    index = {w: k for k, w in enumerate(vocab)}
    ids = []
    for p in parts:
        if p in index:
            ids.append(index[p])
        elif p.lstrip("-").isdigit() and 0 <= int(p) < max(1, len(vocab)):
            ids.append(int(p))
        else:
            known = f" (0 … {len(vocab) - 1})" if vocab else ""
            raise NetBuilderError(f"'{p}' is not a token of the vocabulary{known}")
    return np.asarray(ids, np.float32)


class SequenceTry(QWidget):
    """Tokens in, the prediction and each head's attention weights out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sequenceTry")
        self.source: TrySource | None = None
        self.dataset: Any = None
        self.vocab: list[str] = []
        self.x: np.ndarray | None = None  # the current input (1, T) or (1, T, F), normalised
        self.weights: np.ndarray | None = None
        self.tokens_edit = QLineEdit()
        self.tokens_edit.setPlaceholderText("tokens, e.g. 3 1 4 1 5 9 2 6")
        self.tokens_edit.setToolTip("Type the input tokens (ids or names), then Enter")
        self.tokens_edit.returnPressed.connect(self._on_typed)
        self.sample = QSpinBox()
        self.sample.setToolTip("Index of a dataset sample")
        self.sample_btn = QPushButton("Show")
        self.sample_btn.clicked.connect(lambda: self.show_sample(self.sample.value()))
        self.node = QComboBox()
        self.node.setToolTip("The attention node whose weights are shown")
        self.node.currentIndexChanged.connect(lambda _i: self._show_attention())
        self.prediction = QLabel("—")
        self.prediction.setObjectName("sequencePrediction")
        self.prediction.setWordWrap(True)
        self.prediction.setStyleSheet("font-size: 12pt; font-weight: bold;")
        self.note = QLabel("")
        self.note.setObjectName("dim")
        self.note.setWordWrap(True)
        self.grid = AttentionGrid()
        # two columns for the wide, low dock under the canvas: the input and the answer
        # beside the heat maps
        form = QWidget()
        form.setMaximumWidth(380)
        lay = QGridLayout(form)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Tokens"), 0, 0)
        lay.addWidget(self.tokens_edit, 0, 1, 1, 2)
        lay.addWidget(QLabel("Sample"), 1, 0)
        lay.addWidget(self.sample, 1, 1)
        lay.addWidget(self.sample_btn, 1, 2)
        lay.addWidget(QLabel("Prediction"), 2, 0)
        lay.addWidget(self.prediction, 2, 1, 1, 2)
        lay.addWidget(QLabel("Attention"), 3, 0)
        lay.addWidget(self.node, 3, 1, 1, 2)
        lay.addWidget(self.note, 4, 0, 1, 3)
        lay.setRowStretch(5, 1)
        lay.setColumnStretch(1, 1)
        self.grid.setMinimumHeight(150)  # the dock's height, not the plots', decides
        self.grid.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(10)
        row.addWidget(form)
        row.addWidget(self.grid, 1)

    def set_source(self, source: TrySource, dataset: Any = None) -> None:
        """Question ``source`` (a sequence Input and at least one attention node)."""
        self.source, self.dataset = source, dataset
        self.vocab = vocabulary(dataset)
        typed = len(source.input_shape) == 1
        self.tokens_edit.setEnabled(typed)
        self.tokens_edit.setPlaceholderText(
            f"{source.input_shape[0]} tokens, e.g. {' '.join((self.vocab or ['0'])[:1] * 3)} …"
            if typed else "this model reads rows of features: pick a sample")
        current = self.node.currentData()
        self.node.blockSignals(True)
        self.node.clear()
        for n in attention_node_ids(source):
            self.node.addItem(n, n)
        i = self.node.findData(current)
        self.node.setCurrentIndex(max(0, i))
        self.node.blockSignals(False)
        n = len(dataset) if dataset is not None else 0
        self.sample.setRange(0, max(0, n - 1))
        self.sample.setEnabled(n > 0)
        self.sample_btn.setEnabled(n > 0)
        if self.x is not None and self.x.shape[1:] == tuple(source.input_shape):
            self.run(self.x)
        elif n:
            self.show_sample(self.sample.value())

    def select_node(self, node_id: str) -> bool:
        i = self.node.findData(node_id)
        if i >= 0:
            self.node.setCurrentIndex(i)
        return i >= 0

    def show_sample(self, index: int) -> None:
        """Put dataset sample ``index`` in (its tokens in the text box) and run it."""
        if self.dataset is None or self.source is None:
            return
        raw = np.asarray(self.dataset.x[index], np.float32)
        if raw.ndim == 1:
            self.tokens_edit.setText(" ".join(self._name(round(float(v))) for v in raw))
        self.run(self.source.normalise(raw[None]))

    def _name(self, k: int) -> str:
        return self.vocab[k] if 0 <= k < len(self.vocab) else str(k)

    def _on_typed(self) -> None:
        src = self.source
        if src is None:
            return
        try:
            ids = parse_tokens(self.tokens_edit.text(), self.vocab, src.input_shape[0])
        except NetBuilderError as e:
            self.note.setText(e.message)
            return
        self.run(src.normalise(ids[None]))

    def run(self, x: np.ndarray) -> None:
        """Forward the batch of one ``x``; show the prediction and the attention weights."""
        src = self.source
        if src is None:
            return
        self.x = x
        self.note.setText("")
        probs = probabilities(class_scores(src.net, x))[0]
        if probs.ndim == 2:  # a class per step
            top = probs.argmax(axis=1)
            self.prediction.setText(" ".join(src.class_name(int(k)) for k in top))
        else:
            k = int(np.argmax(probs))
            self.prediction.setText(f"{src.class_name(k)} · {100 * probs[k]:.1f} %")
        self._show_attention()

    def _show_attention(self) -> None:
        src, nid = self.source, self.node.currentData()
        if src is None or nid is None or self.x is None:
            return
        src.net.forward(self.x, train=False)
        self.weights = np.array(src.net.layers[nid].attention_weights[0], copy=True)
        raw = self.tokens_edit.text().split() if self.tokens_edit.isEnabled() else []
        tokens = tuple(raw) if len(raw) == self.weights.shape[1] else ()
        self.grid.show_weights(self.weights, tokens)

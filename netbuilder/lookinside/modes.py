"""What the Try it panel asks with and what it shows back, for every kind of model: the
input page (the drawing pad for images, the decision regions for 2-D points, a sample or
typed tokens for sequences) and every Output's answer (class probabilities, a class per
step, regression values beside the target of a dataset sample, or the reconstruction of
the input beside it). A mixin of ``TryItPanel``."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

from engine.errors import NetBuilderError

from ..session.probes import blend_regions, point_extent
from .inputs import RegionPad, SequenceInput
from .source import Answer, TrySource
from .views import ImageView, heat_colors, overlay_image

REGION_RES = 80
MAX_SHOWN = 8  # values of a regression answer written out


def pair_image(left: np.ndarray, right: np.ndarray, size: int = 224) -> QImage:
    """Two (H, W) images in 0..1 side by side with a white gap: the input and its
    reconstruction."""
    a, b = overlay_image(left, None, size), overlay_image(right, None, size)
    gap = max(4, size // 20)
    img = QImage(a.width() + gap + b.width(), max(a.height(), b.height()),
                 QImage.Format.Format_RGB888)
    img.fill(0xFFFFFF)
    p = QPainter(img)
    p.drawImage(0, 0, a)
    p.drawImage(a.width() + gap, 0, b)
    p.end()
    return img


def fmt_values(v: np.ndarray) -> str:
    flat = np.asarray(v, dtype=np.float64).reshape(-1)
    text = ", ".join(f"{x:.4g}" for x in flat[:MAX_SHOWN])
    return text + (f", … ({flat.size} values)" if flat.size > MAX_SHOWN else "")


def dataset_target(dataset: Any, index: int, net: Any, oid: str) -> np.ndarray | None:
    """What Output ``oid`` learns for sample ``index`` (None when it reconstructs its input
    or the data have no such target)."""
    name = net.layers[oid].p.get("target", "y")
    arrays = getattr(dataset, "arrays", {})
    if name == "x" or dataset is None:
        return None
    for key in (name, oid, "y"):
        if key != "x" and key in arrays:
            return np.asarray(arrays[key][index])
    return None


class InputModes:
    """The input pages and the per-Output answers of the Try it panel."""

    source: TrySource | None
    dataset: Any
    x: np.ndarray | None
    probs: np.ndarray | None

    def _build_modes(self, image_page: QWidget) -> QStackedWidget:
        self.answers: list[Answer] = []
        self.sample_index: int | None = None
        self.region_pad = RegionPad()
        self.region_pad.moved.connect(self.try_point)
        self.seq_input = SequenceInput()
        self.seq_input.sample_chosen.connect(self.try_sequence_sample)
        self.seq_input.tokens_typed.connect(self.try_tokens)
        self.recon_view = ImageView()
        self.recon_view.setObjectName("reconstructionView")
        self.recon_view.setToolTip("The input (left) and the network's reconstruction (right)")
        self.recon_view.hide()
        self.outputs_note = QLabel("")
        self.outputs_note.setObjectName("outputsNote")
        self.outputs_note.setWordWrap(True)
        self.prediction.setWordWrap(True)
        self.inputs = QStackedWidget()
        for page in (image_page, self.region_pad, self.seq_input):
            self.inputs.addWidget(page)
        return self.inputs

    # ----- choosing the input page ---------------------------------------------------------
    def _enter_mode(self) -> None:
        """Show the page of the source's input kind and try a first input on it."""
        src = self.source
        assert src is not None
        kind = src.input_kind
        n = len(self.dataset) if self.dataset is not None else 0
        self.sample_index = None
        if kind == "image":
            self.inputs.setCurrentIndex(0)
            self._on_drawn()
        elif kind == "points":
            self.inputs.setCurrentIndex(1)
            self._draw_regions()
            x0, x1, y0, y1 = self.region_pad.extent
            px, py = self.region_pad.point or ((x0 + x1) / 2, (y0 + y1) / 2)
            self.region_pad.set_point(px, py)
            self.try_point(px, py)
        else:
            self.inputs.setCurrentIndex(2)
            self.seq_input.configure(n, kind == "tokens", src.vocab)
            if n:
                self.try_sequence_sample(min(self.seq_input.sample.value(), n - 1))
            else:
                self.try_raw(np.zeros(src.input_shape, np.float32), "all zeros (no dataset "
                             "loaded: choose one in the Data panel to pick samples)")

    def _draw_regions(self) -> None:
        """The first Output's answer over the plane: class colours (pale where unsure), or
        the value as heat for a regression."""
        src = self.source
        ds = self.dataset
        if ds is not None and len(ds):
            pts = np.asarray(ds.x, dtype=np.float64)
            extent = point_extent(pts)
            labels = np.asarray(ds.y).reshape(len(pts), -1)[:, 0].astype(int) \
                if ds.task == "classification" and ds.y is not None else None
            keep = slice(None, None, max(1, len(pts) // 400))  # a few hundred dots at most
            self.region_pad.set_points(pts[keep], None if labels is None else labels[keep])
        else:
            extent = (-2.0, 2.0, -2.0, 2.0)
            self.region_pad.set_points(None, None)
        x0, x1, y0, y1 = extent
        gx, gy = np.meshgrid(np.linspace(x0, x1, REGION_RES), np.linspace(y0, y1, REGION_RES))
        grid = src.normalise(np.stack([gx.ravel(), gy.ravel()], axis=1))
        src.net.forward(grid, train=False)
        oid = src.net.output_ids[0]
        scores = np.asarray(src.net.acts[src.score(oid)], dtype=np.float64)
        if src.output_kind(oid) == "classes":
            if scores.shape[1] == 1:  # a sigmoid unit
                p1 = scores[:, 0] if oid not in src.net.loss_logits else \
                    1 / (1 + np.exp(-np.clip(scores[:, 0], -60, 60)))
                probs = np.stack([1 - p1, p1], axis=1)
            else:
                e = np.exp(scores - scores.max(axis=1, keepdims=True))
                probs = e / e.sum(axis=1, keepdims=True)
            rgb = blend_regions(probs, REGION_RES)
        else:
            v = scores.reshape(len(scores), -1)[:, 0]
            span = float(v.max() - v.min()) or 1.0
            rgb = heat_colors(((v - v.min()) / span).reshape(REGION_RES, REGION_RES))
        self.region_pad.set_regions(rgb, extent)

    # ----- trying an input -----------------------------------------------------------------
    def try_point(self, a: float, b: float) -> None:
        """Question the network at the point (a, b) of the plane (data coordinates)."""
        if self.source is None:
            return
        self.sample_index = None
        self.answer(self.source.normalise(np.array([[a, b]])), f"point ({a:.3g}, {b:.3g})")

    def try_sequence_sample(self, i: int) -> None:
        """Question the network with dataset sample ``i``."""
        src, ds = self.source, self.dataset
        if src is None or ds is None:
            return
        raw = np.asarray(ds.x[i], dtype=np.float32)
        self.try_raw(raw, f"sample {i}")
        self.sample_index = i
        self._show_answers()

    def try_tokens(self, text: str) -> None:
        """Question the network with typed tokens (the rest of the current sequence kept)."""
        src = self.source
        if src is None or not src.vocab:
            return
        ids, bad = src.parse_tokens(text)
        current = src.token_ids(self.raw[0]) if getattr(self, "raw", None) is not None \
            else [0] * src.input_shape[0]
        ids = (ids + current[len(ids):])[:src.input_shape[0]]
        note = f"typed tokens ({len(ids)} steps)"
        if bad:
            note += f"; not in the vocabulary, left out: {' '.join(bad[:6])}"
        self.try_raw(src.tokens_input(ids)[0], note)

    def try_raw(self, raw: np.ndarray, what: str) -> None:
        """Question the network with one raw sample (as the dataset holds it)."""
        src = self.source
        assert src is not None
        self.sample_index = None
        self.raw = np.asarray(raw, dtype=np.float32)[None]
        if src.vocab:
            self.seq_input.tokens.setText(src.token_text(src.token_ids(self.raw[0])))
            shown = np.asarray(src.token_ids(self.raw[0]), dtype=np.float64)
        else:
            shown = self.raw[0]
        self.seq_input.show_sequence(shown, what)
        self.answer(src.normalise(self.raw), what)

    def answer(self, x: np.ndarray, what: str = "") -> None:
        """Run ``x`` (a batch of one, as the network sees it) and show every answer."""
        src = self.source
        assert src is not None
        self.x = x
        try:
            self.answers = src.answers(x)
        except NetBuilderError as e:
            self.answers = []
            self.probs = None
            self.prediction.setText("—")
            self.outputs_note.setText(f"Cannot run this input: {e.message}")
            return
        self.acts = {n: np.array(a[0]) for n, a in src.net.acts.items()}
        first = self.answers[0]
        self.probs = first.probs if first.kind == "classes" else None
        self.what = what
        self._show_answers()
        self._publish()

    def _show_answers(self) -> None:
        src = self.source
        if src is None or not self.answers:
            return
        lines = [self._answer_text(a) for a in self.answers]
        first = self.answers[0]
        self.prediction.setText(lines[0][1])
        if first.kind == "classes":
            names = [src.class_name(k) for k in range(len(first.probs))]
            self.bars.set_probs(first.probs, names)
        else:
            self.bars.set_probs(np.zeros(0), [])
        self.bars.setVisible(first.kind == "classes")
        if len(self.answers) > 1:
            self.outputs_note.setText("<br>".join(f"<b>{oid}</b>: {text}"
                                                  for oid, text in lines))
        else:
            self.outputs_note.setText(self._target_line(first))
        image = src.input_kind == "image"
        why = image and src.classifies
        recon = next((a for a in self.answers if a.kind == "reconstruction"), None)
        self.why_view.setVisible(why)
        self._why_box.setVisible(why)
        self.image_page.layout().setColumnStretch(1, 3 if why else 0)  # the input takes the room
        self.recon_view.setVisible(image and recon is not None)
        if image and recon is not None:
            base = np.asarray(self.x[0], dtype=np.float64)
            lo, hi = float(base.min()), float(base.max())
            span = hi - lo if hi > lo else 1.0
            rv = np.asarray(recon.value, dtype=np.float64).reshape(base.shape)
            self.recon = rv
            self.recon_view.set_image(pair_image((base[0] - lo) / span, (rv[0] - lo) / span))
        if not why:
            self.why_note.setText("Reconstruction: the input (left) and what the network "
                                  "rebuilds of it (right), on the same grey scale; MSE is "
                                  "their mean squared difference."
                                  if image and recon is not None else "")
        if why:
            self._why_later()

    def _answer_text(self, a: Answer) -> tuple[str, str]:
        src = self.source
        if a.kind == "classes":
            top = int(np.argmax(a.probs))
            label = ""
            if self.sample_index is not None:
                t = dataset_target(self.dataset, self.sample_index, src.net, a.output)
                if t is not None and t.size == 1:
                    label = f"   (sample's label: {src.class_name(int(t.reshape(-1)[0]))})"
            elif getattr(self, "sample_label", None) is not None:
                label = f"   (sample's label: {src.class_name(self.sample_label)})"
            return a.output, f"{src.class_name(top)} · {100 * a.probs[top]:.1f} %{label}"
        if a.kind == "steps":
            tops = [src.class_name(int(k)) for k in np.argmax(a.probs, axis=-1)]
            more = " …" if len(tops) > 24 else ""
            return a.output, "per step: " + " ".join(tops[:24]) + more
        if a.kind == "reconstruction":
            err = float(np.mean((np.asarray(a.value, np.float64).reshape(-1)
                                 - np.asarray(self.x[0], np.float64).reshape(-1)) ** 2))
            return a.output, f"MSE {err:.4g}"
        text = fmt_values(a.value)
        if self.sample_index is not None:
            t = dataset_target(self.dataset, self.sample_index, src.net, a.output)
            if t is not None:
                text += f"   (target {fmt_values(t)})"
        return a.output, text

    def _target_line(self, a: Answer) -> str:
        if a.kind == "regression" and self.sample_index is None:
            return f"predicted value{'s' if np.size(a.value) > 1 else ''} for the {self.what}"
        return ""

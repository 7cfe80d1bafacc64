"""What the model costs, on screen: a profile run (``engine.profile``) in a thread, shown
as a heat halo and a "ms · %" tag on each node of the canvas, as columns of the Model
Summary (ms forward, ms backward, % of step) and as an epoch-time estimate for the chosen
dataset and batch size."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt, QThread, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsSimpleTextItem
from shiboken6 import isValid

import engine
from engine.errors import NetBuilderError
from engine.profile import Profile, profile
from engine.threads import max_threads

from .views import heat_color

SUMMARY_COLUMNS = ("fwd ms", "bwd ms", "% step")


class ProfileThread(QThread):
    """Times a few training steps of its own copy of the network, on the engine's threads
    and on one, and keeps the faster (as a training run's thread tuner would: a parallel
    kernel whose threads another program keeps off a core waits for them)."""

    done = Signal(object)  # Profile, or a str (the error)

    def __init__(self, net: engine.Network, batch_size: int, steps: int = 3,
                 parent=None) -> None:
        super().__init__(parent)
        self.net, self.batch_size, self.steps = net, batch_size, steps

    def run(self) -> None:
        try:
            runs = [profile(self.net, batch_size=self.batch_size, steps=self.steps, warmup=2,
                            threads=n) for n in sorted({1, max_threads()})]
            self.done.emit(min(runs, key=lambda p: p.step_ms))
        except NetBuilderError as e:
            self.done.emit(e.message)


def heat_of(prof: Profile) -> dict[str, float]:
    """Node -> 0..1: its share of the step relative to the most expensive node."""
    top = max((t.total_ms for t in prof.nodes.values()), default=0.0)
    return {n: (t.total_ms / top if top > 0 else 0.0) for n, t in prof.nodes.items()}


class HeatOverlay:
    """Per-node halos and tags on a CanvasScene, children of the node cards (they follow
    moves); ``clear()`` removes them."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.items: dict[str, tuple[QGraphicsRectItem, QGraphicsSimpleTextItem,
                                    QGraphicsRectItem]] = {}

    def show(self, prof: Profile) -> None:
        self.clear()
        heat = heat_of(prof)
        font = QFont("DejaVu Sans Mono")
        font.setPointSizeF(7.4)
        for nid, t in prof.nodes.items():
            card = self.scene.nodes.get(nid)
            if card is None:
                continue
            h = heat[nid]
            color = heat_color(0.15 + 0.85 * h)
            w, ht = card.width, card.height
            halo = QGraphicsRectItem(QRectF(-7, -7, w + 14, ht + 14), card)
            halo.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
            fill = QColor(color)
            fill.setAlpha(int(60 + 150 * h))
            halo.setBrush(QBrush(fill))
            halo.setPen(QPen(Qt.PenStyle.NoPen))
            tag = QGraphicsSimpleTextItem(f"{t.total_ms:.2f} ms · {prof.percent(nid):.0f} %")
            tag.setFont(font)
            tw = tag.boundingRect().width()
            box = QGraphicsRectItem(QRectF(-tw - 18, 2, tw + 8, 17), card)
            bg = QColor(color)
            box.setBrush(QBrush(bg))
            box.setPen(QPen(QColor("#3a3f4b"), 0.8))
            tag.setParentItem(box)
            tag.setPos(-tw - 14, 4)
            tag.setBrush(QBrush(QColor("#ffffff" if h < 0.6 else "#1f2430")))
            tip = (f"{nid}: forward {t.forward_ms:.3f} ms, backward {t.backward_ms:.3f} ms "
                   f"per step of {prof.batch_size} ({prof.percent(nid):.1f} % of the step)")
            for it in (halo, box, tag):
                it.setToolTip(tip)
            self.items[nid] = (halo, tag, box)

    def clear(self) -> None:
        for halo, _tag, box in self.items.values():
            for it in (halo, box):
                if isValid(it) and it.scene() is not None:
                    it.scene().removeItem(it)
        self.items = {}

    def __bool__(self) -> bool:
        return bool(self.items)


def fill_summary(summary, prof: Profile | None, estimate: str = "") -> None:
    """Add the profile's columns to the Model Summary table (after its own five) and the
    epoch estimate under its totals; ``prof`` None takes them away."""
    table = summary.table
    base = 5
    if prof is None:
        table.setColumnCount(base)
        return
    table.setColumnCount(base + len(SUMMARY_COLUMNS))
    header = table.headerItem()
    for i, name in enumerate(SUMMARY_COLUMNS):
        header.setText(base + i, name)
    right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    for i in range(table.topLevelItemCount()):
        it = table.topLevelItem(i)
        t = prof.nodes.get(it.text(0))
        if t is None:
            continue
        for k, text in enumerate((f"{t.forward_ms:.3f}", f"{t.backward_ms:.3f}",
                                  f"{prof.percent(t.node):.1f}")):
            it.setText(base + k, text)
            it.setTextAlignment(base + k, right)
    head = table.header()
    for k, c in enumerate(range(base, base + len(SUMMARY_COLUMNS))):
        table.resizeColumnToContents(c)
        head.moveSection(head.visualIndex(c), 2 + k)  # beside Output: seen in a narrow dock
    if estimate and estimate not in summary.totals.text():
        kept = [t for t in summary.totals.text().split("<br>") if MEASURED not in t]
        summary.totals.setText("<br>".join([*kept, estimate]))


MEASURED = "(measured "  # how an estimate line of the Summary's totals ends


def estimate_text(prof: Profile, n_train: int | None, how: str = "by Profile") -> str:
    """"Step 12.3 ms at batch 32 · epoch ≈ 4.1 s for 1,437 training samples"."""
    text = (f"<b>{prof.step_ms:.1f} ms</b> per training step of {prof.batch_size} "
            f"on {prof.threads} thread{'s' if prof.threads != 1 else ''}")
    if n_train:
        secs = prof.epoch_seconds(n_train)
        steps = math.ceil(n_train / prof.batch_size)
        text += (f" · epoch ≈ <b>{fmt_seconds(secs)}</b> ({steps:,} steps, "
                 f"{n_train:,} training samples)")
    return text + f" {MEASURED}{how})"


def fmt_seconds(s: float) -> str:
    if s < 1:
        return f"{1000 * s:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min"

"""The Data panel's list of datasets, in three groups: the built-in generators, the standard
datasets downloaded on first use (each with its size and whether it is already on this
computer), and a file or folder of the user's own."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPaintEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QStyle, QStyleOptionComboBox, QStylePainter, QWidget

from engine.data import BUILTINS, CATALOGUE
from engine.data.loaders import parse_spec
from engine.graph import fmt_bytes

FILE_ITEM = "__file__"
GROUPS = ("Built in", "Download on first use", "Your data")


def builtin_choice(spec: Any) -> tuple[str, dict[str, Any]] | None:
    """(generator name, its settings) when ``spec`` names a built-in dataset, else None."""
    if isinstance(spec, str) and spec.partition(":")[0] in BUILTINS:
        return parse_spec(spec) if ":" in spec else (spec, {})
    if isinstance(spec, dict) and spec.get("name") in BUILTINS:
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    return None


def remote_choice(spec: Any) -> str | None:
    """The catalogue name when ``spec`` is a dataset downloaded on first use, else None."""
    if isinstance(spec, str) and spec in CATALOGUE:
        return spec
    if isinstance(spec, dict) and spec.get("name") in CATALOGUE and set(spec) == {"name"}:
        return str(spec["name"])  # with settings it is refused when loaded (they have none)
    return None


def cache_text(name: str) -> str:
    """'11.1 MB · on this computer', '11.1 MB · 38 % downloaded' or '11.1 MB · download'
    (from file sizes only: no hashing, no network)."""
    from engine.data.remote import cache_state

    try:
        st = cache_state(name)
    except OSError:
        return f"{fmt_bytes(CATALOGUE[name].size)} · download"
    size = fmt_bytes(st.total_bytes)
    if st.ready:
        return f"{size} · on this computer ✓"
    if st.state == "partial":
        return f"{size} · {int(100 * st.have_bytes / max(1, st.total_bytes))} % downloaded"
    return f"{size} · download"


def remote_tooltip(name: str) -> str:
    e = CATALOGUE[name]
    classes = ", ".join(e.class_names)
    host = urlsplit(e.files[0].urls[0]).netloc
    return (f"{e.title}: {e.description}\n{e.train_samples:,} training and {e.test_samples:,} "
            f"test samples; classes: {classes}\nDownloaded once from {host}, checked by its "
            f"SHA-256 and kept on this computer\nBy {e.credit} ({e.homepage})")


class DatasetChooser(QComboBox):
    """A combo box of datasets under group headings; item data is a built-in name, a
    catalogue name or FILE_ITEM. The download sizes and cache states are read again each
    time the list opens."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip("A built-in dataset, a standard dataset (downloaded the first time), "
                        "or data from a file or folder")
        model = QStandardItemModel(self)
        self.setModel(model)
        self._heading(GROUPS[0])
        for name, b in BUILTINS.items():
            self._item(name, name, b.description)
        self._heading(GROUPS[1])
        for name in CATALOGUE:
            self._item(CATALOGUE[name].title, name, remote_tooltip(name))
        self._heading(GROUPS[2])
        self._item("File or folder…", FILE_ITEM, "An .npz, .csv, MNIST IDX file, CIFAR-10 "
                   "binary archive or a folder of images")
        self.refresh_states()
        self.setCurrentIndex(-1)
        self.setMaxVisibleItems(self.count())

    def _heading(self, text: str) -> None:
        it = QStandardItem(text)
        it.setFlags(Qt.ItemFlag.NoItemFlags)  # neither selectable nor reachable by keys
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.9))
        it.setFont(font)
        it.setData("heading", Qt.ItemDataRole.AccessibleDescriptionRole)
        self.model().appendRow(it)

    def _item(self, text: str, key: str, tip: str) -> None:
        it = QStandardItem(text)
        it.setData(key, Qt.ItemDataRole.UserRole)
        it.setData(tip, Qt.ItemDataRole.ToolTipRole)
        self.model().appendRow(it)

    def refresh_states(self) -> None:
        """Each downloadable dataset's size and whether it is on this computer."""
        for name in CATALOGUE:
            i = self.findData(name)
            if i >= 0:
                self.setItemText(i, f"{CATALOGUE[name].title}   {cache_text(name)}")

    def select(self, key: str | None) -> None:
        self.setCurrentIndex(-1 if key is None else self.findData(key))

    def showPopup(self) -> None:
        self.refresh_states()
        super().showPopup()

    def shown_text(self) -> str:
        """What the closed box shows: a downloadable dataset's title alone (its size and
        state are in the list, and the panel says more below)."""
        key = self.currentData()
        return CATALOGUE[key].title if key in CATALOGUE else self.currentText()

    def paintEvent(self, _e: QPaintEvent) -> None:
        p = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        opt.currentText = self.shown_text()
        p.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        p.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)

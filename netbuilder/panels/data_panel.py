"""The Data panel: a built-in dataset or a file (IDX, NPZ, CSV, image folder); a preview of
samples with their labels, class counts, the train / validation / test split, normalisation
and augmentation; and, before any training, what in the data does not fit the model.

Datasets load on a background thread; the settings go into the model's ``training``
section (one undoable command per change)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.data import BUILTINS, Dataset, dataset_problems, load_dataset
from engine.data.loaders import parse_spec
from engine.errors import NetBuilderError
from engine.registry import fmt_shape

from ..document import Change, SetParams
from ..monitor.common import BLUE, pg
from ..monitor.confusion import pixmap_of
from ..monitor.feature_maps import sample_image
from ..training.probes import class_color
from .data_fit import describe_suggestion, input_fix, training_suggestion
from .section import SectionWriter, scrolling_body

FILE_ITEM = "__file__"
PREVIEW_PER_CLASS = 3
OPTIONS_HINT = "settings, e.g. n=800, noise=0.2"
OPTIONS_TIP = "Settings of the built-in generator as key=value, separated by commas"
PREVIEW_MAX = 24


def spec_text(spec: Any) -> str:
    """The dataset setting as one line (for comparisons and the window)."""
    if spec is None:
        return ""
    if isinstance(spec, dict):
        target = spec.get("name") or spec.get("path") or "?"
        rest = ",".join(f"{k}={v}" for k, v in spec.items() if k not in ("name", "path"))
        return f"{target}:{rest}" if rest else str(target)
    return str(spec)


def preview_indices(ds: Dataset) -> np.ndarray:
    """A few samples of each class (or the first ones) for the preview grid."""
    y = ds.y
    if ds.task == "classification" and y is not None and y.ndim == 1:
        idx = []
        for k in range(min(ds.n_classes or 0, PREVIEW_MAX)):
            idx.extend(np.flatnonzero(y == k)[:PREVIEW_PER_CLASS].tolist())
            if len(idx) >= PREVIEW_MAX:
                break
        return np.array(idx[:PREVIEW_MAX], int)
    return np.arange(min(len(ds), PREVIEW_MAX))


class _Loader(QObject):
    loaded = Signal(int, object, object)  # token, Dataset | None, error message | None


class DataPanel(QWidget):
    """Chooses and previews the data; ``dataset`` is the loaded Dataset (or None) for
    ``loaded_spec``; ``problems`` what does not fit the model; ``changed`` after either."""

    changed = Signal()

    def __init__(self, writer: SectionWriter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.writer = writer
        self.dataset: Dataset | None = None
        self.loaded_spec: str | None = None
        self.load_error: str | None = None
        self.problems: list[NetBuilderError] = []
        self.choose_path = self._choose_path
        self.running = False
        self._suggest_on_load: str | None = None  # a file just chosen: suggest once loaded
        self._input_fix: tuple[str, tuple[int, ...]] | None = None
        self._token = 0
        self._loading = False
        self._loader = _Loader()
        self._loader.loaded.connect(self._on_loaded, Qt.ConnectionType.QueuedConnection)

        lay = scrolling_body(self)

        src = QHBoxLayout()
        self.source = QComboBox()
        self.source.setToolTip("A built-in dataset, or data from a file or folder")
        for name, b in BUILTINS.items():
            self.source.addItem(name, name)
            self.source.setItemData(self.source.count() - 1, b.description,
                                    Qt.ItemDataRole.ToolTipRole)
        self.source.addItem("File or folder…", FILE_ITEM)
        self.browse = QPushButton("Open…")
        self.browse.setToolTip("Load an .npz, .csv, MNIST IDX file or a folder of images with "
                               "one sub-folder per class")
        src.addWidget(self.source, 1)
        src.addWidget(self.browse)
        lay.addLayout(src)
        self.options = QLineEdit()
        self.options.setPlaceholderText(OPTIONS_HINT)
        self.options.setToolTip(OPTIONS_TIP)
        lay.addWidget(self.options)
        self.summary = QLabel("No dataset chosen")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("dataSummary")
        lay.addWidget(self.summary)
        self.problem_label = QLabel()
        self.problem_label.setObjectName("dataProblems")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #B3261E; background: #FDECEA; border: 1px solid "
                                         "#F4C7C3; border-radius: 5px; padding: 6px;")
        self.problem_label.hide()
        lay.addWidget(self.problem_label)
        self.fix_input_button = QPushButton()
        self.fix_input_button.setObjectName("fixInputButton")
        self.fix_input_button.setToolTip("Give the model's Input the shape of one sample of "
                                         "this data (undo with Ctrl+Z)")
        self.fix_input_button.clicked.connect(self._fix_input)
        self.fix_input_button.hide()
        lay.addWidget(self.fix_input_button, 0, Qt.AlignmentFlag.AlignLeft)

        self.preview_host = QWidget()
        self.preview_grid = QGridLayout(self.preview_host)
        self.preview_grid.setSpacing(4)
        self.preview_grid.setContentsMargins(0, 0, 0, 0)
        self.preview_grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.preview_host)
        self.plots_host = QVBoxLayout()  # point and class-count plots, built when needed
        self.plots_host.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.plots_host)
        self.points_plot: pg.PlotWidget | None = None
        self.counts_plot: pg.PlotWidget | None = None

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setVerticalSpacing(5)
        self.form = form
        self.val_split = self._fraction("Share of the data held out to validate after each "
                                        "epoch")
        self.test_split = self._fraction("Share held out for the final test (ignored when "
                                         "the data ships its own test part)")
        self.split_label = QLabel()
        self.split_label.setObjectName("splitSizes")
        self.normalize = QComboBox()
        for key, text in (("none", "none"), ("scale", "scale to [0, 1]"),
                          ("standardize", "standardize (mean 0, std 1)")):
            self.normalize.addItem(text, key)
        self.normalize.setToolTip("Computed on the training part only, applied to every part")
        self.shift = self._aug(0.5, 0.05, "Random shift up to this share of the image size")
        self.rotation = self._aug(180.0, 5.0, "Random rotation up to ± this many degrees")
        self.rotation.setSuffix("°")
        self.scale = self._aug(0.5, 0.05, "Random scaling by 1 ± this")
        self.limit = QSpinBox()
        self.limit.setRange(0, 1_000_000_000)
        self.limit.setSpecialValueText("all samples")
        self.limit.setKeyboardTracking(False)
        self.limit.setToolTip("Use at most this many samples (for quick trials)")
        form.addRow("Validation", self.val_split)
        form.addRow("Test", self.test_split)
        form.addRow("", self.split_label)
        form.addRow("Normalise", self.normalize)
        form.addRow("Shift", self.shift)
        form.addRow("Rotation", self.rotation)
        form.addRow("Scale", self.scale)
        form.addRow("Use", self.limit)
        lay.addLayout(form)
        lay.addStretch(1)

        self.editors: list[QWidget] = [self.source, self.browse, self.options, self.val_split,
                                       self.test_split, self.normalize, self.shift,
                                       self.rotation, self.scale, self.limit,
                                       self.fix_input_button]
        self.source.activated.connect(self._on_source)
        self.browse.clicked.connect(self._browse)
        self.options.editingFinished.connect(self._on_options)
        for w in (self.val_split, self.test_split, self.shift, self.rotation, self.scale,
                  self.limit):
            w.valueChanged.connect(lambda _v: self._commit_settings())
        self.normalize.activated.connect(lambda _i: self._commit_settings())
        writer.doc.subscribe(self._on_doc_change)
        self.load_section()

    def _fraction(self, tip: str) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setRange(0.0, 0.9)
        w.setSingleStep(0.05)
        w.setDecimals(2)
        w.setKeyboardTracking(False)
        w.setToolTip(tip)
        return w

    def _aug(self, hi: float, step: float, tip: str) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setRange(0.0, hi)
        w.setSingleStep(step)
        w.setDecimals(2)
        w.setSpecialValueText("off")
        w.setKeyboardTracking(False)
        w.setToolTip(tip + " (images only; training part only)")
        return w

    # ----- the model's training section ----------------------------------------------------
    @property
    def spec(self) -> Any:
        return self.writer.section.get("dataset")

    @property
    def base_dir(self) -> Path | None:
        p = self.writer.doc.path
        return p.parent if p is not None else None

    def _on_doc_change(self, ch: Change) -> None:
        if ch.training or ch.reset:
            self.load_section()
        elif ch.affects_shapes:
            self.check()

    def load_section(self) -> None:
        t = self.writer.section
        spec = t.get("dataset")
        self._loading = True
        try:
            name, params = None, {}
            if isinstance(spec, str) and spec.partition(":")[0] in BUILTINS:
                name, params = parse_spec(spec) if ":" in spec else (spec, {})
            elif isinstance(spec, dict) and spec.get("name") in BUILTINS:
                name = spec["name"]
                params = {k: v for k, v in spec.items() if k != "name"}
            if name is not None:
                self.source.setCurrentIndex(self.source.findData(name))
                self.options.setText(", ".join(f"{k}={v}" for k, v in params.items()))
                self.options.setEnabled(not self.running)
                self._set_options_hint(name)
            elif spec is not None:
                self.source.setCurrentIndex(self.source.findData(FILE_ITEM))
                self.options.setText("")
                self.options.setEnabled(False)
            else:
                self.source.setCurrentIndex(-1)
                self.options.setText("")
                self.options.setEnabled(False)
                self.options.setPlaceholderText(OPTIONS_HINT)
                self.options.setToolTip(OPTIONS_TIP)
            self.val_split.setValue(float(t.get("val_split", 0.1)))
            self.test_split.setValue(float(t.get("test_split", 0.1)))
            self.normalize.setCurrentIndex(max(0, self.normalize.findData(
                t.get("normalize", "none"))))
            aug = t.get("augment") or {}
            self.shift.setValue(float(aug.get("shift", 0.0)))
            self.rotation.setValue(float(aug.get("rotation", 0.0)))
            self.scale.setValue(float(aug.get("scale", 0.0)))
            self.limit.setValue(int(t.get("limit", 0)))
        except (TypeError, ValueError, AttributeError):
            pass  # odd hand-written values: Start reports them precisely
        finally:
            self._loading = False
        if spec_text(spec) != self.loaded_spec:
            self.reload()
        else:
            self._update_split()
            self.check()

    def _set_options_hint(self, name: str) -> None:
        b = BUILTINS.get(name)
        if b is None:
            return
        defaults = ", ".join(f"{k}={v}" for k, v in b.defaults.items())
        self.options.setPlaceholderText(defaults or "no settings")
        self.options.setToolTip(f"{b.description}\nSettings (key=value): {defaults or 'none'}")

    def _commit_spec(self, spec: Any, kind: str | None = None) -> None:
        """Set the dataset; with its ``kind`` known, in the same step the training settings
        suited to it (those the user did not choose by hand)."""
        updates = training_suggestion(self.writer.section, kind) if kind is not None else {}
        if self.writer.update("Set dataset", dataset=spec, **updates) and updates:
            self.writer.report(describe_suggestion(kind or "", updates), False)

    def _on_source(self, _index: int) -> None:
        key = self.source.currentData()
        if key == FILE_ITEM:
            self._browse()
            return
        self.options.setText("")
        self._commit_spec(key, BUILTINS[key].kind)

    def _on_options(self) -> None:
        if self._loading:
            return
        name = self.source.currentData()
        if name not in BUILTINS:
            return
        text = self.options.text().strip()
        spec = name
        if text:
            parts = ",".join(p.strip() for p in text.replace(";", ",").split(",") if p.strip())
            spec = f"{name}:{parts}"
            try:
                parse_spec(spec)
            except NetBuilderError as exc:
                self.writer.report(exc.message, True)
                return
        if spec != self.spec:
            self._commit_spec(spec)

    def _choose_path(self) -> str | None:
        start = str(self.base_dir or Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open data", start, "Data (*.npz *.csv *.tsv *.txt *.ubyte *.idx* *.gz);;"
            "All files (*)")
        return path or None

    def _browse(self) -> None:
        path = self.choose_path()
        if not path:
            self.load_section()
            return
        p = Path(path)
        base = self.base_dir
        if base is not None:
            with contextlib.suppress(ValueError):
                p = p.resolve().relative_to(base.resolve())
        self._suggest_on_load = str(p)  # its kind is known once it is loaded
        self._commit_spec(str(p))

    def _commit_settings(self) -> None:
        if self._loading:
            return
        aug = {k: float(w.value()) for k, w in (("shift", self.shift),
                                                ("rotation", self.rotation),
                                                ("scale", self.scale)) if w.value()}
        ok = self.writer.update("Set data settings", val_split=float(self.val_split.value()),
                                test_split=float(self.test_split.value()),
                                normalize=self.normalize.currentData(),
                                augment=aug or None, limit=self.limit.value())
        if not ok:
            self._update_split()

    # ----- loading -------------------------------------------------------------------------
    def reload(self) -> None:
        """Load the dataset of the training section on a background thread."""
        spec = self.spec
        self._token += 1
        token = self._token
        self.dataset = None
        self.load_error = None
        self.loaded_spec = None
        self.problems = []
        self._clear_preview()  # nothing of the data shown before stays beside the new state
        self.split_label.setText("")
        self.problem_label.hide()
        self._show_input_fix(None)
        if spec is None:
            self.summary.setText("No dataset chosen: pick a built-in one or open a file.")
            self.changed.emit()
            return
        self.summary.setText(f"Loading {spec_text(spec)}…")
        base = self.base_dir
        loader = self._loader

        def work() -> None:
            try:
                ds = load_dataset(spec, base_dir=base)
                loader.loaded.emit(token, ds, None)
            except NetBuilderError as exc:
                loader.loaded.emit(token, None, exc.message)
            except (OSError, MemoryError, ValueError) as exc:
                loader.loaded.emit(token, None, f"{type(exc).__name__}: {exc}")

        threading.Thread(target=work, name="netbuilder-data", daemon=True).start()

    def wait_loaded(self, timeout: float = 10.0) -> bool:
        """Process events until the pending load is done (tests and scripts)."""
        import time

        from PySide6.QtWidgets import QApplication
        end = time.monotonic() + timeout
        while self.loaded_spec is None and self.load_error is None and self.spec is not None:
            if time.monotonic() > end:
                return False
            QApplication.processEvents()
            time.sleep(0.005)
        return True

    def _on_loaded(self, token: int, ds: Dataset | None, error: str | None) -> None:
        if token != self._token:
            return
        if ds is None:
            self.load_error = error
            self.summary.setText("")
            self._clear_preview()
            self.problem_label.setText(f"Cannot load the data: {error}")
            self.problem_label.show()
            self.changed.emit()
            return
        self.dataset = ds
        self.loaded_spec = spec_text(self.spec)
        self.summary.setText(ds.describe())
        if self._suggest_on_load is not None and self._suggest_on_load == self.loaded_spec:
            kind = str(ds.meta.get("kind", ""))
            updates = training_suggestion(self.writer.section, kind)
            if updates and self.writer.update("Use training settings suited to the data",
                                              **updates):
                self.writer.report(describe_suggestion(kind, updates), False)
        self._suggest_on_load = None
        self._show_preview(ds)
        self._update_split()
        self.check()

    # ----- preview -------------------------------------------------------------------------
    def _ensure_plots(self) -> None:
        if self.points_plot is not None:
            return
        self.points_plot = pg.PlotWidget()
        self.points_plot.setFixedHeight(200)
        self.points_plot.getPlotItem().setMenuEnabled(False)
        self.points_plot.getPlotItem().showGrid(x=True, y=True, alpha=0.12)
        self.points = pg.ScatterPlotItem(size=5, pen=None)
        self.points_plot.addItem(self.points)
        self.points_plot.hide()
        self.plots_host.addWidget(self.points_plot)
        self.counts_plot = pg.PlotWidget()
        self.counts_plot.setFixedHeight(120)
        cp = self.counts_plot.getPlotItem()
        cp.setMenuEnabled(False)
        cp.setTitle("samples per class", size="8pt")
        cp.getViewBox().setMouseEnabled(x=False, y=False)
        self.count_bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=BLUE, pen=None)
        self.counts_plot.addItem(self.count_bars)
        self.counts_plot.hide()
        self.plots_host.addWidget(self.counts_plot)

    def _clear_preview(self) -> None:
        while self.preview_grid.count():
            it = self.preview_grid.takeAt(0)
            if it.widget() is not None:
                it.widget().deleteLater()
        if self.points_plot is not None:
            self.points_plot.hide()
            self.counts_plot.hide()

    def _show_preview(self, ds: Dataset) -> None:
        self._ensure_plots()
        self._clear_preview()
        is_img = ds.is_image
        for w in (self.shift, self.rotation, self.scale):
            self.form.setRowVisible(w, is_img)
        if is_img:
            cols = 6
            for n, i in enumerate(preview_indices(ds)):
                img = sample_image(ds.x[i])
                cell = QWidget()
                v = QVBoxLayout(cell)
                v.setContentsMargins(0, 0, 0, 0)
                v.setSpacing(0)
                pic = QLabel()
                pic.setPixmap(pixmap_of(img, 44))
                pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cap = QLabel(self._label(ds, i))
                cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cap.setStyleSheet("font-size: 7.5pt; color: #3C4350;")
                v.addWidget(pic)
                v.addWidget(cap)
                r, c = divmod(n, cols)
                self.preview_grid.addWidget(cell, r, c)
        elif ds.x.ndim == 2 and ds.x.shape[1] in (1, 2):
            n = min(len(ds), 2000)
            pi = self.points_plot.getPlotItem()
            if ds.x.shape[1] == 2:
                lab = np.asarray(ds.y[:n]).reshape(n, -1)[:, 0].astype(int) \
                    if ds.task == "classification" else np.zeros(n, int)
                self.points.setData(x=ds.x[:n, 0], y=ds.x[:n, 1],
                                    brush=[pg.mkBrush(*class_color(k)) for k in lab])
                pi.setAspectLocked(True)
            else:
                yv = np.asarray(ds.y[:n], float).reshape(n, -1)[:, 0] if ds.y is not None \
                    else np.zeros(n)
                self.points.setData(x=ds.x[:n, 0], y=yv, brush=pg.mkBrush(47, 111, 219, 160))
                pi.setAspectLocked(False)
            pi.enableAutoRange()
            self.points_plot.show()
        else:
            rows = [", ".join(f"{v:.3g}" for v in np.ravel(ds.x[i])[:8])
                    + (" …" if np.size(ds.x[i]) > 8 else "") + f"  → {self._label(ds, i)}"
                    for i in range(min(6, len(ds)))]
            lab = QLabel("<br>".join(rows))
            lab.setStyleSheet("font-family: 'DejaVu Sans Mono'; font-size: 8pt;")
            self.preview_grid.addWidget(lab, 0, 0)
        counts = ds.class_counts()
        if len(counts):
            self.count_bars.setOpts(x=np.arange(len(counts)), height=counts, width=0.7,
                                    brushes=[pg.mkBrush(*class_color(k))
                                             for k in range(len(counts))])
            names = [ds.class_name(k) for k in range(len(counts))]
            short = [n if len(n) <= 7 else n[:6] + "…" for n in names]
            self.counts_plot.getPlotItem().getAxis("bottom").setTicks([list(enumerate(short))])
            self.counts_plot.getPlotItem().setYRange(0, max(1, int(counts.max())) * 1.1)
            self.counts_plot.getPlotItem().setXRange(-0.6, len(counts) - 0.4)
            self.counts_plot.setToolTip("\n".join(f"{n}: {c}" for n, c in zip(names, counts)))
            self.counts_plot.show()

    @staticmethod
    def _label(ds: Dataset, i: int) -> str:
        y = ds.y
        if y is None:
            return ""
        v = np.ravel(y[i])
        if ds.task == "classification" and v.size == 1:
            return ds.class_name(int(v[0]))
        return ", ".join(f"{a:.3g}" for a in v[:3])

    def _update_split(self) -> None:
        ds = self.dataset
        if ds is None:
            self.split_label.setText("")
            return
        n = len(ds)
        lim = self.limit.value()
        if lim:
            n = min(n, lim)
        val = self.val_split.value()
        test = 0.0 if ds.test is not None else self.test_split.value()
        nv, nt = round(n * val), round(n * test)
        extra = f" · test {len(ds.test):,} (shipped)" if ds.test is not None else \
            f" · test {nt:,}"
        self.split_label.setText(f"train {n - nv - nt:,} · validation {nv:,}{extra}")
        self.form.setRowVisible(self.test_split, ds.test is None)

    # ----- checking against the model ------------------------------------------------------
    def check(self) -> list[NetBuilderError]:
        """What in the loaded data does not fit the model (also shown in the panel)."""
        ds = self.dataset
        self.problems = []
        self._show_input_fix(None if ds is None else input_fix(self.writer.doc.graph, ds))
        if ds is None:
            self.changed.emit()
            return self.problems
        graph = self.writer.doc.graph
        an = self.writer.doc.analysis
        if an.error_count:
            text = ("Fix the model's problems first (F8 shows them); then the data is checked "
                    "against it.")
            if self._input_fix is not None:
                nid, shape = self._input_fix
                text += (f"<br>The data's samples are shaped {fmt_shape(shape)}, which the "
                         f"Input '{_html(nid)}' does not take.")
            self.problem_label.setText(text)
            self.problem_label.setStyleSheet(self.problem_label.styleSheet().replace(
                "#B3261E", "#8A5A00"))
            self.problem_label.show()
            self.changed.emit()
            return self.problems
        try:
            self.problems = dataset_problems(ds, graph)
        except NetBuilderError as exc:
            self.problems = [exc]
        if self.problems:
            self.problem_label.setStyleSheet("color: #B3261E; background: #FDECEA; border: 1px "
                                             "solid #F4C7C3; border-radius: 5px; padding: 6px;")
            self.problem_label.setText("The data does not fit the model:<br>• "
                                       + "<br>• ".join(_html(p.message) for p in self.problems))
            self.problem_label.show()
        else:
            self.problem_label.hide()
        self.changed.emit()
        return self.problems

    def _show_input_fix(self, fix: tuple[str, tuple[int, ...]] | None) -> None:
        self._input_fix = fix
        if fix is not None:
            self.fix_input_button.setText(f"Set the Input to the data's shape "
                                          f"{fmt_shape(fix[1])}")
        self.fix_input_button.setVisible(fix is not None)

    def _fix_input(self) -> None:
        """One click, one undoable step: the Input takes the data's sample shape."""
        if self._input_fix is None:
            return
        nid, shape = self._input_fix
        node = self.writer.doc.graph.nodes.get(nid)
        if node is None:
            return
        try:
            self.writer.push(SetParams(nid, node.params, {**node.params, "shape": list(shape)},
                                       f"Set the Input '{nid}' to the data's shape"))
        except NetBuilderError as exc:
            self.writer.report(exc.message, True)
            return
        self.writer.report(f"Input '{nid}' now takes samples shaped {fmt_shape(shape)}", False)

    def set_running(self, running: bool) -> None:
        self.running = running
        for w in self.editors:
            w.setEnabled(not running)
        if not running:
            self.options.setEnabled(self.source.currentData() in BUILTINS)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

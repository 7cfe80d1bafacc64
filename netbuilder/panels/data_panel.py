"""The Data panel: a built-in dataset, a standard one downloaded on first use (MNIST,
Fashion-MNIST, KMNIST, CIFAR-10) or a file (IDX, NPZ, CSV, image folder); a preview of
samples with their labels, class counts, the train / validation / test split, normalisation
and augmentation; and, before any training, what in the data does not fit the model.

Datasets load, download and are checked on worker threads (never the GUI thread); the
settings go into the model's ``training`` section (one undoable command per change). The
parts: ``data_chooser`` (the list), ``data_download`` (the download area), ``data_preview``
and ``data_fit`` (what the panel proposes)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from engine.data import BUILTINS, CATALOGUE, Dataset, dataset_problems
from engine.data.loaders import parse_spec
from engine.errors import NetBuilderError
from engine.graph import fmt_bytes
from engine.registry import fmt_shape

from ..document import Change, SetParams
from .data_chooser import FILE_ITEM, DatasetChooser, builtin_choice, remote_choice
from .data_download import DownloadBox, breakable
from .data_fit import describe_suggestion, input_fix, training_suggestion
from .data_preview import DataPreview, preview_indices
from .data_source import DataSource
from .section import SectionWriter, scrolling_body

__all__ = ["FILE_ITEM", "DataPanel", "preview_indices", "spec_text"]

OPTIONS_HINT = "settings, e.g. n=800, noise=0.2"
OPTIONS_TIP = "Settings of the built-in generator as key=value, separated by commas"
PROBLEM_STYLE = ("color: #B3261E; background: #FDECEA; border: 1px solid #F4C7C3; "
                 "border-radius: 5px; padding: 6px;")


def spec_text(spec: Any) -> str:
    """The dataset setting as one line (for comparisons and the window)."""
    if spec is None:
        return ""
    if isinstance(spec, dict):
        target = spec.get("name") or spec.get("path") or "?"
        rest = ",".join(f"{k}={v}" for k, v in spec.items() if k not in ("name", "path"))
        return f"{target}:{rest}" if rest else str(target)
    return str(spec)


class DataPanel(QWidget):
    """Chooses and previews the data; ``dataset`` is the loaded Dataset (or None) for
    ``loaded_spec``; ``problems`` what does not fit the model; ``changed`` after either,
    and when a download starts, stops or fails (``start_blocker`` then says why training
    must wait). ``host`` (the main window) answers ``choose_dataset_files(title, filter)``;
    ``choose_path`` (a file for Open…) is replaceable too."""

    changed = Signal()

    def __init__(self, writer: SectionWriter, parent: QWidget | None = None,
                 host: Any = None) -> None:
        super().__init__(parent)
        self.writer = writer
        self.host = host
        self.data_source = DataSource(self)
        self.problems: list[NetBuilderError] = []
        self.choose_path: Callable[[], str | None] = self._choose_path
        self.running = False
        self._requested: str | None = None  # spec_text of the last load asked for
        self._suggest_on_load: str | None = None  # a file just chosen: suggest once loaded
        self._input_fix: tuple[str, tuple[int, ...]] | None = None
        self._loading = False

        lay = scrolling_body(self)
        src = QHBoxLayout()
        self.source = DatasetChooser()
        self.browse = QPushButton("Open…")
        self.browse.setToolTip("Load an .npz, .csv, MNIST IDX file, CIFAR-10 binary archive or "
                               "a folder of images with one sub-folder per class")
        src.addWidget(self.source, 1)
        src.addWidget(self.browse)
        lay.addLayout(src)
        self.options = QLineEdit()
        self.options.setPlaceholderText(OPTIONS_HINT)
        self.options.setToolTip(OPTIONS_TIP)
        lay.addWidget(self.options)
        self.download = DownloadBox()
        lay.addWidget(self.download)
        self.summary = QLabel("No dataset chosen")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("dataSummary")
        lay.addWidget(self.summary)
        self.source_note = QLabel()
        self.source_note.setObjectName("dataSourceNote")
        self.source_note.setWordWrap(True)
        self.source_note.setStyleSheet("color: #5E6673; font-size: 8pt;")
        self.source_note.hide()
        lay.addWidget(self.source_note)
        self.problem_label = QLabel()
        self.problem_label.setObjectName("dataProblems")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(PROBLEM_STYLE)
        self.problem_label.hide()
        lay.addWidget(self.problem_label)
        self.fix_input_button = QPushButton()
        self.fix_input_button.setObjectName("fixInputButton")
        self.fix_input_button.setToolTip("Give the model's Input the shape of one sample of "
                                         "this data (undo with Ctrl+Z)")
        self.fix_input_button.clicked.connect(self._fix_input)
        self.fix_input_button.hide()
        lay.addWidget(self.fix_input_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.preview = DataPreview()
        lay.addWidget(self.preview)

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
        self.data_source.changed.connect(self._on_state)
        self.data_source.progressed.connect(self.download.progress)
        self.download.cancel_requested.connect(self.cancel_download)
        self.download.retry_requested.connect(self.reload)
        self.download.open_files_requested.connect(self.open_local_files)
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

    # the preview's parts, by their old names
    preview_grid = property(lambda self: self.preview.grid)
    points_plot = property(lambda self: self.preview.points_plot)
    counts_plot = property(lambda self: self.preview.counts_plot)
    count_bars = property(lambda self: self.preview.count_bars)

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
            self.load_section(reset=ch.reset)
        elif ch.affects_shapes:
            self.check()

    def load_section(self, reset: bool = False) -> None:
        """Show the training section's data settings; load the data if it changed (or, on
        another model, if it had not loaded)."""
        t = self.writer.section
        spec = t.get("dataset")
        self._loading = True
        try:
            builtin = builtin_choice(spec)
            remote = remote_choice(spec)
            if builtin is not None:
                name, params = builtin
                self.source.select(name)
                self.options.setText(", ".join(f"{k}={v}" for k, v in params.items()))
                self.options.setEnabled(not self.running)
                self._set_options_hint(name)
            elif remote is not None:
                self.source.select(remote)
                self.options.setText("")
                self.options.setEnabled(False)
                self.options.setPlaceholderText("no settings")
                self.options.setToolTip(f"{CATALOGUE[remote].title} has no settings")
            elif spec is not None:
                self.source.select(FILE_ITEM)
                self.options.setText("")
                self.options.setEnabled(False)
            else:
                self.source.select(None)
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
        except (TypeError, ValueError, AttributeError, NetBuilderError):
            pass  # odd hand-written values: Start reports them precisely
        finally:
            self._loading = False
        if spec_text(spec) != self._requested or (
                reset and self.dataset is None and not self.pending):
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
        if key in CATALOGUE:
            if remote_choice(self.spec) == key and self.dataset is None and not self.pending:
                self.reload()  # chosen again after a cancel or a failure: resume / retry
            else:
                self._commit_spec(key, "image")
            return
        if key in BUILTINS:
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
    dataset = property(lambda self: self.data_source.dataset)
    load_error = property(lambda self: self.data_source.error)
    pending = property(lambda self: self.data_source.busy)
    remote = property(lambda self: self.data_source.remote)

    @property
    def loaded_spec(self) -> str | None:
        src = self.data_source
        return spec_text(src.spec) if src.dataset is not None else None

    def reload(self) -> None:
        """Load the dataset of the training section on a worker thread (downloading it
        first, with progress and Cancel, when it is a standard dataset not yet here)."""
        spec = self.spec
        self._requested = spec_text(spec)
        self.problems = []
        self.preview.clear()  # nothing of the data shown before stays beside the new state
        self.split_label.setText("")
        self.problem_label.hide()
        self.source_note.hide()
        self.download.clear()
        self._show_input_fix(None)
        self.data_source.load(spec, self.base_dir)

    def cancel_download(self) -> None:
        """Stop the download under way (the part downloaded is kept; choosing the dataset
        again, or Resume, continues it)."""
        self.data_source.cancel()

    def shutdown(self) -> None:
        """The window closes: stop a download (it resumes next time)."""
        self.data_source.stop()

    def start_blocker(self) -> str | None:
        """Why training must wait for the data (a standard dataset not on this computer
        yet: downloading, cancelled, failed), else None."""
        return self.data_source.wait_reason()

    def wait_loaded(self, timeout: float = 10.0) -> bool:
        """Process events until the pending load, download or file check is over (loaded,
        failed or cancelled): for tests and scripts."""
        import time

        from PySide6.QtWidgets import QApplication
        end = time.monotonic() + timeout
        while self.pending and self.spec is not None:
            if time.monotonic() > end:
                return False
            QApplication.processEvents()
            time.sleep(0.005)
        return True

    def _on_state(self) -> None:
        """Show how the loading stands (DataSource.state)."""
        src = self.data_source
        state, name = src.state, src.remote
        entry = CATALOGUE[name] if name is not None else None
        if name is not None and state not in ("loading", "downloading"):
            self.source.refresh_states()
        if state == "":
            self._say("No dataset chosen: pick a built-in one or open a file.")
        elif state == "loading":
            self._say(f"Reading {entry.title} from this computer…" if entry
                                 else f"Loading {spec_text(src.spec)}…")
        elif state == "downloading" and self.download.state != "downloading":
            self._say("")
            self.download.start(entry, src.cache.have_bytes if src.cache is not None else 0)
        elif state == "cancelling":
            self.download.cancelling()
        elif state == "cancelled":
            self.download.cancelled(src.cache)
        elif state == "adding":
            self.download.adding(name, src.adding_count)
        elif state == "incomplete":
            self.download.incomplete(src.cache, "Your files matched and are kept; the others "
                                     "can be downloaded, or opened too.")
        elif state == "failed":
            self._say("")
            self.preview.clear()
            if entry is not None and src.added_error:
                self.download.failed(name, src.error or "", retry="Download instead",
                                     title=f"These are not {entry.title}'s files")
            elif entry is not None:  # the engine's message, with Retry and Open files
                self.download.failed(name, src.error or "")
            else:
                self.problem_label.setText(f"Cannot load the data: {src.error}")
                self.problem_label.show()
        elif state == "loaded":
            self._show_loaded(src.dataset)
            return  # check() tells the listeners
        self.changed.emit()

    def _say(self, text: str) -> None:
        """The summary line; it takes no room while it has nothing to say."""
        self.summary.setText(text)
        self.summary.setVisible(bool(text))

    def _show_loaded(self, ds: Dataset) -> None:
        self.download.clear()
        self._say(ds.describe())
        if self.remote is not None:
            self._show_source_note(self.remote)
        if self._suggest_on_load is not None and self._suggest_on_load == self.loaded_spec:
            kind = str(ds.meta.get("kind", ""))
            updates = training_suggestion(self.writer.section, kind)
            if updates and self.writer.update("Use training settings suited to the data",
                                              **updates):
                self.writer.report(describe_suggestion(kind, updates), False)
        self._suggest_on_load = None
        self.preview.show_dataset(ds)
        for w in (self.shift, self.rotation, self.scale):
            self.form.setRowVisible(w, ds.is_image)
        self._update_split()
        self.check()

    def _show_source_note(self, name: str) -> None:
        from engine.data.remote import dataset_folder

        e = CATALOGUE[name]
        folder = str(dataset_folder(name))
        home = str(Path.home())
        if folder.startswith(home + "/"):
            folder = "~" + folder[len(home):]
        self.source_note.setText(breakable(f"{e.title}, {fmt_bytes(e.size)} on this computer "
                                           f"in {folder}. By {e.credit}."))
        self.source_note.setToolTip(e.homepage)
        self.source_note.show()

    def open_local_files(self) -> None:
        """"Open files I already have…": the files chosen (through the window's
        ``choose_dataset_files``) are checked against the catalogue and copied into the
        cache; then the data loads from there."""
        name = self.remote
        if name is None:
            return
        e = CATALOGUE[name]
        title = f"Open the {e.title} files you already have"
        names = " ".join(f.name for f in e.files)
        name_filter = f"{e.title} files ({names});;gzip files (*.gz);;All files (*)"
        ask = getattr(self.host, "choose_dataset_files", None)
        if ask is not None:
            paths = list(ask(title, name_filter) or [])
        else:
            from ..dialogs import choose_dataset_files
            paths = choose_dataset_files(self, title, name_filter, str(Path.home()))
        self.data_source.add_files(paths)

    # ----- settings shown with the data ----------------------------------------------------
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
            self.problem_label.setStyleSheet(PROBLEM_STYLE.replace("#B3261E", "#8A5A00"))
            self.problem_label.show()
            self.changed.emit()
            return self.problems
        try:
            self.problems = dataset_problems(ds, graph)
        except NetBuilderError as exc:
            self.problems = [exc]
        if self.problems:
            self.problem_label.setStyleSheet(PROBLEM_STYLE)
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

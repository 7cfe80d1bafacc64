"""The inspector: a form generated from the selected layer's ParamSpecs. Every edit is a
SetParams / Rename command; values the layer refuses are shown with the engine's reason."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import engine
from engine.errors import NetBuilderError
from engine.registry import ParamSpec

from .analysis import fmt_count, fmt_shape
from .canvas import theme
from .document import Change, Command, Document, Rename, SetParams
from .icons import layer_icon

INT_MAX = 2**31 - 1


class IntSpinBox(QSpinBox):
    """A spin box that reports typed values outside its range instead of dropping them."""

    def __init__(self) -> None:
        super().__init__()
        self.out_of_range: Callable[[Any], None] | None = None

    def fixup(self, text: str) -> str:
        t = text.strip().removesuffix(self.suffix().strip()).strip()
        if self.out_of_range is not None and re.fullmatch(r"[-+]?\d+", t):
            self.out_of_range(int(t))
        return super().fixup(text)


class SciSpinBox(QDoubleSpinBox):
    """A float spin box that shows values like 1e-05 or 0.9 instead of fixed decimals, and
    reports typed values outside its range."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(12)
        self.out_of_range: Callable[[Any], None] | None = None

    def fixup(self, text: str) -> str:
        try:
            v = float(text)
        except ValueError:
            v = None
        if self.out_of_range is not None and v is not None:
            self.out_of_range(v)
        return super().fixup(text)

    def textFromValue(self, v: float) -> str:
        return f"{v:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            ok = re.fullmatch(r"[-+]?(\d*\.?\d*([eE][-+]?\d*)?)?", t) is not None
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        v = self.value()
        mag = 10 ** math.floor(math.log10(abs(v))) if v else self.singleStep()
        self.setValue(v + steps * mag)


def _parse_ints(text: str) -> list[Any] | str:
    """'1, 28, 28' / '1×28×28' / '(3, 5)' / '[2]' / '2,' / '2' -> a list of numbers (one
    number stays a one-element list); text that is not numbers comes back as it is."""
    parts = [p for p in re.split(r"[,\s×xX*()\[\]]+", text.strip()) if p]
    out: list[Any] = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            try:
                out.append(float(p))
            except ValueError:
                return text
    return out if out else text


class ParamEditor:
    """One form field for one ParamSpec. Calls ``commit(raw_value)`` when the user is done."""

    def __init__(self, spec: ParamSpec, commit: Callable[[ParamSpec, Any], None]) -> None:
        self.spec = spec
        self._commit = commit
        k = spec.kind
        lo = -INT_MAX if spec.low is None else spec.low
        hi = INT_MAX if spec.high is None else spec.high
        if k == "int":
            w = IntSpinBox()
            w.out_of_range = self._commit_raw
            lo_i, hi_i = int(max(lo, -INT_MAX)), int(min(hi, INT_MAX))
            if spec.optional:
                lo_i -= 1
                w.setSpecialValueText("auto")
            w.setRange(lo_i, hi_i)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._emit)
            if spec.unit:
                w.setSuffix(f" {spec.unit}")
        elif k == "float":
            w = SciSpinBox()
            w.out_of_range = self._commit_raw
            w.setRange(float(lo), float(hi))
            w.setSingleStep(0.01 if hi <= 1 else 0.1)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._emit)
        elif k == "bool":
            w = QCheckBox()
            w.toggled.connect(self._emit)
        elif k == "choice":
            w = QComboBox()
            w.addItems(list(spec.choices))
            w.activated.connect(self._emit)
        elif k == "padding":
            w = QComboBox()
            w.setEditable(True)
            w.addItems(["valid", "same"])
            w.activated.connect(self._emit)
            w.lineEdit().editingFinished.connect(self._emit)
        else:
            w = QLineEdit()
            if k == "shape":
                w.setPlaceholderText("e.g. 1, 28, 28")
            elif k == "size":
                w.setPlaceholderText("auto" if spec.optional else "n  or  h, w")
            w.editingFinished.connect(self._emit)
        rng = spec.range_text() if k in ("int", "float", "shape", "size") else ""
        tip = spec.help + (f" ({rng})" if rng and rng != "any value" else "")
        w.setToolTip(tip)
        w.setObjectName(f"param_{spec.name}")
        self.widget = w

    def raw(self) -> Any:
        w, k, spec = self.widget, self.spec.kind, self.spec
        if k == "int":
            v = w.value()
            return None if spec.optional and v == w.minimum() else v
        if k == "float":
            return w.value()
        if k == "bool":
            return w.isChecked()
        if k == "choice":
            return w.currentText()
        if k == "padding":
            t = w.currentText().strip()
            return int(t) if re.fullmatch(r"\d+", t) else t
        t = w.text().strip()
        if k == "str":
            return t
        if not t:
            return None
        nums = _parse_ints(t)
        if k == "size" and isinstance(nums, list) and len(nums) == 1:
            return nums[0]  # "5" is a 5×5 window, kept as 5 in the file
        return nums

    def set_value(self, v: Any) -> None:
        w, k = self.widget, self.spec.kind
        w.blockSignals(True)
        try:
            if k == "int":
                w.setValue(w.minimum() if v is None else int(v))
            elif k == "float":
                w.setValue(float(v))
            elif k == "bool":
                w.setChecked(bool(v))
            elif k in ("choice", "padding"):
                w.setCurrentText(str(v))
            elif v is None:
                w.setText("")
            elif k == "size" and isinstance(v, tuple | list) and len(set(v)) == 1:
                w.setText(str(v[0]))
            elif isinstance(v, tuple | list):
                w.setText(", ".join(str(x) for x in v))
            else:
                w.setText(str(v))
        finally:
            w.blockSignals(False)
        if k == "padding":
            w.lineEdit().setModified(False)

    def _emit(self, *_: Any) -> None:
        self._commit(self.spec, self.raw())

    def _commit_raw(self, value: Any) -> None:
        self._commit(self.spec, value)


class Inspector(QWidget):
    """Edits the one selected node. ``message(text, is_error)`` goes to the status bar."""

    message = Signal(str, bool)

    def __init__(self, doc: Document, push: Callable[[Command], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.push = push
        self.node_id: str | None = None
        self.editors: dict[str, ParamEditor] = {}
        self._built_for: tuple[str, str] | None = None

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.body = QWidget()
        self.body.setObjectName("inspectorBody")
        self.scroll.setWidget(self.body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

        lay = QVBoxLayout(self.body)
        # never shorter than its rows: the scroll area sized the body from a stale height
        # when a node's rows grew, and squeezed the form's rows into each other
        lay.setSizeConstraint(QVBoxLayout.SizeConstraint.SetMinimumSize)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(8)
        head = QHBoxLayout()
        self.icon = QLabel()
        self.title = QLabel()
        self.title.setObjectName("inspectorTitle")
        head.addWidget(self.icon)
        head.addWidget(self.title, 1)
        lay.addLayout(head)
        self.help = QLabel()
        self.help.setWordWrap(True)
        self.help.setObjectName("dim")
        lay.addWidget(self.help)

        self.form_box = QWidget()
        self.form = QFormLayout(self.form_box)
        self.form.setContentsMargins(0, 4, 0, 0)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        lay.addWidget(self.form_box)
        self._node_widgets: list[QWidget] = []  # other parts' buttons, shown with a node
        self.id_edit = QLineEdit()
        self.id_edit.setObjectName("node_id")
        self.id_edit.setToolTip("Node id: letters, digits, '_' or '-'; wires follow a rename")
        self.id_edit.editingFinished.connect(self._rename)

        self.refusal = QLabel()
        self.refusal.setObjectName("refusal")
        self.refusal.setWordWrap(True)
        self.refusal.hide()
        lay.addWidget(self.refusal)

        self.facts_box = QFrame()
        self.facts_box.setObjectName("facts")
        self.facts = QFormLayout(self.facts_box)
        self.facts.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.out_label, self.in_label = QLabel(), QLabel()
        self.size_label, self.macs_label, self.rf_label = QLabel(), QLabel(), QLabel()
        for lbl in (self.out_label, self.in_label, self.size_label, self.macs_label,
                    self.rf_label):
            lbl.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            lbl.setWordWrap(True)
        self.facts.addRow("Input", self.in_label)
        self.facts.addRow("Output", self.out_label)
        self.facts.addRow("Parameters", self.size_label)
        self.facts.addRow("MACs / sample", self.macs_label)
        self.facts.addRow("Receptive field", self.rf_label)
        lay.addWidget(self.facts_box)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.problem)
        lay.addStretch(1)
        doc.subscribe(self.on_change)
        self.show_node(None)

    # ----- which node ----------------------------------------------------------------------
    def show_node(self, node_id: str | None, n_selected: int = 1) -> None:
        if node_id is not None and node_id not in self.doc.graph.nodes:
            node_id = None
        if node_id != self.node_id:
            self.refusal.hide()
        self.node_id = node_id
        if node_id is None:
            self._show_empty(n_selected)
            return
        node = self.doc.graph.nodes[node_id]
        cls = engine.get_layer_class(node.type, node_id)
        self.icon.setPixmap(layer_icon(cls.type_name, cls.category).pixmap(28, 28))
        self.icon.show()
        self.title.setText(f"{cls.type_name}  <span style='color:{theme.TEXT_DIM}; "
                           f"font-weight:normal'>· {cls.category}</span>")
        self.help.setText(cls.help)
        if self._built_for != (node_id, node.type):
            self._build_form(cls)
            self._built_for = (node_id, node.type)
        self.form_box.show()
        self.facts_box.show()
        for w in self._node_widgets:
            w.show()
        self._load_values()
        self._load_facts()

    def _show_empty(self, n_selected: int) -> None:
        self.icon.hide()
        self.title.setText("Inspector")
        self.help.setText(f"{n_selected} nodes selected: select one to edit it."
                          if n_selected > 1 else
                          "Select a node on the canvas to edit its parameters. Drag layers "
                          "from the palette; wire an output port (bottom) to an input port "
                          "(top).")
        self.form_box.hide()
        self.facts_box.hide()
        self.problem.hide()
        for w in self._node_widgets:
            w.hide()
        self._built_for = None

    def add_node_widget(self, widget: QWidget) -> None:
        """Show ``widget`` (another part's button) under the facts while a node is shown."""
        lay = self.body.layout()
        lay.insertWidget(lay.count() - 1, widget)
        self._node_widgets.append(widget)
        widget.setVisible(self.node_id is not None)

    def _build_form(self, cls: type[engine.Layer]) -> None:
        if self.form.rowCount() == 0:
            self.form.addRow("id", self.id_edit)
        while self.form.rowCount() > 1:
            self.form.removeRow(1)
        self.editors.clear()
        for spec in cls.param_specs:
            ed = ParamEditor(spec, self._commit)
            self.editors[spec.name] = ed
            label = QLabel(spec.name.replace("_", " ") + (f" ({spec.unit})" if spec.unit else ""))
            label.setToolTip(spec.help)
            self.form.addRow(label, ed.widget)

    def _load_values(self) -> None:
        nid = self.node_id
        if nid is None:
            return
        node = self.doc.graph.nodes[nid]
        self.id_edit.setText(nid)
        self.id_edit.setModified(False)
        try:
            resolved = node.layer_class().resolve_params(node.params, nid)
        except NetBuilderError:
            resolved = dict(node.params)
        for name, ed in self.editors.items():
            ed.set_value(resolved.get(name))

    def _load_facts(self) -> None:
        nid = self.node_id
        if nid is None:
            return
        an = self.doc.analysis
        info = an.nodes.get(nid)
        ins = [an.nodes[e.src].out_shape if e.src in an.nodes else None
               for e in self.doc.graph.in_edges(nid)]
        self.in_label.setText(", ".join(fmt_shape(s) for s in ins) or "—")
        self.out_label.setText(fmt_shape(info.out_shape) if info else "?")
        self.size_label.setText(f"{info.params:,}" if info and info.params is not None else "?")
        self.macs_label.setText(f"{fmt_count(info.macs)}" if info and info.macs is not None
                                else "?")
        rf = self.doc.receptive_fields.get(nid)
        self.rf_label.setText(rf.text() if rf else "—")
        if info is not None and info.error is not None:
            self.problem.setText(f"<b>Problem</b><br>{_html(info.error.message)}")
            self.problem.show()
        else:
            self.problem.hide()

    # ----- edits ---------------------------------------------------------------------------
    def _refuse(self, text: str) -> None:
        self.refusal.setText(text)
        self.refusal.show()
        self.message.emit(text, True)
        self._reveal(self.refusal)

    def _reveal(self, label: QLabel) -> None:
        """Scroll ``label`` (why an edit was refused, or the problem it made) into view once
        it is laid out: under a long form (a Conv2D's) it fell below the panel's edge, and
        the user saw the red badge on the canvas but not the reason."""
        def show() -> None:
            if label.isVisible():
                self.body.layout().activate()
                self.scroll.ensureWidgetVisible(label, 0, 6)
        QTimer.singleShot(0, show)

    def _commit(self, spec: ParamSpec, raw: Any) -> None:
        nid = self.node_id
        if nid is None or nid not in self.doc.graph.nodes:
            return
        node = self.doc.graph.nodes[nid]
        cls = node.layer_class()
        where = f"{cls.type_name} '{nid}'"
        try:
            value = spec.coerce(raw, where, nid)
        except NetBuilderError as exc:
            self._refuse(exc.message)
            self._load_values()
            return
        new = dict(node.params)
        default = None
        if spec.default is not None:
            try:
                default = spec.coerce(spec.default)
            except NetBuilderError:
                default = None
        if not spec.required and value == default:
            new.pop(spec.name, None)
        elif spec.kind == "size" and isinstance(raw, int) and not isinstance(raw, bool):
            new[spec.name] = raw  # "5" stays 5 in the file, not [5, 5]
        else:
            new[spec.name] = spec.to_json(value)
        if new == node.params:
            self.refusal.hide()
            self._load_values()
            return
        try:
            self.push(SetParams(nid, node.params, new))
        except NetBuilderError as exc:
            self._refuse(exc.message)
            self._load_values()
            return
        self.refusal.hide()
        if self.node_id == nid and not self.problem.isHidden():
            self._reveal(self.problem)

    def _rename(self) -> None:
        nid = self.node_id
        new = self.id_edit.text().strip()
        if nid is None or new == nid:
            return
        try:
            self.push(Rename(nid, new))
        except NetBuilderError as exc:
            self._refuse(exc.message)
            self.id_edit.setText(nid)
            return
        self.refusal.hide()

    def on_change(self, ch: Change) -> None:
        if ch.reset:
            self._built_for = None
            self.show_node(None)
            return
        for old, new in ch.renamed:
            if self.node_id == old:
                self.node_id = new
                self._built_for = (new, self.doc.graph.nodes[new].type)
        if self.node_id is not None and self.node_id not in self.doc.graph.nodes:
            self.show_node(None)
            return
        if ch.affects_shapes and self.node_id is not None:
            self._load_values()
            self._load_facts()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

"""The layer palette: every registered layer type, grouped by category, with an icon and its
one-line help, a search box, and drag-and-drop onto the canvas."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

import engine

from .canvas import MIME_LAYER, theme
from .canvas.scene import BLOCK_PREFIX
from .icons import layer_icon

TYPE_ROLE = Qt.ItemDataRole.UserRole
HELP_ROLE = Qt.ItemDataRole.UserRole + 1
CATEGORY_ROLE = Qt.ItemDataRole.UserRole + 2
NAME_ROLE = Qt.ItemDataRole.UserRole + 3  # the name shown: the type's, or one of its aliases
USER_BLOCKS = "My blocks"


def layer_mime(type_name: str) -> QMimeData:
    """The drag payload of one layer type (what the canvas accepts on drop)."""
    md = QMimeData()
    md.setData(MIME_LAYER, type_name.encode("utf-8"))
    md.setText(type_name)
    return md


class _Delegate(QStyledItemDelegate):
    """Layer rows: icon, bold name, grey help line. Category rows: small caps header."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        if index.data(TYPE_ROLE):
            return QSize(200, 40)
        return QSize(200, 26)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r: QRect = option.rect
        type_name = index.data(TYPE_ROLE)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hover:
            painter.fillRect(r, QColor("#DCE8FB" if selected else "#EEF3FB"))
        if type_name:
            icon = index.data(Qt.ItemDataRole.DecorationRole)
            icon.paint(painter, QRect(r.left() + 4, r.top() + 6, 28, 28))
            x = r.left() + 40
            painter.setPen(QColor(theme.TEXT))
            painter.setFont(theme.font(9.0, bold=True))
            painter.drawText(QRect(x, r.top() + 4, r.width() - x - 4, 17),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             index.data(NAME_ROLE) or type_name)
            f = theme.font(7.8)
            painter.setFont(f)
            painter.setPen(QColor(theme.TEXT_DIM))
            help_text = QFontMetrics(f).elidedText(index.data(HELP_ROLE) or "",
                                                   Qt.TextElideMode.ElideRight,
                                                   r.right() - x - 6)
            painter.drawText(QRect(x, r.top() + 20, r.right() - x - 4, 16),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, help_text)
        else:
            cat = index.data(CATEGORY_ROLE) or ""
            painter.setBrush(theme.category_color(cat))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(QRect(r.left() + 2, r.top() + 9, 8, 8), 2, 2)
            painter.setPen(QColor("#3C4350"))
            painter.setFont(theme.font(8.2, bold=True))
            painter.drawText(QRect(r.left() + 16, r.top(), r.width() - 16, r.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             cat.upper())
        painter.restore()


class _Tree(QTreeWidget):
    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        names = [it.data(0, TYPE_ROLE) for it in items if it.data(0, TYPE_ROLE)]
        return layer_mime(names[0]) if names else QMimeData()

    def mimeTypes(self) -> list[str]:
        return [MIME_LAYER]


class Palette(QWidget):
    """Search box + tree of layer types. ``activated(type_name)`` on double click / Enter.

    A type's ``aliases`` (Swish's "SiLU") are entries of their own, keyed by the alias in
    ``items``, that add the type itself."""

    activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = _Tree()
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(False)
        self.tree.setIndentation(6)
        self.tree.setItemDelegate(_Delegate(self.tree))
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.tree.setMouseTracking(True)
        self.tree.setObjectName("palette")
        self.tree.setUniformRowHeights(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        lay.addWidget(self.search)
        lay.addWidget(self.tree)
        self.items: dict[str, QTreeWidgetItem] = {}
        self.user_blocks: list[tuple[str, str]] = []  # (name, help) of the block library
        self._build()
        self.search.textChanged.connect(self.filter)
        self.tree.itemActivated.connect(self._on_activated)

    def _build(self) -> None:
        self.tree.clear()
        self.items.clear()
        for category, classes in engine.layers_by_category().items():
            head = QTreeWidgetItem(self.tree)
            head.setData(0, CATEGORY_ROLE, category)
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for cls in classes:
                for name in (cls.type_name, *cls.aliases):
                    self.items[name] = self._item(head, cls, name, category)
            head.setExpanded(True)
        if self.user_blocks:
            head = QTreeWidgetItem(self.tree)
            head.setData(0, CATEGORY_ROLE, USER_BLOCKS)
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for name, help_text in self.user_blocks:
                key = BLOCK_PREFIX + name
                it = QTreeWidgetItem(head)
                it.setData(0, TYPE_ROLE, key)
                it.setData(0, NAME_ROLE, name)
                it.setData(0, HELP_ROLE, help_text)
                it.setData(0, Qt.ItemDataRole.DisplayRole, name)
                it.setIcon(0, layer_icon("Block", "Blocks"))
                it.setToolTip(0, f"<b>{name}</b><br>{help_text}<br><i>Drag onto the canvas, "
                                 "or double-click to add.</i>")
                it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                            | Qt.ItemFlag.ItemIsDragEnabled)
                self.items[key] = it
            head.setExpanded(True)

    def set_user_blocks(self, blocks: list[tuple[str, str]]) -> None:
        """Show the user's saved blocks, (name, one-line help) each, under "My blocks"."""
        self.user_blocks = list(blocks)
        self.refresh()

    def _item(self, head: QTreeWidgetItem, cls: type[engine.Layer], name: str,
              category: str) -> QTreeWidgetItem:
        """The entry ``name`` (the type's own name or an alias) adding a ``cls`` node."""
        it = QTreeWidgetItem(head)
        alias = name != cls.type_name
        help_text = f"The {cls.type_name} layer. {cls.help}" if alias else cls.help
        it.setData(0, TYPE_ROLE, cls.type_name)
        it.setData(0, NAME_ROLE, name)
        it.setData(0, HELP_ROLE, help_text)
        it.setData(0, Qt.ItemDataRole.DisplayRole, name)
        it.setIcon(0, layer_icon(cls.type_name, category))
        missing = cls.capabilities().missing()
        limits = f"<br>Note: {', '.join(missing)}." if missing else ""
        title = f"{name} (adds a {cls.type_name})" if alias else name
        it.setToolTip(0, f"<b>{title}</b><br>{cls.help}{limits}<br><i>Drag onto the canvas, "
                         "or double-click to add.</i>")
        it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsDragEnabled)
        return it

    def refresh(self) -> None:
        """Rebuild from the registry (layer types registered later appear)."""
        self._build()
        self.filter(self.search.text())

    def filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            head = self.tree.topLevelItem(i)
            cat = (head.data(0, CATEGORY_ROLE) or "").lower()
            shown = 0
            for j in range(head.childCount()):
                it = head.child(j)
                hay = (f"{it.data(0, NAME_ROLE)} {it.data(0, TYPE_ROLE)} "
                       f"{it.data(0, HELP_ROLE)} {cat}").lower()
                ok = all(w in hay for w in words)
                it.setHidden(not ok)
                shown += ok
            head.setHidden(shown == 0)
            head.setExpanded(True)

    def visible_types(self) -> list[str]:
        return [t for t, it in self.items.items() if not it.isHidden()
                and not (it.parent() and it.parent().isHidden())]

    def mime_data_for(self, type_name: str) -> QMimeData:
        """What dragging the entry ``type_name`` (or alias) out of the palette carries."""
        return self.tree.mimeData([self.items[type_name]])

    def _on_activated(self, item: QTreeWidgetItem, _col: int) -> None:
        t = item.data(0, TYPE_ROLE)
        if t:
            self.activated.emit(t)

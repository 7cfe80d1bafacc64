"""Qt side of undo/redo: QUndoStack entries that run the Document's plain command objects."""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand, QUndoStack

from .document import Command, Document


class DocCommand(QUndoCommand):
    """Wraps one Document command; the first redo() is skipped (push already applied it)."""

    def __init__(self, doc: Document, cmd: Command) -> None:
        super().__init__(cmd.text)
        self.doc = doc
        self.cmd = cmd
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.doc.execute(self.cmd)

    def undo(self) -> None:
        self.doc.revert(self.cmd)


class UndoBridge:
    """``push(cmd)`` applies ``cmd`` to the document first: a refused edit (NetBuilderError)
    raises and leaves both the document and the stack as they were."""

    def __init__(self, doc: Document, stack: QUndoStack) -> None:
        self.doc = doc
        self.stack = stack

    def push(self, cmd: Command) -> None:
        self.doc.execute(cmd)
        self.stack.push(DocCommand(self.doc, cmd))

"""Copy and paste of canvas fragments through the system clipboard (JSON, own MIME type)."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData
from PySide6.QtGui import QGuiApplication

FRAGMENT_MIME = "application/x-netbuilder-fragment"


def put_fragment(fragment: dict[str, Any]) -> None:
    """Put nodes (see ``document.make_fragment``) on the clipboard, also as JSON text."""
    text = json.dumps(fragment)
    md = QMimeData()
    md.setData(FRAGMENT_MIME, QByteArray(text.encode("utf-8")))
    md.setText(text)
    QGuiApplication.clipboard().setMimeData(md)


def get_fragment() -> Any | None:
    """The clipboard's JSON (ours, or text that may be a fragment), or None."""
    md = QGuiApplication.clipboard().mimeData()
    raw = None
    if md is not None and md.hasFormat(FRAGMENT_MIME):
        raw = bytes(md.data(FRAGMENT_MIME).data()).decode("utf-8", "replace")
    elif md is not None and md.hasText():
        raw = md.text()
    if not raw or len(raw) > 16 * 2**20:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None

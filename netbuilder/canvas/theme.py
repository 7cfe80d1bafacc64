"""Colours, fonts and sizes of the canvas (one light theme), shared with the palette's icons."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QColor, QFont

CATEGORY_COLORS = {
    "Input/Output": "#455A64",
    "Core": "#2F6FDB",
    "Convolution": "#7047C2",
    "Pooling": "#138D7F",
    "Activation": "#D9801A",
    "Normalization": "#BF3F78",
    "Merge": "#4E8A2A",
    "Recurrent": "#A8512A",
    "Attention": "#B23A48",
    "Spatial": "#1F7FA6",
    "Other": "#6B7280",
    "Blocks": "#3B5573",
    "My blocks": "#3B5573",
}

BACKGROUND = "#F7F8FA"
GRID_MINOR = "#ECEEF2"
GRID_MAJOR = "#DDE1E7"
NODE_BODY = "#FFFFFF"
NODE_BORDER = "#C7CDD6"
TEXT = "#1F2430"
TEXT_DIM = "#5E6673"
SELECT = "#2F80ED"
ERROR = "#D93025"
ERROR_FILL = "#FDECEA"
WIRE = "#7A8494"
WIRE_SELECTED = "#2F80ED"
WIRE_OK = "#1E9E5A"
LABEL_BG = "#FFFFFF"
RF = "#7047C2"
BADGE_COLORS = {  # live training badges: (text and outline, fill)
    "ok": ("#1E6B45", "#E8F5EE"),
    "warn": ("#8A5A00", "#FFF4DC"),
    "bad": ("#B3261E", "#FDECEA"),
    "nan": ("#FFFFFF", "#D93025"),
}

GRID = 20.0
NODE_WIDTH = 184.0
HEADER_H = 23.0
LINE_H = 16.0
PORT_R = 5.0


def category_color(category: str) -> QColor:
    return QColor(CATEGORY_COLORS.get(category, CATEGORY_COLORS["Other"]))


@cache
def font(size: float = 9.0, bold: bool = False, mono: bool = False) -> QFont:
    f = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
    if not mono:
        f.setStyleHint(QFont.StyleHint.SansSerif)
    f.setPointSizeF(size)
    f.setBold(bold)
    return f

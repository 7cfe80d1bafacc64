"""Words for counts in messages ('1 epoch', '2 epochs', '1 class', '3 classes') and times
('01:05', '1:02:05')."""

from __future__ import annotations

import math

IRREGULAR = {"class": "classes", "batch": "batches", "process": "processes",
             "child": "children", "matrix": "matrices"}


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` in the right number: plural(1, "epoch") -> '1 epoch'; ``many``
    gives an irregular plural."""
    text = f"{n:g}" if isinstance(n, float) else str(n)
    if n == 1:
        return f"{text} {word}"
    return f"{text} {many or IRREGULAR.get(word, word + 's')}"


def fmt_time(seconds: float) -> str:
    """Seconds as ``MM:SS``, or ``H:MM:SS`` from an hour; ``--:--`` when not finite."""
    if not math.isfinite(seconds):
        return "--:--"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"

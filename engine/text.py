"""Words for counts in messages: '1 epoch', '2 epochs', '1 class', '3 classes'."""

from __future__ import annotations

IRREGULAR = {"class": "classes", "batch": "batches", "process": "processes",
             "child": "children", "matrix": "matrices"}


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` in the right number: plural(1, "epoch") -> '1 epoch'; ``many``
    gives an irregular plural."""
    text = f"{n:g}" if isinstance(n, float) else str(n)
    if n == 1:
        return f"{text} {word}"
    return f"{text} {many or IRREGULAR.get(word, word + 's')}"

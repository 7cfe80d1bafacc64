"""Where NetBuilder's shipped files live: ``resources/`` beside the ``engine`` package."""

from __future__ import annotations

from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder (examples, datasets, icons)."""
    return Path(__file__).resolve().parent.parent / "resources"


def examples_dir() -> Path:
    return resources_dir() / "examples"


def datasets_dir() -> Path:
    return resources_dir() / "datasets"


def example_path(name: str) -> Path:
    """Path of a shipped example model, by file name with or without ``.json``."""
    stem = name[:-5] if name.endswith(".json") else name
    return examples_dir() / f"{stem}.json"


def example_names() -> list[str]:
    """Stems of the shipped example models, sorted."""
    return sorted(p.stem for p in examples_dir().glob("*.json"))

"""Where NetBuilder's shipped files live (examples, built-in datasets, the stylesheet), and
model names that stand for a shipped example (``lenet5`` for ``examples/lenet5.json``).

In the repository they are the top-level ``resources/`` folder; an installed NetBuilder
(a wheel) carries the same folder as the package ``netbuilder_resources`` (see setup.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import NetBuilderError

PACKAGE = "netbuilder_resources"  # the name resources/ is installed under


class ResourcesMissingError(NetBuilderError):
    """Neither a source checkout's ``resources/`` nor the installed package was found."""


def checkout_resources() -> Path | None:
    """``resources/`` of the source checkout this engine runs from (also an editable install),
    or None when the engine is installed (no ``pyproject.toml`` beside the package)."""
    root = Path(__file__).resolve().parent.parent
    folder = root / "resources"
    if (root / "pyproject.toml").is_file() and (folder / "examples").is_dir():
        return folder
    return None


def installed_resources() -> Path | None:
    """The folder of the installed package ``netbuilder_resources``, or None."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / "examples").is_dir() else None


def resources_dir() -> Path:
    """The shipped files' folder: the checkout's ``resources/`` when running from the source
    tree (so a checkout never reads another installation's files), else the installed
    package's. Raises ResourcesMissingError when neither exists."""
    folder = checkout_resources() or installed_resources()
    if folder is None:
        raise ResourcesMissingError(
            f"NetBuilder's shipped files (examples, datasets, style) are missing: no "
            f"'resources' folder beside {Path(__file__).resolve().parent} and no installed "
            f"package '{PACKAGE}'; reinstall NetBuilder")
    return folder


def examples_dir() -> Path:
    return resources_dir() / "examples"


def datasets_dir() -> Path:
    return resources_dir() / "datasets"


def style_path() -> Path:
    """The application's Qt stylesheet."""
    return resources_dir() / "style.qss"


def example_path(name: str) -> Path:
    """Path of a shipped example model, by file name with or without ``.json``."""
    stem = name[:-5] if name.endswith(".json") else name
    return examples_dir() / f"{stem}.json"


def example_names() -> list[str]:
    """Stems of the shipped example models, sorted."""
    return sorted(p.stem for p in examples_dir().glob("*.json"))


class UnknownModelError(NetBuilderError):
    """A model argument that is neither an existing file nor a shipped example's name."""


def looks_like_name(text: str) -> bool:
    """True for a bare name such as ``lenet5`` or ``lenet5.json`` (no folder part), which may
    stand for a shipped example."""
    return bool(text) and Path(text).name == text and not text.startswith(".") \
        and Path(text).suffix.lower() in ("", ".json")


def resolve_model(arg: str | Path) -> tuple[Path, bool]:
    """(path, is_example) for a model argument: an existing file wins; otherwise a bare name
    (``lenet5`` or ``lenet5.json``) of a shipped example. Raises UnknownModelError for a bare
    name that is neither (listing the examples); any other path is returned as given, so
    opening it reports what is wrong with it."""
    path = Path(arg)
    if path.exists():
        return path, False
    text = str(arg)
    if looks_like_name(text):
        candidate = example_path(text)
        if candidate.is_file():
            return candidate, True
        examples = ", ".join(example_names())
        if path.suffix:
            raise UnknownModelError(f"no such model file: {text} (and no example of that "
                                    f"name; examples: {examples})")
        raise UnknownModelError(f"no file or example named {text!r}; examples: {examples}")
    return path, False

"""NetBuilder, the application: draw a network on a canvas, train it, watch it learn.

Importing this package does not import Qt; ``netbuilder.app`` does.
"""

__all__ = ["__version__"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("netbuilder")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

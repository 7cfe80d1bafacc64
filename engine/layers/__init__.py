"""Built-in layer types; importing this package registers them all."""

from . import activation, conv, dense, io, merge, norm, pool

__all__ = ["activation", "conv", "dense", "io", "merge", "norm", "pool"]

"""Built-in layer types; importing this package registers them all."""

from . import activation, conv, dense, embedding, io, merge, norm, pool, recurrent, spatial

__all__ = ["activation", "conv", "dense", "embedding", "io", "merge", "norm", "pool", "recurrent",
           "spatial"]

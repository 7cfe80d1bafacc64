"""Errors a user can cause. All are ``ValueError`` subclasses with a message a person can act on."""

from __future__ import annotations


class NetBuilderError(ValueError):
    """Base of every user-facing error; ``node_id`` names the node it concerns, if any."""

    def __init__(self, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node_id = node_id


class GraphFormatError(NetBuilderError):
    """The file is not a NetBuilder graph: bad JSON, wrong ``format``, newer ``version``."""


class UnknownLayerError(NetBuilderError):
    """A node names a layer type the registry does not know."""


class ParamError(NetBuilderError):
    """A layer parameter is unknown, of the wrong kind, or out of range."""


class GraphStructureError(NetBuilderError):
    """Duplicate ids, dangling edges, taken or missing ports, no Input or no Output."""


class CycleError(GraphStructureError):
    """The graph has a cycle; ``cycle`` lists the node ids on it."""

    def __init__(self, message: str, node_id: str | None = None, cycle: list[str] | None = None):
        super().__init__(message, node_id)
        self.cycle = cycle or []


class ShapeError(NetBuilderError):
    """Tensor shapes stop fitting at ``node_id``."""


class ModelTooLargeError(NetBuilderError):
    """The model would need more memory than this machine has."""


class DataError(NetBuilderError):
    """A dataset is malformed or does not fit the model."""


class BundleError(NetBuilderError):
    """A trained-model bundle is corrupt, foreign or unsafe."""


class TrainingError(NetBuilderError):
    """Training cannot go on (e.g. the loss became NaN); the last good weights are kept."""

    def __init__(self, message: str, node_id: str | None = None, step: int | None = None):
        super().__init__(message, node_id)
        self.step = step


def short_repr(value: object, limit: int = 60) -> str:
    """repr() cut to ``limit`` characters, for quoting user input in messages."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 1] + "…"

"""NetBuilder's engine: graphs of layers compiled to Numba kernels. No Qt here.

Public API (stable; outside tools call exactly this)::

    g = engine.Graph.from_dict(doc)      # engine.load_graph(path), engine.save_graph(g, path)
    shapes = g.infer_shapes()
    net = engine.compile(g, seed=0)
    out = net.forward(x, train=False); dx = net.backward(dout)
    loss = net.train_step(x, y, engine.SGD(lr=0.01, momentum=0.9))
"""

from .cachedir import configure_numba_cache

configure_numba_cache()

from . import carry, cost, layers, lineage, recorder  # noqa: E402, F401  (layers: registers the types)
from .bundle import Bundle, load_bundle, save_bundle  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .errors import (  # noqa: E402
    BundleError,
    CycleError,
    DataError,
    GraphFormatError,
    GraphStructureError,
    ModelTooLargeError,
    NetBuilderError,
    ParamError,
    ShapeError,
    TrainingError,
    UnknownLayerError,
)
from .gradcheck import GradcheckReport, check_layer, gradcheck  # noqa: E402
from .graph import Diagnosis, Edge, Graph, Node, load_graph, save_graph  # noqa: E402
from .network import Network, compile  # noqa: E402
from .optim import OPTIMIZERS, SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp, make_optimizer  # noqa: E402
from .registry import (  # noqa: E402
    Capabilities,
    Example,
    Layer,
    ParamSpec,
    get_layer_class,
    layer_types,
    layers_by_category,
    register,
)
from .threads import get_num_threads, set_num_threads  # noqa: E402
from .training import Trainer, TrainSettings  # noqa: E402
from .warmup import WarmupCancelledError, warmup  # noqa: E402

__all__ = [
    "OPTIMIZERS", "SGD", "AdaGrad", "Adam", "AdamW", "BundleError", "CycleError", "DataError",
    "Diagnosis", "Edge", "GradcheckReport", "Graph", "GraphFormatError", "GraphStructureError",
    "Layer", "ModelTooLargeError", "NetBuilderError", "Network", "Node", "Optimizer",
    "ParamError", "ParamSpec", "RMSProp", "ShapeError", "TrainingError", "UnknownLayerError",
    "check_layer", "compile", "get_layer_class", "gradcheck", "layer_types",
    "layers_by_category", "load_graph", "make_optimizer", "register", "save_graph",
]
__all__ += ["Bundle", "Dataset", "TrainSettings", "Trainer", "load_bundle", "load_dataset",
            "save_bundle"]
__all__ += ["WarmupCancelledError", "get_num_threads", "set_num_threads", "warmup"]
__all__ += ["Capabilities", "Example"]

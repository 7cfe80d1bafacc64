"""Interop: export to ONNX and to a standalone PyTorch script, import from ONNX.

``onnx`` (a dependency of NetBuilder) is imported only when a function here needs it; the
PyTorch export writes a script and never imports ``torch``::

    from engine.export import export_onnx, export_pytorch, import_onnx
    export_onnx(net, "model.onnx")              # Network, Graph or Bundle
    export_pytorch(net, "model.py")             # + model.npz with the weights
    graph, state = import_onnx("model.onnx")    # engine.Graph + {"<node>.<param>": array}
    report = import_onnx_report("model.onnx")   # the same, and what became what (never raises)
"""

from .common import ExportError, ModelView, model_view
from .onnx_export import build_onnx, describe_onnx, export_onnx
from .onnx_import import import_onnx, supported_ops
from .onnx_report import ImportReport, import_onnx_report
from .pytorch_export import export_pytorch, pytorch_source

FORMATS = ("onnx", "pytorch")

__all__ = ["FORMATS", "ExportError", "ImportReport", "ModelView", "build_onnx", "describe_onnx",
           "export_onnx", "export_pytorch", "import_onnx", "import_onnx_report", "model_view",
           "pytorch_source", "supported_ops"]

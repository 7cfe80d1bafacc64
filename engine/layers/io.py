"""Input and Output nodes."""

from __future__ import annotations

from ..losses import LOSSES
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register


@register
class Input(Layer):
    type_name = "Input"
    category = "Input/Output"
    help = "Where samples enter the model; shape is per sample, e.g. (1, 28, 28) or (T, F)."
    param_specs = (
        ParamSpec("shape", "shape", (1, 28, 28), low=1, high=1_000_000, required=True,
                  help="per-sample shape: (C, H, W) for images, (F,) for vectors, (T, F) "
                       "for sequences"),
    )
    min_inputs = 0
    max_inputs = 0
    input_names = ()
    glyph = "IN"
    id_prefix = "input"
    onnx_graph_io = True
    examples = (example(shape=(3,)), example(shape=(1, 4, 4)))

    def infer_shape(self) -> Shape:
        return self.p["shape"]

    def forward(self, xs, params, train):
        return xs[0]

    def backward(self, dy, params, grads):
        return [dy]

    def to_onnx(self, b, xs, out, params):
        """A graph input, declared by ``build_onnx``: nothing to compute."""

    def to_pytorch(self, ctx, xs, out):
        return [], []


@register
class Output(Layer):
    type_name = "Output"
    category = "Input/Output"
    help = "A model output and its loss; several Outputs make a multi-task model."
    param_specs = (
        ParamSpec("loss", "choice", "cross_entropy", choices=LOSSES,
                  help="cross_entropy: logits + integer labels; mse: regression; "
                       "bce: logits + 0/1 targets; pixel_cross_entropy: (C, H, W) "
                       "class scores + a label per pixel (segmentation)"),
        ParamSpec("weight", "float", 1.0, low=0.0, high=1e6,
                  help="this head's share of the total loss"),
        ParamSpec("target", "str", "y",
                  help="dataset field this output learns ('x' = the input itself)"),
    )
    has_output_port = False
    glyph = "OUT"
    id_prefix = "output"
    onnx_graph_io = True
    examples = (example((4,), loss="mse"), example((3,), loss="cross_entropy"),
                example((2,), loss="bce", weight=0.5),
                example((3, 4, 5), loss="pixel_cross_entropy"))

    def infer_shape(self) -> Shape:
        s = self.in_shapes[0]
        if self.p["loss"] == "cross_entropy" and s[-1] < 2:
            raise self.shape_error(f"with cross-entropy needs at least 2 class scores, got "
                                   f"{fmt_shape(s)}: end with a Dense of one unit per class")
        if self.p["loss"] == "pixel_cross_entropy" and (len(s) != 3 or s[0] < 2):
            raise self.shape_error(f"with pixel cross-entropy needs class scores shaped "
                                   f"(C, H, W) with C ≥ 2, got {fmt_shape(s)}: end with a "
                                   "1×1 Conv2D of one filter per class")
        return s

    def forward(self, xs, params, train):
        return xs[0]

    def backward(self, dy, params, grads):
        return [dy]

    def summary(self) -> str:
        return self.p["loss"] + ("" if self.p["weight"] == 1.0 else f" ×{self.p['weight']:g}")

    def to_onnx(self, b, xs, out, params):
        b.op("Identity", xs, out)

    def to_pytorch(self, ctx, xs, out):
        return [], []

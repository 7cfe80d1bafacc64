"""Pieces of the ONNX importer: the value model (``Val``) and the image ops (Conv, pooling,
BatchNormalization, global averages, the spatial transformer's affine grid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NetBuilderError
from ..registry import Shape
from .onnx_export import base_grid


class OnnxImportError(NetBuilderError):
    """The ONNX file cannot become a NetBuilder graph (unsupported ops or layouts)."""


@dataclass
class Val:
    """An ONNX tensor that is (a view of) an engine node's output.

    ``perm``: batch-array axes of the ONNX tensor relative to the engine layout (() = same);
    ``view``: the ONNX per-sample shape when it is a reshape of the node's (e.g. (C, 1, 1))."""

    node: str
    shape: Shape
    perm: tuple[int, ...] = ()
    view: Shape | None = None

    @property
    def onnx_shape(self) -> Shape:
        """Per-sample shape of the ONNX tensor."""
        if self.view is not None:
            return self.view
        if self.perm:
            full = (0, *self.shape)
            dims = tuple(full[p] for p in self.perm)
            return dims[1:] if self.perm[0] == 0 else dims
        return self.shape


def short_float(v: Any) -> float:
    """The shortest decimal that is the same float32 (ONNX stores float32: 0.2, not
    0.20000000298...)."""
    return float(str(np.float32(v)))


class ImageOps:
    """Importer methods for image layers (mixed into ``onnx_import.Importer``)."""

    # ----- convolution, pooling, normalisation ------------------------------------------------
    def _padding(self, node: Any, a: dict[str, Any], x: Val, k: list[int], stride: list[int],
                 prefer_same: bool = False) -> str | int:
        from ..layers.conv import window_geometry
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER",):
            return "same"
        if auto == "VALID":
            return "valid"
        if auto != "NOTSET":
            raise self.fail(node, f"uses auto_pad {auto}; NetBuilder pads like SAME_UPPER")
        t, l, b, r = (list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4]
        if (t, l, b, r) == (0, 0, 0, 0) and not prefer_same:
            return "valid"
        _, h, w = x.shape
        same = [window_geometry(h, k[0], stride[0], "same")[1:],
                window_geometry(w, k[1], stride[1], "same")[1:]]
        if [(t, b), (l, r)] == same and (prefer_same or not t == b == l == r):
            return "same"
        if t == b == l == r and not prefer_same:
            return int(t)
        raise self.fail(node, f"pads (top, left, bottom, right) = {(t, l, b, r)}; NetBuilder "
                              "pads equally on all sides, or 'same' (extra at the bottom/right)")

    def _window(self, node: Any, a: dict[str, Any], k: list[int]) -> list[int]:
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.fail(node, "is dilated; NetBuilder has no dilated windows")
        return list(a.get("strides", [1] * len(k)))

    def _check_ceil_mode(self, node: Any, a: dict[str, Any], x: Val, k: list[int],
                         stride: list[int]) -> None:
        """ceil_mode changes nothing when the windows fit exactly; else it is refused (phase 2
        of issue 19 gives pooling a ceil_mode)."""
        if not a.get("ceil_mode", 0) or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            return
        t, l, b, r = (list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4] \
            if a.get("auto_pad", "NOTSET") == "NOTSET" else (0, 0, 0, 0)
        floor, ceil = [], []
        for size, lo, hi, kk, st in zip(x.shape[1:], (t, l), (b, r), k, stride):
            span = size + lo + hi - kk
            up = -(-span // st) + 1
            if (up - 1) * st >= size + lo:  # PyTorch / ONNX: no window may start in the end pad
                up -= 1
            floor.append(span // st + 1)
            ceil.append(up)
        if floor != ceil:
            raise self.fail(node, f"rounds its output size up (ceil_mode = 1, PyTorch's "
                                  f"ceil_mode=True): {ceil[0]}×{ceil[1]} here where NetBuilder's "
                                  f"pooling gives {floor[0]}×{floor[1]}. NetBuilder has no "
                                  "ceil_mode yet: export with ceil_mode=False, or give an input "
                                  "size at which the windows fit exactly")

    def _same_pads(self, x: Val, k: list[int], stride: list[int]) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of NetBuilder's 'same' padding for this input."""
        from ..layers.conv import window_geometry
        _, h, w = x.shape
        _, t, b = window_geometry(h, k[0], stride[0], "same")
        _, l, r = window_geometry(w, k[1], stride[1], "same")
        return t, l, b, r

    def op_Conv(self, node: Any) -> None:
        a = self.attrs(node)
        x = self.materialize(self.value(node), node)
        w = self.need_const(node, 1, "weight").astype(np.float32)
        if int(a.get("group", 1)) != 1:
            raise self.fail(node, "is a grouped convolution; NetBuilder's Conv2D has group 1")
        if w.ndim != 4 or len(x.shape) != 3:
            raise self.fail(node, "is not a 2-D convolution on (C, H, W) images")
        k = list(w.shape[2:])
        stride = self._window(node, a, k)
        state = {"weight": w}
        if len(node.input) > 2 and node.input[2]:
            state["bias"] = self.need_const(node, 2, "bias").astype(np.float32)
        params = {"filters": int(w.shape[0]), "kernel_size": k, "stride": stride,
                  "padding": self._padding(node, a, x, k, stride), "bias": "bias" in state}
        self.vals[node.output[0]] = self.add(node, "Conv2D", params, [x], state)

    def _pool(self, node: Any, type_name: str) -> None:
        a = self.attrs(node)
        x = self.materialize(self.value(node), node)
        if len(x.shape) != 3:
            raise self.fail(node, "does not pool a (C, H, W) image")
        k = list(a["kernel_shape"])
        if len(k) != 2:
            raise self.fail(node, f"has a {len(k)}-D window; NetBuilder pools 2-D images")
        stride = self._window(node, a, k)
        self._check_ceil_mode(node, a, x, k, stride)
        pads = tuple((list(a.get("pads", [0, 0, 0, 0])) + [0] * 4)[:4])
        same = self._same_pads(x, k, stride)
        # NetBuilder's AvgPool2D averages over the padding too with int padding (PyTorch's
        # count_include_pad=True) and over the real pixels only with 'same' padding.
        include = bool(a.get("count_include_pad", 0))
        if type_name == "AvgPool2D" and not include and any(pads):
            if pads != same:
                raise self.fail(node, f"pads (top, left, bottom, right) = {pads} and averages "
                                      "the real pixels only (count_include_pad = 0); NetBuilder "
                                      "does that only with 'same' padding (pads "
                                      f"{same} here): export with count_include_pad=True")
            pad: str | int = "same"
        else:
            pad = self._padding(node, a, x, k, stride)
        if type_name == "AvgPool2D" and include and pad == "same" and any(same):
            raise self.fail(node, "pads like 'same' and averages over the padding "
                                  "(count_include_pad = 1); NetBuilder's 'same' average pooling "
                                  "counts only the real pixels: export with symmetric pads")
        if isinstance(pad, int) and 2 * pad > min(k):
            if type_name == "MaxPool2D" and pads == same:
                pad = "same"  # max pooling never picks padding: the same windows
            else:
                raise self.fail(node, f"pads {pad} px on every side, more than half the "
                                      f"{k[0]}×{k[1]} window, so some windows would hold only "
                                      "padding; NetBuilder's pooling allows at most "
                                      f"{min(k) // 2} px: lower the padding")
        self.vals[node.output[0]] = self.add(
            node, type_name, {"pool_size": k, "stride": stride, "padding": pad}, [x])

    def op_MaxPool(self, node: Any) -> None:
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "returns its indices; NetBuilder does not")
        self._pool(node, "MaxPool2D")

    def op_AveragePool(self, node: Any) -> None:
        self._pool(node, "AvgPool2D")

    def op_GlobalAveragePool(self, node: Any) -> None:
        x = self.materialize(self.value(node), node)
        if len(x.shape) != 3:
            raise self.fail(node, "does not pool a (C, H, W) image")
        y = self.add(node, "GlobalAvgPool2D", {}, [x])
        self.vals[node.output[0]] = Val(y.node, y.shape, view=(y.shape[0], 1, 1))

    def op_BatchNormalization(self, node: Any) -> None:
        a = self.attrs(node)
        if a.get("training_mode", 0) or (len(node.output) > 1 and any(node.output[1:])):
            raise self.fail(node, "is in training mode; export the model for inference")
        x = self.value(node, allow_perm=True)
        if x.perm:
            if len(x.shape) != 2 or x.perm != (0, 2, 1):
                raise self.fail(node, "normalises a transposed tensor NetBuilder cannot express")
        elif len(x.shape) == 2:
            raise self.fail(node, "normalises axis 1 of (C, L) samples; NetBuilder's BatchNorm "
                                  "normalises the last axis of (T, F) samples")
        else:
            x = self.materialize(x, node)
        names = ("weight", "bias", "running_mean", "running_var")
        state = {k: self.need_const(node, i + 1, k).astype(np.float32)
                 for i, k in enumerate(names)}
        params = {"eps": float(a.get("epsilon", 1e-5)),
                  "momentum": float(min(1.0, max(0.0, a.get("momentum", 0.9))))}
        y = self.add(node, "BatchNorm", params, [Val(x.node, x.shape)], state)
        self.vals[node.output[0]] = Val(y.node, y.shape, x.perm)

    # ----- spatial transformer ----------------------------------------------------------------
    def _find_spatial_transformers(self) -> None:
        for idx, node in enumerate(self.g.node):
            if node.op_type == "GridSample":
                theta, size, chain = self._match_affine_grid(node)
                self.stn[idx] = (theta, size)
                self.skip.update(self._index(n) for n in chain)

    def _match_affine_grid(self, gs: Any) -> tuple[str, tuple[int, int], list[Any]]:
        """theta tensor, (H', W') and the helper nodes of the grid ``onnx_export`` builds:
        Add(theta, identity) -> Reshape (N, 2, 3) -> Transpose -> MatMul(base) -> Reshape."""
        a = self.attrs(gs)
        mode = a.get("mode", "bilinear")
        if mode not in ("bilinear", "linear") or a.get("padding_mode", "zeros") != "zeros" \
                or a.get("align_corners", 0):
            raise self.fail(gs, "is not bilinear with zero padding and align_corners = 0, as "
                                "NetBuilder's SpatialTransformer")

        def prod(t: str, op: str) -> Any:
            n = self.producer.get(t)
            if n is None or n.op_type != op:
                raise self.fail(gs, "samples a grid that is not the affine grid of a "
                                    "SpatialTransformer (theta + identity, as NetBuilder exports)")
            return n
        r2 = prod(gs.input[1], "Reshape")
        mm = prod(r2.input[0], "MatMul")
        tr = prod(mm.input[1], "Transpose")
        r1 = prod(tr.input[0], "Reshape")
        add = prod(r1.input[0], "Add")
        ident_i = 1 if add.input[1] in self.consts else 0
        ident = self.consts.get(add.input[ident_i])
        base = self.consts.get(mm.input[0])
        grid_shape = self.consts.get(r2.input[1])
        if ident is None or base is None or grid_shape is None or \
                not np.allclose(ident.reshape(-1), [1, 0, 0, 0, 1, 0]) or \
                list(self.attrs(tr).get("perm", [])) != [0, 2, 1]:
            prod("", "?")
        ho, wo = (int(d) for d in grid_shape.reshape(-1)[1:3])
        if base.shape != (ho * wo, 3) or not np.allclose(base, base_grid(ho, wo), atol=1e-6):
            raise self.fail(gs, "samples a grid whose base is not align_corners = 0")
        return add.input[1 - ident_i], (ho, wo), [add, r1, tr, mm, r2]

    def _spatial_transformer(self, node: Any, theta_name: str, size: tuple[int, int]) -> None:
        x = self.materialize(self.value(node), node)
        theta = self.vals.get(theta_name)
        if not isinstance(theta, Val) or theta.perm:
            raise self.fail(node, f"takes theta '{theta_name}', which no supported node "
                                  "produces")
        theta = self.materialize(theta, node)
        params = {} if size == tuple(x.shape[1:]) else {"out_size": list(size)}
        self.vals[node.output[0]] = self.add(node, "SpatialTransformer", params, [x, theta])

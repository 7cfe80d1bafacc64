"""SpatialTransformer: warp a feature map by an affine transform that the network predicts."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels import spatial as sk
from ..kernels.reference import spatial as rspatial
from ..registry import Layer, ParamSpec, Shape, example, fmt_shape, register

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def base_grid(h: int, w: int) -> np.ndarray:
    """(H·W, 3) rows [x, y, 1] of the output pixel centres in [-1, 1] (align_corners = 0),
    row-major over (y, x), so that the sampling grid is base @ theta^T."""
    xs = (2.0 * np.arange(w) + 1.0) / w - 1.0
    ys = (2.0 * np.arange(h) + 1.0) / h - 1.0
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel(), np.ones(h * w)], axis=1).astype(np.float32)


@register
class SpatialTransformer(Layer):
    """Affine grid generator + bilinear sampler (Jaderberg et al., 2015).

    Port 0 ("image") is the feature map (C, H, W), port 1 ("theta") six numbers from a
    localisation network. The affine matrix is ``theta.reshape(2, 3) + [[1, 0, 0], [0, 1, 0]]``:
    theta is an offset from the identity, so a localisation net whose last Dense starts at
    zero starts as the identity transform. An ONNX or PyTorch export must add the identity
    too. The matrix maps each output pixel's normalised coordinates (x, y) ∈ [-1, 1] to the
    input point it reads, as PyTorch's ``affine_grid`` / ``grid_sample`` with
    align_corners=False, bilinear, zero padding. Output (C, Ho, Wo), ``out_size`` or the
    input's (H, W).
    """

    type_name = "SpatialTransformer"
    category = "Spatial"
    help = ("Warps the image (port 0) by an affine transform predicted on port 1 (6 numbers, "
            "an offset from the identity: zeros = no change).")
    param_specs = (
        ParamSpec("out_size", "size", None, low=1, high=4096, optional=True,
                  help="output (H, W); empty = the input's size", unit="px"),
    )
    min_inputs = 2
    max_inputs = 2
    input_names = ("image", "theta")
    glyph = "ST"
    id_prefix = "stn"
    onnx_ops = ("GridSample",)
    kernels = (sk.affine_sample_forward, sk.affine_sample_backward)
    examples = (example((2, 6, 7), (6,)),
                example((2, 6, 7), (6,), out_size=(4, 5), label="out-size"))

    def sample_inputs(self, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
        """An image and small offsets from the identity (a localisation net's output)."""
        img = rng.standard_normal((batch, *self.in_shapes[0]))
        return [img, 0.2 * rng.standard_normal((batch, 6))]

    def infer_shape(self) -> Shape:
        if len(self.in_shapes) != 2:
            raise self.shape_error("needs two inputs: the image on port 0 and theta (6 numbers) "
                                   "on port 1")
        img, theta = self.in_shapes
        if len(img) != 3:
            raise self.shape_error(f"expects an image (C, H, W) on port 0, got {fmt_shape(img)}: "
                                   "add a Reshape to (C, H, W)")
        if theta != (6,):
            raise self.shape_error(f"expects theta of 6 numbers on port 1, got {fmt_shape(theta)}: "
                                   "end the localisation network with Dense(6)")
        ho, wo = self.p["out_size"] or img[1:]
        return (img[0], ho, wo)

    def macs(self) -> int:
        c, ho, wo = self.out_shape
        return 4 * c * ho * wo

    def _matrix(self, theta: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(theta.reshape(-1, 2, 3) + IDENTITY.astype(theta.dtype))

    def forward(self, xs, params, train):
        img = np.ascontiguousarray(xs[0])
        a = self._matrix(np.asarray(xs[1], dtype=img.dtype))
        self._img, self._a = img, a
        out = np.empty((img.shape[0], *self.out_shape), img.dtype)
        sk.affine_sample_forward(img, a, out)
        return out

    def backward(self, dy, params, grads):
        dimg = np.empty_like(self._img)
        da = np.empty_like(self._a)
        sk.affine_sample_backward(self._img, self._a, np.ascontiguousarray(dy), dimg, da)
        return [dimg, da.reshape(-1, 6)]

    def summary(self) -> str:
        return f"→ {fmt_shape(self.out_shape[1:])}" if self.p["out_size"] else "affine"

    def reference_forward(self, xs, params, train):
        img = np.asarray(xs[0], np.float64)
        a = np.asarray(xs[1], np.float64).reshape(-1, 2, 3) + IDENTITY
        return rspatial.affine_sample(img, a, *self.out_shape[1:])

    # ----- export and import ---------------------------------------------------------------
    def to_onnx(self, b, xs, out, params):
        """theta + identity -> (N, 2, 3) -> grid = base @ theta^T -> GridSample (bilinear,
        zeros, align_corners 0). ONNX has AffineGrid only from opset 20, so the grid is a
        MatMul."""
        nid = self.id
        ho, wo = self.out_shape[1:]
        ident = b.const(f"{nid}/identity", [1, 0, 0, 0, 1, 0])
        t = b.op("Add", [xs[1], ident], f"{nid}/theta")
        t = b.op("Reshape", [t, b.const(f"{nid}/affine_shape", [-1, 2, 3], np.int64)],
                 f"{nid}/affine")
        t = b.op("Transpose", [t], f"{nid}/affine_t", perm=[0, 2, 1])
        g = b.op("MatMul", [b.const(f"{nid}/base_grid", base_grid(ho, wo)), t],
                 f"{nid}/grid_flat")
        g = b.op("Reshape", [g, b.const(f"{nid}/grid_shape", [-1, ho, wo, 2], np.int64)],
                 f"{nid}/grid")
        b.op("GridSample", [xs[0], g], out, mode="bilinear", padding_mode="zeros",
             align_corners=0)

    @classmethod
    def claim_onnx(cls, imp, index, node):
        """Claim the affine grid ``to_onnx`` builds before the GridSample: Add(theta,
        identity) -> Reshape (N, 2, 3) -> Transpose -> MatMul(base) -> Reshape."""
        theta, size, chain = cls._match_affine_grid(imp, node)
        imp.matches[index] = (theta, size)
        imp.skip.update(imp.index_of(n) for n in chain)

    @staticmethod
    def _match_affine_grid(imp: Any, gs: Any) -> tuple[str, tuple[int, int], list[Any]]:
        a = imp.attrs(gs)
        mode = a.get("mode", "bilinear")
        if mode not in ("bilinear", "linear") or a.get("padding_mode", "zeros") != "zeros" \
                or a.get("align_corners", 0):
            raise imp.fail(gs, "is not bilinear with zero padding and align_corners = 0, as "
                               "NetBuilder's SpatialTransformer")

        def prod(t: str, op: str) -> Any:
            n = imp.producer.get(t)
            if n is None or n.op_type != op:
                raise imp.fail(gs, "samples a grid that is not the affine grid of a "
                                   "SpatialTransformer (theta + identity, as NetBuilder exports)")
            return n
        r2 = prod(gs.input[1], "Reshape")
        mm = prod(r2.input[0], "MatMul")
        tr = prod(mm.input[1], "Transpose")
        r1 = prod(tr.input[0], "Reshape")
        add = prod(r1.input[0], "Add")
        ident_i = 1 if add.input[1] in imp.consts else 0
        ident = imp.consts.get(add.input[ident_i])
        base = imp.consts.get(mm.input[0])
        grid_shape = imp.consts.get(r2.input[1])
        if ident is None or base is None or grid_shape is None or \
                not np.allclose(ident.reshape(-1), [1, 0, 0, 0, 1, 0]) or \
                list(imp.attrs(tr).get("perm", [])) != [0, 2, 1]:
            prod("", "?")
        ho, wo = (int(d) for d in grid_shape.reshape(-1)[1:3])
        if base.shape != (ho * wo, 3) or not np.allclose(base, base_grid(ho, wo), atol=1e-6):
            raise imp.fail(gs, "samples a grid whose base is not align_corners = 0")
        return add.input[1 - ident_i], (ho, wo), [add, r1, tr, mm, r2]

    @classmethod
    def from_onnx(cls, imp, index, node):
        theta_name, size = imp.matches[index]
        x = imp.materialize(imp.value(node), node)
        theta = imp.vals.get(theta_name)
        if not isinstance(theta, imp.Val) or theta.perm:
            raise imp.fail(node, f"takes theta '{theta_name}', which no supported node "
                                 "produces")
        theta = imp.materialize(theta, node)
        params = {} if size == tuple(x.shape[1:]) else {"out_size": list(size)}
        imp.vals[node.output[0]] = imp.add(node, "SpatialTransformer", params, [x, theta])

    def to_pytorch(self, ctx, xs, out):
        c, ho, wo = self.out_shape
        x, theta = xs
        return [], [
            "# theta is an offset from the identity transform",
            f"affine = {theta}.reshape(-1, 2, 3) + torch.eye(2, 3, dtype={theta}.dtype, "
            f"device={theta}.device)",
            f"grid = F.affine_grid(affine, [{x}.shape[0], {c}, {ho}, {wo}], align_corners=False)",
            f"{out} = F.grid_sample({x}, grid, mode=\"bilinear\", padding_mode=\"zeros\", "
            "align_corners=False)"]

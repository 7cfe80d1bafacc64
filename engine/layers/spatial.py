"""SpatialTransformer: warp a feature map by an affine transform that the network predicts."""

from __future__ import annotations

import numpy as np

from ..kernels import spatial as sk
from ..registry import Layer, ParamSpec, Shape, fmt_shape, register

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


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

"""Built-in datasets that need no network: generated point sets, curves and images, and the
shipped 8×8 digits. All are seeded: the same parameters give the same arrays.

Name        x shape          y
xor         (2,)             2 classes: XOR of the corner (noisy copies of the truth table)
spirals     (2,)             ``classes`` interleaved spiral arms
moons       (2,)             2 interleaved half circles
circles     (2,)             2 classes: inner disc / outer ring
sine        (1,)             regression: sin(freq·x) + noise, x in [-π, π]
digits      (1, 8, 8)        10 classes, 1,797 real handwritten digits scaled to [0, 1]
shapes      (1, 28, 28)      6 classes of drawn shapes; also ``size``, ``angle``, ``shift``
shapes_distorted (1, 40, 40) the same shapes smaller, anywhere, at any angle (for the STN)
shapes_color (3, 32, 32)     the same shapes in colour on a shaded coloured background
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError, short_repr
from ..resources import datasets_dir
from .dataset import Dataset

MAX_SAMPLES = 1_000_000
MAX_PIXELS = 2**28  # 1 GB of float32 images
MAX_NOISE = 100.0


@dataclass(frozen=True)
class BuiltinDataset:
    """A generator of a named dataset and its parameters' defaults."""

    name: str
    fn: Callable[..., Dataset]
    description: str
    kind: str = ""  # what the samples are: points, curve, image, sequence (as meta["kind"])

    @property
    def defaults(self) -> dict[str, Any]:
        sig = inspect.signature(self.fn)
        return {k: p.default for k, p in sig.parameters.items()}

    def make(self, **params: Any) -> Dataset:
        """Build the dataset; unknown or out-of-range params raise DataError."""
        defaults = self.defaults
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise DataError(f"dataset '{self.name}': unknown setting(s) {', '.join(unknown)} "
                            f"(known: {', '.join(defaults) or 'none'})")
        clean: dict[str, Any] = {}
        for key, value in params.items():
            want = defaults[key]
            if isinstance(want, bool):
                if not isinstance(value, bool):
                    raise DataError(f"dataset '{self.name}': {key} must be true or false")
                clean[key] = value
            elif isinstance(want, int):
                if isinstance(value, bool) or not isinstance(value, int | float) or \
                        (isinstance(value, float) and not value.is_integer()):
                    raise DataError(f"dataset '{self.name}': {key} must be a whole number, "
                                    f"got {short_repr(value)}")
                clean[key] = int(value)
            elif isinstance(want, float):
                if isinstance(value, bool) or not isinstance(value, int | float) or \
                        not math.isfinite(value if isinstance(value, float) else
                                          (0.0 if abs(value) < 2**1023 else math.inf)):
                    raise DataError(f"dataset '{self.name}': {key} must be a number, "
                                    f"got {short_repr(value)}")
                clean[key] = float(value)
            else:
                clean[key] = value
        n = clean.get("n", defaults.get("n"))
        if isinstance(n, int) and not 1 <= n <= MAX_SAMPLES:
            raise DataError(f"dataset '{self.name}': n must be between 1 and {MAX_SAMPLES:,}, "
                            f"got {n}")
        if clean.get("seed", 0) < 0:
            raise DataError(f"dataset '{self.name}': seed must be ≥ 0, got {clean['seed']}")
        noise = clean.get("noise", defaults.get("noise"))
        if isinstance(noise, float) and not 0 <= noise <= MAX_NOISE:
            raise DataError(f"dataset '{self.name}': noise must be between 0 and {MAX_NOISE:g}, "
                            f"got {noise:g}")
        return self.fn(**clean)


BUILTINS: dict[str, BuiltinDataset] = {}


def register_dataset(name: str, description: str, kind: str = ""
                     ) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator adding a generator ``fn(**params) -> Dataset`` as a built-in dataset;
    ``kind`` is the ``meta["kind"]`` of what it makes."""
    def deco(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        if name in BUILTINS and BUILTINS[name].fn is not fn:
            raise TypeError(f"dataset {name!r} registered twice")
        BUILTINS[name] = BuiltinDataset(name, fn, description, kind)
        return fn
    return deco


def builtin_names() -> list[str]:
    return list(BUILTINS)


def _shuffled(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    order = rng.permutation(len(arrays["x"]))
    return {k: np.ascontiguousarray(v[order]) for k, v in arrays.items()}


def _per_class(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _points(name: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
            class_names: list[str], **meta: Any) -> Dataset:
    arrays = _shuffled({"x": x.astype(np.float32), "y": y.astype(np.int64)}, rng)
    return Dataset(arrays, name, class_names, "classification", {"kind": "points", **meta})


@register_dataset("xor", "2-D points around the corners of XOR's truth table (2 classes)", kind="points")
def xor(n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Corners (a, b) in {0, 1}² labelled a XOR b, plus Gaussian noise (std ``noise``).
    ``n = 4, noise = 0`` is the truth table itself."""
    rng = np.random.default_rng(seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
    idx = np.arange(n) % 4
    x = corners[idx] + noise * rng.standard_normal((n, 2))
    y = (corners[idx, 0] != corners[idx, 1]).astype(np.int64)
    return _points("xor", x, y, rng, ["same", "different"], noise=noise)


@register_dataset("spirals", "2-D points on interleaved spiral arms (2 classes by default)", kind="points")
def spirals(n: int = 600, noise: float = 0.05, classes: int = 2, turns: float = 1.25,
            seed: int = 0) -> Dataset:
    """``classes`` arms of ``turns`` turns each, radius 0..1, noise std ``noise``."""
    if not 2 <= classes <= 10:
        raise DataError(f"dataset 'spirals': classes must be between 2 and 10, got {classes}")
    if not 0 < turns <= 10:
        raise DataError(f"dataset 'spirals': turns must be in (0, 10], got {turns:g}")
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k, m in enumerate(_per_class(n, classes)):
        t = np.sqrt(rng.uniform(0.0, 1.0, m))
        a = t * turns * 2 * math.pi + k * 2 * math.pi / classes
        xs.append(np.stack([t * np.cos(a), t * np.sin(a)], 1) + noise * rng.standard_normal((m, 2)))
        ys.append(np.full(m, k))
    return _points("spirals", np.concatenate(xs), np.concatenate(ys), rng,
                   [f"arm {k}" for k in range(classes)], noise=noise)


@register_dataset("moons", "2-D points on two interleaved half circles (2 classes)", kind="points")
def moons(n: int = 400, noise: float = 0.1, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    m0, m1 = _per_class(n, 2)
    t0, t1 = rng.uniform(0, math.pi, m0), rng.uniform(0, math.pi, m1)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    x = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(m0), np.ones(m1)])
    return _points("moons", x, y, rng, ["upper", "lower"], noise=noise)


@register_dataset("circles", "2-D points: a disc inside a ring (2 classes)", kind="points")
def circles(n: int = 400, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Dataset:
    """Outer circle radius 1 (class 0), inner circle radius ``factor`` (class 1)."""
    if not 0 < factor < 1:
        raise DataError(f"dataset 'circles': factor must be between 0 and 1, got {factor:g}")
    rng = np.random.default_rng(seed)
    m0, m1 = _per_class(n, 2)
    t0, t1 = rng.uniform(0, 2 * math.pi, m0), rng.uniform(0, 2 * math.pi, m1)
    outer = np.stack([np.cos(t0), np.sin(t0)], 1)
    inner = factor * np.stack([np.cos(t1), np.sin(t1)], 1)
    x = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(m0), np.ones(m1)])
    return _points("circles", x, y, rng, ["outer", "inner"], noise=noise)


@register_dataset("sine", "1-D regression: y = sin(freq·x) + noise for x in [-π, π]", kind="curve")
def sine(n: int = 400, noise: float = 0.05, freq: float = 1.0, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-math.pi, math.pi, (n, 1))
    y = np.sin(freq * x) + noise * rng.standard_normal((n, 1))
    return Dataset({"x": x.astype(np.float32), "y": y.astype(np.float32)}, "sine",
                   task="regression", meta={"kind": "curve", "noise": noise})


@register_dataset("digits", "1,797 real handwritten digits, 1×8×8, scaled to [0, 1] (10 classes)",
                  kind="image")
def digits() -> Dataset:
    """The shipped UCI digits (resources/datasets/digits.npz; see its README)."""
    path = datasets_dir() / "digits.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["x"], f["y"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"the shipped digits dataset cannot be read ({path}): {exc}") from None
    x = (x.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return Dataset({"x": x, "y": y.astype(np.int64)}, "digits", [str(d) for d in range(10)],
                   "classification", {"kind": "image", "source": "UCI optdigits (CC BY 4.0)"})


SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "star", "ring")


def _shape_distance(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (negative inside) to shape ``kind`` in its own frame, where
    each shape fits inside the unit circle."""
    r = np.hypot(u, v)
    if kind == 0:
        return r - 0.8
    if kind == 1:
        return np.maximum(np.abs(u), np.abs(v)) - 0.68
    if kind == 2:
        d = None
        for k in range(3):
            a = math.pi / 2 + k * 2 * math.pi / 3
            e = u * math.cos(a) + v * math.sin(a)
            d = e if d is None else np.maximum(d, e)
        return d - 0.47
    if kind == 3:
        arm_w, arm_l = 0.26, 0.88
        au, av = np.abs(u), np.abs(v)
        return np.minimum(np.maximum(au - arm_l, av - arm_w), np.maximum(au - arm_w, av - arm_l))
    if kind == 4:
        outer, inner, pts = 0.95, 0.42, 5
        seg = math.pi / pts
        phi = np.mod(np.arctan2(v, u) - math.pi / 2, 2 * seg)
        local = seg - np.abs(phi - seg)
        ax, ay = outer, 0.0
        bx, by = inner * math.cos(seg), inner * math.sin(seg)
        cross_ = bx * ay - by * ax
        rho = cross_ / (np.sin(local) * (bx - ax) - np.cos(local) * (by - ay))
        return (r - np.abs(rho)) * 0.6
    if kind == 5:
        return np.abs(r - 0.66) - 0.22
    raise AssertionError(kind)


@register_dataset("shapes", "generated 1×28×28 images of 6 shapes under random shift, "
                            "rotation and scale", kind="image")
def shapes(n: int = 6000, noise: float = 0.05, size: int = 28, rotation: float = 180.0,
           min_scale: float = 0.45, max_scale: float = 0.85, seed: int = 0) -> Dataset:
    """Filled, anti-aliased circles, squares, triangles, crosses, stars and rings.

    Per sample: scale ``size`` field (shape radius / half the image, ``min_scale`` ..
    ``max_scale``; the shape moves anywhere it still fits), rotation
    ``angle`` field (degrees / 180, within ±``rotation``), ``shift`` (dx, dy as fractions of
    half the image), brightness 0.7..1, then Gaussian pixel noise (std ``noise``), clipped to
    [0, 1]. x is (N, 1, size, size) float32; ``size`` and ``angle`` are (N, 1) float32."""
    if not 8 <= size <= 256:
        raise DataError(f"dataset 'shapes': size must be between 8 and 256, got {size}")
    if not 0 <= rotation <= 180:
        raise DataError(f"dataset 'shapes': rotation must be between 0 and 180, got {rotation:g}")
    if n * size * size > MAX_PIXELS:
        raise DataError(f"dataset 'shapes': {n:,} images of {size}×{size} is more than "
                        f"{MAX_PIXELS:,} pixels; lower n or size")
    if not 0.1 <= min_scale <= max_scale <= 0.95:
        raise DataError(f"dataset 'shapes': need 0.1 ≤ min_scale ≤ max_scale ≤ 0.95, got "
                        f"{min_scale:g} and {max_scale:g}")
    rng = np.random.default_rng(seed)
    k = len(SHAPE_CLASSES)
    y = np.arange(n) % k
    rng.shuffle(y)
    scale = rng.uniform(min_scale, max_scale, n)
    angle = rng.uniform(-rotation, rotation, n) if rotation else np.zeros(n)
    room = np.maximum(0.0, 0.95 - scale)
    shift = rng.uniform(-1.0, 1.0, (n, 2)) * room[:, None]
    bright = rng.uniform(0.7, 1.0, n)
    half = size / 2.0
    c = (np.arange(size) + 0.5 - half) / half
    gy, gx = np.meshgrid(c, c, indexing="ij")
    x = np.empty((n, 1, size, size), np.float32)
    chunk = 1024
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        th = np.deg2rad(angle[sl])[:, None, None]
        s = scale[sl][:, None, None]
        px = gx[None] - shift[sl, 0][:, None, None]
        py = gy[None] - shift[sl, 1][:, None, None]
        cos_, sin_ = np.cos(th), np.sin(th)
        u = (cos_ * px + sin_ * py) / s
        v = (-sin_ * px + cos_ * py) / s
        img = np.empty(u.shape)
        ys = y[sl]
        for kind in range(k):
            m = ys == kind
            if m.any():
                d = _shape_distance(kind, u[m], -v[m]) * (s[m] * half)
                img[m] = np.clip(0.5 - d, 0.0, 1.0)
        x[sl, 0] = img * bright[sl][:, None, None]
    if noise:
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
        np.clip(x, 0.0, 1.0, out=x)
    arrays = {
        "x": x, "y": y.astype(np.int64),
        "size": scale.astype(np.float32)[:, None],
        "angle": (angle / 180.0).astype(np.float32)[:, None],
        "shift": shift.astype(np.float32),
    }
    return Dataset(arrays, "shapes", list(SHAPE_CLASSES), "classification",
                   {"kind": "image", "noise": noise})


@register_dataset("shapes_distorted", "the 6 shapes small and anywhere on a 1×40×40 image, at "
                                      "any angle: for spatial transformers", kind="image")
def shapes_distorted(n: int = 6000, noise: float = 0.05, size: int = 40, rotation: float = 180.0,
                     min_scale: float = 0.22, max_scale: float = 0.5, seed: int = 0) -> Dataset:
    """``shapes`` under strong distortion: radius 0.22 .. 0.5 of half the image (defaults),
    shifted anywhere the shape fits, rotated by up to ±``rotation`` degrees; same fields."""
    ds = shapes(n, noise, size, rotation, min_scale, max_scale, seed)
    ds.name = "shapes_distorted"
    return ds


@register_dataset("shapes_color", "the 6 shapes in colour on a coloured, shaded 3×32×32 "
                                  "background (CIFAR-sized)", kind="image")
def shapes_color(n: int = 3000, noise: float = 0.05, size: int = 32, rotation: float = 180.0,
                 min_scale: float = 0.4, max_scale: float = 0.85, seed: int = 0) -> Dataset:
    """``shapes`` drawn in colour: per sample a random background colour with a linear shade
    of random direction (±0.15), the shape in a random colour at least 0.35 from it
    (Euclidean, RGB in [0, 1]), then Gaussian pixel noise (std ``noise``), clipped to
    [0, 1]. Colour carries no class information. x is (N, 3, size, size) float32; the
    ``size``, ``angle`` and ``shift`` fields as ``shapes``."""
    base = shapes(n, 0.0, size, rotation, min_scale, max_scale, seed)
    mask = base.arrays["x"][:, 0].astype(np.float64)
    peak = mask.reshape(n, -1).max(axis=1)
    mask /= np.maximum(peak, 1e-6)[:, None, None]
    rng = np.random.default_rng([seed, 3])
    bg = rng.uniform(0.0, 1.0, (n, 3))
    fg = rng.uniform(0.0, 1.0, (n, 3))
    for _ in range(64):  # redraw foregrounds too close to their background
        close = np.linalg.norm(fg - bg, axis=1) < 0.35
        if not close.any():
            break
        fg[close] = rng.uniform(0.0, 1.0, (int(close.sum()), 3))
    theta = rng.uniform(0.0, 2 * math.pi, n)
    c = (np.arange(size) + 0.5) / size - 0.5
    gy, gx = np.meshgrid(c, c, indexing="ij")
    x = np.empty((n, 3, size, size), np.float32)
    chunk = 1024
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        shade = 0.3 * (np.cos(theta[sl])[:, None, None] * gx
                       + np.sin(theta[sl])[:, None, None] * gy)
        m = mask[sl][:, None]
        back = bg[sl][:, :, None, None] + shade[:, None]
        x[sl] = m * fg[sl][:, :, None, None] + (1.0 - m) * back
    if noise:
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    np.clip(x, 0.0, 1.0, out=x)
    arrays = {**base.arrays, "x": x}
    return Dataset(arrays, "shapes_color", list(SHAPE_CLASSES), "classification",
                   {"kind": "image", "noise": noise})

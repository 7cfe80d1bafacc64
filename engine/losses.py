"""Losses as means (PyTorch defaults) with their gradients, and per-output metrics.

cross_entropy: logits (N, K) or (N, T, K) with integer labels (N,) / (N, T); mean over samples.
pixel_cross_entropy: logits (N, C, H, W) (classes on the channel axis, as PyTorch's
    ``F.cross_entropy`` on 4-D input) with integer labels (N, H, W); mean over pixels. Its
    metrics: pixel ``accuracy`` and ``iou``, the mean over classes of intersection / union
    (classes absent from both prediction and labels left out).
bce: logits with 0/1 targets of the same shape (sigmoid fused in); mean over elements.
mse: predictions and targets of the same shape; mean over all elements.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError
from .kernels import losses as lk

LOSSES = ("cross_entropy", "mse", "bce", "pixel_cross_entropy")


def _labels(y: np.ndarray, n_classes: int, lead_shape: tuple[int, ...], where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != lead_shape:
        if y.ndim == len(lead_shape) + 1 and y.shape[:-1] == lead_shape and y.shape[-1] == n_classes:
            return np.ascontiguousarray(np.argmax(y, axis=-1).astype(np.int64))
        raise DataError(f"{where}: cross-entropy needs integer labels shaped {lead_shape}, "
                        f"got {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{where}: cross-entropy labels must be whole numbers")
    elif y.dtype.kind not in "iub":
        raise DataError(f"{where}: cross-entropy labels must be integers, got {y.dtype}")
    lab = np.ascontiguousarray(y.astype(np.int64))
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise DataError(f"{where}: labels must be in 0..{n_classes - 1}, "
                        f"found {int(lab.min())}..{int(lab.max())}")
    return lab


def iou_counts(pred_labels: np.ndarray, labels: np.ndarray, n_classes: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per class k: (pixels where both say k, pixels where either says k), each (K,) int64,
    from predicted and true labels of the same shape."""
    p = np.asarray(pred_labels, np.int64).reshape(-1)
    t = np.asarray(labels, np.int64).reshape(-1)
    both = np.bincount(t[p == t], minlength=n_classes)[:n_classes]
    union = (np.bincount(p, minlength=n_classes)[:n_classes]
             + np.bincount(t, minlength=n_classes)[:n_classes] - both)
    return both.astype(np.int64), union.astype(np.int64)


def mean_iou(inter: np.ndarray, union: np.ndarray) -> float:
    """Mean of inter / union over the classes whose union is not empty (0 if none is)."""
    inter, union = np.asarray(inter, np.float64), np.asarray(union, np.float64)
    live = union > 0
    return float(np.mean(inter[live] / union[live])) if live.any() else 0.0


def _pixel_cross_entropy(pred: np.ndarray, target: np.ndarray, where: str
                         ) -> tuple[float, np.ndarray, dict[str, float]]:
    if pred.ndim < 3:
        raise DataError(f"{where}: pixel cross-entropy needs class scores shaped (C, H, W) "
                        f"per sample, got {pred.shape[1:]}")
    k = pred.shape[1]
    lead = (pred.shape[0], *pred.shape[2:])
    if np.shape(target) != lead:
        raise DataError(f"{where}: pixel cross-entropy needs a label per pixel shaped "
                        f"{lead}, got {np.shape(target)}")
    lab = _labels(target, k, lead, where)
    last = np.moveaxis(pred, 1, -1)  # (N, H, W, C)
    logits2 = np.ascontiguousarray(last.reshape(-1, k))
    grad2 = np.empty_like(logits2)
    m = logits2.shape[0]
    total, hits = lk.softmax_xent(logits2, lab.reshape(-1), grad2, 1.0 / max(1, m))
    grad = np.ascontiguousarray(np.moveaxis(grad2.reshape(last.shape), -1, 1))
    inter, union = iou_counts(np.argmax(last, axis=-1), lab, k)
    return float(total) / max(1, m), grad, \
        {"accuracy": float(hits) / m if m else 0.0, "iou": mean_iou(inter, union)}


def compute_loss(kind: str, pred: np.ndarray, target: np.ndarray,
                 where: str = "Output") -> tuple[float, np.ndarray, dict[str, float]]:
    """(mean loss, d loss / d pred, metrics). ``metrics`` has ``accuracy`` for classification
    (and ``iou`` for segmentation)."""
    if kind == "pixel_cross_entropy":
        return _pixel_cross_entropy(pred, target, where)
    if kind == "cross_entropy":
        k = pred.shape[-1]
        lead = pred.shape[:-1]
        lab = _labels(target, k, lead, where)
        logits2 = np.ascontiguousarray(pred.reshape(-1, k))
        lab1 = lab.reshape(-1)
        grad = np.empty_like(logits2)
        n = logits2.shape[0]
        total, hits = lk.softmax_xent(logits2, lab1, grad, 1.0 / max(1, n))
        return float(total) / max(1, n), grad.reshape(pred.shape), \
            {"accuracy": float(hits) / n if n else 0.0}
    target = np.asarray(target)
    if target.shape != pred.shape:
        if target.size == pred.size:
            target = target.reshape(pred.shape)
        else:
            raise DataError(f"{where}: {kind} needs targets shaped like the output "
                            f"{pred.shape}, got {target.shape}")
    if target.dtype.kind not in "fiub":
        raise DataError(f"{where}: targets must be numbers, got {target.dtype}")
    target = np.ascontiguousarray(target, dtype=pred.dtype)
    if kind == "mse":
        diff = pred - target
        n = max(1, diff.size)
        return float(np.vdot(diff, diff)) / n, (2.0 / n) * diff, {}
    if kind == "bce":
        p2 = np.ascontiguousarray(pred.reshape(-1))
        grad = np.empty_like(p2)
        n = max(1, p2.size)
        total, hits = lk.sigmoid_bce(p2, np.ascontiguousarray(target.reshape(-1)), grad,
                                     1.0 / n)
        acc = float(hits) / p2.size if p2.size else 0.0
        return float(total) / n, grad.reshape(pred.shape), {"accuracy": acc}
    raise ValueError(f"unknown loss {kind!r}")

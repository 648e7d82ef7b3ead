"""How much two objects overlap: intersection over union of their boxes, or of their masks
when both are known (an instance model's masks follow a triangle's outline, where two
boxes of crossing objects overlap far more than the objects do).

numpy, not torch: tracking works on a handful of objects per frame, where a tensor's
overhead is larger than the arithmetic."""
from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (n x 4, x1 y1 x2 y2) with every box in `b` (m x 4): n x m."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area = lambda boxes: np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)  # noqa
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every mask in `a` (n x H x W, bool) with every mask in `b` (m x H x W): n x m."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    a = np.asarray(a, dtype=bool).reshape(len(a), -1).astype(np.float32)
    b = np.asarray(b, dtype=bool).reshape(len(b), -1).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def overlaps(a: dict, b: dict) -> np.ndarray:
    """Mask IoU where both sides have masks, else box IoU; `a` and `b` are
    {"boxes": n x 4, "masks": n x H x W or None}."""
    if a.get("masks") is not None and b.get("masks") is not None:
        return mask_iou(a["masks"], b["masks"])
    return box_iou(a["boxes"], b["boxes"])

"""The two metric-learning objectives of --task embed (tasks/embed.py).

ArcFace (Deng, Guo, Xue & Zafeiriou 2019): the logit of an embedding's own class becomes
s * cos(theta + m), where theta is the angle between the (normalised) embedding and the
(normalised) class weight; the other classes keep s * cos(theta). Cross-entropy on those
logits pulls each class into a narrower cone than plain softmax would.

Triplet loss with batch-hard mining (Schroff, Kalenichenko & Philbin 2015, FaceNet; the
batch-hard variant of Hermans, Beyer & Leibe 2017): for each anchor in the batch, its
farthest positive (same class) and its nearest negative (another class), and the hinge
max(0, d(a, p) - d(a, n) + margin) on Euclidean distances of the normalised embeddings.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ARCFACE_MARGIN, ARCFACE_SCALE = 0.5, 30.0  # the paper's m and s
TRIPLET_MARGIN = 0.2                       # FaceNet's alpha


def arcface_logits(cosines: torch.Tensor, labels: torch.Tensor, margin: float = ARCFACE_MARGIN,
                   scale: float = ARCFACE_SCALE) -> torch.Tensor:
    """s * cos(theta + m) for each row's own class, s * cos(theta) elsewhere. Where theta + m
    would pass pi (the cosine would rise again), the target logit is cos(theta) - m sin(m)
    instead, as in the authors' code, so that it keeps falling with theta."""
    cosines = cosines.float().clamp(-1.0, 1.0)
    target = cosines.gather(1, labels[:, None])
    sine = (1.0 - target.square()).clamp_min(0.0).sqrt()
    shifted = target * math.cos(margin) - sine * math.sin(margin)  # cos(theta + m)
    shifted = torch.where(target > math.cos(math.pi - margin), shifted,
                          target - margin * math.sin(margin))
    return scale * cosines.scatter(1, labels[:, None], shifted)


def arcface_loss(cosines: torch.Tensor, labels: torch.Tensor, margin: float = ARCFACE_MARGIN,
                 scale: float = ARCFACE_SCALE) -> torch.Tensor:
    return F.cross_entropy(arcface_logits(cosines, labels, margin, scale), labels)


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between every two rows (N x N)."""
    squared = (embeddings[:, None, :] - embeddings[None, :, :]).square().sum(-1)
    return squared.clamp_min(1e-12).sqrt()


def batch_hard(embeddings: torch.Tensor, labels: torch.Tensor):
    """(hardest positive distance, hardest negative distance, their indices, which anchors have
    both): each anchor's farthest same-class and nearest other-class embedding."""
    distances = pairwise_distances(embeddings.float())
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positives, negatives = same & ~eye, ~same
    hardest_positive, positive_index = distances.masked_fill(~positives, -1.0).max(dim=1)
    hardest_negative, negative_index = distances.masked_fill(~negatives, math.inf).min(dim=1)
    valid = positives.any(dim=1) & negatives.any(dim=1)
    return hardest_positive, hardest_negative, positive_index, negative_index, valid


def triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                 margin: float = TRIPLET_MARGIN) -> torch.Tensor:
    """Mean batch-hard triplet hinge over the anchors that have a positive and a negative."""
    positive, negative, _, _, valid = batch_hard(embeddings, labels)
    hinge = F.relu(positive - negative + margin)
    return (hinge * valid).sum() / valid.sum().clamp_min(1)


LOSSES = ("arcface", "triplet")

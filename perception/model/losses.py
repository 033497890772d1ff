"""Training losses: CenterNet focal loss, masked L1 regression, segmentation BCE + Dice.

Shapes follow perception.model.heads and perception.model.targets, batched: heatmap targets
(B, K, H, W), index (B, M) int64, regression targets and weights (B, M, 10), segmentation
targets (B, 2, ny, nx) float 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F  # noqa: N812 - the universal torch spelling


@dataclass(frozen=True)
class LossWeights:
    heatmap: float = 1.0
    regression: float = 0.25
    segmentation: float = 1.0
    #: per regression channel (dx, dy, z, log l, log w, log h, sin, cos, vx, vy)
    channels: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalized by the number of peaks (>= 1)."""
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1.0).float()
    pos_loss = -torch.log(prob) * (1 - prob) ** alpha * positive
    neg_loss = -torch.log(1 - prob) * prob**alpha * (1 - target) ** beta * (1 - positive)
    return (pos_loss.sum() + neg_loss.sum()) / positive.sum().clamp(min=1.0)


def regression_loss(
    prediction: torch.Tensor, index: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, channels: torch.Tensor
) -> torch.Tensor:
    """L1 between the predicted map (B, 10, H, W) sampled at ``index`` and the targets."""
    batch, count = prediction.shape[:2]
    flat = prediction.reshape(batch, count, -1)
    gathered = torch.gather(flat, 2, index.unsqueeze(1).expand(batch, count, index.shape[1])).transpose(1, 2)
    per_value = F.l1_loss(gathered, target, reduction="none") * weight * channels
    return per_value.sum() / weight[..., 0].sum().clamp(min=1.0)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice per channel (Dice keeps thin occupancy blobs from being ignored)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    dims = (0, 2, 3)
    dice = 1 - (2 * (prob * target).sum(dims) + 1) / (prob.sum(dims) + target.sum(dims) + 1)
    return bce + dice.mean()


def total_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    targets: dict[str, torch.Tensor],
    weights: LossWeights = LossWeights(),
) -> dict[str, torch.Tensor]:
    """Loss terms and their weighted sum ("total") for a batch."""
    heatmap, regression, segmentation = outputs
    channels = torch.tensor(weights.channels, dtype=regression.dtype, device=regression.device)
    terms = {
        "heatmap": focal_loss(heatmap, targets["heatmap"]),
        "regression": regression_loss(regression, targets["index"], targets["regression"], targets["weight"], channels),
        "segmentation": segmentation_loss(segmentation, targets["segmentation"]),
    }
    terms["total"] = (
        weights.heatmap * terms["heatmap"]
        + weights.regression * terms["regression"]
        + weights.segmentation * terms["segmentation"]
    )
    return terms

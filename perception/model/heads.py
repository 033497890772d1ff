"""Output heads: CenterPoint-style detection and BEV segmentation.

Detection (on the output grid, H x W):
    heatmap (B, num_classes, H, W) logits; sigmoid = probability of an object centre in a cell.
    regression (B, 10, H, W), channels :data:`REGRESSION_CHANNELS`: centre offset inside the
    cell (dx, dy in cells, 0..1 from the cell's lower corner), z (m, base_link), log of
    (length, width, height) in m, sin(yaw), cos(yaw), velocity (vx, vy) m/s in base_link.
Segmentation (B, 2, ny, nx) logits on the input grid, channels :data:`SEGMENTATION_CHANNELS`.
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the universal torch spelling

from perception.model.layers import conv_bn_relu

REGRESSION_CHANNELS: Final[tuple[str, ...]] = (
    "dx",
    "dy",
    "z",
    "log_length",
    "log_width",
    "log_height",
    "sin_yaw",
    "cos_yaw",
    "vx",
    "vy",
)
SEGMENTATION_CHANNELS: Final[tuple[str, ...]] = ("drivable", "occupancy")
#: Initial heatmap bias: sigmoid(bias) = 0.01, the CenterNet prior for a rare positive cell.
_HEATMAP_PRIOR: Final = -math.log((1 - 0.01) / 0.01)


class DetectionHead(nn.Module):
    def __init__(self, channels: int, num_classes: int, hidden: int = 48) -> None:
        super().__init__()
        self.heatmap = nn.Sequential(conv_bn_relu(channels, hidden, 3), nn.Conv2d(hidden, num_classes, 1))
        self.regression = nn.Sequential(
            conv_bn_relu(channels, hidden, 1), nn.Conv2d(hidden, len(REGRESSION_CHANNELS), 1)
        )
        final = self.heatmap[-1]
        assert isinstance(final, nn.Conv2d)
        assert final.bias is not None
        nn.init.constant_(final.bias, _HEATMAP_PRIOR)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heatmap(x), self.regression(x)


class SegmentationHead(nn.Module):
    """(B, C, H, W) -> (B, 2, H * scale, W * scale) logits (bilinear up-sampling)."""

    def __init__(self, channels: int, scale: int, hidden: int = 32) -> None:
        super().__init__()
        self.scale = scale
        self.layers = nn.Sequential(conv_bn_relu(channels, hidden, 3), nn.Conv2d(hidden, len(SEGMENTATION_CHANNELS), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.layers(x)
        if self.scale == 1:
            return logits
        return F.interpolate(logits, scale_factor=float(self.scale), mode="bilinear", align_corners=False)

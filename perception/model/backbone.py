"""BEV backbone: a two-level encoder-decoder on the output grid (U-Net style, additive-free).

forward: (B, C, H, W) -> (B, C, H, W) with H, W divisible by 4. Level 1 at H/2 and level 2 at
H/4 widen the receptive field to about 20 m at 0.8 m cells (a bus, an intersection) at a
fraction of the cost of convolutions at full resolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the universal torch spelling

from perception.model.layers import conv_bn_relu


class BevBackbone(nn.Module):
    def __init__(self, channels: int, widths: tuple[int, int]) -> None:
        super().__init__()
        low, lower = widths
        self.down1 = nn.Sequential(conv_bn_relu(channels, low, 3, 2), conv_bn_relu(low, low, 3))
        self.down2 = nn.Sequential(conv_bn_relu(low, lower, 3, 2), conv_bn_relu(lower, lower, 3))
        self.up2 = conv_bn_relu(low + lower, low, 1)
        self.up1 = conv_bn_relu(channels + low, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level1 = self.down1(x)
        level2 = self.down2(level1)
        merged = self.up2(torch.cat([level1, F.interpolate(level2, scale_factor=2.0, mode="nearest")], dim=1))
        out: torch.Tensor = self.up1(torch.cat([x, F.interpolate(merged, scale_factor=2.0, mode="nearest")], dim=1))
        return out

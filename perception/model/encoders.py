"""Per-modality encoders: BEV rasters -> BEV features, camera images -> feature maps.

All BEV encoders map (B, C_in, ny, nx) on the input grid to (B, bev_channels, ny/s, nx/s)
on the output grid (s = ``bev_stride``). Lidar gets the widest encoder (dense, informative);
radar and ultrasonic are sparse and get a narrow stem widened by a 1x1 conv.
"""

from __future__ import annotations

import torch
from torch import nn

from perception.model.layers import conv_bn_relu


class BevEncoder(nn.Sequential):
    """(B, in_channels, ny, nx) -> (B, out_channels, ny / stride, nx / stride)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, stride: int, *, deep: bool) -> None:
        layers = [conv_bn_relu(in_channels, hidden, 3, stride)]
        layers.append(conv_bn_relu(hidden, out_channels, 3 if deep else 1))
        super().__init__(*layers)


class ImageEncoder(nn.Module):
    """Camera images -> feature maps.

    forward: images (B, Ncam, 3, H, W) float32 RGB in [0, 1] -> (B, Ncam, C, H / stride,
    W / stride). Cameras share weights; the batch and camera axes are folded together.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        widths = (16, 32, out_channels) if stride == 4 else (16, 32, 48, out_channels)
        layers: list[nn.Module] = []
        in_channels = 3
        for width in widths[:-1]:
            layers.append(conv_bn_relu(in_channels, width, 3, 2))
            in_channels = width
        layers += [conv_bn_relu(in_channels, widths[-1], 3), conv_bn_relu(widths[-1], widths[-1], 3)]
        self.layers = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch, cameras, _, height, width = images.shape
        x = (images.reshape(batch * cameras, 3, height, width) - self.mean) / self.std
        features: torch.Tensor = self.layers(x)
        return features.reshape(batch, cameras, features.shape[1], features.shape[2], features.shape[3])

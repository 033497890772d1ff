"""Fusion modules, chosen by name: per-modality BEV features + presence mask -> fused BEV.

Every fuser takes ``features`` (B, M, C, H, W), one slice per modality in
:data:`perception.model.config.MODALITIES` order, and ``present`` (B, M) float 0/1, and
returns (B, out_channels, H, W). An absent modality is masked explicitly: its features are
never read, and the fuser knows it is absent (a learned "missing" embedding for the conv
fuser, a -inf attention logit for the attention fuser), so a dropped sensor is not silently
fed as zeros that look like "nothing there".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import torch
from torch import nn

from perception.model.layers import conv_bn_relu

#: Logit given to an absent modality (exp() underflows to 0; finite for ONNX / fp16 safety).
_ABSENT_LOGIT: Final = -1.0e4


class ConvFuser(nn.Module):
    """BEVFusion-style: concatenate the (masked) modality features and mix them with a conv."""

    def __init__(self, modalities: int, channels: int, out_channels: int) -> None:
        super().__init__()
        self.missing = nn.Parameter(torch.zeros(1, modalities, channels, 1, 1))
        self.mix = nn.Sequential(
            conv_bn_relu(modalities * channels, out_channels, 1), conv_bn_relu(out_channels, out_channels, 3)
        )

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        batch, modalities, channels, height, width = features.shape
        mask = present.reshape(batch, modalities, 1, 1, 1)
        x = features * mask + self.missing * (1.0 - mask)
        fused: torch.Tensor = self.mix(x.reshape(batch, modalities * channels, height, width))
        return fused


class AttentionFuser(nn.Module):
    """Per BEV cell, multi-head attention across the modality features.

    The query comes from the mean of the present modalities' features; keys and values are
    1x1 projections of each modality; absent modalities get a -inf logit. A cell where every
    modality is absent gets zeros before the output projection.
    """

    def __init__(self, modalities: int, channels: int, out_channels: int, heads: int = 4) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"AttentionFuser: channels {channels} must divide by heads {heads}")
        self.heads = heads
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.embedding = nn.Parameter(torch.zeros(1, modalities, channels, 1, 1))
        self.out = nn.Sequential(conv_bn_relu(channels, out_channels, 1), conv_bn_relu(out_channels, out_channels, 3))

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        batch, modalities, channels, height, width = features.shape
        mask = present.reshape(batch, modalities, 1, 1, 1)
        tokens = (features + self.embedding) * mask
        mean = tokens.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        flat = tokens.reshape(batch * modalities, channels, height, width)
        head_dim = channels // self.heads
        shape = (batch, modalities, self.heads, head_dim, height, width)
        keys = self.key(flat).reshape(shape)
        values = self.value(flat).reshape(shape)
        query = self.query(mean).reshape(batch, 1, self.heads, head_dim, height, width)
        logits = (query * keys).sum(dim=3, keepdim=True) / float(head_dim) ** 0.5  # (B, M, heads, 1, H, W)
        logits = logits + (1.0 - present.reshape(batch, modalities, 1, 1, 1, 1)) * _ABSENT_LOGIT
        weights = torch.softmax(logits, dim=1) * present.reshape(batch, modalities, 1, 1, 1, 1)
        attended = (weights * values).sum(dim=1).reshape(batch, channels, height, width)
        fused: torch.Tensor = self.out(attended)
        return fused


#: Fuser name -> constructor(modalities, channels, out_channels).
FUSERS: Final[dict[str, Callable[[int, int, int], nn.Module]]] = {
    "conv": ConvFuser,
    "attention": AttentionFuser,
}


def make_fuser(name: str, modalities: int, channels: int, out_channels: int) -> nn.Module:
    """The fuser registered as ``name``; an unknown name lists the known ones."""
    if name not in FUSERS:
        raise ValueError(f"unknown fuser {name!r}; known: {sorted(FUSERS)}")
    return FUSERS[name](modalities, channels, out_channels)

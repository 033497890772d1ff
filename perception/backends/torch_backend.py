"""Eager PyTorch backend: a checkpoint (``fusion train``) or a bundle's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from perception.backends.base import Outputs
from perception.model.inputs import Arrays
from perception.model.network import INPUT_NAMES
from perception.training.trainer import load_trained


class TorchBackend:
    name = "torch"

    def __init__(self, path: str | Path, *, threads: int = 2, device: str = "cpu") -> None:
        torch.set_num_threads(threads)
        weights = Path(path)
        if weights.is_dir():  # a bundle: its weights file
            weights = weights / "weights.pt"
        model, _ = load_trained(weights)
        self.model = model.to(device).eval()
        self.config = model.config
        self.device = device

    def infer(self, inputs: Arrays) -> Outputs:
        tensors = [torch.from_numpy(np.ascontiguousarray(inputs[n]))[None].to(self.device) for n in INPUT_NAMES]
        with torch.inference_mode():
            heatmap, regression, segmentation = (t.float().cpu().numpy() for t in self.model(*tensors))
        return heatmap, regression, segmentation

"""Run the network on one frame's inputs and decode: the torch (eager) predictor.

A predictor maps the inputs of one frame (perception.model.inputs, no batch axis) to
:class:`Prediction`: boxes in base_link and the two BEV grids. Other backends (ONNX Runtime,
TensorRT) produce the same raw outputs and share :func:`decode_outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from perception.ground_truth import Boxes
from perception.model.config import ModelConfig
from perception.model.decode import DecodeConfig, decode_detections, decode_segmentation
from perception.model.inputs import Arrays
from perception.model.network import INPUT_NAMES


@dataclass(frozen=True)
class Prediction:
    """boxes: detections (scores < 1) in base_link; segmentation: (2, ny, nx) uint8 {0, 1}
    drivable, occupancy on the input grid; timings_ms: stage -> ms."""

    boxes: Boxes
    segmentation: NDArray[np.uint8]
    timings_ms: dict[str, float]


def decode_outputs(
    outputs: tuple[NDArray[np.float32], ...], config: ModelConfig, decode: DecodeConfig | None = None
) -> tuple[Boxes, NDArray[np.uint8]]:
    """(heatmap, regression, segmentation) of one frame (batch axis of 1) -> boxes, grids."""
    heatmap, regression, segmentation = outputs
    boxes = decode_detections(heatmap[0], regression[0], config.output_grid, decode or DecodeConfig())
    return boxes, decode_segmentation(segmentation[0])


class TorchPredictor:
    """The network in torch eager mode, batch 1, ``threads`` intra-op threads."""

    name = "torch"

    def __init__(
        self, model: Any, config: ModelConfig, *, threads: int = 2, decode: DecodeConfig | None = None
    ) -> None:
        torch.set_num_threads(threads)
        self.model = model.eval()
        self.config = config
        self.decode = decode or DecodeConfig()

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options: Any) -> TorchPredictor:
        from perception.training.trainer import load_trained

        model, _ = load_trained(path)
        return cls(model, model.config, **options)

    def __call__(self, inputs: Arrays) -> Prediction:
        import time

        began = time.perf_counter()
        tensors = [torch.from_numpy(np.ascontiguousarray(inputs[name]))[None] for name in INPUT_NAMES]
        with torch.inference_mode():
            outputs = tuple(t.numpy() for t in self.model(*tensors))
        inferred = time.perf_counter()
        boxes, grids = decode_outputs(outputs, self.config, self.decode)
        done = time.perf_counter()
        return Prediction(boxes, grids, {"inference": (inferred - began) * 1e3, "decode": (done - inferred) * 1e3})

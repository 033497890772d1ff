"""Run the network on one frame's inputs and decode: the torch (eager) predictor.

A predictor (perception.backends.Predictor) maps the inputs of one frame
(perception.model.inputs, no batch axis) to :class:`Prediction`: boxes in base_link and the
two BEV grids. Every backend produces the same raw outputs and shares :func:`decode_outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.ground_truth import Boxes
from perception.model.config import ModelConfig
from perception.model.decode import DecodeConfig, decode_detections, decode_segmentation


@dataclass(frozen=True)
class Prediction:
    """boxes: detections (scores < 1) in base_link; segmentation: (2, ny, nx) uint8 {0, 1}
    drivable, occupancy on the input grid; timings_ms: stage -> ms; segmentation_logits: the
    (2, ny, nx) float32 logits ``segmentation`` was thresholded from (None: not kept)."""

    boxes: Boxes
    segmentation: NDArray[np.uint8]
    timings_ms: dict[str, float]
    segmentation_logits: NDArray[np.float32] | None = None


def decode_outputs(
    outputs: tuple[NDArray[np.float32], ...], config: ModelConfig, decode: DecodeConfig | None = None
) -> tuple[Boxes, NDArray[np.uint8]]:
    """(heatmap, regression, segmentation) of one frame (batch axis of 1) -> boxes, grids."""
    heatmap, regression, segmentation = outputs
    boxes = decode_detections(heatmap[0], regression[0], config.output_grid, decode or DecodeConfig())
    return boxes, decode_segmentation(segmentation[0])

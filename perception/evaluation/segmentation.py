"""BEV segmentation IoU (drivable area, occupancy), accumulated over frames. ROS-free, numpy.

The IoU of a channel is the sum over all frames of the intersections divided by the sum of
the unions (cells counted over the whole set, as a dataset-level IoU), not a mean of per-frame
IoUs. A channel whose union is empty over every frame (no positive cell in either raster)
has IoU NaN (JSON null): nothing to score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from perception.evaluation.errors import EvaluationError

#: Channels of the rasters, in order (perception.ground_truth: drivable, occupancy).
SEGMENTATION_CHANNELS: Final[tuple[str, ...]] = ("drivable", "occupancy")


@dataclass(frozen=True)
class SegmentationMetrics:
    """IoU per channel over all frames.

    Attributes:
        drivable_iou: IoU of channel 0 (drivable area) in [0, 1], NaN when never positive.
        occupancy_iou: IoU of channel 1 (object occupancy) in [0, 1], NaN when never positive.
        frames: frames added.
    """

    drivable_iou: float
    occupancy_iou: float
    frames: int

    def as_dict(self) -> dict[str, float | None]:
        """``{"drivable_iou", "occupancy_iou"}``, NaN as None (JSON null)."""
        return {
            name: None if math.isnan(value) else float(value)
            for name, value in (("drivable_iou", self.drivable_iou), ("occupancy_iou", self.occupancy_iou))
        }


def _binary(raster: object, role: str, frame: int) -> NDArray[np.bool_]:
    array = np.asarray(raster)
    if array.dtype != np.uint8 and array.dtype != np.bool_:
        raise EvaluationError(f"frame {frame}: {role} raster must be uint8 (0/1) or bool, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[0] != len(SEGMENTATION_CHANNELS):
        raise EvaluationError(
            f"frame {frame}: {role} raster must have shape ({len(SEGMENTATION_CHANNELS)}, ny, nx) "
            f"[drivable, occupancy], got {array.shape}"
        )
    if array.dtype == np.uint8 and array.size and array.max() > 1:
        channel, row, col = (int(i) for i in np.unravel_index(int(np.argmax(array > 1)), array.shape))
        raise EvaluationError(
            f"frame {frame}: {role} raster[{channel}, {row}, {col}] = {int(array[channel, row, col])}: must be 0 or 1"
        )
    return array.astype(bool, copy=False)


class SegmentationEvaluator:
    """Accumulates per-channel intersections and unions of BEV rasters over frames."""

    def __init__(self) -> None:
        self._intersection = np.zeros(len(SEGMENTATION_CHANNELS), dtype=np.int64)
        self._union = np.zeros(len(SEGMENTATION_CHANNELS), dtype=np.int64)
        self._shape: tuple[int, ...] | None = None
        self._frames = 0

    @property
    def frames(self) -> int:
        """Frames added so far."""
        return self._frames

    def add_frame(self, prediction: NDArray[np.uint8], truth: NDArray[np.uint8]) -> None:
        """Add one frame.

        Args:
            prediction: (2, ny, nx) uint8 {0, 1} (or bool) [drivable, occupancy] on the BEV
                grid (rows along +y, columns along +x; perception.bev_grid), base_link.
            truth: the same shape and layout, the ground truth.

        Raises EvaluationError naming the frame index when a raster has the wrong dtype,
        shape or values, when the two shapes differ, or when the shape differs from the first
        frame's; nothing is added then.
        """
        frame = self._frames
        pred = _binary(prediction, "prediction", frame)
        gt = _binary(truth, "truth", frame)
        if pred.shape != gt.shape:
            raise EvaluationError(f"frame {frame}: prediction raster shape {pred.shape} != truth shape {gt.shape}")
        if self._shape is not None and pred.shape != self._shape:
            raise EvaluationError(f"frame {frame}: raster shape {pred.shape} differs from frame 0's {self._shape}")
        self._shape = pred.shape
        self._intersection += np.count_nonzero(pred & gt, axis=(1, 2))
        self._union += np.count_nonzero(pred | gt, axis=(1, 2))
        self._frames += 1

    def result(self) -> SegmentationMetrics:
        """IoUs over all frames added so far."""
        iou = [
            math.nan if u == 0 else float(i) / float(u) for i, u in zip(self._intersection, self._union, strict=True)
        ]
        return SegmentationMetrics(drivable_iou=iou[0], occupancy_iou=iou[1], frames=self._frames)

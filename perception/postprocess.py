"""What the runtime does to a prediction after the network, in order, for one stream of frames:

1. the radar Doppler correction of each box's velocity (perception.radar_velocity);
2. the drivable area fused over time (perception.drivable_memory).

The fusion node, ``fusion eval`` and ``fusion render`` all go through :class:`Postprocess`, so
what is scored is what is published.
"""

from __future__ import annotations

from calibration import Rig
from perception.drivable_memory import DrivableMemory
from perception.model.config import ModelConfig
from perception.model.predictor import Prediction
from perception.pipeline import PreparedFrame
from perception.radar_velocity import RadarVelocityFusion


class Postprocess:
    """The steps for one rig, model and stream of frames (the drivable memory is state: one
    instance per bag or node, fed the frames in order)."""

    def __init__(self, rig: Rig, model: ModelConfig, *, radar_velocity: bool = True, drivable_memory: bool = True):
        self.radar_velocity = RadarVelocityFusion(rig, model, enabled=radar_velocity)
        self.drivable_memory = DrivableMemory(model.input_grid) if drivable_memory else None

    def __call__(self, prediction: Prediction, prepared: PreparedFrame) -> Prediction:
        prediction = self.radar_velocity(prediction, prepared.radar_points)
        if self.drivable_memory is not None:
            prediction = self.drivable_memory(prediction, prepared.ego_pose, prepared.stamp_ns)
        return prediction

"""The fusion node's outputs read back from a recorded bag, per frame stamp.

``read_outputs(bag)`` collects, for every header stamp, the typed detections
(``~/output/detections``, fusion_node.output_topics encoding) and the occupancy and drivable
grids (``nav_msgs/OccupancyGrid``) into :class:`FrameOutputs`, plus the log time of each
message (when the recorder received it). Used by ``fusion render --outputs`` and the demo's
summary (metrics and end-to-end latency from the recorded outputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fusion_node.bag.reader import BagReader
from fusion_node.convert import occupancy_grid_to_raster, time_to_ns
from fusion_node.output_topics import OUTPUT_TOPICS, pointcloud2_to_detections
from perception.ground_truth import Boxes


@dataclass
class FrameOutputs:
    stamp_ns: int
    detections: Boxes | None = None
    occupancy: NDArray[np.uint8] | None = None
    drivable: NDArray[np.uint8] | None = None
    log_time_ns: dict[str, int] = field(default_factory=dict)

    def segmentation(self) -> NDArray[np.uint8] | None:
        """(2, ny, nx) uint8 {0, 1}: drivable, occupancy; None unless both grids arrived."""
        if self.occupancy is None or self.drivable is None:
            return None
        return np.stack([self.drivable, self.occupancy])


def read_outputs(bag: str | Path, *, node_name: str = "fusion_node") -> dict[int, FrameOutputs]:
    """stamp_ns -> the outputs of that frame found in ``bag`` (missing topics are skipped)."""
    wanted = {t.key: t.resolved(node_name) for t in OUTPUT_TOPICS if t.key in ("detections", "occupancy", "drivable")}
    frames: dict[int, FrameOutputs] = {}
    with BagReader(bag) as reader:
        topics = [name for name in wanted.values() if name in reader.topics]
        key_of = {name: key for key, name in wanted.items()}
        for message in reader.messages(topics):
            key = key_of[message.topic]
            stamp = time_to_ns(message.msg.header.stamp, source=message.topic)
            frame = frames.setdefault(stamp, FrameOutputs(stamp))
            frame.log_time_ns[key] = message.log_time_ns
            if key == "detections":
                frame.detections = pointcloud2_to_detections(message.msg, source=message.topic)
            else:
                raster, _ = occupancy_grid_to_raster(message.msg, source=message.topic)
                setattr(frame, key, (raster >= 50).astype(np.uint8))
    return frames

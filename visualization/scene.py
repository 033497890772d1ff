"""One full picture of a frame: BEV scene (ground truth, sensors, detections) + camera views.

:func:`render_frame` takes what the runtime has for a frame (perception.pipeline.PreparedFrame:
accumulated lidar, radar at the frame stamp, ultrasonic ranges, the synchronized camera
images) plus optional detections, ground truth and BEV grids, and returns the mosaic used by
``fusion render`` (PNG frames and the MP4).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration import Modality, Rig
from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes
from perception.model.inputs import decode_image
from perception.pipeline import PreparedFrame
from perception.samples import EncodedImage
from visualization.bev_view import BevStyle, BevView
from visualization.camera_view import draw_boxes_on_camera
from visualization.mosaic import mosaic

Image = NDArray[np.uint8]


def render_frame(
    prepared: PreparedFrame,
    rig: Rig,
    grid: BevGrid,
    *,
    ultrasonic_ids: Sequence[str],
    detections: Boxes | None = None,
    truth: Boxes | None = None,
    drivable: NDArray[np.uint8] | None = None,
    occupancy: NDArray[np.uint8] | None = None,
    caption: Sequence[str] = (),
    style: BevStyle | None = None,
) -> Image:
    """The mosaic of one frame (BGR uint8, even width and height)."""
    view = BevView(grid, style)
    view.ground(drivable, occupancy)
    view.range_rings()
    view.lidar(prepared.lidar_points)
    cones = []
    for sensor_id, measured in zip(ultrasonic_ids, prepared.ultrasonic_ranges, strict=True):
        spec = rig.sensor(sensor_id).ultrasonic
        cones.append((rig.to_base(sensor_id), spec.field_of_view_rad, spec.max_range_m, float(measured)))
    view.ultrasonic(cones)
    view.radar(prepared.radar_points)
    if truth is not None:
        view.boxes(truth, truth=True)
    if detections is not None:
        view.boxes(detections)
    view.ego()
    missing = sorted(prepared.frame.missing)
    lines = [*caption, f"missing: {', '.join(missing)}" if missing else "all sensors in the frame", *prepared.notes[:2]]
    labels = sorted(set(detections.labels.tolist())) if detections is not None else []
    view.legend(lines, labels)
    cameras: dict[str, Image | None] = {}
    for camera in rig.of(Modality.CAMERA):
        record = prepared.frame.records.get(camera.id)
        if record is None or not isinstance(record.payload, EncodedImage):
            cameras[camera.id] = None
            continue
        try:
            image = cv2.cvtColor(decode_image(record.payload.data, camera.id), cv2.COLOR_RGB2BGR)
        except ValueError:
            cameras[camera.id] = None
            continue
        if truth is not None:
            image = draw_boxes_on_camera(image, truth, rig, camera.id, truth=True)
        if detections is not None:
            image = draw_boxes_on_camera(image, detections, rig, camera.id)
        cameras[camera.id] = image
    return mosaic(view.image, cameras)

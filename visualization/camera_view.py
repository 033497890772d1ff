"""Camera images with 3D boxes projected through the rig (edges in class colours)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration import Rig
from perception.classes import CLASS_COLORS
from perception.ground_truth import BOX_EDGES, Boxes

Image = NDArray[np.uint8]


def draw_boxes_on_camera(
    image: Image, boxes: Boxes, rig: Rig, camera: str, *, truth: bool = False, thickness: int = 2
) -> Image:
    """A copy of ``image`` (BGR, any size: pixels are scaled from the camera's intrinsics
    size) with every box whose 8 corners are all valid in ``camera`` drawn as 12 edges.
    Boxes are in base_link. Ground truth is drawn thin and white."""
    out = image.copy()
    if len(boxes) == 0:
        return out
    intrinsics = rig.sensor(camera).camera.intrinsics
    scale = np.array([image.shape[1] / intrinsics.width, image.shape[0] / intrinsics.height])
    corners = boxes.corners()  # (N, 8, 3)
    uv, _, valid = rig.project(corners.reshape(-1, 3), src="base_link", camera=camera)
    uv = (uv * scale).reshape(-1, 8, 2)
    valid = valid.reshape(-1, 8).all(axis=1)
    for i in np.flatnonzero(valid):
        color = (235, 235, 235) if truth else tuple(int(c) for c in CLASS_COLORS[int(boxes.labels[i])][::-1])
        pts = uv[i].round().astype(np.int32)
        for a, b in BOX_EDGES:
            cv2.line(out, tuple(pts[a]), tuple(pts[b]), color, 1 if truth else thickness, cv2.LINE_AA)
    return out

""":class:`perception.ground_truth.Boxes` -> ``visualization_msgs/MarkerArray`` for RViz.

One array per frame: a DELETEALL marker first (so boxes of the previous frame vanish), then
per box a LINE_LIST of its 12 edges, optionally a TEXT_VIEW_FACING label above it and an
ARROW for its velocity. Colours come from ``perception.classes.CLASS_COLORS``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from fusion_node.convert.motion import NS_PER_S, make_header
from fusion_node.errors import InvalidArrayError
from perception.classes import CLASSES, class_color
from perception.ground_truth import BOX_EDGES, Boxes

#: Edge line width, metres.
LINE_WIDTH_M: Final = 0.05
#: Label text height, metres, and its height above the box top.
TEXT_HEIGHT_M: Final = 0.6
TEXT_LIFT_M: Final = 0.4
#: Arrows are drawn for speeds of at least this many m/s; their length is the distance
#: covered in one second.
MIN_ARROW_SPEED: Final = 0.2


def _point(xyz: np.ndarray) -> Point:
    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def box_label_text(label: int, track_id: int, score: float) -> str:
    """The label drawn above a box: class, "#track" when tracked, score when below 1."""
    text = CLASSES[label]
    if track_id >= 0:
        text += f" #{track_id}"
    if score < 1.0:
        text += f" {score:.2f}"
    return text


def boxes_to_marker_array(
    boxes: Boxes,
    *,
    stamp_ns: int,
    frame_id: str = "base_link",
    namespace: str = "objects",
    lifetime_ns: int = 0,
    with_text: bool = True,
    with_velocity: bool = True,
) -> MarkerArray:
    """Boxes (in ``frame_id``, metres) -> MarkerArray.

    Markers: ``[0]`` DELETEALL (ns ``namespace``); then for box i: LINE_LIST id i in ns
    ``namespace`` whose 24 points are the 12 edges (``perception.ground_truth.BOX_EDGES``)
    of ``boxes.corners()[i]`` with an identity pose; TEXT_VIEW_FACING id i in
    ``namespace + "/labels"`` (see :func:`box_label_text`); ARROW id i in
    ``namespace + "/velocity"`` from the centre to centre + velocity * 1 s, for known
    velocities of at least MIN_ARROW_SPEED m/s. ``lifetime_ns`` 0 = until deleted.
    """
    if not isinstance(boxes, Boxes):
        raise InvalidArrayError(f"boxes_to_marker_array: expected Boxes, got {type(boxes).__name__}")
    if isinstance(lifetime_ns, bool) or not isinstance(lifetime_ns, int) or lifetime_ns < 0:
        raise InvalidArrayError(f"boxes_to_marker_array: lifetime_ns must be an int >= 0, got {lifetime_ns!r}")
    header = make_header(frame_id, stamp_ns)
    sec, nanosec = divmod(lifetime_ns, NS_PER_S)
    lifetime = Duration(sec=sec, nanosec=nanosec)
    clear = Marker(header=header, ns=namespace, id=0, action=Marker.DELETEALL)
    markers = [clear]
    corners = boxes.corners()
    for i in range(len(boxes)):
        r, g, b = class_color(int(boxes.labels[i]))
        color = ColorRGBA(r=r, g=g, b=b, a=1.0)
        edges = corners[i][BOX_EDGES.reshape(-1)]
        lines = Marker(header=header, ns=namespace, id=i, type=Marker.LINE_LIST, action=Marker.ADD)
        lines.pose.orientation.w = 1.0
        lines.scale.x = LINE_WIDTH_M
        lines.color = color
        lines.lifetime = lifetime
        lines.points = [Point(x=x, y=y, z=z) for x, y, z in edges.tolist()]
        markers.append(lines)
        top = boxes.centers[i].copy()
        top[2] += boxes.sizes[i, 2] / 2.0 + TEXT_LIFT_M
        if with_text:
            text = Marker(header=header, ns=f"{namespace}/labels", id=i, type=Marker.TEXT_VIEW_FACING)
            text.action = Marker.ADD
            text.pose.position = _point(top)
            text.pose.orientation.w = 1.0
            text.scale.z = TEXT_HEIGHT_M
            text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
            text.lifetime = lifetime
            text.text = box_label_text(int(boxes.labels[i]), int(boxes.track_ids[i]), float(boxes.scores[i]))
            markers.append(text)
        vx, vy = (float(v) for v in boxes.velocities[i])
        if with_velocity and math.isfinite(vx) and math.hypot(vx, vy) >= MIN_ARROW_SPEED:
            start = boxes.centers[i]
            arrow = Marker(header=header, ns=f"{namespace}/velocity", id=i, type=Marker.ARROW, action=Marker.ADD)
            arrow.pose.orientation.w = 1.0
            arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.1, 0.25, 0.3  # shaft, head diameter, head length
            arrow.color = color
            arrow.lifetime = lifetime
            arrow.points = [_point(start), _point(start + np.array([vx, vy, 0.0]))]
            markers.append(arrow)
    return MarkerArray(markers=markers)

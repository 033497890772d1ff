"""What the fusion node publishes: one table of topics and types, and the detection encoding.

The node creates its publishers from :data:`OUTPUT_TOPICS`; launch files, the RViz config and
their tests read the same table, so a renamed topic or a changed type is caught in one place.
Names are private (``~/output/...``): they resolve under the node's name
(``/fusion_node/output/objects``) and launch files remap them. Every output is stamped with
the frame stamp (the lidar sweep's header stamp) and is in base_link, except the debug image,
which is in its camera's frame. ``~/output/points`` carries :data:`POINT_FIELDS`.

Typed detections: a documented encoding in a standard message, not a rosidl package
-----------------------------------------------------------------------------------
``~/output/detections`` is a ``sensor_msgs/PointCloud2`` with ONE POINT PER DETECTION and the
fields of :data:`DETECTION_FIELDS` (little-endian, point_step 44)::

    x, y, z          float32  box centre, base_link, metres
    length, width,   float32  box size (length along the heading), metres, > 0
    height
    yaw              float32  heading about +z from +x, radians
    vx, vy           float32  ground-relative velocity in base_link axes, m/s (NaN = unknown)
    score            float32  confidence in [0, 1]
    label            uint8    index into perception.classes.CLASSES (0 car ... 9 traffic_cone)

Why not a custom message package (``DetectedObjectArray.msg`` built with rosidl):

* The product runs from a fresh clone on pip wheels. A rosidl package needs the CMake build
  with the workarounds in the guide, at install time and in every consumer's environment; a
  consumer that lacks it cannot even deserialize the topic. PointCloud2 is in every ROS 2
  install and in ``rosbags`` / ``mcap-ros2-support`` type stores, so recorded outputs open
  anywhere without registering types.
* ``vision_msgs`` (the standard detection messages) is not available as a wheel here.
* RViz shows the topic as is (a point per object, coloured by ``score`` or ``label``), and
  the zero-copy numpy readers of :mod:`fusion_node.convert` apply unchanged.

The cost is that the field layout is a convention rather than a compiled type: readers must
go through :func:`pointcloud2_to_detections`, which checks every field's name and datatype and
every value. A layout change bumps :data:`DETECTION_ENCODING_VERSION` (the reader's errors
name it), and only fields may be appended: readers look fields up by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from sensor_msgs.msg import PointCloud2

from fusion_node.convert import pointcloud2_to_structured, structured_to_pointcloud2
from fusion_node.errors import FieldLayoutError, InvalidArrayError, MalformedMessageError
from perception.errors import GroundTruthError
from perception.ground_truth import Boxes

NODE_NAME: Final = "fusion_node"
DIAGNOSTICS_TOPIC: Final = "/diagnostics"


@dataclass(frozen=True)
class OutputTopic:
    """One published topic.

    Attributes:
        key: short name used in code and summaries ("objects", "occupancy", ...).
        name: private topic name, e.g. "~/output/objects".
        msg_type: "pkg/msg/Name", as in bags and ``ros2 topic info``.
        description: one line for the README and ``--help`` texts.
        enabled_by: the bool parameter that turns the topic on ("" = always published).
    """

    key: str
    name: str
    msg_type: str
    description: str
    enabled_by: str = ""

    def resolved(self, node_name: str = NODE_NAME, namespace: str = "/") -> str:
        """The absolute topic name, e.g. "/fusion_node/output/objects"."""
        return resolve(self.name, node_name, namespace)


OUTPUT_TOPICS: Final[tuple[OutputTopic, ...]] = (
    OutputTopic(
        "objects",
        "~/output/objects",
        "visualization_msgs/msg/MarkerArray",
        "3D boxes coloured by class, score labels, velocity arrows (DELETEALL first)",
    ),
    OutputTopic(
        "occupancy",
        "~/output/occupancy",
        "nav_msgs/msg/OccupancyGrid",
        "BEV occupancy on the model's input grid, 0 free / 100 occupied",
    ),
    OutputTopic(
        "drivable",
        "~/output/drivable",
        "nav_msgs/msg/OccupancyGrid",
        "BEV drivable area on the model's input grid, 100 drivable / 0 not",
    ),
    OutputTopic(
        "points",
        "~/output/points",
        "sensor_msgs/msg/PointCloud2",
        "the frame's accumulated, de-skewed lidar sweeps: x, y, z, intensity, time_lag (s)",
        enabled_by="publish_points",
    ),
    OutputTopic(
        "detections",
        "~/output/detections",
        "sensor_msgs/msg/PointCloud2",
        "typed detections, one point per object (fusion_node.output_topics.DETECTION_FIELDS)",
    ),
    OutputTopic(
        "debug_image",
        "~/output/debug_image",
        "sensor_msgs/msg/Image",
        "one camera image (bgr8) with the detected boxes projected",
        enabled_by="publish_debug_image",
    ),
)
TOPICS: Final = {topic.key: topic for topic in OUTPUT_TOPICS}


def resolve(name: str, node_name: str = NODE_NAME, namespace: str = "/") -> str:
    """ROS 2 name resolution for the names used here: "~/x" -> "<ns>/<node>/x", "x" -> "<ns>/x"."""
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name.startswith("~/"):
        return f"{prefix}/{node_name}/{name[2:]}"
    if name.startswith("/"):
        return name
    return f"{prefix}/{name}"


# -- points ------------------------------------------------------------------------------
#: Fields of ~/output/points, FLOAT32 at offsets 0..16 (point_step 20): base_link metres,
#: the lidar intensity, and time_lag = frame stamp - the sweep's stamp, seconds (0 for the
#: newest sweep).
POINT_FIELDS: Final = ("x", "y", "z", "intensity", "time_lag")
_POINT_DTYPE: Final = np.dtype([(name, "<f4") for name in POINT_FIELDS])


def points_to_pointcloud2(points: NDArray[np.float32], *, frame_id: str, stamp_ns: int) -> PointCloud2:
    """(N, 5) float32 [x, y, z, intensity, time_lag_s] (perception.pipeline.PreparedFrame
    lidar_points, base_link, metres / seconds) -> PointCloud2 with :data:`POINT_FIELDS`."""
    if not isinstance(points, np.ndarray) or points.ndim != 2 or points.shape[1] != len(POINT_FIELDS):
        raise InvalidArrayError(
            f"points_to_pointcloud2: expected (N, {len(POINT_FIELDS)}) {list(POINT_FIELDS)}, "
            f"got {getattr(points, 'shape', type(points).__name__)}"
        )
    values = np.ascontiguousarray(points, dtype=np.float32)
    return structured_to_pointcloud2(values.view(_POINT_DTYPE).reshape(-1), frame_id=frame_id, stamp_ns=stamp_ns)


# -- detections ------------------------------------------------------------------------
DETECTION_ENCODING_VERSION: Final = 1
#: (name, dtype) of every detection field, in wire order.
DETECTION_FIELDS: Final[tuple[tuple[str, str], ...]] = (
    ("x", "<f4"),
    ("y", "<f4"),
    ("z", "<f4"),
    ("length", "<f4"),
    ("width", "<f4"),
    ("height", "<f4"),
    ("yaw", "<f4"),
    ("vx", "<f4"),
    ("vy", "<f4"),
    ("score", "<f4"),
    ("label", "u1"),
)
#: The wire layout: the fields packed in order, padded to 44 bytes (4-byte aligned points).
DETECTION_DTYPE: Final = np.dtype(
    {
        "names": [name for name, _ in DETECTION_FIELDS],
        "formats": [fmt for _, fmt in DETECTION_FIELDS],
        "offsets": [4 * i for i in range(len(DETECTION_FIELDS))],
        "itemsize": 44,
    }
)
_MSG: Final = "PointCloud2"


def boxes_to_detections(boxes: Boxes, *, frame_id: str, stamp_ns: int) -> PointCloud2:
    """Boxes (in ``frame_id``, normally base_link) -> the detections PointCloud2 (one point
    per box, :data:`DETECTION_FIELDS`; an empty cloud for no boxes)."""
    if not isinstance(boxes, Boxes):
        raise InvalidArrayError(f"boxes_to_detections: expected Boxes, got {type(boxes).__name__}")
    points = np.zeros(len(boxes), dtype=DETECTION_DTYPE)
    for axis, name in enumerate("xyz"):
        points[name] = boxes.centers[:, axis]
    for axis, name in enumerate(("length", "width", "height")):
        points[name] = boxes.sizes[:, axis]
    points["yaw"] = boxes.yaws
    points["vx"] = boxes.velocities[:, 0]
    points["vy"] = boxes.velocities[:, 1]
    points["score"] = boxes.scores
    points["label"] = boxes.labels
    return structured_to_pointcloud2(points, frame_id=frame_id, stamp_ns=stamp_ns, is_dense=True)


def pointcloud2_to_detections(msg: Any, *, source: str = "") -> Boxes:
    """The detections PointCloud2 -> Boxes (track ids -1, lidar point counts -1 unknown).

    Raises:
        FieldLayoutError: a field of :data:`DETECTION_FIELDS` is missing or has another
            datatype (the message lists the layout found).
        MalformedMessageError: inconsistent sizes, or a value no box can have (size <= 0,
            non-finite centre, score outside [0, 1], unknown label), naming the field.
    """
    points = pointcloud2_to_structured(msg, source=source).reshape(-1)
    fields: dict[str, Any] = dict(points.dtype.fields or {})
    for name, fmt in DETECTION_FIELDS:
        expected = np.dtype(fmt)
        found = fields.get(name)
        if found is None or found[0].newbyteorder("<") != expected.newbyteorder("<"):
            layout = {key: str(value[0]) for key, value in fields.items()}
            raise FieldLayoutError(
                f"not a detections cloud (encoding v{DETECTION_ENCODING_VERSION}): field '{name}' must be "
                f"{expected}, found {layout.get(name, 'no such field')}; fields: {layout}",
                msg_type=_MSG,
                source=source,
                field=name,
            )

    def column(*names: str) -> NDArray[np.float64]:
        return np.stack([points[n].astype(np.float64) for n in names], axis=-1)

    try:
        return Boxes.create(
            centers=column("x", "y", "z"),
            sizes=column("length", "width", "height"),
            yaws=points["yaw"].astype(np.float64),
            labels=points["label"].astype(np.int64),
            velocities=column("vx", "vy"),
            scores=points["score"].astype(np.float32),
        )
    except GroundTruthError as exc:
        field = str(exc).split("[", 1)[0].removeprefix("Boxes.")
        raise MalformedMessageError(f"detection values: {exc}", msg_type=_MSG, source=source, field=field) from None

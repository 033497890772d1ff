"""Object classes of the runtime: the 10 nuScenes detection classes, their colours, and the
mapping from nuScenes annotation categories.

A class label everywhere (ground truth, detections, network outputs) is an index into
:data:`CLASSES`. ROS-free.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from perception.errors import PerceptionError

#: The nuScenes detection classes, in the nuScenes detection-benchmark order.
CLASSES: Final[tuple[str, ...]] = (
    "car",
    "truck",
    "construction_vehicle",
    "bus",
    "trailer",
    "barrier",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "traffic_cone",
)

#: Class name -> label (index into CLASSES).
CLASS_INDEX: Final = MappingProxyType({name: index for index, name in enumerate(CLASSES)})

#: Display colour of each class, (r, g, b) uint8 values 0..255, aligned with CLASSES (the
#: Tableau-10 palette: ten colours that stay distinct on dark and light backgrounds). Every
#: renderer (RViz markers, BEV images, camera overlays) takes its colours from here.
CLASS_COLORS: Final[tuple[tuple[int, int, int], ...]] = (
    (255, 127, 14),  # car: orange
    (214, 39, 40),  # truck: red
    (140, 86, 75),  # construction_vehicle: brown
    (148, 103, 189),  # bus: purple
    (227, 119, 194),  # trailer: pink
    (127, 127, 127),  # barrier: grey
    (188, 189, 34),  # motorcycle: olive
    (23, 190, 207),  # bicycle: cyan
    (31, 119, 180),  # pedestrian: blue
    (44, 160, 44),  # traffic_cone: green
)

#: nuScenes category name -> detection class, exactly the official mapping of
#: ``nuscenes.eval.detection.utils.category_to_detection_name`` (devkit 1.2.0). Categories
#: not listed (animal, static_object.bicycle_rack, movable_object.debris,
#: movable_object.pushable_pullable, human.pedestrian.personal_mobility / stroller /
#: wheelchair, vehicle.emergency.*) are not detection classes and are dropped.
NUSCENES_CATEGORY_TO_CLASS: Final = MappingProxyType(
    {
        "movable_object.barrier": "barrier",
        "vehicle.bicycle": "bicycle",
        "vehicle.bus.bendy": "bus",
        "vehicle.bus.rigid": "bus",
        "vehicle.car": "car",
        "vehicle.construction": "construction_vehicle",
        "vehicle.motorcycle": "motorcycle",
        "human.pedestrian.adult": "pedestrian",
        "human.pedestrian.child": "pedestrian",
        "human.pedestrian.construction_worker": "pedestrian",
        "human.pedestrian.police_officer": "pedestrian",
        "movable_object.trafficcone": "traffic_cone",
        "vehicle.trailer": "trailer",
        "vehicle.truck": "truck",
    }
)


class UnknownClassError(PerceptionError, ValueError):
    """A class name or label is not one of :data:`CLASSES`."""


def class_label(name: str) -> int:
    """Label (index into CLASSES) of a class name; UnknownClassError naming the known ones."""
    try:
        return CLASS_INDEX[name]
    except KeyError:
        raise UnknownClassError(f"unknown class {name!r}; classes: {list(CLASSES)}") from None


def nuscenes_label(category: str) -> int | None:
    """Label of a nuScenes category name (e.g. "human.pedestrian.adult" -> 8), or None when
    the category is not one of the 10 detection classes (the official mapping drops it)."""
    name = NUSCENES_CATEGORY_TO_CLASS.get(category)
    return None if name is None else CLASS_INDEX[name]


def class_color(label: int) -> tuple[float, float, float]:
    """(r, g, b) in [0, 1] of a label, for renderers that take float colours (RViz)."""
    if isinstance(label, bool) or not 0 <= label < len(CLASSES):
        raise UnknownClassError(f"label {label!r} is outside [0, {len(CLASSES)})")
    r, g, b = CLASS_COLORS[label]
    return (r / 255.0, g / 255.0, b / 255.0)

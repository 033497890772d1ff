"""The one conversion layer between ROS 2 messages and numpy arrays / ROS-free samples.

Readers (``*_to_array``, ``*_to_sample``, ...) duck-type rclpy and rosbags messages, take a
``source`` keyword (topic name) for error messages and raise only
:class:`fusion_node.errors.ConversionError` subclasses on bad input. Builders return
rclpy message objects. Time is int nanoseconds.
"""

from fusion_node.convert.camera_info import (
    DISTORTION_MODEL_MAP,
    camera_info_to_intrinsics,
    intrinsics_to_camera_info,
)
from fusion_node.convert.grids import occupancy_grid_to_raster, raster_to_occupancy_grid
from fusion_node.convert.image import (
    IMAGE_ENCODINGS,
    array_to_compressed,
    array_to_image,
    check_compressed,
    compressed_to_array,
    image_to_array,
)
from fusion_node.convert.markers import box_label_text, boxes_to_marker_array
from fusion_node.convert.motion import (
    ns_to_time,
    odometry_to_sample,
    range_to_reading,
    reading_to_range,
    sample_to_odometry,
    time_to_ns,
)
from fusion_node.convert.pointcloud import (
    POINTFIELD_DTYPES,
    RADAR_FIELDS,
    XYZI_FIELDS,
    cloud_dtype,
    pointcloud2_to_array,
    pointcloud2_to_radar,
    pointcloud2_to_structured,
    radar_to_pointcloud2,
    structured_to_pointcloud2,
    xyzi_to_pointcloud2,
)

__all__ = [
    "DISTORTION_MODEL_MAP",
    "IMAGE_ENCODINGS",
    "POINTFIELD_DTYPES",
    "RADAR_FIELDS",
    "XYZI_FIELDS",
    "array_to_compressed",
    "array_to_image",
    "box_label_text",
    "boxes_to_marker_array",
    "camera_info_to_intrinsics",
    "check_compressed",
    "cloud_dtype",
    "compressed_to_array",
    "image_to_array",
    "intrinsics_to_camera_info",
    "ns_to_time",
    "occupancy_grid_to_raster",
    "odometry_to_sample",
    "pointcloud2_to_array",
    "pointcloud2_to_radar",
    "pointcloud2_to_structured",
    "radar_to_pointcloud2",
    "range_to_reading",
    "raster_to_occupancy_grid",
    "reading_to_range",
    "sample_to_odometry",
    "structured_to_pointcloud2",
    "time_to_ns",
    "xyzi_to_pointcloud2",
]

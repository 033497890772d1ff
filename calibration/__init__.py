"""Calibration: the sensor rig (YAML -> frozen dataclasses), rigid transforms, camera models.

ROS-free: nothing here imports rclpy or message packages.
"""

from calibration.errors import CalibrationError, IntrinsicsError, RigConfigError, TransformError
from calibration.intrinsics import CameraIntrinsics
from calibration.rig import BASE_LINK, Rig, default_rig_path, load_rig, rig_from_dict
from calibration.sensors import (
    CameraSpec,
    LidarSpec,
    Modality,
    OdometrySpec,
    RadarSpec,
    Sensor,
    UltrasonicSpec,
)

__all__ = [
    "BASE_LINK",
    "CalibrationError",
    "CameraIntrinsics",
    "CameraSpec",
    "IntrinsicsError",
    "LidarSpec",
    "Modality",
    "OdometrySpec",
    "RadarSpec",
    "Rig",
    "RigConfigError",
    "Sensor",
    "TransformError",
    "UltrasonicSpec",
    "default_rig_path",
    "load_rig",
    "rig_from_dict",
]

"""Calibration: the sensor rig (YAML -> frozen dataclasses), rigid transforms, camera models.

Public API: ``load_rig(path) -> Rig``; ``rig.transform(src, dst)``; ``rig.project(points,
src=..., camera=...) -> (uv, depth, valid)``; camera models in ``calibration.camera_models``;
odometry interpolation and ego-motion compensation in ``calibration.poses``; importers
(KITTI, nuScenes, ROS CameraInfo / OpenCV YAML) in ``calibration.importers``.

ROS-free: nothing here imports rclpy or message packages.
"""

from calibration.camera_models import project_camera, undistort_image, undistort_points, undistortion_maps
from calibration.errors import (
    CalibrationError,
    CalibrationFileError,
    IntrinsicsError,
    ProjectionError,
    RigConfigError,
    TrajectoryError,
    TransformError,
)
from calibration.intrinsics import CameraIntrinsics
from calibration.poses import PoseTrajectory, compensate_points, deskew_points
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
    "CalibrationFileError",
    "CameraIntrinsics",
    "CameraSpec",
    "IntrinsicsError",
    "LidarSpec",
    "Modality",
    "OdometrySpec",
    "PoseTrajectory",
    "ProjectionError",
    "RadarSpec",
    "Rig",
    "RigConfigError",
    "Sensor",
    "TrajectoryError",
    "TransformError",
    "UltrasonicSpec",
    "compensate_points",
    "default_rig_path",
    "deskew_points",
    "load_rig",
    "project_camera",
    "rig_from_dict",
    "undistort_image",
    "undistort_points",
    "undistortion_maps",
]

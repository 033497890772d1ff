"""Importers: calibration in the formats users have -> ``calibration.Rig``.

Each builds its rig through ``calibration.rig.rig_from_dict`` (the validation of rig YAML
files) and raises ``CalibrationFileError`` naming the file, line and field of bad input.

- ``rig_from_kitti(path)``: KITTI object/tracking calibration text or raw-data calib folder.
- ``rig_from_nuscenes(dataroot, version, scene=...)`` / ``rig_from_calibrated_sensors(records)``.
- ``read_camera_info_yaml(path)``: ROS CameraInfo or OpenCV FileStorage YAML -> intrinsics;
  ``replace_camera_intrinsics(rig, id, intrinsics)``, ``rig_with_camera(id, intrinsics, T)``.
"""

from calibration.importers.camera_info_yaml import read_camera_info_yaml, replace_camera_intrinsics, rig_with_camera
from calibration.importers.kitti import rig_from_kitti
from calibration.importers.nuscenes import rig_from_calibrated_sensors, rig_from_nuscenes

__all__ = [
    "read_camera_info_yaml",
    "replace_camera_intrinsics",
    "rig_from_calibrated_sensors",
    "rig_from_kitti",
    "rig_from_nuscenes",
    "rig_with_camera",
]

"""KITTI calibration -> Rig.

Reads the object/tracking calibration text (one ``KEY: v1 v2 ...`` per line: ``P0``..``P3``
3x4, ``R0_rect`` 3x3, ``Tr_velo_to_cam`` 3x4, optional ``Tr_imu_to_velo`` 3x4; the tracking
spellings ``R_rect``, ``Tr_velo_cam``, ``Tr_imu_velo`` are accepted too) or a raw-data
calibration folder (``calib_cam_to_cam.txt`` with ``P_rect_0i``/``R_rect_00``/``S_rect_0i``,
``calib_velo_to_cam.txt`` and optional ``calib_imu_to_velo.txt`` with ``R``/``T``).

The rig (all cameras rectified, distortion "none"):

- ``velodyne``: the lidar. ``base_link`` is the IMU/GPS (OXTS) frame when ``Tr_imu_to_velo``
  is given (x forward, y left, z up, as KITTI's IMU), else the velodyne frame itself (KITTI
  gives no vehicle frame; the ground below the lidar is not known from the calibration).
- ``cam0``..``cam3``: one per projection matrix present (P2 is required: the left colour
  camera every KITTI benchmark uses). Camera ``i`` is the rectified cam0 frame shifted by
  the baseline ``t_i = K_i^-1 P_i[:, 3]``, with ``K_i = P_i[:, :3]``, so that
  ``rig.project(p, src="velodyne", camera="cam2")`` equals ``P2 @ R0_rect @ Tr_velo_to_cam @ p``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibration.errors import CalibrationFileError, TransformError
from calibration.rig import Rig, rig_from_dict
from calibration.transforms import invert_transform, validate_rotation

FloatArray = NDArray[np.float64]

#: Image size of KITTI object/odometry colour images (they vary by a few pixels per drive).
KITTI_IMAGE_SIZE = (1242, 375)
CAMERAS = ("P0", "P1", "P2", "P3")
_ALIASES = {"R_rect": "R0_rect", "Tr_velo_cam": "Tr_velo_to_cam", "Tr_imu_velo": "Tr_imu_to_velo"}
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")


class _Entries:
    """``KEY: values`` lines of one file, parsed on demand (with their line numbers)."""

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CalibrationFileError(f"cannot read KITTI calibration: {exc}", source=self.source) from exc
        self.values: dict[str, tuple[int, str]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            match = _KEY.match(line.strip())
            if match is None:
                bare = all(_is_float(token) for token in line.split())
                raise CalibrationFileError(
                    (f"a bare list of {len(line.split())} numbers without a 'KEY:' prefix" if bare else "expected")
                    + " 'KEY: numbers' lines; a KITTI calibration has 'P2: <12 numbers>', 'R0_rect: <9 numbers>' and "
                    + f"'Tr_velo_to_cam: <12 numbers>', got {line.strip()[:60]!r}",
                    source=self.source,
                    line=number,
                )
            key = _ALIASES.get(match.group(1), match.group(1))
            if key in self.values:
                raise CalibrationFileError(
                    f"given twice (first on line {self.values[key][0]})", source=self.source, field=key, line=number
                )
            self.values[key] = (number, match.group(2))

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def numbers(self, key: str, count: int) -> tuple[FloatArray, int]:
        if key not in self.values:
            raise CalibrationFileError(
                f"is required but missing; keys found: {sorted(self.values)}", source=self.source, field=key
            )
        line, text = self.values[key]
        tokens = text.split()
        try:
            values = np.array([float(token) for token in tokens], dtype=np.float64)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise CalibrationFileError(f"non-numeric value {bad!r}", source=self.source, field=key, line=line) from None
        if values.size != count:
            raise CalibrationFileError(
                f"expected {count} numbers, got {values.size}", source=self.source, field=key, line=line
            )
        if not np.all(np.isfinite(values)):
            raise CalibrationFileError(
                f"has non-finite values {values.tolist()}", source=self.source, field=key, line=line
            )
        return values, line


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def rig_from_kitti(path: str | Path, *, image_size: tuple[int, int] | None = None, name: str | None = None) -> Rig:
    """Rig from a KITTI object/tracking calibration file or a raw-data calibration folder.

    Args:
        path: ``calib/000008.txt``-style file, or a folder with ``calib_cam_to_cam.txt``.
        image_size: (width, height) of the rectified images; default: ``S_rect_0i`` of a raw
            folder, else ``KITTI_IMAGE_SIZE``.
        name: rig name (default ``kitti_<file stem>``).

    Raises:
        CalibrationFileError: naming the file, line and field (missing P2, wrong number of
            values, non-numeric entries, non-orthonormal rotation, focal length <= 0, ...).
    """
    location = Path(path)
    if location.is_dir():
        return _rig_from_raw(location, image_size=image_size, name=name)
    entries = _Entries(location)
    matrices: dict[str, tuple[FloatArray, str, int]] = {}
    for key in CAMERAS:
        if key in entries or key == "P2":
            values, line = entries.numbers(key, 12)
            matrices[key] = (values.reshape(3, 4), entries.source, line)
    values, line = entries.numbers("R0_rect", 9)
    matrices["R0_rect"] = (values.reshape(3, 3), entries.source, line)
    values, line = entries.numbers("Tr_velo_to_cam", 12)
    matrices["Tr_velo_to_cam"] = (values.reshape(3, 4), entries.source, line)
    if "Tr_imu_to_velo" in entries:
        values, line = entries.numbers("Tr_imu_to_velo", 12)
        matrices["Tr_imu_to_velo"] = (values.reshape(3, 4), entries.source, line)
    sizes = dict.fromkeys(CAMERAS, image_size or KITTI_IMAGE_SIZE)
    return _build(matrices, sizes, name or f"kitti_{location.stem}", entries.source)


def _rig_from_raw(folder: Path, *, image_size: tuple[int, int] | None, name: str | None) -> Rig:
    cam = _Entries(folder / "calib_cam_to_cam.txt")
    velo = _Entries(folder / "calib_velo_to_cam.txt")
    matrices: dict[str, tuple[FloatArray, str, int]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for index, key in enumerate(CAMERAS):
        raw_key = f"P_rect_0{index}"
        if raw_key in cam or key == "P2":
            values, line = cam.numbers(raw_key, 12)
            matrices[key] = (values.reshape(3, 4), cam.source, line)
            size_key = f"S_rect_0{index}"
            if image_size is None and size_key in cam:
                wh, size_line = cam.numbers(size_key, 2)
                sizes[key] = _size(wh, cam.source, size_key, size_line)
            else:
                sizes[key] = image_size or KITTI_IMAGE_SIZE
    values, line = cam.numbers("R_rect_00", 9)
    matrices["R0_rect"] = (values.reshape(3, 3), cam.source, line)
    matrices["Tr_velo_to_cam"] = _rotation_translation(velo)
    imu_path = folder / "calib_imu_to_velo.txt"
    if imu_path.is_file():
        matrices["Tr_imu_to_velo"] = _rotation_translation(_Entries(imu_path))
    return _build(matrices, sizes, name or f"kitti_{folder.name}", str(folder))


def _rotation_translation(entries: _Entries) -> tuple[FloatArray, str, int]:
    R, line = entries.numbers("R", 9)
    T, _ = entries.numbers("T", 3)
    return np.hstack([R.reshape(3, 3), T.reshape(3, 1)]), entries.source, line


def _size(values: FloatArray, source: str, field: str, line: int) -> tuple[int, int]:
    width, height = (float(v) for v in values)
    if not (width.is_integer() and height.is_integer() and width > 0 and height > 0):
        raise CalibrationFileError(
            f"image size must be two positive integers, got {values.tolist()}", source=source, field=field, line=line
        )
    return int(width), int(height)


def _rigid(matrix: FloatArray, source: str, field: str, line: int) -> FloatArray:
    """3x4 [R | t] (or 3x3 R) -> 4x4, checking R is a proper rotation.

    KITTI prints rotations with 7 significant digits (orthonormal to ~1e-7); the nearest
    exact rotation (SVD) is used so the rig's frame graph composes exactly.
    """
    try:
        validate_rotation(matrix[:, :3])
    except TransformError as exc:
        raise CalibrationFileError(str(exc), source=source, field=field, line=line) from exc
    u, _, vt = np.linalg.svd(matrix[:, :3])
    T = np.eye(4)
    T[:3, :3] = u @ vt
    if matrix.shape[1] == 4:
        T[:3, 3] = matrix[:, 3]
    return T


def _camera_from_projection(P: FloatArray, source: str, field: str, line: int) -> tuple[FloatArray, FloatArray]:
    """(K (3, 3), baseline transform rect cam0 -> cam i (4, 4)) from a 3x4 projection matrix."""
    K = P[:, :3]
    if not np.allclose(K[2], [0.0, 0.0, 1.0], atol=1e-9) or K[1, 0] != 0.0:
        raise CalibrationFileError(
            f"left 3x3 block must be upper triangular with last row [0, 0, 1], got {K.tolist()}",
            source=source,
            field=field,
            line=line,
        )
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CalibrationFileError(
            f"focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}", source=source, field=field, line=line
        )
    shift = np.eye(4)
    shift[:3, 3] = np.linalg.solve(K, P[:, 3])
    return K, shift


def _build(
    matrices: Mapping[str, tuple[FloatArray, str, int]], sizes: Mapping[str, tuple[int, int]], name: str, source: str
) -> Rig:
    R0 = _rigid(*_with_field(matrices, "R0_rect"))
    velo_to_cam = _rigid(*_with_field(matrices, "Tr_velo_to_cam"))
    # base_link = the IMU when its extrinsic is given, else the velodyne frame.
    has_imu = "Tr_imu_to_velo" in matrices
    base_to_velo = _rigid(*_with_field(matrices, "Tr_imu_to_velo")) if has_imu else np.eye(4)
    velo_to_base = invert_transform(base_to_velo)
    sensors: list[dict[str, Any]] = [
        {
            "id": "velodyne",
            "modality": "lidar",
            "topic": "/sensing/lidar/velodyne/points",
            "frame_id": "velodyne",
            "rate_hz": 10.0,
            "extrinsic": {"matrix": velo_to_base.tolist()},
            "lidar": {
                "fields": ["x", "y", "z", "intensity"],
                "beams": 64,
                "vertical_fov_deg": [-24.9, 2.0],
                "max_range_m": 120.0,
                "horizontal_resolution_deg": 0.08,
            },
        }
    ]
    for key in CAMERAS:
        if key not in matrices:
            continue
        P, file, line = matrices[key]
        K, shift = _camera_from_projection(P, file, key, line)
        cam_from_velo = shift @ R0 @ velo_to_cam
        camera_id = f"cam{key[1]}"
        width, height = sizes[key]
        sensors.append(
            {
                "id": camera_id,
                "modality": "camera",
                "topic": f"/sensing/camera/{camera_id}/image",
                "info_topic": f"/sensing/camera/{camera_id}/camera_info",
                "compressed": False,
                "frame_id": camera_id,
                "rate_hz": 10.0,
                "extrinsic": {"matrix": (velo_to_base @ invert_transform(cam_from_velo)).tolist()},
                "intrinsics": {"K": K.tolist(), "width": width, "height": height, "distortion_model": "none", "D": []},
            }
        )
    document = {
        "rig": {"name": name, "base_frame": "base_link", "reference_sensor": "velodyne"},
        "sensors": sensors,
    }
    return rig_from_dict(document, source=source)


def _with_field(matrices: Mapping[str, tuple[FloatArray, str, int]], field: str) -> tuple[FloatArray, str, str, int]:
    matrix, source, line = matrices[field]
    return matrix, source, field, line

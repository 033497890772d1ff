"""Rig.project: the frame graph + camera model, on synthetic rigs and the real samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from calibration import ProjectionError, Rig, rig_from_dict
from calibration.camera_models import project_camera
from calibration.transforms import apply_transform, invert_transform, make_transform, yaw_to_quaternion

K = [[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]]
#: camera optical frame (x right, y down, z forward) -> a body frame (x forward, y left, z up)
OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _lidar(sensor_id: str, translation: list[float], rotation: Any) -> dict[str, Any]:
    return {
        "id": sensor_id,
        "modality": "lidar",
        "topic": f"/{sensor_id}/points",
        "frame_id": sensor_id,
        "rate_hz": 10.0,
        "extrinsic": _extrinsic(translation, rotation),
        "lidar": {"fields": ["x", "y", "z"], "beams": 32, "vertical_fov_deg": [-30.0, 10.0], "max_range_m": 100.0},
    }


def _camera(
    sensor_id: str, T_base_cam: np.ndarray, K_: Any, size: tuple[int, int], model: str, D: Any
) -> dict[str, Any]:
    return {
        "id": sensor_id,
        "modality": "camera",
        "topic": f"/{sensor_id}/image",
        "frame_id": sensor_id,
        "rate_hz": 10.0,
        "compressed": False,
        "extrinsic": {"matrix": np.asarray(T_base_cam).tolist()},
        "intrinsics": {
            "K": np.asarray(K_).tolist(),
            "width": size[0],
            "height": size[1],
            "distortion_model": model,
            "D": list(D),
        },
    }


def _extrinsic(translation: list[float], rotation: Any) -> dict[str, Any]:
    return {"translation": translation, "rotation_wxyz": [float(v) for v in rotation]}


def _synthetic_rig() -> Rig:
    T_base_cam = make_transform([1.5, 0.1, 1.4], OPTICAL_TO_BODY @ make_transform([0, 0, 0], [1, 0, 0, 0])[:3, :3])
    radar = {
        "id": "radar_front",
        "modality": "radar",
        "topic": "/radar/points",
        "frame_id": "radar_front",
        "rate_hz": 13.0,
        "extrinsic": _extrinsic([3.4, 0.0, 0.5], [1.0, 0.0, 0.0, 0.0]),
        "radar": {
            "fields": ["x", "y", "z", "vr", "rcs"],
            "max_points": 100,
            "max_range_m": 200.0,
            "horizontal_fov_deg": 90.0,
        },
    }
    doc = {
        "rig": {"name": "synthetic"},
        "sensors": [
            _lidar("lidar_top", [1.0, 0.0, 1.9], yaw_to_quaternion(0.3)),
            _camera("cam_front", T_base_cam, K, (1280, 720), "plumb_bob", [-0.1, 0.02, 0.001, 0.0005, 0.0]),
            radar,
        ],
    }
    return rig_from_dict(doc, source="synthetic")


def test_project_composes_the_transform_and_the_camera_model() -> None:
    rig = _synthetic_rig()
    points = np.random.default_rng(0).uniform([-40.0, -20.0, -2.0], [40.0, 20.0, 3.0], (30000, 3))
    uv, depth, valid = rig.project(points, src="lidar_top", camera="cam_front")
    in_camera = apply_transform(rig.transform("lidar_top", "cam_front"), points)
    ref_uv, ref_depth, ref_valid = project_camera(in_camera, rig.sensor("cam_front").camera.intrinsics)
    np.testing.assert_array_equal(valid, ref_valid)
    np.testing.assert_allclose(uv[valid], ref_uv[valid], atol=1e-9)
    np.testing.assert_allclose(depth, ref_depth, atol=1e-12)
    assert 1000 < valid.sum() < 20000
    # Depth is distance along the optical axis = body-forward distance from the camera.
    in_base = apply_transform(rig.transform("lidar_top", "base_link"), points)
    np.testing.assert_allclose(depth, in_base[:, 0] - 1.5, atol=1e-9)


def test_project_from_base_link_and_from_another_sensor() -> None:
    rig = _synthetic_rig()
    point_base = np.array([[20.0, 0.1, 1.4]])  # straight ahead of the camera's centre
    uv, depth, valid = rig.project(point_base, src="base_link", camera="cam_front")
    assert valid.tolist() == [True]
    assert depth[0] == pytest.approx(18.5)
    np.testing.assert_allclose(uv[0], [640.0, 360.0], atol=1e-9)
    point_radar = apply_transform(rig.transform("base_link", "radar_front"), point_base)
    uv_radar, _, _ = rig.project(point_radar, src="radar_front", camera="cam_front")
    np.testing.assert_allclose(uv_radar, uv, atol=1e-9)


def test_project_keeps_non_finite_points_as_invalid() -> None:
    rig = _synthetic_rig()
    points = np.array([[20.0, 0.0, 0.0], [np.nan, 0.0, 0.0], [np.inf, -np.inf, 0.0], [-20.0, 0.0, 0.0]])
    uv, depth, valid = rig.project(points.astype(np.float32), src="base_link", camera="cam_front")
    assert valid.tolist() == [True, False, False, False]
    assert np.all(np.isnan(depth[1:3]))
    assert np.all(np.isnan(uv[1:]))


def test_project_errors_name_the_ids() -> None:
    rig = _synthetic_rig()
    points = np.zeros((4, 3))
    with pytest.raises(ProjectionError, match=r"no sensor 'lidar_rear' \(src\); ids: \['lidar_top', 'cam_front'"):
        rig.project(points, src="lidar_rear", camera="cam_front")
    with pytest.raises(ProjectionError, match=r"no sensor 'cam_back' \(camera\)"):
        rig.project(points, src="lidar_top", camera="cam_back")
    with pytest.raises(
        ProjectionError, match=r"'radar_front' of rig 'synthetic' is a radar, not a camera; cameras: \['cam_front'\]"
    ):
        rig.project(points, src="lidar_top", camera="radar_front")
    with pytest.raises(ProjectionError, match=r"shape \(N, 3\) \[x, y, z\], got \(4, 4\) \(pass points\[:, :3\]\)"):
        rig.project(np.zeros((4, 4)), src="lidar_top", camera="cam_front")
    with pytest.raises(
        ProjectionError, match=r"points from 'lidar_top' must have shape \(N, 3\) \[x, y, z\], got \(3,\)"
    ):
        rig.project(np.zeros(3), src="lidar_top", camera="cam_front")
    with pytest.raises(ProjectionError, match="must be an"):
        rig.project([["a", "b", "c"]], src="lidar_top", camera="cam_front")


def _read_ascii_pcd(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("DATA")) + 1
    return np.loadtxt(lines[start:], dtype=np.float64)


def test_pjlab_raw_distorted_pair_matches_opencv(realdata: Path) -> None:
    folder = realdata / "pjlab_opencalib"
    calib = json.loads((folder / "calib.json").read_text())["lidar2camera"]
    T_cam_lidar = np.asarray(calib["T_cam_lidar"])
    K_ = np.asarray(calib["K"])
    dist = np.asarray(calib["dist_k1_k2_p1_p2"])
    width, height = calib["image_size_wh"]
    doc = {
        "rig": {"name": "pjlab", "reference_sensor": "lidar"},
        "sensors": [
            _lidar("lidar", [0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]),
            _camera("center_camera", invert_transform(T_cam_lidar), K_, (width, height), "plumb_bob", dist),
        ],
    }
    rig = rig_from_dict(doc, source=str(folder / "calib.json"))
    points = _read_ascii_pcd(folder / "lidar2camera" / calib["files"]["lidar"])[:, :3]
    assert points.shape == (calib["num_points"], 3)
    uv, depth, valid = rig.project(points, src="lidar", camera="center_camera")
    in_camera = points @ T_cam_lidar[:3, :3].T + T_cam_lidar[:3, 3]
    reference = cv2.projectPoints(in_camera, np.zeros(3), np.zeros(3), K_, dist)[0][:, 0]
    error = np.linalg.norm(uv[valid] - reference[valid], axis=1)
    assert error.max() < 0.01, f"max error {error.max():.5f} px"
    inside = (reference[:, 0] >= 0) & (reference[:, 0] < width) & (reference[:, 1] >= 0) & (reference[:, 1] < height)
    np.testing.assert_array_equal(valid, inside & (in_camera[:, 2] >= 0.1))
    assert int(valid.sum()) == calib["points_in_image"]  # the count calib.json states
    assert np.all(depth[valid] > 0)


def test_nuscenes_lidar_into_six_cameras_matches_the_static_chain(realdata: Path) -> None:
    from calibration.importers import rig_from_nuscenes

    calib = json.loads((realdata / "nuscenes_scene0061" / "calib.json").read_text())
    # calib.json: lidar2cam includes the ego motion between the lidar and camera stamps; the
    # rig is the static mounting chain, i.e. lidar2cam_static_no_ego_motion = inv(cam2ego) @ lidar2ego.
    assert "lidar2cam" in calib["conventions"]
    raw = np.fromfile(realdata / "nuscenes_scene0061" / calib["lidar_file"], dtype=np.float32)
    points = raw.reshape(-1, 5)[:, :3]
    assert points.shape[0] == calib["num_points"]
    rig = rig_from_nuscenes(realdata / "nuscenes_official")
    assert len(calib["cameras"]) == 6
    for channel, camera in calib["cameras"].items():
        T = np.asarray(camera["lidar2cam_static_no_ego_motion"])
        K_ = np.asarray(camera["K"])
        width, height = camera["image_size_wh"]
        in_camera = points.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
        h = in_camera @ K_.T
        with np.errstate(divide="ignore", invalid="ignore"):
            reference = h[:, :2] / h[:, 2:]
        uv, depth, valid = rig.project(points, src="lidar_top", camera="cam_" + channel[4:].lower())
        error = np.linalg.norm(uv[valid] - reference[valid], axis=1)
        assert valid.sum() > 2500, channel
        assert error.max() < 0.01, f"{channel}: max error {error.max():.5f} px"
        expected = (
            (in_camera[:, 2] >= 0.1)
            & (reference[:, 0] >= 0)
            & (reference[:, 0] < width)
            & (reference[:, 1] >= 0)
            & (reference[:, 1] < height)
        )
        differ = valid != expected
        # Only points within float noise of the image border (or of min_depth) may disagree.
        border = np.minimum.reduce(
            [
                np.abs(reference[:, 0]),
                np.abs(reference[:, 0] - width),
                np.abs(reference[:, 1]),
                np.abs(reference[:, 1] - height),
            ]
        )
        assert np.all((border[differ] < 1e-3) | (np.abs(in_camera[differ, 2] - 0.1) < 1e-6)), channel
        np.testing.assert_allclose(depth, in_camera[:, 2], atol=1e-5)

"""Importers: KITTI text / raw folders, nuScenes tables, ROS CameraInfo and OpenCV YAML."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from calibration import (
    CalibrationFileError,
    Modality,
    RigConfigError,
    default_rig_path,
    load_rig,
    rig_from_dict,
)
from calibration.importers import (
    read_camera_info_yaml,
    replace_camera_intrinsics,
    rig_from_calibrated_sensors,
    rig_from_kitti,
    rig_from_nuscenes,
    rig_with_camera,
)
from calibration.transforms import invert_transform, make_transform

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- KITTI


def _kitti_calib(realdata: Path) -> dict[str, np.ndarray]:
    calib = json.loads((realdata / "kitti_000008" / "calib.json").read_text())
    return {
        key: np.asarray(calib[key]) for key in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo")
    }


def write_kitti(
    path: Path, calib: dict[str, np.ndarray], *, skip: tuple[str, ...] = (), names: dict[str, str] | None = None
) -> Path:
    """A KITTI object calibration file (3x4 / 3x3 rows, as in KITTI's calib/*.txt)."""
    rows = []
    for key in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"):
        if key in skip:
            continue
        block = calib[key][:3, :3] if key == "R0_rect" else calib[key][:3]
        rows.append(f"{(names or {}).get(key, key)}: " + " ".join(f"{float(v)!r}" for v in block.ravel()))
    path.write_text("\n".join(rows) + "\n\n")
    return path


def _kitti_points(realdata: Path) -> np.ndarray:
    return np.fromfile(realdata / "kitti_000008" / "000008.bin", dtype=np.float32).reshape(-1, 4)[:, :3]


def _pixels(M: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.c_[points, np.ones(len(points))] @ M.T
    return h[:, :2] / h[:, 2:3], h[:, 2]


def test_kitti_rig_matches_p2_r0_tr_velo_to_cam(realdata: Path, tmp_path: Path) -> None:
    calib = _kitti_calib(realdata)
    rig = rig_from_kitti(write_kitti(tmp_path / "000008.txt", calib))
    assert rig.ids == ("velodyne", "cam0", "cam1", "cam2", "cam3")
    assert rig.reference_sensor == "velodyne"
    points = _kitti_points(realdata)
    for camera in ("P2", "P3"):
        reference, w = _pixels(calib[camera] @ calib["R0_rect"] @ calib["Tr_velo_to_cam"], points)
        uv, depth, valid = rig.project(points, src="velodyne", camera=f"cam{camera[1]}")
        assert valid.sum() > 15000, "the sample is cropped to the camera's field of view"
        error = np.linalg.norm(uv[valid] - reference[valid], axis=1)
        assert error.max() < 0.01, f"{camera}: max error {error.max():.5f} px"
        np.testing.assert_allclose(depth, w, atol=1e-4)  # w = depth in the (shifted) camera frame
    cam2 = rig.sensor("cam2").camera.intrinsics
    np.testing.assert_array_equal(cam2.K, calib["P2"][:3, :3])
    assert (cam2.width, cam2.height, cam2.distortion_model) == (1242, 375, "none")


def test_kitti_base_link_is_the_imu_when_given_else_the_velodyne(realdata: Path, tmp_path: Path) -> None:
    calib = _kitti_calib(realdata)
    with_imu = rig_from_kitti(write_kitti(tmp_path / "a.txt", calib))
    # The file's rotations are orthonormal to ~1e-7; the importer uses the nearest exact ones.
    np.testing.assert_allclose(
        with_imu.transform("velodyne", "base_link"), invert_transform(calib["Tr_imu_to_velo"]), atol=1e-6
    )
    without = rig_from_kitti(write_kitti(tmp_path / "b.txt", calib, skip=("Tr_imu_to_velo", "P0", "P1", "P3")))
    assert without.ids == ("velodyne", "cam2")
    np.testing.assert_array_equal(without.transform("velodyne", "base_link"), np.eye(4))
    # The chain velodyne -> cam2 does not depend on the choice of base_link.
    np.testing.assert_allclose(
        with_imu.transform("velodyne", "cam2"), without.transform("velodyne", "cam2"), atol=1e-12
    )


def test_kitti_tracking_names_and_raw_folder(realdata: Path, tmp_path: Path) -> None:
    calib = _kitti_calib(realdata)
    names = {"R0_rect": "R_rect", "Tr_velo_to_cam": "Tr_velo_cam", "Tr_imu_to_velo": "Tr_imu_velo"}
    tracking = rig_from_kitti(write_kitti(tmp_path / "0001.txt", calib, names=names), image_size=(1224, 370))
    assert tracking.sensor("cam2").camera.intrinsics.width == 1224
    reference = rig_from_kitti(write_kitti(tmp_path / "object.txt", calib))
    np.testing.assert_allclose(
        tracking.transform("velodyne", "cam2"), reference.transform("velodyne", "cam2"), atol=1e-12
    )

    raw = tmp_path / "2011_09_26"
    raw.mkdir()

    def numbers(a: np.ndarray) -> str:
        return " ".join(f"{float(v)!r}" for v in np.ravel(a))

    lines = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02"]
    for i in range(4):
        lines += [f"S_rect_0{i}: 1.242000e+03 3.750000e+02", f"P_rect_0{i}: {numbers(calib[f'P{i}'][:3])}"]
    lines.append(f"R_rect_00: {numbers(calib['R0_rect'][:3, :3])}")
    (raw / "calib_cam_to_cam.txt").write_text("\n".join(lines) + "\n")
    velo = calib["Tr_velo_to_cam"]
    (raw / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {numbers(velo[:3, :3])}\nT: {numbers(velo[:3, 3])}\n"
        "delta_f: 0.000000e+00 0.000000e+00\ndelta_c: 0.000000e+00 0.000000e+00\n"
    )
    imu = calib["Tr_imu_to_velo"]
    (raw / "calib_imu_to_velo.txt").write_text(f"calib_time: x\nR: {numbers(imu[:3, :3])}\nT: {numbers(imu[:3, 3])}\n")
    raw_rig = rig_from_kitti(raw)
    assert raw_rig.name == "kitti_2011_09_26"
    for camera in ("cam0", "cam2"):
        np.testing.assert_allclose(
            raw_rig.transform("velodyne", camera), reference.transform("velodyne", camera), atol=1e-12
        )
        np.testing.assert_allclose(
            raw_rig.transform(camera, "base_link"), reference.transform(camera, "base_link"), atol=1e-12
        )


KITTI_ERRORS = [
    (
        "missing P2",
        lambda text: "\n".join(line for line in text.splitlines() if not line.startswith("P2")),
        r"field 'P2': is required but missing",
    ),
    (
        "too few values",
        lambda text: text.replace("R0_rect: ", "R0_rect: 1.0 ", 1),
        r"line 5, field 'R0_rect': expected 9 numbers, got 10",
    ),
    (
        "non-numeric",
        lambda text: text.replace("P3: 721.5377", "P3: 7.2l5e+02", 1),
        r"line 4, field 'P3': non-numeric value '7.2l5e\+02'",
    ),
    (
        "not orthonormal",
        lambda text: text.replace("Tr_velo_to_cam: 0.0075", "Tr_velo_to_cam: 0.0175", 1),
        r"line 6, field 'Tr_velo_to_cam': rotation is not orthonormal",
    ),
    (
        "focal <= 0",
        lambda text: text.replace("P2: 721.5377", "P2: -721.5377", 1),
        r"line 3, field 'P2': focal lengths must be positive, got fx=-721.5377",
    ),
    (
        "duplicate",
        lambda text: text + "P2: " + " ".join(["1"] * 12) + "\n",
        r"line 9, field 'P2': given twice \(first on line 3\)",
    ),
    ("not a key line", lambda text: text + "garbage here\n", r"line 9: expected 'KEY: numbers' lines"),
    (
        "bad P shape",
        lambda text: text.replace(
            "P1: 721.5377 0.0 609.5593 -387.5744 0.0 721.5377 172.854 0.0 0.0 0.0 1.0",
            "P1: 721.5377 0.0 609.5593 -387.5744 0.0 721.5377 172.854 0.0 0.0 0.1 1.0",
            1,
        ),
        r"line 2, field 'P1': left 3x3 block must be upper triangular",
    ),
]


@pytest.mark.parametrize(("case", "edit", "message"), KITTI_ERRORS, ids=[case[0] for case in KITTI_ERRORS])
def test_kitti_errors_name_file_line_and_field(
    realdata: Path, tmp_path: Path, case: str, edit: Any, message: str
) -> None:
    good = write_kitti(tmp_path / "good.txt", _kitti_calib(realdata)).read_text()
    bad = tmp_path / "bad.txt"
    bad.write_text(edit(good))
    assert bad.read_text() != good, case
    with pytest.raises(CalibrationFileError, match=f"file {bad}, {message}"):
        rig_from_kitti(bad)


def test_kitti_real_000008_txt_is_only_a_projection_matrix(realdata: Path) -> None:
    # mmdetection3d's demo 000008.txt holds the 4x4 P2 alone (16 numbers, no keys): not a
    # KITTI calibration file. The importer says so instead of guessing an extrinsic.
    path = realdata / "kitti_000008" / "000008.txt"
    with pytest.raises(CalibrationFileError, match=r"line 1: a bare list of 16 numbers without a 'KEY:' prefix"):
        rig_from_kitti(path)
    with pytest.raises(CalibrationFileError, match=r"cannot read KITTI calibration"):
        rig_from_kitti(path.parent / "missing.txt")


# --------------------------------------------------------------------------- nuScenes


def test_nuscenes_rig_naming_and_values(realdata: Path) -> None:
    rig = rig_from_nuscenes(realdata / "nuscenes_official")
    assert rig.name == "nuscenes_n015"
    assert rig.ids == (
        "lidar_top",
        "cam_front",
        "cam_front_right",
        "cam_back_right",
        "cam_back",
        "cam_back_left",
        "cam_front_left",
    )
    lidar = rig.sensor("lidar_top")
    assert (lidar.topic, lidar.frame_id, lidar.rate_hz) == ("/sensing/lidar/top/points", "lidar_top", 20.0)
    assert lidar.lidar.fields == ("x", "y", "z", "intensity", "ring")
    assert lidar.lidar.beams == 32
    camera = rig.sensor("cam_front_left")
    assert camera.topic == "/sensing/camera/front_left/image/compressed"
    assert camera.camera.info_topic == "/sensing/camera/front_left/camera_info"
    assert camera.camera.compressed
    assert camera.rate_hz == 12.0
    intr = camera.camera.intrinsics
    assert (intr.width, intr.height, intr.distortion_model) == (1600, 900, "none")
    assert rig_from_nuscenes(realdata / "nuscenes_official", scene="scene-0061").ids == rig.ids
    assert rig_from_nuscenes(realdata / "nuscenes_official", scene="cc8c0bf57f984915a77078b10eb33198").ids == rig.ids


def test_nuscenes_rig_matches_the_devkit(realdata: Path) -> None:
    nuscenes = pytest.importorskip("nuscenes.nuscenes")
    nusc = nuscenes.NuScenes(version="v1.0-mini", dataroot=str(realdata / "nuscenes_official"), verbose=False)
    rig = rig_from_nuscenes(realdata / "nuscenes_official")
    sample = nusc.sample[0]
    for channel, token in sample["data"].items():
        data = nusc.get("sample_data", token)
        record = nusc.get("calibrated_sensor", data["calibrated_sensor_token"])
        sensor_id = "lidar_top" if channel == "LIDAR_TOP" else "cam_" + channel[4:].lower()
        expected = make_transform(record["translation"], record["rotation"])
        np.testing.assert_allclose(rig.transform(sensor_id, "base_link"), expected, atol=1e-12)
        if channel.startswith("CAM_"):
            np.testing.assert_array_equal(
                rig.sensor(sensor_id).camera.intrinsics.K, np.asarray(record["camera_intrinsic"])
            )
            assert (rig.sensor(sensor_id).camera.intrinsics.width, rig.sensor(sensor_id).camera.intrinsics.height) == (
                data["width"],
                data["height"],
            )


def _records() -> list[dict[str, Any]]:
    K = [[1000.0, 0.0, 800.0], [0.0, 1000.0, 450.0], [0.0, 0.0, 1.0]]
    return [
        {
            "channel": "RADAR_BACK_LEFT",
            "modality": "radar",
            "translation": [-0.5, 0.6, 0.5],
            "rotation": [0.0, 0.0, 0.0, 1.0],
            "camera_intrinsic": [],
        },
        {
            "channel": "CAM_BACK",
            "modality": "camera",
            "translation": [0.0, 0.0, 1.6],
            "rotation": [0.5, -0.5, -0.5, 0.5],
            "camera_intrinsic": K,
        },
        {
            "channel": "LIDAR_TOP",
            "modality": "lidar",
            "translation": [0.9, 0.0, 1.8],
            "rotation": [0.7071068, 0.0, 0.0, -0.7071068],
            "camera_intrinsic": [],
        },
    ]


def test_rig_from_calibrated_sensors_records() -> None:
    rig = rig_from_calibrated_sensors(_records(), name="mine", source="records.json")
    assert rig.ids == ("lidar_top", "cam_back", "radar_back_left")
    radar = rig.sensor("radar_back_left")
    assert (radar.topic, radar.frame_id, radar.rate_hz) == ("/sensing/radar/back_left/points", "radar_back_left", 13.0)
    assert radar.modality is Modality.RADAR
    assert rig.reference_sensor == "lidar_top"
    # Rear camera looks backwards: optical z = base_link -x.
    np.testing.assert_allclose(rig.transform("cam_back", "base_link")[:3, 2], [-1.0, 0.0, 0.0], atol=1e-12)


NUSCENES_RECORD_ERRORS = [
    ("rotation", lambda r: r[1].pop("rotation"), r"field 'records\[1\]\.rotation': is required but missing"),
    (
        "intrinsic",
        lambda r: r[1].update(camera_intrinsic=[]),
        r"field 'records\[1\]\.camera_intrinsic': a camera needs a 3x3 matrix, got \[\]",
    ),
    (
        "modality",
        lambda r: r[0].update(modality="sonar"),
        r"field 'records\[0\]\.modality': unknown modality 'sonar' for RADAR_BACK_LEFT",
    ),
    (
        "translation",
        lambda r: r[2].update(translation=[0.9, "x", 1.8]),
        r"field 'records\[2\]\.translation': expected 3 finite numbers",
    ),
    (
        "duplicate",
        lambda r: r.append(dict(r[1])),
        r"field 'records\[3\]\.channel': channel CAM_BACK appears in records 1 and 3",
    ),
]


@pytest.mark.parametrize(
    ("case", "edit", "message"), NUSCENES_RECORD_ERRORS, ids=[c[0] for c in NUSCENES_RECORD_ERRORS]
)
def test_calibrated_sensor_record_errors(case: str, edit: Any, message: str) -> None:
    records = _records()
    edit(records)
    with pytest.raises(CalibrationFileError, match=f"file records.json, {message}"):
        rig_from_calibrated_sensors(records, source="records.json")


def test_calibrated_sensor_bad_quaternion_goes_through_rig_validation() -> None:
    records = _records()
    records[2]["rotation"] = [0.9, 0.0, 0.0, -0.9]
    with pytest.raises(
        RigConfigError, match=r"file records.json, sensor 'lidar_top', field 'extrinsic.rotation_wxyz': quaternion"
    ):
        rig_from_calibrated_sensors(records, source="records.json")


def test_nuscenes_table_errors(realdata: Path, tmp_path: Path) -> None:
    root = tmp_path / "nus"
    shutil.copytree(realdata / "nuscenes_official" / "v1.0-mini", root / "v1.0-mini")
    with pytest.raises(
        CalibrationFileError, match=r"scene.json, field 'name': no scene named 'scene-9999'; scenes: \['scene-0061'\]"
    ):
        rig_from_nuscenes(root, scene="scene-9999")
    with pytest.raises(
        CalibrationFileError, match=r"nuScenes table folder not found \(dataroot .*, version v1.0-trainval\)"
    ):
        rig_from_nuscenes(root, "v1.0-trainval")
    (root / "v1.0-mini" / "sensor.json").write_text("[{")
    with pytest.raises(CalibrationFileError, match=r"file .*sensor.json: cannot read table"):
        rig_from_nuscenes(root)
    (root / "v1.0-mini" / "sensor.json").unlink()
    with pytest.raises(CalibrationFileError, match=r"sensor.json: nuScenes table sensor.json is missing"):
        rig_from_nuscenes(root)


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("make_default_rig", REPO / "scripts" / "make_default_rig.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_default_rig_reproduces_the_shipped_default_rig(realdata: Path) -> None:
    built = rig_from_dict(_load_script().build(realdata / "nuscenes_official"), source="make_default_rig")
    shipped = load_rig(default_rig_path())
    assert built.ids == shipped.ids
    assert (built.name, built.base_frame, built.reference_sensor) == (
        shipped.name,
        shipped.base_frame,
        shipped.reference_sensor,
    )
    for ours, theirs in zip(built.sensors, shipped.sensors, strict=True):
        assert (ours.modality, ours.topic, ours.frame_id, ours.rate_hz, ours.latency_ns, ours.time_offset_ns) == (
            theirs.modality,
            theirs.topic,
            theirs.frame_id,
            theirs.rate_hz,
            theirs.latency_ns,
            theirs.time_offset_ns,
        ), ours.id
        np.testing.assert_allclose(ours.extrinsic, theirs.extrinsic, atol=1e-9, err_msg=ours.id)
        if ours.modality is Modality.CAMERA:
            assert ours.camera.intrinsics == theirs.camera.intrinsics
            assert (ours.camera.info_topic, ours.camera.compressed) == (
                theirs.camera.info_topic,
                theirs.camera.compressed,
            )
        else:
            assert ours.spec == theirs.spec, ours.id


# --------------------------------------------------------------------------- CameraInfo / OpenCV YAML

ROS_YAML = """\
image_width: 1920
image_height: 1200
camera_name: center_camera
camera_matrix:
  rows: 3
  cols: 3
  data: [2109.75, 0, 949.828, 0, 2071.72, 576.237, 0, 0, 1]
distortion_model: {model}
distortion_coefficients:
  rows: 1
  cols: {count}
  data: {D}
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [1900.0, 0, 960.0, 0, 0, 1900.0, 600.0, 0, 0, 0, 1, 0]
"""


def _ros(tmp_path: Path, model: str = "plumb_bob", D: list[float] | None = None, name: str = "info.yaml") -> Path:
    coefficients = [-0.108, 0.139, -0.0038, -0.0048, 0.0] if D is None else D
    path = tmp_path / name
    path.write_text(ROS_YAML.format(model=model, count=len(coefficients), D=coefficients))
    return path


def test_ros_camera_info_yaml(tmp_path: Path) -> None:
    intr = read_camera_info_yaml(_ros(tmp_path))
    np.testing.assert_array_equal(intr.K, [[2109.75, 0, 949.828], [0, 2071.72, 576.237], [0, 0, 1]])
    assert (intr.width, intr.height, intr.distortion_model) == (1920, 1200, "plumb_bob")
    np.testing.assert_array_equal(intr.D, [-0.108, 0.139, -0.0038, -0.0048, 0.0])
    rational = read_camera_info_yaml(_ros(tmp_path, "rational_polynomial", [0.1] * 8, "r.yaml"))
    assert (rational.distortion_model, rational.D.size) == ("plumb_bob", 8)
    fisheye = read_camera_info_yaml(_ros(tmp_path, "equidistant", [0.01, 0.002, 0.0, 0.0], "f.yaml"))
    assert fisheye.distortion_model == "equidistant"
    assert read_camera_info_yaml(_ros(tmp_path, "plumb_bob", [], "n.yaml")).distortion_model == "none"
    rectified = read_camera_info_yaml(_ros(tmp_path), rectified=True)
    np.testing.assert_array_equal(rectified.K, [[1900.0, 0, 960.0], [0, 1900.0, 600.0], [0, 0, 1]])
    assert rectified.distortion_model == "none"


def test_opencv_filestorage_yaml_written_by_opencv(tmp_path: Path) -> None:
    K = np.array([[2117.87, 0.0, 950.144], [0.0, 2121.65, 588.036], [0.0, 0.0, 1.0]])
    D = np.array([[-0.1264, 0.1281, -0.0011, -0.0008, 0.0]])
    path = tmp_path / "opencv.yaml"
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", 1920)
    storage.write("image_height", 1200)
    storage.write("camera_matrix", K)
    storage.write("distortion_coefficients", D)
    storage.write("avg_reprojection_error", 0.21)
    storage.release()
    assert path.read_text().startswith("%YAML")  # "%YAML:1.0" before OpenCV 5, "%YAML 1.2" since
    intr = read_camera_info_yaml(path)
    np.testing.assert_array_equal(intr.K, K)
    np.testing.assert_array_equal(intr.D, D.ravel())
    assert (intr.width, intr.height, intr.distortion_model) == (1920, 1200, "plumb_bob")
    aliased = tmp_path / "aliased.yaml"
    aliased.write_text(
        "%YAML:1.0\n---\nimage_size: [640, 480]\ndistortion_model: fisheye\n"
        "K: !!opencv-matrix\n   rows: 3\n   cols: 3\n   dt: d\n"
        "   data: [ 300., 0., 320., 0., 300., 240.,\n       0., 0., 1. ]\n"
        "D: !!opencv-matrix\n   rows: 4\n   cols: 1\n   dt: d\n   data: [ 0.1, 0.01, 0.0, 0.0 ]\n"
    )
    fisheye = read_camera_info_yaml(aliased)
    assert (fisheye.width, fisheye.height, fisheye.distortion_model) == (640, 480, "equidistant")


CAMERA_INFO_ERRORS = [
    (
        "unknown model",
        lambda t: t.replace("distortion_model: plumb_bob", "distortion_model: kannala_brandt"),
        r"line 8, field 'distortion_model': unknown distortion model 'kannala_brandt'",
    ),
    (
        "focal",
        lambda t: t.replace("data: [2109.75,", "data: [0.0,"),
        r"line 4, field 'camera_matrix': focal lengths must be positive, got fx=0.0",
    ),
    (
        "rows x cols",
        lambda t: t.replace("  cols: 5", "  cols: 4"),
        r"line 9, field 'distortion_coefficients.data': has 5 values but rows x cols = 1 x 4",
    ),
    (
        "count",
        lambda t: t.replace(
            "cols: 5\n  data: [-0.108, 0.139, -0.0038, -0.0048, 0.0]", "cols: 3\n  data: [-0.108, 0.139, -0.0038]"
        ),
        r"field 'distortion_coefficients': distortion model 'plumb_bob' takes 4 or 5 or 8 coefficients, got 3",
    ),
    (
        "missing K",
        lambda t: t.replace("camera_matrix:", "camera_matrx:"),
        r"field 'camera_matrix': is required but missing",
    ),
    (
        "non-numeric",
        lambda t: t.replace("data: [2109.75,", "data: [abc,"),
        r"line 4, field 'camera_matrix.data': expected a list of numbers",
    ),
    (
        "width",
        lambda t: t.replace("image_width: 1920", "image_width: -3"),
        r"line 1, field 'image_width': expected a positive integer, got -3",
    ),
    ("yaml", lambda t: t.replace("camera_name: center_camera", "camera_name: [center"), r"invalid YAML"),
    (
        "skewed K",
        lambda t: t.replace("0, 2071.72, 576.237, 0, 0, 1]", "0, 2071.72, 576.237, 0.5, 0, 1]"),
        r"line 4, field 'camera_matrix': K must be upper triangular",
    ),
]


@pytest.mark.parametrize(("case", "edit", "message"), CAMERA_INFO_ERRORS, ids=[c[0] for c in CAMERA_INFO_ERRORS])
def test_camera_info_errors_name_file_line_and_field(tmp_path: Path, case: str, edit: Any, message: str) -> None:
    good = _ros(tmp_path).read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit(good))
    assert bad.read_text() != good, case
    with pytest.raises(CalibrationFileError, match=f"file {bad}.*{message}"):
        read_camera_info_yaml(bad)


def test_replace_camera_intrinsics_keeps_everything_else(tmp_path: Path) -> None:
    rig = load_rig(default_rig_path())
    intr = read_camera_info_yaml(_ros(tmp_path))
    updated = replace_camera_intrinsics(rig, "cam_front", intr)
    assert updated.sensor("cam_front").camera.intrinsics == intr
    for before, after in zip(rig.sensors, updated.sensors, strict=True):
        assert before.id == after.id
        np.testing.assert_allclose(after.extrinsic, before.extrinsic, atol=1e-12)
        if before.id != "cam_front" and before.modality is Modality.CAMERA:
            assert after.camera.intrinsics == before.camera.intrinsics
    with pytest.raises(CalibrationFileError, match=r"rig 'nuscenes_like_default' has no sensor 'cam_roof'"):
        replace_camera_intrinsics(rig, "cam_roof", intr)
    with pytest.raises(CalibrationFileError, match=r"sensor 'lidar_top' is a lidar, not a camera"):
        replace_camera_intrinsics(rig, "lidar_top", intr)


def test_pjlab_through_the_opencv_yaml_path_matches_project_points(realdata: Path, tmp_path: Path) -> None:
    calib = json.loads((realdata / "pjlab_opencalib" / "calib.json").read_text())["lidar2camera"]
    K, dist = np.asarray(calib["K"]), np.asarray(calib["dist_k1_k2_p1_p2"])
    T_cam_lidar = np.asarray(calib["T_cam_lidar"])
    path = tmp_path / "center_camera.yaml"
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", calib["image_size_wh"][0])
    storage.write("image_height", calib["image_size_wh"][1])
    storage.write("camera_matrix", K)
    storage.write("distortion_coefficients", dist)
    storage.release()
    rig = rig_with_camera("center_camera", read_camera_info_yaml(path), invert_transform(T_cam_lidar), name="pjlab")
    rng = np.random.default_rng(0)
    points = rng.uniform([2.0, -20.0, -3.0], [60.0, 20.0, 5.0], (20000, 3))  # lidar frame, ahead
    uv, _, valid = rig.project(points, src="base_link", camera="center_camera")  # base_link = lidar
    reference = cv2.projectPoints(
        points @ T_cam_lidar[:3, :3].T + T_cam_lidar[:3, 3], np.zeros(3), np.zeros(3), K, dist
    )[0][:, 0]
    assert valid.sum() > 3000
    assert np.abs(uv[valid] - reference[valid]).max() < 0.01

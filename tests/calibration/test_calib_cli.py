"""``fusion calib import ...`` end to end, in subprocesses, reloading what it writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from calibration import default_rig_path, load_rig
from calibration.importers import rig_from_kitti, rig_from_nuscenes

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


def fusion(*args: str | Path) -> subprocess.CompletedProcess[str]:
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    return subprocess.run(
        [str(python), "-m", "fusion_node.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _kitti_file(realdata: Path, tmp_path: Path) -> Path:
    calib = json.loads((realdata / "kitti_000008" / "calib.json").read_text())
    rows = []
    for key in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"):
        block = np.asarray(calib[key])[:3, :3] if key == "R0_rect" else np.asarray(calib[key])[:3]
        rows.append(f"{key}: " + " ".join(f"{float(v):.12e}" for v in block.ravel()))
    path = tmp_path / "000008.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_kitti_writes_a_rig_that_projects_like_p2(realdata: Path, tmp_path: Path) -> None:
    calib_file = _kitti_file(realdata, tmp_path)
    out = tmp_path / "kitti.yaml"
    result = fusion("calib", "import", "kitti", calib_file, "--image-size", "1242x375", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: rig 'kitti_000008', 5 sensors: velodyne, cam0, cam1, cam2, cam3" in result.stdout
    rig = load_rig(out)
    assert out.read_text().startswith("# Rig imported with: fusion calib import kitti")
    calib = json.loads((realdata / "kitti_000008" / "calib.json").read_text())
    M = np.asarray(calib["P2"]) @ np.asarray(calib["R0_rect"]) @ np.asarray(calib["Tr_velo_to_cam"])
    points = np.fromfile(realdata / "kitti_000008" / "000008.bin", dtype=np.float32).reshape(-1, 4)[:, :3]
    h = np.c_[points, np.ones(len(points))] @ M.T
    uv, _, valid = rig.project(points, src="velodyne", camera="cam2")
    assert valid.sum() > 15000
    assert np.abs(uv[valid] - h[valid, :2] / h[valid, 2:3]).max() < 0.01
    # The YAML round trip keeps the importer's geometry.
    direct = rig_from_kitti(calib_file)
    for sensor_id in direct.ids:
        np.testing.assert_allclose(
            rig.transform(sensor_id, "base_link"), direct.transform(sensor_id, "base_link"), atol=1e-12
        )


def test_import_nuscenes(realdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "nuscenes.yaml"
    dataroot = realdata / "nuscenes_official"
    result = fusion("calib", "import", "nuscenes", dataroot, "--scene", "scene-0061", "--out", out)
    assert result.returncode == 0, result.stderr
    rig = load_rig(out)
    direct = rig_from_nuscenes(dataroot)
    assert rig.ids == direct.ids
    assert rig.name == "nuscenes_n015"
    for sensor_id in rig.ids:
        np.testing.assert_allclose(
            rig.transform(sensor_id, "base_link"), direct.transform(sensor_id, "base_link"), atol=1e-12
        )
    assert rig.sensor("cam_back").camera.intrinsics == direct.sensor("cam_back").camera.intrinsics


CAMERA_INFO = """\
image_width: 1600
image_height: 900
camera_name: cam_front
camera_matrix: {rows: 3, cols: 3, data: [1250.0, 0, 800.0, 0, 1250.0, 450.0, 0, 0, 1]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [-0.05, 0.01, 0.0, 0.0, 0.0]}
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [1250.0, 0, 800.0, 0, 0, 1250.0, 450.0, 0, 0, 0, 1, 0]}
"""


def test_import_camera_info_into_an_existing_rig(tmp_path: Path) -> None:
    info = tmp_path / "front.yaml"
    info.write_text(CAMERA_INFO)
    out = tmp_path / "rig.yaml"
    result = fusion(
        "calib", "import", "camera-info", info, "--rig", default_rig_path(), "--camera", "cam_front", "--out", out
    )
    assert result.returncode == 0, result.stderr
    rig, default = load_rig(out), load_rig(default_rig_path())
    intr = rig.sensor("cam_front").camera.intrinsics
    assert intr.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(intr.D, [-0.05, 0.01, 0.0, 0.0, 0.0])
    assert rig.ids == default.ids
    assert rig.sensor("cam_back").camera.intrinsics == default.sensor("cam_back").camera.intrinsics
    np.testing.assert_allclose(
        rig.transform("lidar_top", "cam_front"), default.transform("lidar_top", "cam_front"), atol=1e-12
    )


def test_import_camera_info_as_a_new_one_camera_rig(tmp_path: Path) -> None:
    info = tmp_path / "front.yaml"
    info.write_text(CAMERA_INFO)
    out = tmp_path / "camera.yaml"
    extrinsic = ["1.7", "0.0", "1.5", "0.5", "-0.5", "0.5", "-0.5"]  # optical frame looking along base_link +x
    result = fusion(
        "calib", "import", "camera-info", info, "--camera", "cam_front", "--extrinsic", *extrinsic, "--out", out
    )
    assert result.returncode == 0, result.stderr
    rig = load_rig(out)
    assert rig.ids == ("cam_front",)
    assert rig.sensor("cam_front").topic == "/sensing/camera/front/image/compressed"
    uv, depth, valid = rig.project(np.array([[21.7, 0.0, 1.5]]), src="base_link", camera="cam_front")
    assert valid.tolist() == [True]
    assert depth[0] == pytest.approx(20.0)
    np.testing.assert_allclose(uv[0], [800.0, 450.0], atol=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("kitti", "{bad_kitti}"), r"error: file .*bad\.txt, line 3, field 'P2': non-numeric value 'x'"),
        (("kitti", "{missing}"), r"error: file .*missing\.txt: cannot read KITTI calibration"),
        (("nuscenes", "{tmp}"), r"error: file .*v1\.0-mini: nuScenes table folder not found"),
        (
            ("camera-info", "{bad_info}", "--rig", "{default}", "--camera", "cam_front"),
            r"error: file .*bad_info\.yaml, line 5, field 'distortion_model': unknown distortion model 'fish'",
        ),
        (
            ("camera-info", "{info}", "--rig", "{default}", "--camera", "lidar_top"),
            r"error: .*sensor 'lidar_top' is a lidar, not a camera",
        ),
        (
            ("camera-info", "{info}", "--camera", "cam_x", "--extrinsic", "0", "0", "0", "2", "0", "0", "0"),
            r"error: .*quaternion \[2\.0, 0\.0, 0\.0, 0\.0\] has norm 2\.000000",
        ),
    ],
    ids=[
        "kitti-non-numeric",
        "kitti-missing-file",
        "nuscenes-no-tables",
        "camera-info-model",
        "camera-info-not-camera",
        "bad-extrinsic",
    ],
)
def test_bad_input_exits_1_with_one_line_naming_file_and_field(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    bad_kitti = tmp_path / "bad.txt"
    bad_kitti.write_text(
        "P0: " + " ".join(["1"] * 12) + "\nP1: " + " ".join(["1"] * 12) + "\nP2: 7 0 6 x 0 7 1 0 0 0 1 0\n"
    )
    info = tmp_path / "info.yaml"
    info.write_text(CAMERA_INFO)
    bad_info = tmp_path / "bad_info.yaml"
    bad_info.write_text(CAMERA_INFO.replace("distortion_model: plumb_bob", "distortion_model: fish"))
    values = {
        "bad_kitti": bad_kitti,
        "missing": tmp_path / "missing.txt",
        "tmp": tmp_path,
        "bad_info": bad_info,
        "info": info,
        "default": default_rig_path(),
    }
    out = tmp_path / "out.yaml"
    result = fusion("calib", "import", *(a.format(**values) for a in args), "--out", out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not out.exists()


def test_usage_errors_and_help() -> None:
    result = fusion("calib", "import", "kitti")
    assert result.returncode == 2
    assert "the following arguments are required: path, --out" in result.stderr
    listing = fusion("calib", "--help")
    assert listing.returncode == 0
    assert "import" in listing.stdout
    formats = fusion("calib", "import", "--help")
    assert all(name in formats.stdout for name in ("kitti", "nuscenes", "camera-info"))


def test_written_yaml_is_a_plain_rig_document(realdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "k.yaml"
    assert fusion("calib", "import", "kitti", _kitti_file(realdata, tmp_path), "--out", out).returncode == 0
    document = yaml.safe_load(out.read_text())
    assert set(document) == {"rig", "sensors"}
    assert document["rig"]["reference_sensor"] == "velodyne"
    validate = fusion("rig", "validate", out)
    assert validate.returncode == 0, validate.stderr

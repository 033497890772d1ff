"""``fusion calib overlay | refine | time-offset`` end to end in subprocesses: files in
``tmp_path``, outputs read back (PNG, rig YAML, printed offsets), and the error exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from calibration import CameraIntrinsics, load_rig
from calibration.refine import lidar_camera_rig, lidar_cameras_rig, rotation_angle_deg, with_mounting
from fusion_node.commands.calib_overlay import PointFileError, read_points

REPO = Path(__file__).resolve().parents[2]
MODULES = {
    "overlay": "fusion_node.commands.calib_overlay",
    "refine": "fusion_node.commands.calib_refine",
    "time-offset": "fusion_node.commands.calib_time_offset",
}
K = np.array([[800.0, 0.0, 320.0], [0.0, 800.0, 240.0], [0.0, 0.0, 1.0]])
# lidar x forward, y left, z up -> camera optical x right, y down, z forward
LIDAR_TO_CAMERA = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.2], [1.0, 0.0, 0.0, -0.5], [0.0, 0.0, 0.0, 1.0]])


def calib(action: str, *args: object, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run one action through its module (what ``fusion calib ACTION`` dispatches to)."""
    return subprocess.run(
        [sys.executable, "-m", MODULES[action], *map(str, args)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )


def scene_scan() -> np.ndarray:
    """(N, 4) float32 [x, y, z, intensity]: a wall 20 m ahead and a 1 m pole at 10 m, 16 rings."""
    elevation, azimuth = np.meshgrid(np.radians(np.linspace(-10, 10, 16)), np.radians(np.arange(-60, 60, 0.2) + 0.1))
    direction = np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], -1
    )
    distance = np.where(np.abs(np.tan(azimuth)) * 10 <= 0.5, 10.0, 20.0) / direction[..., 0]
    points = (direction * distance[..., None]).reshape(-1, 3)
    return np.hstack([points, np.full((len(points), 1), 7.0)]).astype(np.float32)


@pytest.fixture
def rig_files(tmp_path: Path) -> dict[str, Path]:
    """A lidar + camera rig, the scan as .bin, and a 640x480 image of the pole (bright) on the wall."""
    rig = lidar_camera_rig(LIDAR_TO_CAMERA, CameraIntrinsics(K=K, width=640, height=480), camera_id="cam_front")
    rig.dump(tmp_path / "rig.yaml")
    scan = scene_scan()
    scan.tofile(tmp_path / "scan.bin")
    image = np.full((480, 640, 3), 70, np.uint8)
    pole = np.array([[10.0, -0.5, -3.0], [10.0, 0.5, 3.0]])
    (u0, _v0), (u1, _v1) = rig.project(pole, src="lidar", camera="cam_front")[0]
    image[:, round(min(u0, u1)) : round(max(u0, u1))] = 210
    cv2.imwrite(str(tmp_path / "front.png"), image)
    backwards = lidar_camera_rig(
        np.diag([-1.0, 1.0, -1.0, 1.0]) @ LIDAR_TO_CAMERA,
        CameraIntrinsics(K=K, width=640, height=480),
        camera_id="cam_rear",
    )
    backwards.dump(tmp_path / "rear_rig.yaml")
    return {
        "rig": tmp_path / "rig.yaml",
        "rear": tmp_path / "rear_rig.yaml",
        "scan": tmp_path / "scan.bin",
        "image": tmp_path / "front.png",
    }


def test_overlay_writes_a_png_and_prints_the_score(rig_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "overlays"
    done = calib(
        "overlay",
        "--rig",
        rig_files["rig"],
        "--lidar",
        rig_files["scan"],
        "--image",
        f"cam_front={rig_files['image']}",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    png = cv2.imread(str(out / "cam_front.png"))
    assert png.shape == (480, 640, 3)
    line = done.stdout.strip()
    assert line.startswith("cam_front")
    assert "lidar points in view" in line
    assert float(line.split("score ")[1].split()[0]) > 0.0  # the pole's silhouette lies on the image's edges
    # points were drawn in depth colours: the overlay differs from the (dimmed) image around the pole
    assert np.abs(png.astype(int) - cv2.imread(str(rig_files["image"])).astype(int) * 0.75).max() > 60


def test_overlay_reports_a_camera_that_never_sees_the_lidar(rig_files: dict[str, Path], tmp_path: Path) -> None:
    done = calib(
        "overlay",
        "--rig",
        rig_files["rear"],
        "--lidar",
        rig_files["scan"],
        "--image",
        f"cam_rear={rig_files['image']}",
        "--out",
        tmp_path / "o",
    )
    assert done.returncode == 1
    assert "camera cam_rear never sees lidar lidar" in done.stdout
    assert "no camera sees lidar 'lidar'" in done.stderr
    assert (tmp_path / "o" / "cam_rear.png").is_file()  # the image is still written, without points


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "front.png"], "--image expects CAMERA_ID=FILE, got 'front.png'"),
        (["--image", "cam_back=front.png"], "rig 'lidar_camera' has no camera 'cam_back'; cameras: ['cam_front']"),
        (["--image", "cam_front=missing.png"], "cannot read image missing.png (for camera 'cam_front')"),
        (["--lidar-columns", "x,y,z", "--image", "cam_front=front.png"], "do not split into rows of 3 columns"),
    ],
)
def test_overlay_bad_arguments_exit_1_naming_the_problem(
    rig_files: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    if "--lidar-columns" in args:
        np.zeros(16, np.float32).tofile(rig_files["scan"])  # 16 values: not rows of 3
    done = calib("overlay", "--rig", "rig.yaml", "--lidar", "scan.bin", *args, "--out", "o", cwd=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr


def test_point_files_pcd_ascii_binary_and_npy(tmp_path: Path) -> None:
    points = np.array([[1.5, -2.0, 0.25, 9.0], [3.0, 4.0, -1.0, 12.0]], dtype=np.float32)
    header = (
        "VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
        "WIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\n"
    )
    (tmp_path / "a.pcd").write_text(header + "DATA ascii\n" + "\n".join(" ".join(map(str, p)) for p in points) + "\n")
    (tmp_path / "b.pcd").write_bytes((header + "DATA binary\n").encode() + points.tobytes())
    np.save(tmp_path / "c.npy", points[:, :3])
    for name in ("a.pcd", "b.pcd"):
        array, names = read_points(tmp_path / name)
        np.testing.assert_allclose(array, points)
        assert names == ["x", "y", "z", "intensity"]
    array, names = read_points(tmp_path / "c.npy", "x,y,z")
    np.testing.assert_allclose(array, points[:, :3])
    (tmp_path / "d.pcd").write_bytes((header + "DATA binary_compressed\n").encode())
    with pytest.raises(PointFileError, match=r"d.pcd: 0 of the header's 2 points could be read"):
        read_points(tmp_path / "d.pcd")
    (tmp_path / "f.pcd").write_bytes((header + "DATA lzma\n").encode())
    with pytest.raises(PointFileError, match=r"f.pcd: PCD DATA 'lzma' is not supported"):
        read_points(tmp_path / "f.pcd")
    (tmp_path / "e.txt").write_text("1 2 3")
    with pytest.raises(PointFileError, match=r"unsupported point file type '.txt'"):
        read_points(tmp_path / "e.txt")


def test_point_files_pcd_binary_compressed_keep_every_field(tmp_path: Path) -> None:
    """PCL's LZF-compressed PCD (written here by Open3D, as PCL writes it) reads back with its
    fields in header order; a truncated copy is an error naming the file, not fewer points."""
    import open3d as o3d

    rng = np.random.default_rng(4)
    xyz = rng.normal(size=(500, 3)).astype(np.float32) * 20
    intensity = rng.uniform(0, 255, size=(500, 1)).astype(np.float32)
    ring = (np.arange(500) % 32).astype(np.uint16).reshape(-1, 1)
    cloud = o3d.t.geometry.PointCloud()
    cloud.point["positions"] = o3d.core.Tensor(xyz)
    cloud.point["intensity"] = o3d.core.Tensor(intensity)
    cloud.point["ring"] = o3d.core.Tensor(ring)
    assert o3d.t.io.write_point_cloud(str(tmp_path / "c.pcd"), cloud, write_ascii=False, compressed=True)
    assert b"DATA binary_compressed" in (tmp_path / "c.pcd").read_bytes()[:400]
    array, names = read_points(tmp_path / "c.pcd")
    assert set(names) == {"x", "y", "z", "intensity", "ring"}
    np.testing.assert_array_equal(array[:, [names.index(a) for a in "xyz"]], xyz)
    np.testing.assert_array_equal(array[:, names.index("intensity")], intensity[:, 0])
    np.testing.assert_array_equal(array[:, names.index("ring")], ring[:, 0])
    data = (tmp_path / "c.pcd").read_bytes()
    (tmp_path / "cut.pcd").write_bytes(data[: len(data) - 100])
    with pytest.raises(PointFileError, match=r"cut.pcd: 0 of the header's 500 points could be read"):
        read_points(tmp_path / "cut.pcd")


def test_refine_writes_the_corrected_rig(realdata: Path, tmp_path: Path) -> None:
    pj = realdata / "pjlab_opencalib"
    calib_json = json.loads((pj / "calib.json").read_text())["lidar2camera"]
    intrinsics = CameraIntrinsics(
        K=np.array(calib_json["K"]),
        width=1920,
        height=1200,
        distortion_model="plumb_bob",
        D=calib_json["dist_k1_k2_p1_p2"],
    )
    T_true = np.array(calib_json["T_cam_lidar"])
    T_start = T_true.copy()
    T_start[:3, :3] = Rotation.from_euler("xyz", [-0.6, 0.5, 0.5], degrees=True).as_matrix() @ T_true[:3, :3]
    lidar_camera_rig(T_start, intrinsics, lidar_id="top_lidar", camera_id="center_camera").dump(tmp_path / "rig.yaml")
    done = calib(
        "refine", "--rig", tmp_path / "rig.yaml", "--camera", "center_camera",
        "--pair", f"{pj / 'lidar2camera' / '0.pcd'}={pj / 'lidar2camera' / '0.png'}",
        "--grid-deg", "1.5", "--out", tmp_path / "refined.yaml", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["cameras"] == ["center_camera"]
    assert report["refined"] == "camera extrinsic"
    assert report["frame"] == "center_camera"
    assert report["lidar"] == "top_lidar"
    assert set(report["sharpness"]) == {"rx", "ry", "rz", "tx", "ty", "tz"}
    refined = load_rig(tmp_path / "refined.yaml").transform("top_lidar", "center_camera")
    assert rotation_angle_deg(refined[:3, :3] @ T_true[:3, :3].T) < 0.3
    assert report["rotation_change_deg"] == pytest.approx(
        rotation_angle_deg(refined[:3, :3] @ T_start[:3, :3].T), abs=0.01
    )


def test_refine_with_views_remounts_the_lidar_against_all_six_nuscenes_cameras(realdata: Path, tmp_path: Path) -> None:
    """``--view CAMERA SCAN IMAGE`` x 6: the lidar is refined, the cameras stay, and the rotation
    ends within 0.3 degrees of the sample's calibration from 0.8 degrees off."""
    root = realdata / "nuscenes_scene0061"
    calib_json = json.loads((root / "calib.json").read_text())
    cameras = {
        name.lower(): (
            np.array(spec["lidar2cam"]),
            CameraIntrinsics(K=np.array(spec["K"]), width=spec["image_size_wh"][0], height=spec["image_size_wh"][1]),
        )
        for name, spec in calib_json["cameras"].items()
    }
    true_rig = lidar_cameras_rig(cameras, lidar_id="lidar_top")
    start = np.eye(4)
    start[:3, :3] = Rotation.from_euler("xyz", [0.5, -0.4, 0.5], degrees=True).as_matrix()
    with_mounting(true_rig, "lidar_top", start).dump(tmp_path / "rig.yaml")
    views = []
    for name, spec in calib_json["cameras"].items():
        views += ["--view", name.lower(), root / calib_json["lidar_file"], root / spec["img_file"]]
    done = calib(
        "refine", "--rig", tmp_path / "rig.yaml", *views, "--lidar-columns", "x,y,z,intensity,ring",
        "--translation", "--grid-deg", "1.0", "--out", tmp_path / "refined.yaml", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["refined"] == "lidar mounting"
    assert report["frame"] == "lidar_top"
    assert sorted(report["cameras"]) == sorted(cameras)
    refined = load_rig(tmp_path / "refined.yaml")
    assert rotation_angle_deg(refined.to_base("lidar_top")[:3, :3]) < 0.3
    for camera, (T_true, _) in cameras.items():
        np.testing.assert_allclose(refined.to_base(camera), true_rig.to_base(camera), atol=1e-6)  # YAML round trip
        T = refined.transform("lidar_top", camera)
        assert rotation_angle_deg(T[:3, :3] @ T_true[:3, :3].T) < 0.3


def test_refine_wants_either_pairs_of_one_camera_or_views(rig_files: dict[str, Path], tmp_path: Path) -> None:
    pair = f"{rig_files['scan']}={rig_files['image']}"
    view = ["--view", "cam_front", rig_files["scan"], rig_files["image"]]
    for args, message in (
        (["--camera", "cam_front", "--pair", pair, *view], "give either --camera with --pair"),
        ([], "give either --camera with --pair"),
        (["--pair", pair], "--pair needs --camera"),
        (["--camera", "cam_front"], "--camera cam_front needs at least one --pair"),
        (["--view", "cam_nope", rig_files["scan"], rig_files["image"]], "cam_nope"),
        (["--camera", "cam_front", "--pair", pair, "--trend-factor", "-1"], "DiscontinuityConfig.trend_factor = -1.0"),
        (["--camera", "cam_front", "--pair", pair, "--trend-factor", "nan"], "DiscontinuityConfig.trend_factor = nan"),
    ):
        done = calib("refine", "--rig", rig_files["rig"], *args, "--out", tmp_path / "r.yaml")
        assert done.returncode == 1, args
        assert message in done.stderr, (args, done.stderr)
    assert not (tmp_path / "r.yaml").exists()


def test_refine_reports_a_camera_that_never_sees_the_lidar(rig_files: dict[str, Path], tmp_path: Path) -> None:
    done = calib(
        "refine",
        "--rig",
        rig_files["rear"],
        "--camera",
        "cam_rear",
        "--pair",
        f"{rig_files['scan']}={rig_files['image']}",
        "--out",
        tmp_path / "r.yaml",
    )
    assert done.returncode == 1
    assert "camera 'cam_rear' never sees lidar 'lidar'" in done.stderr
    assert not (tmp_path / "r.yaml").exists()


# --- time offset ---------------------------------------------------------------------------


def _drive(stamps_s: np.ndarray, turning: bool) -> np.ndarray:
    """(N, 4, 4) base_link -> odom poses: 5 m/s with a sinusoidal yaw rate (or straight)."""
    amplitude, period = (0.3 if turning else 0.0), 3.0
    yaw = amplitude * period / (2 * np.pi) * (1 - np.cos(2 * np.pi * stamps_s / period))
    fine = np.linspace(0.0, stamps_s.max(), 20001)
    fine_yaw = amplitude * period / (2 * np.pi) * (1 - np.cos(2 * np.pi * fine / period))
    x = np.interp(stamps_s, fine, np.concatenate([[0], np.cumsum(5.0 * np.cos(fine_yaw[:-1]) * np.diff(fine))]))
    y = np.interp(stamps_s, fine, np.concatenate([[0], np.cumsum(5.0 * np.sin(fine_yaw[:-1]) * np.diff(fine))]))
    poses = np.tile(np.eye(4), (len(stamps_s), 1, 1))
    poses[:, :3, :3] = Rotation.from_euler("z", yaw[:, None]).as_matrix()
    poses[:, 0, 3], poses[:, 1, 3] = x, y
    return poses


def _write_bag(path: Path, turning: bool, offset_ns: int) -> None:
    """Odometry at 50 Hz stamped ``offset_ns`` late; 10 Hz sweeps of a static box world."""
    from fusion_node.bag import BagWriter
    from fusion_node.convert import sample_to_odometry, xyzi_to_pointcloud2
    from perception.samples import OdometrySample

    rng = np.random.default_rng(1)
    world = []
    for center in rng.uniform([-20, -30], [70, 30], (60, 2)):
        size = rng.uniform(0.5, 5.0, 3)
        faces = rng.uniform(-0.5, 0.5, (300, 3)) * size
        faces[np.arange(300), rng.integers(0, 2, 300)] = (
            np.sign(faces[np.arange(300), rng.integers(0, 2, 300)]) * 0.5 * size[0]
        )
        world.append(faces + np.array([center[0], center[1], size[2] / 2]))
    ground = np.column_stack([rng.uniform(-30, 80, 6000), rng.uniform(-40, 40, 6000), np.zeros(6000)])
    world_points = np.vstack([*world, ground])
    odom_t, lidar_t = np.arange(0.0, 9.0, 0.02), np.arange(0.5, 8.5, 0.1)
    with BagWriter(path) as bag:
        bag.add_topic("/odom", "nav_msgs/msg/Odometry")
        bag.add_topic("/points", "sensor_msgs/msg/PointCloud2")
        for t, pose in zip(odom_t, _drive(odom_t, turning), strict=True):
            stamp = round(t * 1e9) + offset_ns
            sample = OdometrySample(
                stamp_ns=stamp, frame_id="odom", child_frame_id="base_link", position=pose[:3, 3],
                orientation_wxyz=np.roll(Rotation.from_matrix(pose[:3, :3]).as_quat(), 1),
                linear_velocity=np.zeros(3), angular_velocity=np.zeros(3),
            )  # fmt: skip
            bag.write("/odom", sample_to_odometry(sample), stamp)
        for t, pose in zip(lidar_t, _drive(lidar_t, turning), strict=True):
            local = (world_points - pose[:3, 3]) @ pose[:3, :3]
            local = local[np.linalg.norm(local[:, :2], axis=1) < 40.0]
            cloud = np.hstack([local, np.ones((len(local), 1))]).astype(np.float32)
            bag.write("/points", xyzi_to_pointcloud2(cloud, frame_id="lidar", stamp_ns=round(t * 1e9)), round(t * 1e9))


def test_time_offset_from_a_bag(tmp_path: Path) -> None:
    _write_bag(tmp_path / "drive", turning=True, offset_ns=37_000_000)
    done = calib(
        "time-offset", "--bag", tmp_path / "drive", "--odometry-topic", "/odom", "--lidar-topic", "/points", "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["odometry_offset_ms"] == pytest.approx(-37.0, abs=5.0)
    assert report["well_defined"]
    assert report["correlation"] > 0.95
    assert report["sweeps"] == 80
    assert report["odometry_messages"] == 450


def test_time_offset_refuses_a_straight_drive_and_unknown_topics(tmp_path: Path) -> None:
    _write_bag(tmp_path / "straight", turning=False, offset_ns=0)
    done = calib("time-offset", "--bag", tmp_path / "straight", "--odometry-topic", "/odom", "--lidar-topic", "/points")
    assert done.returncode == 1
    assert "barely turns (straight driving)" in done.stderr
    done = calib(
        "time-offset", "--bag", tmp_path / "straight", "--odometry-topic", "/odometry", "--lidar-topic", "/points"
    )
    assert done.returncode == 1
    assert "has no topic /odometry; topics: ['/odom', '/points']" in done.stderr


def test_actions_are_registered_in_fusion_calib() -> None:
    from fusion_node.commands import calib as calib_command

    missing = [name for name in MODULES if name not in calib_command.ACTIONS]
    if missing:
        pytest.skip(f"fusion calib does not list {missing} yet (fusion_node/commands/calib.py ACTIONS)")
    for name, module in MODULES.items():
        assert calib_command.ACTIONS[name].module == module
    done = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "calib", "overlay", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert "--lidar-columns" in done.stdout

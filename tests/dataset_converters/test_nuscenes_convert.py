"""`fusion convert nuscenes`: the real key frame and a synthetic multi-sample scene, checked
against the official nuscenes-devkit (reference reader, tests only) and the mcap reader."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from calibration import default_rig_path, load_rig
from calibration.transforms import apply_transform, invert_transform, matrix_to_quaternion, yaw_to_quaternion
from dataset_converters.errors import DatasetError, PcdError
from dataset_converters.nuscenes import (
    RADAR_FIELDS,
    open_scene,
    parse_pcd,
    radar_scan,
    read_lidar_bin,
    with_odometry,
)
from fusion_node.bag import GROUND_TRUTH_TOPIC, BagReader
from fusion_node.cli import main as fusion
from fusion_node.convert import (
    camera_info_to_intrinsics,
    odometry_to_sample,
    pointcloud2_to_array,
    pointcloud2_to_radar,
)
from perception.classes import CLASSES
from perception.ground_truth import load_ground_truth

nuscenes = pytest.importorskip("nuscenes.nuscenes", reason="nuscenes-devkit is the reference reader")
from nuscenes.eval.common.utils import quaternion_yaw  # noqa: E402
from nuscenes.eval.detection.utils import category_to_detection_name  # noqa: E402
from nuscenes.utils.data_classes import RadarPointCloud  # noqa: E402
from pyquaternion import Quaternion  # noqa: E402

OFFICIAL = "nuscenes_official"
RADAR_PCD_FIELDS = [
    *("x", "y", "z", "dyn_prop", "id", "rcs", "vx", "vy", "vx_comp", "vy_comp", "is_quality_valid"),
    *("ambig_state", "x_rms", "y_rms", "invalid_state", "pdh0", "vx_rms", "vy_rms"),
]
RADAR_PCD_SIZES = [4, 4, 4, 1, 2, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1]
RADAR_PCD_TYPES = list("FFFIIFFFFFIIIIIIII")


# -- helpers ---------------------------------------------------------------------------------
def _convert(dataroot: Path, out: Path, *extra: str) -> int:
    return fusion(["convert", "nuscenes", "--dataroot", str(dataroot), "--out", str(out), "--no-progress", *extra])


def _devkit_boxes(nusc: Any, lidar_token: str) -> list[dict[str, Any]]:
    """The devkit's boxes of a key-frame sweep in the ego frame at the sweep's stamp."""
    sd = nusc.get("sample_data", lidar_token)
    pose = nusc.get("ego_pose", sd["ego_pose_token"])
    rotation = Quaternion(pose["rotation"]).inverse
    out = []
    for box in nusc.get_boxes(lidar_token):
        name = category_to_detection_name(box.name)
        if name is None:
            continue
        box.translate(-np.array(pose["translation"]))
        box.rotate(rotation)
        velocity = rotation.rotation_matrix @ nusc.box_velocity(box.token)
        out.append(
            {"center": box.center, "wlh": box.wlh, "yaw": quaternion_yaw(box.orientation), "name": name, "v": velocity}
        )
    return out


def _assert_boxes_match_devkit(boxes: Any, reference: list[dict[str, Any]]) -> None:
    assert len(boxes) == len(reference)
    np.testing.assert_allclose(boxes.centers, [r["center"] for r in reference], rtol=0, atol=1e-6)
    yaw_error = np.angle(np.exp(1j * (boxes.yaws - np.array([r["yaw"] for r in reference]))))
    assert np.abs(yaw_error).max() < 1e-6
    wlh = np.array([r["wlh"] for r in reference])
    np.testing.assert_array_equal(boxes.sizes, wlh[:, [1, 0, 2]])
    assert [CLASSES[i] for i in boxes.labels] == [r["name"] for r in reference]
    np.testing.assert_allclose(boxes.velocities, [r["v"][:2] for r in reference], rtol=0, atol=1e-9)


def _write_pcd(path: Path, rows: np.ndarray) -> None:
    codes = {("F", 4): "<f4", ("I", 1): "i1", ("I", 2): "<i2"}
    dtype = np.dtype(
        [(n, codes[(t, s)]) for n, t, s in zip(RADAR_PCD_FIELDS, RADAR_PCD_TYPES, RADAR_PCD_SIZES, strict=True)]
    )
    data = np.zeros(len(rows), dtype=dtype)
    for j, name in enumerate(RADAR_PCD_FIELDS):
        data[name] = rows[:, j]
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(RADAR_PCD_FIELDS)}\nSIZE {' '.join(map(str, RADAR_PCD_SIZES))}\n"
        f"TYPE {' '.join(RADAR_PCD_TYPES)}\nCOUNT {' '.join(['1'] * 18)}\nWIDTH {len(rows)}\nHEIGHT 1\n"
        f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(rows)}\nDATA binary\n"
    )
    # the devkit reader needs at least one byte after the last point (it asserts end < len)
    path.write_bytes(header.encode() + data.tobytes() + b"\n")


def _radar_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = np.zeros((n, 18))
    rows[:, 0:2] = rng.uniform(-40, 40, (n, 2))
    rows[:, 2] = 0.0
    rows[:, 3] = rng.integers(0, 8, n)  # dyn_prop 0..7 (7 is filtered out)
    rows[:, 4] = np.arange(n)
    rows[:, 5] = rng.uniform(-5, 20, n)  # rcs
    rows[:, 6:10] = rng.normal(0, 5, (n, 4))  # vx vy vx_comp vy_comp
    rows[:, 11] = rng.choice([1, 3, 3, 3], n)  # ambig_state: 3 kept
    rows[:, 14] = rng.choice([0, 0, 0, 1], n)  # invalid_state: 0 kept
    return rows


# -- the real key frame ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def official_bag(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("official") / "bag"
    assert _convert(realdata / OFFICIAL, out, "--version", "v1.0-mini") == 0
    return out


def test_official_bag_content_equals_the_files(official_bag: Path, realdata: Path) -> None:
    root = realdata / OFFICIAL
    tables = {
        name: json.loads((root / "v1.0-mini" / f"{name}.json").read_text())
        for name in ("sample_data", "calibrated_sensor")
    }
    files = {sd["filename"].split("/")[1]: sd for sd in tables["sample_data"]}
    calibrated = {c["token"]: c for c in tables["calibrated_sensor"]}
    with BagReader(official_bag) as bag:
        topics = bag.topics
        items = list(bag.messages())
    assert topics["/sensing/lidar/top/points"] == "sensor_msgs/msg/PointCloud2"
    assert sum(1 for t in topics if t.endswith("/image/compressed")) == 6
    assert topics["/localization/odometry"] == "nav_msgs/msg/Odometry"
    (lidar,) = [m for m in items if m.topic == "/sensing/lidar/top/points"]
    raw = np.fromfile(root / files["LIDAR_TOP"]["filename"], dtype=np.float32).reshape(-1, 5)
    assert raw.shape[0] == 34688
    assert np.array_equal(pointcloud2_to_array(lidar.msg, ("x", "y", "z", "intensity", "ring")), raw)
    assert lidar.msg.header.frame_id == "lidar_top"
    assert lidar.log_time_ns == files["LIDAR_TOP"]["timestamp"] * 1000
    for channel in ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_FRONT_LEFT"):
        short = channel[4:].lower()
        (image,) = [m for m in items if m.topic == f"/sensing/camera/{short}/image/compressed"]
        (info,) = [m for m in items if m.topic == f"/sensing/camera/{short}/camera_info"]
        sd = files[channel]
        assert bytes(image.msg.data) == (root / sd["filename"]).read_bytes()
        assert image.msg.format == "jpeg"
        assert image.msg.header.frame_id == f"cam_{short}"
        intrinsics = camera_info_to_intrinsics(info.msg)
        np.testing.assert_array_equal(intrinsics.K, calibrated[sd["calibrated_sensor_token"]]["camera_intrinsic"])
        assert (intrinsics.width, intrinsics.height) == (1600, 900)
        assert image.log_time_ns == sd["timestamp"] * 1000
    assert [m.log_time_ns for m in items] == sorted(m.log_time_ns for m in items)
    odometry = [odometry_to_sample(m.msg) for m in items if m.topic == "/localization/odometry"]
    assert len(odometry) == 7
    assert {o.frame_id for o in odometry} == {"odom"}
    # the car drives at about 9.2 m/s (README of the sample), forward in base_link
    assert all(9.0 < o.linear_velocity[0] < 9.5 and abs(o.linear_velocity[1]) < 0.3 for o in odometry)
    rig = load_rig(official_bag / "rig.yaml")
    assert {"lidar_top", "cam_front", "odometry"} <= set(rig.ids)


def test_official_bag_opens_with_the_mcap_reader(official_bag: Path) -> None:
    (file,) = official_bag.glob("*.mcap")
    with file.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        decoded = [(schema.name, channel.topic, msg) for schema, channel, _, msg in reader.iter_decoded_messages()]
    assert len(decoded) == 1 + 6 * 2 + 7 + 1
    for schema, _, msg in decoded:
        assert type(msg).__name__ == schema.split("/")[-1]
    markers = [msg for _, topic, msg in decoded if topic == GROUND_TRUTH_TOPIC]
    assert len(markers) == 1
    assert len([m for m in markers[0].markers if m.type == 5]) == 68


def test_official_ground_truth_equals_the_devkit(official_bag: Path, realdata: Path) -> None:
    nusc = nuscenes.NuScenes(version="v1.0-mini", dataroot=str(realdata / OFFICIAL), verbose=False)
    lidar_token = nusc.sample[0]["data"]["LIDAR_TOP"]
    truth = load_ground_truth(official_bag)
    (frame,) = truth.frames
    assert frame.stamp_ns == nusc.get("sample_data", lidar_token)["timestamp"] * 1000
    reference = _devkit_boxes(nusc, lidar_token)
    assert len(reference) == 68  # 69 annotations, one movable_object.pushable_pullable
    _assert_boxes_match_devkit(frame.boxes, reference)
    assert np.isnan(frame.boxes.velocities).all()  # one sample: the devkit cannot estimate any
    anns = [nusc.get("sample_annotation", t) for t in nusc.sample[0]["anns"]]
    kept = [a for a in anns if category_to_detection_name(a["category_name"])]
    assert frame.boxes.num_lidar_points.tolist() == [a["num_lidar_pts"] for a in kept]
    pose = nusc.get("ego_pose", nusc.get("sample_data", lidar_token)["ego_pose_token"])
    np.testing.assert_allclose(frame.ego_pose[:3, 3], pose["translation"], atol=1e-12)
    assert truth.occupancy is not None
    assert truth.occupancy[0].sum() > 50


def test_class_mapping_agrees_with_the_devkit(realdata: Path) -> None:
    from perception.classes import nuscenes_label

    categories = json.loads((realdata / OFFICIAL / "v1.0-mini" / "category.json").read_text())
    names = [c["name"] for c in categories] + ["vehicle.bus.bendy", "human.pedestrian.police_officer", "noise"]
    for name in names:
        label = nuscenes_label(name)
        assert (CLASSES[label] if label is not None else None) == category_to_detection_name(name), name


def test_scene0061_boxes_in_the_lidar_frame(official_bag: Path, realdata: Path) -> None:
    """Second check against the mmdetection3d boxes (LIDAR_TOP frame, float32 calibration):
    centres to 2e-5 m; yaw to 1e-3 rad (mmdet measures yaw with pyquaternion's
    yaw_pitch_roll, which differs from the heading azimuth by up to 6e-4 rad in the tilted
    lidar frame); and the points inside each box recounted exactly as mmdet did."""
    reference = json.loads((realdata / "nuscenes_scene0061" / "gt_boxes.json").read_text())["boxes"]
    reference = [b for b in reference if b["label"] >= 0]
    rig = load_rig(official_bag / "rig.yaml")
    boxes = load_ground_truth(official_bag).frames[0].boxes
    in_lidar = boxes.transformed(invert_transform(rig.sensor("lidar_top").extrinsic))
    np.testing.assert_allclose(in_lidar.centers, [b["center_xyz"] for b in reference], atol=2e-5)
    np.testing.assert_array_equal(in_lidar.sizes, [b["lwh"] for b in reference])
    yaw_error = np.angle(np.exp(1j * (in_lidar.yaws - [b["yaw"] for b in reference])))
    assert np.abs(yaw_error).max() < 1e-3
    assert [CLASSES[i] for i in boxes.labels] == [b["name"] for b in reference]
    assert boxes.num_lidar_points.tolist() == [b["num_lidar_pts_in_info"] for b in reference]
    points = read_lidar_bin(next((realdata / OFFICIAL / "samples" / "LIDAR_TOP").iterdir())).points
    recount = [b["num_lidar_pts_recount_gravity_centre"] for b in reference]
    assert in_lidar.count_points(points).tolist() == recount
    # the same points in base_link: upright boxes there, so a few points on faces differ
    in_base = boxes.count_points(apply_transform(rig.sensor("lidar_top").extrinsic, points[:, :3]))
    assert np.abs(in_base - recount).max() <= 5


# -- a synthetic multi-sample scene ------------------------------------------------------------
T0_US = 1_600_000_000_000_000
SPEED, YAW_RATE, YAW0 = 8.0, 0.1, 0.3


def _ego(t_us: int) -> dict[str, Any]:
    t = (t_us - T0_US) * 1e-6
    yaw = YAW0 + YAW_RATE * t
    x = 400.0 + SPEED / YAW_RATE * (math.sin(yaw) - math.sin(YAW0))
    y = 1100.0 - SPEED / YAW_RATE * (math.cos(yaw) - math.cos(YAW0))
    return {"translation": [x, y, 0.0], "rotation": yaw_to_quaternion(yaw).tolist()}


def _build_dataset(root: Path) -> dict[str, Any]:
    """A 3-sample scene in the devkit layout: lidar key frames + sweeps, one camera, one
    radar, a camera whose files are missing, moving and static annotations."""
    rng = np.random.default_rng(5)
    rig = load_rig(default_rig_path())
    version = root / "v1.0-test"
    version.mkdir(parents=True)
    (root / "maps").mkdir()
    cv2.imwrite(str(root / "maps" / "mask.png"), np.zeros((1, 1), np.uint8))
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in (
        "attribute", "visibility", "category", "instance", "sample_annotation", "calibrated_sensor", "sensor",
        "ego_pose", "sample_data", "sample", "scene", "log", "map",
    )}  # fmt: skip
    tables["log"] = [{"token": "log0", "logfile": "l", "vehicle": "n015", "date_captured": "2020", "location": "x"}]
    tables["map"] = [
        {"token": "map0", "category": "semantic_prior", "filename": "maps/mask.png", "log_tokens": ["log0"]}
    ]
    channels = {"LIDAR_TOP": "lidar", "CAM_FRONT": "camera", "RADAR_FRONT": "radar", "CAM_BACK": "camera"}
    for channel, modality in channels.items():
        sensor = rig.sensor(channel.lower())
        tables["sensor"].append({"token": f"s_{channel}", "channel": channel, "modality": modality})
        K = sensor.camera.intrinsics.scaled(0.1).K.tolist() if modality == "camera" else []
        tables["calibrated_sensor"].append(
            {
                "token": f"c_{channel}",
                "sensor_token": f"s_{channel}",
                "translation": sensor.extrinsic[:3, 3].tolist(),
                "rotation": matrix_to_quaternion(sensor.extrinsic[:3, :3]).tolist(),
                "camera_intrinsic": K,
            }
        )
    samples = [T0_US + i * 500_000 for i in range(3)]
    for i, t in enumerate(samples):
        tables["sample"].append(
            {
                "token": f"sample{i}",
                "timestamp": t,
                "scene_token": "scene0",
                "prev": f"sample{i - 1}" if i else "",
                "next": f"sample{i + 1}" if i < 2 else "",
            }
        )
    files: list[tuple[str, int, str, bool]] = []  # channel, timestamp, sample token, key frame
    for i, t in enumerate(samples):
        files += [("LIDAR_TOP", t, f"sample{i}", True), ("CAM_FRONT", t - 10_000, f"sample{i}", True)]
        files += [("RADAR_FRONT", t + 5_000, f"sample{i}", True), ("CAM_BACK", t - 20_000, f"sample{i}", True)]
        if i < 2:
            files += [("LIDAR_TOP", t + k * 50_000, f"sample{i + 1}", False) for k in (1, 2, 3)]
    for n, (channel, t, sample, key) in enumerate(files):
        folder = "samples" if key else "sweeps"
        ext = {"lidar": ".pcd.bin", "camera": ".jpg", "radar": ".pcd"}[channels[channel]]
        filename = f"{folder}/{channel}/{channel}__{t}{ext}"
        size = (160, 90) if channels[channel] == "camera" else (0, 0)
        tables["ego_pose"].append({"token": f"sd{n}", "timestamp": t, **_ego(t)})
        tables["sample_data"].append(
            {
                "token": f"sd{n}",
                "sample_token": sample,
                "ego_pose_token": f"sd{n}",
                "calibrated_sensor_token": f"c_{channel}",
                "timestamp": t,
                "fileformat": ext.split(".")[1],
                "is_key_frame": key,
                "width": size[0],
                "height": size[1],
                "filename": filename,
                "prev": "",
                "next": "",
            }
        )
        path = root / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if channel == "LIDAR_TOP":
            path.write_bytes(rng.normal(0, 10, (200 + n, 5)).astype(np.float32).tobytes())
        elif channel == "CAM_FRONT":
            path.write_bytes(cv2.imencode(".jpg", rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))[1].tobytes())
        elif channel == "RADAR_FRONT":
            _write_pcd(path, _radar_rows(rng, 40))
    categories = ["vehicle.car", "human.pedestrian.child", "animal", "vehicle.truck"]
    tables["category"] = [{"token": f"cat{i}", "name": name, "description": ""} for i, name in enumerate(categories)]
    # instance 0: car at 5 m/s in all samples; 1: child in samples 0 and 2; 2: animal; 3: truck in sample 1 only
    presence = {0: [0, 1, 2], 1: [0, 2], 2: [0, 1, 2], 3: [1]}
    for inst, where in presence.items():
        tokens = [f"ann{inst}_{i}" for i in where]
        tables["instance"].append(
            {
                "token": f"inst{inst}",
                "category_token": f"cat{inst}",
                "nbr_annotations": len(tokens),
                "first_annotation_token": tokens[0],
                "last_annotation_token": tokens[-1],
            }
        )
        for k, i in enumerate(where):
            t = (samples[i] - T0_US) * 1e-6
            tables["sample_annotation"].append(
                {
                    "token": tokens[k],
                    "sample_token": f"sample{i}",
                    "instance_token": f"inst{inst}",
                    "visibility_token": "",
                    "attribute_tokens": [],
                    "translation": [410.0 + 3 * inst + 5.0 * t * (inst == 0), 1105.0 + 2 * inst, 0.9 + 0.1 * t],
                    "size": [1.9 - 0.2 * inst, 4.5 - inst, 1.6],
                    "rotation": yaw_to_quaternion(0.2 * inst + 0.05 * t).tolist(),
                    "prev": tokens[k - 1] if k else "",
                    "next": tokens[k + 1] if k + 1 < len(tokens) else "",
                    "num_lidar_pts": 10 * inst + i,
                    "num_radar_pts": 0,
                }
            )
    tables["scene"] = [
        {
            "token": "scene0",
            "log_token": "log0",
            "nbr_samples": 3,
            "first_sample_token": "sample0",
            "last_sample_token": "sample2",
            "name": "scene-test",
            "description": "synthetic",
        }
    ]
    for name, rows in tables.items():
        (version / f"{name}.json").write_text(json.dumps(rows, indent=0))
    for _, t, _, _ in [f for f in files if f[0] == "CAM_BACK"]:
        assert not (root / f"samples/CAM_BACK/CAM_BACK__{t}.jpg").exists()
    return {"samples": samples, "files": files}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nuscenes_synthetic")
    _build_dataset(root)
    return root


def test_synthetic_scene_records_and_ground_truth(synthetic: Path) -> None:
    scene = open_scene(synthetic, "v1.0-test")
    assert scene.name == "scene-test"
    assert scene.missing_files == 3
    assert scene.channels == ("CAM_FRONT", "LIDAR_TOP", "RADAR_FRONT")
    assert len(scene.files) == 3 * 3 + 6
    rig = with_odometry(load_rig(default_rig_path()), 50.0)
    records = list(scene.records(rig))
    assert [r.stamp_ns for r in records] == sorted(r.stamp_ns for r in records)
    assert sum(r.sensor_id == "lidar_top" for r in records) == 9  # 3 key frames + 6 sweeps
    odometry = [r.payload for r in records if r.sensor_id == "odometry"]
    assert len(odometry) == len(scene.pose_stamps_ns) == 3 * 4 + 6
    for sample in odometry:
        np.testing.assert_allclose(sample.linear_velocity, [SPEED, 0, 0], atol=1e-6)
        np.testing.assert_allclose(sample.angular_velocity, [0, 0, YAW_RATE], atol=1e-6)

    nusc = nuscenes.NuScenes(version="v1.0-test", dataroot=str(synthetic), verbose=False)
    truth = scene.ground_truth
    assert len(truth) == 3
    for frame, sample in zip(truth.frames, nusc.sample, strict=True):
        lidar_token = sample["data"]["LIDAR_TOP"]
        assert frame.stamp_ns == sample["timestamp"] * 1000
        _assert_boxes_match_devkit(frame.boxes, _devkit_boxes(nusc, lidar_token))
    car = truth.frames[1].boxes.select(truth.frames[1].boxes.track_ids == 0)
    assert np.hypot(*car.velocities[0]) == pytest.approx(5.0, abs=0.05)  # ground speed, not relative
    truck = truth.frames[1].boxes.select(truth.frames[1].boxes.labels == CLASSES.index("truck"))
    assert np.isnan(truck.velocities).all()  # a single annotation has no velocity
    assert all("animal" not in CLASSES[i] for f in truth.frames for i in f.boxes.labels)


def test_synthetic_scene_converts_to_a_bag(synthetic: Path, tmp_path: Path) -> None:
    assert _convert(synthetic, tmp_path / "bag", "--version", "v1.0-test", "--storage", "sqlite3") == 0
    with BagReader(tmp_path / "bag") as bag:
        counts = bag.message_counts
        radar = [m for m in bag.messages(["/sensing/radar/front/points"])]
    assert counts["/sensing/lidar/top/points"] == 9
    assert counts["/sensing/radar/front/points"] == 3
    assert counts[GROUND_TRUTH_TOPIC] == 3
    assert counts["/localization/odometry"] == 18
    assert "/sensing/camera/back/image/compressed" not in counts
    reference = RadarPointCloud.from_file(str(synthetic / "samples/RADAR_FRONT" / sorted(
        p.name for p in (synthetic / "samples/RADAR_FRONT").iterdir())[0]))  # fmt: skip
    points = pointcloud2_to_radar(radar[0].msg)
    _check_radar(points, reference.points)
    assert load_rig(tmp_path / "bag" / "rig.yaml").sensor("odometry").topic == "/localization/odometry"


def _check_radar(points: np.ndarray, reference: np.ndarray) -> None:
    """Our (N, 6) radar points against the devkit's (18, N) RadarPointCloud.points."""
    assert points.shape == (reference.shape[1], 6)
    assert 0 < len(points) < 40
    np.testing.assert_allclose(points[:, :3], reference[:3].T, atol=1e-6)
    np.testing.assert_allclose(points[:, 5], reference[5], atol=1e-6)
    unit = reference[:2] / np.linalg.norm(reference[:3], axis=0)
    np.testing.assert_allclose(points[:, 3], (unit * reference[6:8]).sum(0), atol=1e-5)
    np.testing.assert_allclose(points[:, 4], (unit * reference[8:10]).sum(0), atol=1e-5)


def test_radar_pcd_parser_matches_the_devkit(tmp_path: Path) -> None:
    rows = _radar_rows(np.random.default_rng(1), 60)
    path = tmp_path / "radar.pcd"
    _write_pcd(path, rows)
    cloud = parse_pcd(path.read_bytes(), str(path))
    assert cloud.dtype.names == tuple(RADAR_PCD_FIELDS)
    assert cloud.shape == (60,)
    np.testing.assert_allclose(cloud["rcs"], rows[:, 5].astype(np.float32))
    scan = radar_scan(cloud)
    assert scan.fields == RADAR_FIELDS
    _check_radar(scan.points, RadarPointCloud.from_file(str(path)).points)
    assert len(radar_scan(cloud, filtered=False).points) == 60
    # a moving target straight ahead: vr is its radial speed, positive = moving away
    one = rows[:1].copy()
    one[0, 0:3], one[0, 6:10], one[0, [3, 11, 14]] = [10.0, 0.0, 0.0], [3.0, 4.0, -1.0, 2.0], [0, 3, 0]
    _write_pcd(tmp_path / "one.pcd", one)
    vr = radar_scan(parse_pcd((tmp_path / "one.pcd").read_bytes())).points[0]
    np.testing.assert_allclose(vr[3:5], [3.0, -1.0])
    empty = rows[:3].copy()
    empty[0, 0] = np.nan  # the devkit's marker of an empty scan
    _write_pcd(tmp_path / "empty.pcd", empty)
    assert radar_scan(parse_pcd((tmp_path / "empty.pcd").read_bytes())).points.shape == (0, 6)


def test_pcd_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "radar.pcd"
    _write_pcd(path, _radar_rows(np.random.default_rng(2), 10))
    data = path.read_bytes()
    with pytest.raises(PcdError, match=r"r.pcd: POINTS 10 x 43 bytes needs 430 bytes of data, file has 200"):
        parse_pcd(data[: data.index(b"DATA binary\n") + 12 + 200], "r.pcd")
    with pytest.raises(PcdError, match=r"r.pcd: only 'DATA binary'.*got DATA ascii"):
        parse_pcd(data.replace(b"DATA binary", b"DATA ascii"), "r.pcd")
    with pytest.raises(PcdError, match=r"r.pcd: PCD header ends without a DATA line"):
        parse_pcd(b"VERSION 0.7\nFIELDS x\n", "r.pcd")
    with pytest.raises(PcdError, match=r"field 'x' has unsupported TYPE F SIZE 3"):
        parse_pcd(data.replace(b"SIZE 4 4 4", b"SIZE 3 4 4"), "r.pcd")
    with pytest.raises(PcdError, match=r"lacks field\(s\) \['vx_comp'"):
        radar_scan(parse_pcd(data.replace(b" vx_comp ", b" vx_cmp "), "r.pcd"), source="r.pcd")
    bad_bin = tmp_path / "bad.pcd.bin"
    bad_bin.write_bytes(b"\x00" * 21)
    with pytest.raises(DatasetError, match=r"bad.pcd.bin: 21 bytes is not a whole number of float32 x5 points"):
        read_lidar_bin(bad_bin)


# -- bad arguments ---------------------------------------------------------------------------
def test_bad_arguments_exit_1_naming_the_value(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ([str(tmp_path / "nope"), "v1.0-test"], "nuScenes dataroot .*nope is not a directory"),
        ([str(synthetic), "v1.0-trainval"], r"no nuScenes version 'v1.0-trainval'.*found \['v1.0-test'\]"),
        ([str(synthetic), "v1.0-test", "--scene", "scene-9999"], r"no scene 'scene-9999'; scenes: \['scene-test'\]"),
    ]
    for (root, version, *extra), pattern in cases:
        assert _convert(Path(root), tmp_path / "out", "--version", version, *extra) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: "), err
        assert re.search(pattern, err), err
        assert not (tmp_path / "out").exists()
    (tmp_path / "exists").mkdir()
    assert _convert(synthetic, tmp_path / "exists", "--version", "v1.0-test") == 1
    assert "exists already" in capsys.readouterr().err
    lidar_only = tmp_path / "lidar_only.yaml"
    rig = load_rig(default_rig_path())
    document = rig.to_dict()
    document["sensors"] = [s for s in document["sensors"] if s["id"] != "radar_front"]
    lidar_only.write_text(yaml.safe_dump(document))
    assert _convert(synthetic, tmp_path / "out", "--version", "v1.0-test", "--rig", str(lidar_only)) == 1
    err = capsys.readouterr().err
    assert "channel RADAR_FRONT needs a radar sensor 'radar_front'" in err
    assert "lidar_only.yaml" in err
    assert not (tmp_path / "out").exists()


def test_datasets_package_is_ros_free(repo: Path) -> None:
    code = (
        "import sys\n"
        "for name in ('rclpy', 'sensor_msgs', 'std_msgs', 'nav_msgs', 'visualization_msgs'):\n"
        "    sys.modules[name] = None\n"
        "import dataset_converters.nuscenes, perception.ground_truth, perception.classes\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr

"""Ground truth: Boxes geometry and validation, rasters, and the ground_truth.npz format."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import perception.ground_truth as gt_module
from calibration.transforms import invert_transform, make_transform, yaw_to_quaternion
from perception.bev_grid import BevGrid
from perception.classes import (
    CLASS_COLORS,
    CLASSES,
    NUSCENES_CATEGORY_TO_CLASS,
    UnknownClassError,
    class_color,
    class_label,
    nuscenes_label,
)
from perception.errors import GroundTruthError
from perception.ground_truth import (
    BOX_EDGES,
    FORMAT_VERSION,
    GROUND_TRUTH_FILE,
    Boxes,
    FrameTruth,
    GroundTruth,
    load_ground_truth,
    rasterize_boxes,
    save_ground_truth,
)


def _boxes(n: int = 5, seed: int = 0) -> Boxes:
    rng = np.random.default_rng(seed)
    return Boxes.create(
        centers=rng.uniform(-20, 20, (n, 3)),
        sizes=rng.uniform(0.5, 5, (n, 3)),
        yaws=rng.uniform(-math.pi, math.pi, n),
        labels=rng.integers(0, len(CLASSES), n),
        velocities=rng.normal(0, 3, (n, 2)),
        track_ids=np.arange(n) + 100,
        num_lidar_points=rng.integers(-1, 50, n),
        scores=rng.uniform(0, 1, n).astype(np.float32),
    )


def _local(boxes: Boxes, points: np.ndarray) -> np.ndarray:
    """Reference: points in each box's own frame, (N, M, 3), by explicit 4x4 transforms."""
    out = []
    for i in range(len(boxes)):
        T = make_transform(boxes.centers[i], yaw_to_quaternion(boxes.yaws[i]))
        p = points @ invert_transform(T)[:3, :3].T + invert_transform(T)[:3, 3]
        out.append(p)
    return np.stack(out)


# -- classes ---------------------------------------------------------------------------------
def test_classes_follow_the_nuscenes_detection_order_and_mapping() -> None:
    assert CLASSES == (
        "car",
        "truck",
        "construction_vehicle",
        "bus",
        "trailer",
        "barrier",
        "motorcycle",
        "bicycle",
        "pedestrian",
        "traffic_cone",
    )
    assert len(CLASS_COLORS) == len(CLASSES) == len(set(CLASS_COLORS))
    assert set(NUSCENES_CATEGORY_TO_CLASS.values()) == set(CLASSES)
    assert nuscenes_label("human.pedestrian.police_officer") == CLASSES.index("pedestrian")
    assert nuscenes_label("vehicle.bus.bendy") == CLASSES.index("bus")
    assert nuscenes_label("movable_object.pushable_pullable") is None
    assert nuscenes_label("human.pedestrian.wheelchair") is None
    assert class_label("traffic_cone") == 9
    assert class_color(0) == pytest.approx((1.0, 127 / 255, 14 / 255))
    with pytest.raises(UnknownClassError, match=r"'van'"):
        class_label("van")
    with pytest.raises(UnknownClassError, match=r"label 10"):
        class_color(10)


# -- Boxes validation --------------------------------------------------------------------------
def _fields(n: int = 3) -> dict[str, Any]:
    b = _boxes(n)
    return {name: getattr(b, name) for name in gt_module._BOX_FIELDS}


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("centers", np.zeros((3, 2)), r"Boxes.centers: expected shape \(N, 3\), got \(3, 2\)"),
        ("sizes", np.array([[1.0, 1, 1], [1, 0, 1], [1, 1, 1]]), r"Boxes.sizes\[1\] = \[1.0, 0.0, 1.0\]: must be"),
        ("sizes", np.array([[1.0, 1, 1], [1, 1, 1], [1, np.nan, 1]]), r"Boxes.sizes\[2\]"),
        ("centers", np.array([[0.0, 0, 0], [np.inf, 0, 0], [0, 0, 0]]), r"Boxes.centers\[1\].*finite"),
        ("yaws", np.array([0.0, np.nan, 0.0]), r"Boxes.yaws\[1\]"),
        ("velocities", np.array([[0.0, 0], [np.nan, 1.0], [0, 0]]), r"Boxes.velocities\[1\].*both components"),
        ("velocities", np.array([[0.0, 0], [0, 0], [np.inf, 0]]), r"Boxes.velocities\[2\]"),
        ("labels", np.array([0, 10, 1]), r"Boxes.labels\[1\] = 10: must be in \[0, 10\)"),
        ("labels", np.array([0.0, 1.0, 2.0]), r"Boxes.labels: expected integers, got dtype float64"),
        ("labels", np.array([0, 1]), r"Boxes.labels: has 2 rows, centers has 3"),
        ("num_lidar_points", np.array([0, -2, 5]), r"Boxes.num_lidar_points\[1\] = -2"),
        ("scores", np.array([0.5, 1.5, 1.0]), r"Boxes.scores\[1\] = 1.5: must be in \[0, 1\]"),
        ("track_ids", np.array(["a", "b", "c"]), r"Boxes.track_ids: expected integers"),
    ],
)
def test_boxes_reject_bad_fields_naming_field_and_index(field: str, value: Any, pattern: str) -> None:
    values = _fields()
    values[field] = value
    with pytest.raises(GroundTruthError, match=pattern):
        Boxes(**values)


def test_boxes_are_read_only_typed_copies() -> None:
    centers = np.zeros((2, 3), dtype=np.float32)
    b = Boxes.create(centers, np.ones((2, 3)), [0.0, 1.0], np.array([1, 2], dtype=np.int32))
    centers[0, 0] = 5.0
    assert b.centers[0, 0] == 0.0
    assert b.centers.dtype == np.float64
    assert b.labels.dtype == np.int64
    assert b.scores.dtype == np.float32
    assert np.isnan(b.velocities).all()
    assert (b.track_ids == -1).all()
    assert (b.num_lidar_points == -1).all()
    assert (b.scores == 1).all()
    with pytest.raises(ValueError, match=r"read-only"):
        b.centers[0, 0] = 1.0
    assert len(Boxes.empty()) == 0
    assert Boxes.empty().corners().shape == (0, 8, 3)


# -- geometry ----------------------------------------------------------------------------------
def test_corners_of_a_yawed_box() -> None:
    b = Boxes.create([[10.0, 5.0, 1.0]], [[4.0, 2.0, 1.5]], [math.pi / 2], [0])
    corners = b.corners()[0]
    # yaw 90 deg: length along +y, width along -x
    expected = np.array(
        [
            [9.0, 7.0, 0.25],
            [11.0, 7.0, 0.25],
            [11.0, 3.0, 0.25],
            [9.0, 3.0, 0.25],
            [9.0, 7.0, 1.75],
            [11.0, 7.0, 1.75],
            [11.0, 3.0, 1.75],
            [9.0, 3.0, 1.75],
        ]
    )
    np.testing.assert_allclose(corners, expected, atol=1e-12)
    lengths = np.linalg.norm(corners[BOX_EDGES[:, 0]] - corners[BOX_EDGES[:, 1]], axis=1)
    np.testing.assert_allclose(np.sort(lengths), [1.5] * 4 + [2.0] * 4 + [4.0] * 4)


def test_points_in_boxes_matches_box_frame_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    boxes = _boxes(7, seed=3)
    rng = np.random.default_rng(4)
    near = boxes.centers[rng.integers(0, 7, 4000)] + rng.uniform(-3, 3, (4000, 3))
    points = np.vstack([near, boxes.corners().reshape(-1, 3) * (1 - 1e-9) + boxes.centers.mean(0) * 1e-9])
    local = _local(boxes, points)
    expected = np.all(np.abs(local) <= boxes.sizes[:, None, :] / 2 + 1e-9, axis=2)
    got = boxes.points_in_boxes(points)
    assert got.shape == (7, points.shape[0])
    assert got.dtype == bool
    # points within 1e-9 m of a face may go either way; everything else must agree
    margin = np.min(np.abs(np.abs(local) - boxes.sizes[:, None, :] / 2), axis=2) > 1e-7
    assert np.array_equal(got[margin], expected[margin])
    assert got.sum() > 100
    # processing in small blocks gives the same answer
    monkeypatch.setattr(gt_module, "_PAIRS_PER_BLOCK", 5000)
    assert np.array_equal(boxes.points_in_boxes(points), got)
    np.testing.assert_array_equal(boxes.count_points(points), got.sum(axis=1))
    # extra columns (intensity, ...) are ignored
    assert np.array_equal(boxes.points_in_boxes(np.hstack([points, np.ones((len(points), 2))])), got)
    with pytest.raises(GroundTruthError, match=r"\(M, >=3\)"):
        boxes.points_in_boxes(np.zeros((4, 2)))


def test_points_in_boxes_respects_yaw() -> None:
    b = Boxes.create([[0.0, 0.0, 0.0]], [[4.0, 1.0, 2.0]], [math.pi / 4], [0])
    along = np.array([[1.2, 1.2, 0.0]])  # 1.7 m along the heading: inside
    across = np.array([[1.2, -1.2, 0.0]])  # 1.7 m across: outside
    assert b.points_in_boxes(np.vstack([along, across])).tolist() == [[True, False]]


def test_transformed_round_trip_and_rotation() -> None:
    boxes = _boxes(6)
    T = make_transform([3.0, -2.0, 0.5], yaw_to_quaternion(0.7))
    moved = boxes.transformed(T)
    np.testing.assert_allclose(moved.corners(), boxes.corners() @ T[:3, :3].T + T[:3, 3], atol=1e-9)
    back = moved.transformed(invert_transform(T))
    np.testing.assert_allclose(back.centers, boxes.centers, atol=1e-12)
    np.testing.assert_allclose(np.cos(back.yaws - boxes.yaws), 1.0, atol=1e-12)
    np.testing.assert_allclose(back.velocities, boxes.velocities, atol=1e-12)
    # velocity rotates with the frame, like the heading
    R = T[:2, :2]
    np.testing.assert_allclose(moved.velocities, boxes.velocities @ R.T, atol=1e-12)
    assert np.array_equal(moved.labels, boxes.labels)
    assert np.array_equal(moved.scores, boxes.scores)
    unknown = Boxes.create([[0.0, 0, 0]], [[1.0, 1, 1]], [0.0], [0]).transformed(T)
    assert np.isnan(unknown.velocities).all()
    with pytest.raises(GroundTruthError, match=r"transformed.*4x4"):
        boxes.transformed(np.eye(3))


def test_transformed_with_tilt_keeps_heading_azimuth() -> None:
    """A roll/pitch in T keeps boxes upright; yaw = azimuth of the rotated heading."""
    b = Boxes.create([[10.0, 0.0, 0.0]], [[4.0, 2.0, 1.5]], [0.3], [0])
    tilt = make_transform([0, 0, 0], [math.cos(0.01), math.sin(0.01), 0.0, 0.0])  # roll 0.02 rad
    heading = tilt[:3, :3] @ np.array([math.cos(0.3), math.sin(0.3), 0.0])
    assert b.transformed(tilt).yaws[0] == pytest.approx(math.atan2(heading[1], heading[0]), abs=1e-15)


def test_select_concatenate_equality() -> None:
    boxes = _boxes(5)
    assert boxes == _boxes(5)
    assert boxes != _boxes(5, seed=1)
    picked = boxes.select(np.array([True, False, True, False, True]))
    assert len(picked) == 3
    assert np.array_equal(picked.track_ids, [100, 102, 104])
    assert boxes.select(np.array([4, 0])).track_ids.tolist() == [104, 100]
    assert Boxes.concatenate([boxes.select([0, 1]), boxes.select([2, 3, 4])]) == boxes
    assert len(Boxes.concatenate([])) == 0
    with pytest.raises(GroundTruthError, match=r"mask must have shape \(5,\)"):
        boxes.select(np.array([True, False]))
    with pytest.raises(GroundTruthError, match=r"out of range"):
        boxes.select(np.array([7]))


# -- rasters -----------------------------------------------------------------------------------
def test_rasterize_axis_aligned_box_covers_exactly_its_cells() -> None:
    grid = BevGrid(x_min=0.0, x_max=10.0, y_min=0.0, y_max=6.0, resolution=1.0)
    # footprint x in [2, 5], y in [1, 3]: cell centres 2.5, 3.5, 4.5 x 1.5, 2.5
    raster = rasterize_boxes(Boxes.create([[3.5, 2.0, 0.0]], [[3.0, 2.0, 1.0]], [0.0], [0]), grid)
    assert raster.shape == (6, 10)
    assert raster.dtype == np.uint8
    rows, cols = np.nonzero(raster)
    assert sorted(set(rows.tolist())) == [1, 2]
    assert sorted(set(cols.tolist())) == [2, 3, 4]
    assert raster.sum() == 6


def test_rasterize_matches_points_in_boxes_on_cell_centres() -> None:
    grid = BevGrid(x_min=-30.0, x_max=30.0, y_min=-20.0, y_max=20.0, resolution=0.5)
    boxes = _boxes(12, seed=7)
    x, y = grid.cell_centers()
    raster = rasterize_boxes(boxes, grid)
    expected = np.zeros(grid.shape, dtype=bool)
    for i in range(len(boxes)):
        flat = np.column_stack([x.ravel(), y.ravel(), np.full(x.size, boxes.centers[i, 2])])
        expected |= boxes.select([i]).points_in_boxes(flat)[0].reshape(grid.shape)
    assert np.array_equal(raster.astype(bool), expected)
    assert raster.sum() > 50
    assert rasterize_boxes(Boxes.empty(), grid).sum() == 0
    far = Boxes.create([[500.0, 500.0, 0.0]], [[2.0, 2.0, 2.0]], [0.3], [0])
    assert rasterize_boxes(far, grid).sum() == 0


# -- FrameTruth / GroundTruth ------------------------------------------------------------------
def _truth(frames: int = 3, grid: BevGrid | None = None) -> GroundTruth:
    grid = grid or BevGrid(x_min=-20.0, x_max=20.0, y_min=-10.0, y_max=10.0, resolution=0.5)
    items = []
    for f in range(frames):
        pose = make_transform([f * 1.0, 0.5, 0.0], yaw_to_quaternion(0.1 * f)) if f != 1 else None
        items.append(FrameTruth(1_000 + 100 * f, _boxes(f + 2, seed=f), pose))
    items.append(FrameTruth(5_000, Boxes.empty(), None))
    drivable = np.zeros((len(items), *grid.shape), dtype=np.uint8)
    drivable[:, :, 3:] = 1
    return GroundTruth.with_box_occupancy(items, grid, drivable)


def test_ground_truth_validation() -> None:
    truth = _truth()
    assert len(truth) == 4
    assert truth.stamps_ns.tolist() == [1000, 1100, 1200, 5000]
    assert truth.occupancy is not None
    assert truth.occupancy.shape == (4, 40, 80)
    assert truth.occupancy[0].sum() == rasterize_boxes(truth.frames[0].boxes, truth.grid).sum()
    frames = truth.frames
    with pytest.raises(GroundTruthError, match=r"frames\[1\]: stamp 1000 is not after"):
        GroundTruth((frames[0], FrameTruth(1000, Boxes.empty())), truth.grid)
    with pytest.raises(GroundTruthError, match=r"drivable: expected \(4, 40, 80\) uint8"):
        GroundTruth(frames, truth.grid, drivable=np.zeros((4, 40, 80), dtype=np.float32))
    bad = np.zeros((4, 40, 80), dtype=np.uint8)
    bad[2, 0, 0] = 255
    with pytest.raises(GroundTruthError, match=r"occupancy\[2\]: values must be 0 or 1, got 255"):
        GroundTruth(frames, truth.grid, occupancy=bad)
    with pytest.raises(GroundTruthError, match=r"stamp_ns must be an int >= 0"):
        FrameTruth(-1, Boxes.empty())
    with pytest.raises(GroundTruthError, match=r"ego_pose at stamp 7"):
        FrameTruth(7, Boxes.empty(), np.eye(4) * 2)


# -- file format -------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path: Path) -> None:
    truth = _truth()
    path = save_ground_truth(tmp_path / "bag", truth)
    assert path == tmp_path / "bag" / GROUND_TRUTH_FILE
    loaded = load_ground_truth(tmp_path / "bag")
    assert loaded.grid == truth.grid
    assert len(loaded) == len(truth)
    for a, b in zip(loaded.frames, truth.frames, strict=True):
        assert a.stamp_ns == b.stamp_ns
        assert a.boxes == b.boxes
        assert (a.ego_pose is None) == (b.ego_pose is None)
        if b.ego_pose is not None:
            assert np.array_equal(a.ego_pose, b.ego_pose)
    assert np.array_equal(loaded.drivable, truth.drivable)
    assert np.array_equal(loaded.occupancy, truth.occupancy)
    assert load_ground_truth(path).frames[2].boxes == truth.frames[2].boxes
    no_rasters = GroundTruth(truth.frames, truth.grid)
    assert load_ground_truth(save_ground_truth(tmp_path / "plain", no_rasters)).occupancy is None


def test_file_reads_with_plain_numpy_as_documented(tmp_path: Path, repo: Path) -> None:
    truth = _truth()
    with np.load(save_ground_truth(tmp_path, truth), allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    assert int(data["format_version"]) == FORMAT_VERSION
    assert tuple(data["classes"].tolist()) == CLASSES
    assert BevGrid(**json.loads(str(data["grid"]))) == truth.grid
    assert data["stamps_ns"].dtype == np.int64
    assert data["box_frame"].dtype == np.int64
    boxes_of_frame_2 = data["box_frame"] == 2
    np.testing.assert_array_equal(data["box_centers"][boxes_of_frame_2], truth.frames[2].boxes.centers)
    assert data["box_scores"].dtype == np.float32
    assert data["box_labels"].dtype == np.int64
    assert data["has_ego_pose"].tolist() == [True, False, True, False]
    assert np.isnan(data["ego_poses"][1]).all()
    assert data["occupancy"].dtype == np.uint8
    assert data["occupancy"].shape == (4, 40, 80)
    # every key is documented in docs/GROUND_TRUTH.md
    doc = (repo / "docs" / "GROUND_TRUTH.md").read_text()
    for key in data:
        assert f"`{key}`" in doc, key


def _rewrite(tmp_path: Path, **changes: Any) -> Path:
    source = save_ground_truth(tmp_path / "src", _truth())
    with np.load(source, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    target = tmp_path / "bad.npz"
    np.savez(target, **data)
    return target


def test_load_errors_name_the_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match=r"ground_truth.npz: ground-truth file not found"):
        load_ground_truth(tmp_path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(GroundTruthError, match=r"junk.npz: not a readable"):
        load_ground_truth(tmp_path / "junk.npz")
    with pytest.raises(GroundTruthError, match=r"bad.npz: format_version is 99, this reader understands 1"):
        load_ground_truth(_rewrite(tmp_path, format_version=np.array(99)))
    with pytest.raises(GroundTruthError, match=r"bad.npz: key 'box_yaws' has shape \(8,\), expected \(9,\)"):
        load_ground_truth(_rewrite(tmp_path, box_yaws=np.zeros(8)))
    with pytest.raises(GroundTruthError, match=r"bad.npz: key 'ego_poses' has shape \(3, 4, 4\)"):
        load_ground_truth(_rewrite(tmp_path, ego_poses=np.zeros((3, 4, 4))))
    with pytest.raises(GroundTruthError, match=r"bad.npz: key 'box_labels' is missing"):
        load_ground_truth(_rewrite(tmp_path, box_labels=None))
    with pytest.raises(GroundTruthError, match=r"bad.npz: classes"):
        load_ground_truth(_rewrite(tmp_path, classes=np.array(["car", "van"])))
    with pytest.raises(GroundTruthError, match=r"bad.npz: key 'box_frame' must be sorted"):
        load_ground_truth(_rewrite(tmp_path, box_frame=np.array([0, 0, 1, 1, 1, 0, 2, 2, 2])))
    with pytest.raises(GroundTruthError, match=r"bad.npz: Boxes.sizes\[0\]"):
        load_ground_truth(_rewrite(tmp_path, box_sizes=np.zeros((9, 3))))
    with pytest.raises(GroundTruthError, match=r"bad.npz"):
        load_ground_truth(_rewrite(tmp_path, box_labels=np.array([{}] * 9, dtype=object)))

"""`fusion realdata-eval`: the lidar branch on the real nuScenes sweep (scene-0061).

The command runs on a tiny random-weights bundle; the frames are checked against the real
points (each GT box holds the lidar points nuScenes counted in it), and a perfect predictor
(the ideal network outputs of the ground truth, decoded by the runtime) scores car AP 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from dataset_converters.nuscenes import read_lidar_bin
from fusion_node.commands import realdata_eval
from perception.backends.bundle import export_bundle
from perception.bev_grid import BevGrid
from perception.classes import CLASS_INDEX
from perception.evaluation import EvaluationError
from perception.evaluation.realdata import (
    NEAR_RANGE_M,
    evaluate_sample,
    inside_grid,
    lidar_in_base,
    load_nuscenes_sample,
)
from perception.ground_truth import Boxes
from perception.model.config import ModelConfig
from perception.model.network import FusionNet
from perception.model.predictor import decode_outputs
from perception.model.targets import detection_targets
from perception.samples import PointScan
from perception.training.checkpoint import save_checkpoint

TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))
SAMPLE = "nuscenes_scene0061"


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkpoint = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(checkpoint, {"model": FusionNet(TINY).state_dict(), "config": TINY.to_json(), "step": 0})
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export_bundle(checkpoint, out)
    return out


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    realdata_eval.add_arguments(parser)
    return int(realdata_eval.run(parser.parse_args(["--threads", "1", *argv])))


def _cars_in_range_from_files(folder: Path, grid: BevGrid) -> int:
    """Independent count: car boxes of gt_boxes.json whose centre, moved to the ego frame with
    lidar2ego, is inside the grid and nearer than the nuScenes car range (50 m), with points."""
    calib = json.loads((folder / "calib.json").read_text())
    boxes = json.loads((folder / "gt_boxes.json").read_text())["boxes"]
    T = np.array(calib["lidar2ego"])
    count = 0
    for box in boxes:
        x, y, _ = T[:3, :3] @ np.array(box["center_xyz"]) + T[:3, 3]
        inside = grid.x_min <= x < grid.x_max and grid.y_min <= y < grid.y_max
        if box["name"] == "car" and inside and np.hypot(x, y) < 50.0 and box["num_lidar_pts_in_info"] != 0:
            count += 1
    return count


def test_command_writes_metrics_and_bev_image(
    realdata: Path, tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = realdata / SAMPLE
    out = tmp_path / "out"
    assert _run("--sample", str(folder), "--weights", str(tiny_bundle), "--out", str(out)) == 0
    report = json.loads((out / "metrics.json").read_text())
    for key in ("car_AP", "car", "num_gt_used", "per_class", "gt_boxes", "lidar", "modality_present"):
        assert key in report
    assert {"AP", "AP@0.5", "AP@4.0", "ATE", "ASE", "AOE", "AVE", "num_gt"} <= set(report["car"])
    assert report["car_AP"] == report["car"]["AP"]
    assert 0.0 <= report["car_AP"] <= 1.0
    cars = _cars_in_range_from_files(folder, TINY.input_grid)
    assert cars == 4
    assert report["num_gt_used"]["car"] == report["car"]["num_gt"] == cars
    # only classes with ground truth in range are listed, each with its count
    assert set(report["per_class"]) == set(report["num_gt_used"])
    assert all(report["per_class"][name]["num_gt"] == n > 0 for name, n in report["num_gt_used"].items())
    assert report["gt_boxes"]["in_file"] == 69
    assert report["gt_boxes"]["ignored"] == 1
    assert sum(report["gt_boxes"]["detection_classes"].values()) == 68
    assert report["modality_present"] == {"lidar": 1.0, "radar": 0.0, "ultrasonic": 0.0, "camera": 0.0}
    assert report["lidar"]["sweeps_used"] == 1
    assert report["lidar"]["sweeps_model_trained_with"] == TINY.lidar_sweeps
    lidar = report["lidar"]
    assert lidar["points_in_file"] == 34688
    assert lidar["points_used"] + lidar["near_returns_removed"] == lidar["points_in_file"]
    image = cv2.imread(str(out / "bev.png"))
    assert image is not None
    assert min(image.shape[:2]) > 500
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 50  # lidar by height, boxes, legend: not a blank canvas
    assert "car AP" in capsys.readouterr().out
    assert (out / "metrics.md").read_text().count("| car |") == 1


def test_missing_sample_is_a_clear_error(tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--sample", str(tmp_path / "nowhere"), "--weights", str(tiny_bundle), "--out", str(tmp_path)) == 2
    error = capsys.readouterr().err
    assert "nowhere/calib.json: no such file" in error


def test_ground_truth_boxes_hold_their_lidar_points_in_base_link(realdata: Path) -> None:
    """Frames: with lidar2ego, each box holds the points nuScenes counted in it (a few points on
    faces differ: up to 21 of 495 for the near truck, its box being upright in base_link and
    tilted in the lidar frame), and centres sit close to points; without
    the lidar frame's rotation (x right, y forward), the boxes are empty."""
    sample = load_nuscenes_sample(realdata / SAMPLE)
    scan = read_lidar_bin(sample.lidar_file)
    points, near = lidar_in_base(scan, sample.lidar_to_base, sample.stamp_ns)
    assert near > 8000  # nuScenes no-returns at the sensor origin
    assert points.dtype == np.float32
    assert points.shape[1] == 5
    assert np.all(points[:, 4] == 0.0)  # one sweep: no time lag
    counts = sample.truth.count_points(points)
    expected = sample.truth.num_lidar_points
    assert np.all(np.abs(counts - expected) <= np.maximum(5, 0.05 * expected))
    assert np.mean(counts == sample.truth.num_lidar_points) > 0.8
    cars = sample.truth.labels == CLASS_INDEX["car"]
    nearest = np.array([np.min(np.linalg.norm(points[:, :3] - c, axis=1)) for c in sample.truth.centers[cars]])
    assert np.median(nearest) < 1.5
    # the ground is ~1.84 m below the lidar: z ~ 0 around the ego in base_link
    close = np.hypot(points[:, 0], points[:, 1]) < 10
    assert np.median(points[close, 2]) == pytest.approx(0.0, abs=0.2)
    shifted = sample.lidar_to_base.copy()
    shifted[:3, :3] = np.eye(3)
    wrong, _ = lidar_in_base(scan, shifted, sample.stamp_ns)
    assert sample.truth.count_points(wrong)[sample.truth.num_lidar_points > 20].sum() < 0.1 * (
        counts[sample.truth.num_lidar_points > 20].sum()
    )


def test_perfect_predictor_scores_car_ap_one(realdata: Path) -> None:
    """The ideal network outputs of the in-grid ground truth, decoded by the runtime, match the
    ground truth in base_link: car AP 1 with the evaluator of `fusion eval`."""
    sample = load_nuscenes_sample(realdata / SAMPLE)
    config = ModelConfig()
    grid = config.output_grid
    truth = sample.truth.select(inside_grid(sample.truth, config.input_grid))
    targets = detection_targets(truth, grid, config.num_classes)
    clipped = np.clip(targets.heatmap, 1e-6, 1 - 1e-6)
    heatmap = np.log(clipped / (1 - clipped)).astype(np.float32)
    regression = np.zeros((targets.regression.shape[1], *grid.shape), dtype=np.float32)
    for slot in range(len(truth)):
        row, col = divmod(int(targets.index[slot]), grid.nx)
        regression[:, row, col] = targets.regression[slot]
    segmentation = np.zeros((1, 2, *config.input_grid.shape), dtype=np.float32)
    boxes, _ = decode_outputs((heatmap[None], regression[None], segmentation), config)
    metrics = evaluate_sample(boxes, sample.truth, config.input_grid)
    assert metrics.per_class["car"].num_gt == 4
    assert metrics.per_class["car"].ap == pytest.approx(1.0)
    assert metrics.per_class["car"].ate < 0.05
    # a predictor that finds nothing scores 0
    empty = evaluate_sample(Boxes.empty(), sample.truth, config.input_grid)
    assert empty.per_class["car"].ap == 0.0


def test_lidar_in_base_moves_points_and_drops_near_returns() -> None:
    lidar_to_base = np.array([[0.0, 1.0, 0.0, 0.9], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.8], [0, 0, 0, 1]])
    raw = np.array([[0.0, 10.0, -1.8, 7.0, 3.0], [0.2, -0.5, 0.0, 9.0, 4.0], [-2.0, 0.0, 0.0, 1.0, 5.0]], np.float32)
    scan = PointScan(("x", "y", "z", "intensity", "ring"), raw)
    points, near = lidar_in_base(scan, lidar_to_base, 1_000, sweeps=3)
    assert near == 1
    np.testing.assert_allclose(points, [[10.9, 0.0, 0.0, 7.0, 0.0], [0.9, 2.0, 1.8, 1.0, 0.0]], atol=1e-5)
    kept, removed = lidar_in_base(scan, lidar_to_base, 1_000, near_range_m=0.0)
    assert (len(kept), removed) == (3, 0)
    assert NEAR_RANGE_M == 1.0
    with pytest.raises(EvaluationError, match=r"near_range_m = -1.0"):
        lidar_in_base(scan, lidar_to_base, 1_000, near_range_m=-1.0)


def _sample_copy(realdata: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "sample"
    folder.mkdir()
    for name in ("calib.json", "gt_boxes.json"):
        shutil.copy(realdata / SAMPLE / name, folder / name)
    return folder


def test_bad_sample_files_name_the_file_field_and_value(realdata: Path, tmp_path: Path) -> None:
    folder = _sample_copy(realdata, tmp_path)
    truth = json.loads((folder / "gt_boxes.json").read_text())
    truth["boxes"][3]["name"] = "hovercraft"
    (folder / "gt_boxes.json").write_text(json.dumps(truth))
    with pytest.raises(EvaluationError, match=r"gt_boxes.json: boxes\[3\].name = 'hovercraft': not a detection class"):
        load_nuscenes_sample(folder)
    truth["boxes"][3]["name"] = "car"
    truth["boxes"][5]["lwh"] = [4.0, 0.0, 1.5]
    (folder / "gt_boxes.json").write_text(json.dumps(truth))
    with pytest.raises(EvaluationError, match=r"boxes\[5\].lwh = \[4.0, 0.0, 1.5\]: sizes must be > 0"):
        load_nuscenes_sample(folder)
    calib = json.loads((folder / "calib.json").read_text())
    calib["lidar2ego"][0][0] = 3.0
    (folder / "calib.json").write_text(json.dumps(calib))
    with pytest.raises(EvaluationError, match=r"calib.json: lidar2ego = .* is not a rigid 4x4 transform"):
        load_nuscenes_sample(folder)
    del calib["lidar_file"]
    (folder / "calib.json").write_text(json.dumps(calib))
    with pytest.raises(EvaluationError, match=r"calib.json: field 'lidar_file' is missing"):
        load_nuscenes_sample(folder)


def test_inside_grid_is_the_grids_half_open_extent() -> None:
    grid = BevGrid()
    boxes = Boxes.create(
        centers=[[51.19, 0, 0], [51.2, 0, 0], [-51.2, -51.2, 0], [0, -51.21, 0]],
        sizes=np.ones((4, 3)),
        yaws=np.zeros(4),
        labels=np.zeros(4, dtype=np.int64),
    )
    assert inside_grid(boxes, grid).tolist() == [True, False, True, False]

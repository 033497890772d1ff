"""Mutual information of lidar reflectivity and image gray level: rank binning, the image's
levels, a synthetic pattern whose information peaks at the right projection, the real
PJLab pair (the true extrinsic beats perturbed ones), and bad inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from calibration import CameraIntrinsics
from calibration.alignment import AlignmentError, NoOverlapError
from calibration.camera_models import project_camera
from calibration.mutual_information import (
    MutualInformationConfig,
    image_levels,
    intensity_levels,
    mutual_information,
)


def test_intensity_levels_are_ranks_with_ties_sharing_a_bin() -> None:
    levels = intensity_levels(np.arange(100.0) ** 3, 4)  # any monotone units give the same bins
    np.testing.assert_array_equal(np.bincount(levels), [25, 25, 25, 25])
    assert np.all(np.diff(levels) >= 0)
    np.testing.assert_array_equal(intensity_levels(np.full(10, 7.0), 8), np.full(10, 4))  # mean rank: the middle
    tied = intensity_levels([1.0, 5.0, 5.0, 5.0, 9.0, 9.0], 3)
    assert tied[1] == tied[2] == tied[3]
    assert tied[0] < tied[1] < tied[4] == tied[5]
    assert intensity_levels([], 4).shape == (0,)


def test_image_levels_span_the_bins() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(60, 120, size=(50, 80, 3), dtype=np.uint8)  # low contrast: equalized to the full range
    levels = image_levels(image, MutualInformationConfig(bins=16, image_blur_sigma_px=0.0))
    assert levels.shape == (50, 80)
    assert levels.dtype == np.float32
    assert levels.min() == pytest.approx(0.0, abs=0.5)
    assert levels.max() == pytest.approx(15.0, abs=0.01)
    blurred = image_levels(image, MutualInformationConfig(bins=16))
    assert blurred.std() < levels.std()


def _blocks(seed: int = 1) -> np.ndarray:
    """(240, 320) uint8 image of random 8x8 gray blocks."""
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 256, size=(30, 40)), np.ones((8, 8))).astype(np.uint8)


def test_information_peaks_where_reflectivity_matches_the_image() -> None:
    image = _blocks()
    rng = np.random.default_rng(2)
    uv = np.stack([rng.uniform(20, 300, 3000), rng.uniform(20, 220, 3000)], axis=1)
    reflectivity = image[np.round(uv[:, 1]).astype(int), np.round(uv[:, 0]).astype(int)] * 0.3 + rng.normal(0, 2, 3000)
    cfg = MutualInformationConfig()
    levels, bins, valid = image_levels(image, cfg), intensity_levels(reflectivity, cfg.bins), np.ones(3000, bool)
    aligned = mutual_information(levels, uv, bins, valid, cfg)
    shifted = [mutual_information(levels, uv + np.array([d, 0.0]), bins, valid, cfg) for d in (2.0, 4.0, 12.0)]
    assert aligned > 0.5
    assert aligned > shifted[0] > shifted[1] > shifted[2]
    assert shifted[2] < 0.3 * aligned  # beyond a block: unrelated
    shuffled = mutual_information(levels, uv, rng.permutation(bins), valid, cfg)
    assert shuffled < 0.1 * aligned
    # weights: points with zero weight do not count
    half = np.r_[np.ones(1500), np.zeros(1500)]
    assert mutual_information(levels, uv, bins, valid, cfg, weights=half) == pytest.approx(
        mutual_information(levels, uv[:1500], bins[:1500], valid[:1500], cfg), rel=1e-9
    )


def test_constant_image_or_reflectivity_and_too_few_points_give_zero() -> None:
    cfg = MutualInformationConfig()
    uv = np.stack([np.linspace(5, 300, 400), np.linspace(5, 200, 400)], axis=1)
    bins = intensity_levels(np.arange(400.0), cfg.bins)
    flat = image_levels(np.full((240, 320), 90, np.uint8), cfg)
    assert mutual_information(flat, uv, bins, np.ones(400, bool), cfg) == 0.0
    levels = image_levels(_blocks(), cfg)
    assert mutual_information(levels, uv, np.zeros(400, np.int64), np.ones(400, bool), cfg) == 0.0
    few = np.zeros(400, bool)
    few[:10] = True
    assert mutual_information(levels, uv, bins, few, cfg) == 0.0


def test_real_pjlab_pair_scores_the_true_extrinsic_above_perturbed_ones(realdata: Path) -> None:
    calib = json.loads((realdata / "pjlab_opencalib" / "calib.json").read_text())["lidar2camera"]
    scan = np.loadtxt(realdata / "pjlab_opencalib" / "lidar2camera" / "0.pcd", skiprows=11)
    image = cv2.imread(str(realdata / "pjlab_opencalib" / "lidar2camera" / "0.png"))
    intrinsics = CameraIntrinsics(
        K=np.array(calib["K"]), width=1920, height=1200, distortion_model="plumb_bob", D=calib["dist_k1_k2_p1_p2"]
    )
    T_true = np.array(calib["T_cam_lidar"])
    cfg = MutualInformationConfig()
    levels, bins = image_levels(image, cfg), intensity_levels(scan[:, 3], cfg.bins, source="0.pcd intensity")

    def information(T: np.ndarray) -> float:
        uv, _, valid = project_camera(scan[:, :3] @ T[:3, :3].T + T[:3, 3], intrinsics)
        return mutual_information(levels, uv, bins, valid, cfg)

    truth = information(T_true)
    for axis in np.eye(3):
        for sign in (1.0, -1.0):
            T = T_true.copy()
            T[:3, :3] = Rotation.from_rotvec(np.radians(1.0) * sign * axis).as_matrix() @ T_true[:3, :3]
            assert information(T) < 0.95 * truth


def test_bad_inputs_name_the_value_and_its_source() -> None:
    with pytest.raises(AlignmentError, match=r"scan.pcd intensity has a non-finite value at row 1: nan"):
        intensity_levels([1.0, np.nan], 4, source="scan.pcd intensity")
    with pytest.raises(AlignmentError, match=r"bins must be >= 2, got 1"):
        intensity_levels([1.0, 2.0], 1)
    with pytest.raises(AlignmentError, match=r"MutualInformationConfig.bins = 1 is out of range"):
        MutualInformationConfig(bins=1)
    with pytest.raises(AlignmentError, match=r"MutualInformationConfig.histogram_sigma_bins = -1.0"):
        MutualInformationConfig(histogram_sigma_bins=-1.0)
    levels = image_levels(_blocks())
    uv = np.zeros((5, 2))
    with pytest.raises(AlignmentError, match=r"must agree, got \(5, 2\), \(4,\)"):
        mutual_information(levels, uv, np.zeros(4, np.int64), np.ones(5, bool))
    with pytest.raises(AlignmentError, match=r"levels must be an \(H, W\) map.*got shape \(2, 240, 320\)"):
        mutual_information(np.stack([levels, levels]), uv, np.zeros(5, np.int64), np.ones(5, bool))
    with pytest.raises(AlignmentError, match=r"intensity_bins must lie in \[0, 31\].*got 0..40"):
        mutual_information(levels, uv, np.array([0, 1, 2, 3, 40]), np.ones(5, bool))
    with pytest.raises(NoOverlapError, match="no lidar point projects into the image"):
        mutual_information(levels, uv, np.zeros(5, np.int64), np.zeros(5, bool))


def test_module_is_ros_free(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.setitem(sys.modules, "rclpy", None)
    monkeypatch.delitem(sys.modules, "calibration.mutual_information", raising=False)
    assert importlib.import_module("calibration.mutual_information").mutual_information is not None

"""Targetless extrinsic refinement: real pairs (a rotation error is corrected, the slow
seeded trials of the issue), a camera that never sees the lidar, ill-defined optima, and
the rig helpers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from calibration import CameraIntrinsics
from calibration.alignment import AlignmentError, NoOverlapError, alignment_score, depth_discontinuities, edge_map
from calibration.camera_models import project_camera
from calibration.refine import (
    LidarImagePair,
    RefineConfig,
    lidar_camera_rig,
    lidar_cameras_rig,
    refine_extrinsic,
    refine_lidar_mounting,
    rotation_angle_deg,
    with_extrinsic,
    with_mounting,
)


def _pjlab(realdata: Path) -> tuple[LidarImagePair, CameraIntrinsics, np.ndarray]:
    calib = json.loads((realdata / "pjlab_opencalib" / "calib.json").read_text())["lidar2camera"]
    scan = np.loadtxt(realdata / "pjlab_opencalib" / "lidar2camera" / "0.pcd", skiprows=11)
    image = cv2.imread(str(realdata / "pjlab_opencalib" / "lidar2camera" / "0.png"))
    intrinsics = CameraIntrinsics(
        K=np.array(calib["K"]), width=1920, height=1200, distortion_model="plumb_bob", D=calib["dist_k1_k2_p1_p2"]
    )
    pair = LidarImagePair(scan[:, :3], image, name="pjlab", intensity=scan[:, 3])
    return pair, intrinsics, np.array(calib["T_cam_lidar"])


def _nuscenes(realdata: Path) -> tuple[LidarImagePair, CameraIntrinsics, np.ndarray]:
    root = realdata / "nuscenes_scene0061"
    calib = json.loads((root / "calib.json").read_text())
    camera = calib["cameras"]["CAM_FRONT"]
    raw = np.fromfile(root / calib["lidar_file"], dtype=np.float32).reshape(-1, 5)
    image = cv2.imread(str(root / camera["img_file"]))
    intrinsics = CameraIntrinsics(K=np.array(camera["K"]), width=1600, height=900)
    # the truth of this pair includes the ego motion between the lidar and camera stamps
    pair = LidarImagePair(raw[:, :3], image, raw[:, 4], name="nuscenes", intensity=raw[:, 3])
    return pair, intrinsics, np.array(camera["lidar2cam"])


def _perturbed(T: np.ndarray, rng: np.random.Generator, degrees: float, metres: float) -> np.ndarray:
    axis, direction = rng.normal(size=3), rng.normal(size=3)
    out = T.copy()
    out[:3, :3] = Rotation.from_rotvec(np.radians(degrees) * axis / np.linalg.norm(axis)).as_matrix() @ T[:3, :3]
    out[:3, 3] += metres * direction / np.linalg.norm(direction)
    return out


def test_corrects_a_one_degree_rotation_error_on_the_pjlab_pair(realdata: Path) -> None:
    pair, intrinsics, T_true = _pjlab(realdata)
    T_start = T_true.copy()
    T_start[:3, :3] = Rotation.from_euler("xyz", [0.6, -0.5, 0.6], degrees=True).as_matrix() @ T_true[:3, :3]
    rig = lidar_camera_rig(T_start, intrinsics, lidar_id="lidar_top", camera_id="cam_center")
    result = refine_extrinsic([pair], rig, "lidar_top", "cam_center", RefineConfig(rotation_grid_deg=1.5))
    assert rotation_angle_deg(T_start[:3, :3] @ T_true[:3, :3].T) > 0.95
    assert rotation_angle_deg(result.T_refined[:3, :3] @ T_true[:3, :3].T) < 0.6
    np.testing.assert_allclose(result.T_refined[:3, 3], T_start[:3, 3], atol=1e-5)  # translation kept by default
    np.testing.assert_allclose(result.T_initial, T_start, atol=1e-5)
    assert result.score_after > result.score_before
    # pitch and yaw are sharp; roll (about the optical axis) is the weakest axis of this pair
    assert result.sharpness.shape == (6,)
    assert np.all(result.sharpness[:2] > 0.1)
    assert result.sharpness[2] > 0.0
    assert result.rotation_change_deg == pytest.approx(
        rotation_angle_deg(Rotation.from_euler("xyz", result.correction_rpy_deg, degrees=True).as_matrix()), abs=1e-3
    )  # the file's 6-digit rotation is orthonormal to ~1e-6 only
    assert result.points_in_view > 1000
    assert result.iterations > 300


def test_intensity_term_is_opt_in_and_raises_the_information(realdata: Path) -> None:
    pair, intrinsics, T_true = _pjlab(realdata)
    T_start = T_true.copy()
    T_start[:3, :3] = Rotation.from_euler("xyz", [0.3, -0.3, 0.2], degrees=True).as_matrix() @ T_true[:3, :3]
    rig = lidar_camera_rig(T_start, intrinsics)
    config = RefineConfig(rotation_grid_deg=0.5, top_k=1)
    no_intensity = LidarImagePair(pair.points, pair.image, name="pjlab")
    edges_only = refine_extrinsic([no_intensity], rig, "lidar", "camera", config)
    weight_zero = refine_extrinsic(
        [pair], rig, "lidar", "camera", RefineConfig(rotation_grid_deg=0.5, top_k=1, intensity_weight=0.0)
    )
    np.testing.assert_allclose(edges_only.T_refined, weight_zero.T_refined, atol=1e-12)
    assert edges_only.information_before == edges_only.information_after == 0.0
    assert weight_zero.information_after == 0.0
    combined = refine_extrinsic(
        [pair], rig, "lidar", "camera", RefineConfig(rotation_grid_deg=0.5, top_k=1, intensity_weight=1.0)
    )
    assert combined.information_after > combined.information_before > 0.05  # the scan's intensity is used
    assert rotation_angle_deg(combined.T_refined[:3, :3] @ T_true[:3, :3].T) < 0.3


def test_a_camera_that_never_sees_the_lidar_is_an_error_naming_both(realdata: Path) -> None:
    pair, intrinsics, T_true = _pjlab(realdata)
    backwards = T_true.copy()
    backwards[:3, :3] = Rotation.from_euler("y", 180, degrees=True).as_matrix() @ T_true[:3, :3]
    backwards[:3, 3] = [0.0, 0.0, -200.0]  # every point behind the camera
    rig = lidar_camera_rig(backwards, intrinsics, lidar_id="lidar_top", camera_id="cam_rear")
    with pytest.raises(NoOverlapError, match=r"camera 'cam_rear' never sees lidar 'lidar_top'"):
        refine_extrinsic([pair], rig, "lidar_top", "cam_rear")


def test_an_image_that_does_not_show_the_scan_is_not_well_defined(realdata: Path) -> None:
    pair, intrinsics, T_true = _pjlab(realdata)
    rig = lidar_camera_rig(T_true, intrinsics)
    config = RefineConfig(rotation_grid_deg=1.0)
    other = cv2.imread(str(next((realdata / "nuscenes_scene0061").glob("*CAM_BACK__*.jpg"))))
    wrong = LidarImagePair(pair.points, cv2.resize(other, (1920, 1200)), name="another camera's image")
    result = refine_extrinsic([wrong], rig, "lidar", "camera", config)
    assert not result.well_defined
    assert result.ambiguity > config.max_ambiguity
    flat = LidarImagePair(pair.points, np.full((1200, 1920, 3), 128, np.uint8), name="flat")
    result = refine_extrinsic([flat], rig, "lidar", "camera", config)
    assert not result.well_defined
    np.testing.assert_array_equal(result.sharpness, 0.0)  # no edge at all: the score is 0 everywhere


def test_bad_input_names_the_camera_and_the_problem(realdata: Path) -> None:
    pair, intrinsics, T_true = _pjlab(realdata)
    rig = lidar_camera_rig(T_true, intrinsics, lidar_id="lidar_top", camera_id="cam_center")
    small = LidarImagePair(pair.points, np.zeros((600, 960, 3), np.uint8), name="half.png")
    with pytest.raises(
        AlignmentError, match=r"image half.png is 960x600, camera 'cam_center' intrinsics are 1920x1200"
    ):
        refine_extrinsic([small], rig, "lidar_top", "cam_center")
    with pytest.raises(AlignmentError, match=r"no lidar\+image pair given for camera 'cam_center'"):
        refine_extrinsic([], rig, "lidar_top", "cam_center")
    with pytest.raises(AlignmentError, match=r"sensor 'lidar_top' of rig 'lidar_camera' is not a camera"):
        refine_extrinsic([pair], rig, "cam_center", "lidar_top")
    with pytest.raises(AlignmentError, match=r"RefineConfig.top_k = 0"):
        RefineConfig(top_k=0)
    with pytest.raises(AlignmentError, match=r"RefineConfig.intensity_weight = -1.0"):
        RefineConfig(intensity_weight=-1.0)
    short = LidarImagePair(pair.points, pair.image, name="scan.pcd=img.png", intensity=np.zeros(5))
    with pytest.raises(AlignmentError, match=r"intensity of scan.pcd=img.png has 5 values for 78238 points"):
        refine_extrinsic([short], rig, "lidar_top", "cam_center")


def test_with_extrinsic_remounts_only_the_camera() -> None:
    K = np.array([[1000.0, 0, 640], [0, 1000, 360], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", [-90, 0, -90], degrees=True).as_matrix()
    T[:3, 3] = [0.1, -0.3, -0.5]
    rig = lidar_camera_rig(T, CameraIntrinsics(K=K, width=1280, height=720))
    np.testing.assert_allclose(rig.transform("lidar", "camera"), T, atol=1e-12)
    T2 = T.copy()
    T2[:3, :3] = Rotation.from_euler("z", 0.4, degrees=True).as_matrix() @ T[:3, :3]
    moved = with_extrinsic(rig, "lidar", "camera", T2)
    np.testing.assert_allclose(moved.transform("lidar", "camera"), T2, atol=1e-12)
    np.testing.assert_allclose(moved.sensor("lidar").extrinsic, rig.sensor("lidar").extrinsic)
    assert moved.sensor("camera").camera.intrinsics == rig.sensor("camera").camera.intrinsics


@pytest.mark.slow
@pytest.mark.parametrize(("name", "rotation_successes", "median_deg"), [("pjlab", 4, 0.4), ("nuscenes", 0, 1.0)])
def test_seeded_trials_from_1_5_degrees_and_10_cm(
    realdata: Path, name: str, rotation_successes: int, median_deg: float
) -> None:
    """The issue's protocol: 10 seeded starts at 1.5 degrees and 10 cm from the truth.

    Measured (see docs/BENCHMARKS.md, ``fusion bench refine``): PJLab reaches 0.3 degrees in
    5 of 10 trials, nuScenes CAM_FRONT in 0-1; the translation stays ~10 cm off (a single
    frame does not constrain it, see ``calibration.refine``), which in turn limits the
    rotation. The test pins what is attained: the rotation successes, the median error, the
    60 s budget, and that every result more than 1 degree off is flagged not well defined.
    """
    pair, intrinsics, T_true = _nuscenes(realdata) if name == "nuscenes" else _pjlab(realdata)
    errors = []
    for seed in range(10):
        rig = lidar_camera_rig(_perturbed(T_true, np.random.default_rng(seed), 1.5, 0.10), intrinsics)
        start = time.perf_counter()
        result = refine_extrinsic([pair], rig, "lidar", "camera")
        assert time.perf_counter() - start < 60.0
        error = rotation_angle_deg(result.T_refined[:3, :3] @ T_true[:3, :3].T)
        errors.append(error)
        if error > 1.0:
            assert not result.well_defined, f"{name} seed {seed}: {error:.2f} degrees off but reported well defined"
    assert sum(e <= 0.3 for e in errors) >= rotation_successes
    assert float(np.median(errors)) < median_deg


@pytest.mark.slow
def test_the_simulated_control_pairs_align_best_at_the_true_extrinsic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fusion bench refine --datasets sim`: several de-skewed sweeps of a simulated drive without
    traffic, with their full-resolution camera images. With exact geometry the edge score of all
    pairs together is higher at the rig's extrinsic than 0.5 degrees away about any axis, and a
    1 degree rotation error is refined to under 0.6. Not to 0.3 degrees: the objective's own optimum
    lies a few tenths of a degree off the truth even here (docs/BENCHMARKS.md, measured 0.49)."""
    import benchmarks.refine as bench

    monkeypatch.setattr(bench, "SIM_CACHE", tmp_path / "cache")
    sample = bench.load_sim_sample(frames=4)
    assert len(sample["pairs"]) == 4
    assert all(np.asarray(pair.image).shape == (900, 1600, 3) for pair in sample["pairs"])
    T_true = sample["T_true"]

    prepared = [(depth_discontinuities(p.points, p.ring), edge_map(p.image)) for p in sample["pairs"]]

    def score(T: np.ndarray) -> float:
        total = 0.0
        for edges, maps in prepared:
            uv, _, valid = project_camera(edges.points @ T[:3, :3].T + T[:3, 3], sample["intrinsics"])
            far_uv, _, _ = project_camera(edges.far_points @ T[:3, :3].T + T[:3, 3], sample["intrinsics"])
            total += alignment_score(maps, uv, far_uv, edges.weights, valid)
        return total

    at_truth = score(T_true)
    for axis in np.eye(3):
        for sign in (-1.0, 1.0):
            turned = T_true.copy()
            turned[:3, :3] = Rotation.from_rotvec(np.radians(0.5) * sign * axis).as_matrix() @ T_true[:3, :3]
            assert score(turned) < at_truth, f"0.5 degrees about {sign * axis} scores higher than the truth"
    start = _perturbed(T_true, np.random.default_rng(3), 1.0, 0.0)
    result = refine_extrinsic(sample["pairs"], lidar_camera_rig(start, sample["intrinsics"]), "lidar", "camera")
    assert rotation_angle_deg(result.T_refined[:3, :3] @ T_true[:3, :3].T) < 0.6


def test_edge_agreement_counts_matches_above_chance_at_the_truth_only(realdata: Path) -> None:
    """``fusion bench refine``'s diagnostic: at the PJLab truth more discontinuities meet an
    image edge than 1 degree away (chance), and a truth turned by 1.5 degrees loses that."""
    import benchmarks.refine as bench

    sample = bench.load_sample("pjlab", realdata)
    at_truth = bench.edge_agreement(sample)
    assert at_truth["discontinuities_in_view"] > 1000
    assert at_truth["matched_share"] > at_truth["chance_share"] + 0.02
    assert at_truth["excess"] == pytest.approx(at_truth["matched_share"] - at_truth["chance_share"], abs=2e-3)
    assert abs(at_truth["mean_offset_px"]) < 0.5
    for axis in np.eye(3):
        wrong = bench.edge_agreement(dict(sample, T_true=bench._turned(sample["T_true"], 1.5 * axis)))
        assert wrong["matched_share"] < at_truth["matched_share"] - 0.02
        assert wrong["excess"] < at_truth["excess"] - 0.01


def test_height_profile_peaks_at_a_right_reference_and_follows_a_raised_one(realdata: Path) -> None:
    """``fusion bench refine``'s check of the reference: on PJLab the edge score peaks within
    10 cm of the true height; with the reference raising the scan by 20 cm, the peak moves down
    by about as much and the unshifted score falls well below it."""
    import benchmarks.refine as bench

    shifts = (-0.3, -0.2, -0.1, 0.0, 0.1)
    sample = bench.load_sample("pjlab", realdata)
    right = bench.height_profile(sample, shifts)
    assert right["shift_m"] == list(shifts)
    assert len(right["score"]) == len(shifts)
    assert abs(right["best_shift_m"]) <= 0.1
    raise_scan = np.eye(4)
    raise_scan[2, 3] = 0.2  # lidar frame, z up
    raised = bench.height_profile(dict(sample, T_true=sample["T_true"] @ raise_scan), shifts)
    assert raised["best_shift_m"] <= -0.1
    assert raised["score"][shifts.index(0.0)] < 0.8 * max(raised["score"])


def _moved(rotation_deg: list[float], translation_m: list[float]) -> np.ndarray:
    D = np.eye(4)
    D[:3, :3] = Rotation.from_rotvec(rotation_deg, degrees=True).as_matrix()
    D[:3, 3] = translation_m
    return D


def test_with_mounting_moves_the_lidar_and_keeps_the_cameras() -> None:
    intrinsics = CameraIntrinsics(K=np.array([[800.0, 0, 320], [0, 800, 240], [0, 0, 1]]), width=640, height=480)
    front = np.array([[0.0, -1, 0, 0], [0, 0, -1, -0.3], [1, 0, 0, -1.2], [0, 0, 0, 1]])  # lidar x fwd, z up
    back = _moved([0, 180, 0], [0, 0, 0]) @ front
    rig = lidar_cameras_rig({"cam_front": (front, intrinsics), "cam_back": (back, intrinsics)}, lidar_id="lidar_top")
    np.testing.assert_allclose(rig.transform("lidar_top", "cam_back"), back, atol=1e-12)
    D = _moved([0.2, -0.4, 0.1], [0.05, -0.02, 0.12])
    moved = with_mounting(rig, "lidar_top", rig.to_base("lidar_top") @ D)
    for camera, T in (("cam_front", front), ("cam_back", back)):
        np.testing.assert_allclose(moved.transform("lidar_top", camera), T @ D, atol=1e-12)
        np.testing.assert_allclose(moved.to_base(camera), rig.to_base(camera), atol=1e-12)
    np.testing.assert_allclose(moved.to_base("lidar_top"), D, atol=1e-12)


def _nuscenes_views(realdata: Path) -> tuple[dict[str, list[LidarImagePair]], dict[str, tuple[np.ndarray, Any]]]:
    import benchmarks.refine as bench

    views = bench.load_nuscenes_views(realdata)
    return views["views"], views["cameras"]


def test_lidar_mounting_against_six_nuscenes_cameras_ends_at_one_rotation(realdata: Path) -> None:
    """Refined against all six cameras at once, starts 1 degree and 5 cm off in different
    directions end within 0.3 degrees of the given calibration and within 0.1 degree and 6 cm of
    each other, every camera's extrinsic moving with the lidar; the translation goes about 10 cm up
    (the sample's calibration puts the scan too low in all six images, docs/BENCHMARKS.md)."""
    views, cameras = _nuscenes_views(realdata)
    true_rig = lidar_cameras_rig(cameras, lidar_id="lidar_top")
    config = RefineConfig(refine_translation=True, rotation_grid_deg=1.0)
    results = []
    for start in (_moved([0.6, -0.5, 0.6], [0.03, -0.03, 0.03]), _moved([-0.7, 0.4, -0.5], [-0.03, 0.03, -0.03])):
        result = refine_lidar_mounting(views, with_mounting(true_rig, "lidar_top", start), "lidar_top", config)
        np.testing.assert_allclose(result.T_initial, start, atol=1e-12)
        assert rotation_angle_deg(result.T_refined[:3, :3]) < 0.3
        assert result.T_refined[2, 3] > 0.05
        assert result.well_defined
        refined_rig = with_mounting(true_rig, "lidar_top", result.T_refined)
        for camera, (T_true, _) in cameras.items():
            T = refined_rig.transform("lidar_top", camera)
            assert rotation_angle_deg(T[:3, :3] @ T_true[:3, :3].T) < 0.3, camera
        results.append(result.T_refined)
    assert rotation_angle_deg(results[0][:3, :3] @ results[1][:3, :3].T) < 0.1
    assert np.linalg.norm(results[0][:3, 3] - results[1][:3, 3]) < 0.06


def test_lidar_mounting_errors_name_the_cameras_and_the_lidar(realdata: Path) -> None:
    pair, intrinsics, T_true = _pjlab(realdata)
    backwards = T_true.copy()
    backwards[:3, :3] = Rotation.from_euler("y", 180, degrees=True).as_matrix() @ T_true[:3, :3]
    backwards[:3, 3] = [0.0, 0.0, -200.0]  # every point behind both cameras
    rig = lidar_cameras_rig({"cam_a": (backwards, intrinsics), "cam_b": (backwards, intrinsics)}, lidar_id="lidar_top")
    with pytest.raises(NoOverlapError, match=r"no camera of \['cam_a', 'cam_b'\] sees lidar 'lidar_top'"):
        refine_lidar_mounting({"cam_a": [pair], "cam_b": [pair]}, rig, "lidar_top")
    with pytest.raises(AlignmentError, match=r"sensor 'cam_a' of rig 'lidar_cameras' is not a lidar"):
        refine_lidar_mounting({"cam_b": [pair]}, rig, "cam_a")
    with pytest.raises(AlignmentError, match=r"no lidar\+image pair given for lidar 'lidar_top'"):
        refine_lidar_mounting({"cam_a": []}, rig, "lidar_top")
    with pytest.raises(AlignmentError, match=r"sensor 'lidar_top' of rig 'lidar_cameras' is not a camera"):
        refine_lidar_mounting({"lidar_top": [pair]}, rig, "lidar_top")

"""Camera models against OpenCV: projection, validity masks, fold-back, undistortion."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from calibration import IntrinsicsError, ProjectionError
from calibration.camera_models import (
    distort_normalized,
    max_undistorted_radius,
    project_camera,
    undistort_image,
    undistort_points,
    undistortion_maps,
)
from calibration.intrinsics import CameraIntrinsics

K = np.array([[800.0, 0.0, 640.0], [0.0, 780.0, 360.0], [0.0, 0.0, 1.0]])
PLUMB_BOB = {
    4: [-0.12, 0.05, 0.001, -0.002],
    5: [-0.12, 0.05, 0.001, -0.002, 0.01],
    8: [0.1, 0.02, 0.001, -0.002, 0.01, 0.05, 0.01, 0.002],
}
FISHEYE = [0.05, -0.01, 0.003, -0.001]


def _camera(model: str = "none", D: list[float] | None = None, K_: np.ndarray = K) -> CameraIntrinsics:
    return CameraIntrinsics(K=K_, width=1280, height=720, distortion_model=model, D=np.asarray(D or []))


def _points(n: int = 20000, seed: int = 0) -> np.ndarray:
    """Points in front of a camera, spanning more than its field of view."""
    return np.random.default_rng(seed).uniform([-15.0, -8.0, 0.5], [15.0, 8.0, 40.0], (n, 3))


@pytest.mark.parametrize("count", sorted(PLUMB_BOB))
def test_plumb_bob_matches_opencv(count: int) -> None:
    camera = _camera("plumb_bob", PLUMB_BOB[count])
    points = _points()
    uv, depth, valid = project_camera(points, camera)
    reference = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, np.asarray(PLUMB_BOB[count]))[0][:, 0]
    assert valid.sum() > 5000
    np.testing.assert_allclose(uv[valid], reference[valid], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(depth, points[:, 2])
    inside = (reference[:, 0] >= 0) & (reference[:, 0] < 1280) & (reference[:, 1] >= 0) & (reference[:, 1] < 720)
    np.testing.assert_array_equal(valid, inside)  # this lens is monotonic everywhere


def test_equidistant_matches_opencv_fisheye_with_skew() -> None:
    skewed = K.copy()
    skewed[0, 1] = 2.5
    camera = _camera("equidistant", FISHEYE, skewed)
    points = _points()
    uv, _, valid = project_camera(points, camera)
    reference = cv2.fisheye.projectPoints(
        points[:, None, :], np.zeros(3), np.zeros(3), K, np.asarray(FISHEYE), alpha=2.5 / 800.0
    )[0][:, 0]
    assert valid.sum() > 5000
    np.testing.assert_allclose(uv[valid], reference[valid], atol=1e-6, rtol=0)


def test_pinhole_is_k_times_point_over_depth() -> None:
    points = _points()
    uv, _, valid = project_camera(points, _camera())
    homogeneous = points @ K.T
    np.testing.assert_allclose(uv, homogeneous[:, :2] / homogeneous[:, 2:], atol=1e-9)
    assert max_undistorted_radius(_camera()) == math.inf
    assert valid.sum() > 1000


def test_validity_mask_depth_borders_and_non_finite_rows() -> None:
    camera = _camera()
    # u = fx x/z + cx: x = (u - cx) z / fx puts a point exactly on a chosen pixel column.
    z = 10.0
    points = np.array(
        [
            [(0.0 - 640.0) * z / 800.0, 0.0, z],  # u = 0: inside
            [(1280.0 - 640.0) * z / 800.0, 0.0, z],  # u = width: outside
            [0.0, (720.0 - 360.0) * z / 780.0 - 1e-9, z],  # v just below height: inside
            [0.0, 0.0, 0.05],  # in front but closer than min_depth
            [0.0, 0.0, -5.0],  # behind
            [np.nan, 0.0, 5.0],
            [0.0, np.inf, 5.0],
            [0.0, 0.0, 0.0],
        ]
    )
    uv, depth, valid = project_camera(points, camera)
    assert valid.tolist() == [True, False, True, False, False, False, False, False]
    assert uv[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.isnan(uv[4:])), "uv is NaN behind the camera and for non-finite rows"
    assert depth[4] == -5.0
    assert np.isnan(depth[5])
    _, _, near_valid = project_camera(points, camera, min_depth=0.01)
    assert near_valid[3]


def test_strong_plumb_bob_marks_fold_back_points_invalid() -> None:
    # x_d = x (1 + k1 r^2) stops increasing at r = sqrt(1 / (3 |k1|)) = 0.8165 for k1 = -0.5.
    camera = _camera("plumb_bob", [-0.5, 0.0, 0.0, 0.0])
    limit = max_undistorted_radius(camera)
    assert limit == pytest.approx(math.sqrt(1.0 / 1.5), rel=1e-12)
    # A point at r = 1.2 folds back to r_d = 1.2 (1 - 0.72) = 0.336: inside the image.
    radii = np.array([0.3, 0.8, 0.83, 1.2, 1.35])
    points = np.stack([radii * 5.0, np.zeros_like(radii), np.full_like(radii, 5.0)], axis=1)
    uv, _, valid = project_camera(points, camera)
    reference = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, np.asarray(camera.D))[0][:, 0]
    np.testing.assert_allclose(uv, reference, atol=1e-6)  # same formula, even past the limit
    in_image = (uv[:, 0] >= 0) & (uv[:, 0] < 1280)
    assert in_image.all(), "all five land in the image; the last three only by folding back"
    assert valid.tolist() == [True, True, False, False, False]


def test_fold_back_limit_is_where_the_radial_map_stops_increasing() -> None:
    cases = [
        ("plumb_bob", [-0.3, 0.02, 0.0, 0.0, 0.001]),
        ("plumb_bob", [0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0]),  # rational: r_d falls off as 1/r^3
        ("plumb_bob", [0.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0]),  # denominator pole at r = sqrt(2)
        ("equidistant", [-0.3, 0.0, 0.0, 0.0]),
    ]
    for model, D in cases:
        camera = _camera(model, D)
        limit = max_undistorted_radius(camera)
        assert math.isfinite(limit), (model, D)
        r = np.linspace(0.0, limit, 2001)[1:-1]
        xd, _, _ = distort_normalized(r, np.zeros_like(r), camera)
        assert np.all(np.diff(xd) > 0), f"{model} {D}: not increasing below the limit {limit}"
        across = np.linspace(limit * 0.95, limit * 1.05, 100)  # even count: skips the limit itself
        xd_across, _, _ = distort_normalized(across, np.zeros_like(across), camera)
        assert not np.all(np.diff(xd_across) > 0), f"{model} {D}: still increasing past {limit}"
    assert max_undistorted_radius(_camera("plumb_bob", PLUMB_BOB[5])) == math.inf
    assert max_undistorted_radius(_camera("equidistant", FISHEYE)) == math.inf


def test_equidistant_fold_back_is_invalid() -> None:
    # theta_d = theta - 0.3 theta^3 peaks at theta = sqrt(1 / 0.9) = 1.054 rad (60.4 degrees).
    camera = _camera("equidistant", [-0.3, 0.0, 0.0, 0.0], np.array([[300.0, 0, 640], [0, 300.0, 360], [0, 0, 1]]))
    theta = np.radians([20.0, 55.0, 62.0, 75.0])
    points = np.stack([np.sin(theta), np.zeros_like(theta), np.cos(theta)], axis=1) * 10.0
    uv, _, valid = project_camera(points, camera)
    assert np.all(uv[:, 0] < 1280)
    assert valid.tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    ("model", "D"), [("none", None), ("plumb_bob", PLUMB_BOB[4]), ("plumb_bob", PLUMB_BOB[8]), ("equidistant", FISHEYE)]
)
def test_undistort_points_inverts_projection(model: str, D: list[float] | None) -> None:
    camera = _camera(model, D)
    points = _points(5000, seed=1)
    uv, _, valid = project_camera(points, camera)
    rays = undistort_points(uv[valid], camera)
    assert rays.shape == (int(valid.sum()), 3)
    np.testing.assert_array_equal(rays[:, 2], 1.0)
    np.testing.assert_allclose(rays[:, :2], points[valid, :2] / points[valid, 2:], atol=1e-10)
    if model == "plumb_bob":
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)
        reference = cv2.undistortPoints(uv[valid][:, None, :], K, np.asarray(D), criteria=criteria)[:, 0]
        np.testing.assert_allclose(rays[:, :2], reference, atol=1e-8)


def test_undistort_points_outside_the_valid_region_is_nan() -> None:
    camera = _camera("plumb_bob", [-0.5, 0.0, 0.0, 0.0])
    # The largest distorted radius is r_d(0.8165) = 0.544: pixels beyond have no ray.
    uv = np.array([[640.0 + 800.0 * 0.3, 360.0], [640.0 + 800.0 * 0.6, 360.0], [np.nan, 1.0]])
    rays = undistort_points(uv, camera)
    assert np.all(np.isfinite(rays[0]))
    assert np.all(np.isnan(rays[1:]))
    with pytest.raises(ProjectionError, match=r"uv must have shape \(N, 2\), got \(3,\)"):
        undistort_points(np.zeros(3), camera)


@pytest.mark.parametrize(("model", "D"), [("plumb_bob", PLUMB_BOB[5]), ("equidistant", FISHEYE)])
def test_undistortion_maps_match_opencv(model: str, D: list[float]) -> None:
    camera = _camera(model, D)
    new_K = np.array([[600.0, 0.0, 500.0], [0.0, 600.0, 300.0], [0.0, 0.0, 1.0]])
    target = CameraIntrinsics(K=new_K, width=1000, height=600)
    map_x, map_y = undistortion_maps(camera, target)
    assert map_x.shape == (600, 1000)
    assert map_x.dtype == np.float32
    if model == "plumb_bob":
        ref_x, ref_y = cv2.initUndistortRectifyMap(K, np.asarray(D), None, new_K, (1000, 600), cv2.CV_32FC1)
    else:
        ref_x, ref_y = cv2.fisheye.initUndistortRectifyMap(
            K, np.asarray(D), np.eye(3), new_K, (1000, 600), cv2.CV_32FC1
        )
    np.testing.assert_allclose(map_x, ref_x, atol=1e-3)
    np.testing.assert_allclose(map_y, ref_y, atol=1e-3)


def test_undistortion_maps_blank_the_fold_back_region() -> None:
    camera = _camera("plumb_bob", [-0.5, 0.0, 0.0, 0.0])
    map_x, map_y = undistortion_maps(camera)
    # Output pixel column u has undistorted radius |u - 640| / 800 along the centre row.
    row_x = map_x[360]
    limit_px = 640 + 800 * max_undistorted_radius(camera)
    assert np.all(row_x[641 : int(limit_px) - 1] > 0)
    assert np.all(row_x[int(limit_px) + 1 :] == -1.0)
    assert np.all(map_y[360, int(limit_px) + 1 :] == -1.0)


def test_undistort_image_matches_opencv_undistort() -> None:
    camera = _camera("plumb_bob", PLUMB_BOB[5])
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8), (0, 0), 3.0)
    ours = undistort_image(image, camera)
    reference = cv2.undistort(image, K, np.asarray(PLUMB_BOB[5]))
    assert ours.shape == image.shape
    assert ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - reference.astype(int))
    assert diff[20:-20, 20:-20].max() <= 2  # OpenCV remaps with fixed-point maps


def test_bad_arguments_raise_naming_the_value() -> None:
    camera = _camera("plumb_bob", PLUMB_BOB[4])
    with pytest.raises(ProjectionError, match=r"points_cam must have shape \(N, 3\), got \(5, 4\)"):
        project_camera(np.zeros((5, 4)), camera)
    with pytest.raises(ProjectionError, match="min_depth must be a positive finite number of metres, got 0"):
        project_camera(np.zeros((5, 3)), camera, min_depth=0)
    with pytest.raises(ProjectionError, match="points_cam must be an"):
        project_camera([["a", "b", "c"]], camera)
    with pytest.raises(IntrinsicsError, match=r"new_intrinsics must be a pinhole model.*'plumb_bob'"):
        undistortion_maps(camera, camera)
    with pytest.raises(ProjectionError, match=r"image has shape \(10, 10\), expected \(720, 1280"):
        undistort_image(np.zeros((10, 10), dtype=np.uint8), camera)


def test_projection_is_fast_enough_for_a_lidar_sweep() -> None:
    import time

    camera = _camera("plumb_bob", PLUMB_BOB[8])
    points = _points(35000)
    project_camera(points, camera)
    start = time.perf_counter()
    for _ in range(5):
        project_camera(points, camera)
    assert (time.perf_counter() - start) / 5 < 0.05

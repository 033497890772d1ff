"""Camera models: 3D points -> pixels, pixels -> rays, undistortion maps.

Models, selected by ``CameraIntrinsics.distortion_model`` (coefficients in ``D``):

- ``"none"``: pinhole, ``u = fx x + s y + cx``, ``v = fy y + cy`` with ``(x, y) = (X/Z, Y/Z)``.
- ``"plumb_bob"``: OpenCV radial-tangential, ``D = k1, k2, p1, p2[, k3[, k4, k5, k6]]``
  (4, 5 or 8 coefficients; k4..k6 form the rational denominator). Same equations as
  ``cv2.projectPoints``.
- ``"equidistant"``: OpenCV fisheye, ``D = k1, k2, k3, k4``,
  ``theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)`` with
  ``theta = atan(r)``; same equations as ``cv2.fisheye.projectPoints``.

The skew ``s = K[0, 1]`` is applied (``cv2.projectPoints`` ignores it; it is 0 for every real
camera here, and ``cv2.fisheye`` takes it as ``alpha = s / fx``).

Valid distortion region: a distortion polynomial maps the undistorted normalized radius
``r = sqrt(x^2 + y^2)`` (equidistant: the angle ``theta``) to a distorted one; past the first
radius where that map stops increasing, points fold back into the image and land on pixels
that belong to other rays. ``max_undistorted_radius`` finds that radius exactly, from the
real positive roots of the derivative polynomial (and of the rational denominator), once
per distinct (model, coefficients) pair (cached). Points beyond it are invalid. Only the
radial part decides the region; the tangential terms (p1, p2) are small for real lenses.

Frames and units: points are in the camera optical frame (x right, y down, z forward),
metres; pixels are OpenCV continuous coordinates (the centre of the top-left pixel is
(0, 0)); an image covers ``0 <= u < width``, ``0 <= v < height``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.polynomial import Polynomial
from numpy.typing import ArrayLike, NDArray

from calibration.errors import IntrinsicsError, ProjectionError
from calibration.intrinsics import CameraIntrinsics

FloatArray = NDArray[np.float64]

#: Default smallest depth (metres, along the optical axis) of a valid projected point.
DEFAULT_MIN_DEPTH = 0.1
#: Newton iterations and tolerance (normalized image units) used to invert the distortion.
_UNDISTORT_ITERATIONS = 30
_UNDISTORT_TOLERANCE = 1e-12


def max_undistorted_radius(intrinsics: CameraIntrinsics) -> float:
    """Largest undistorted normalized radius ``r = sqrt(x^2 + y^2)`` of the valid region.

    ``math.inf`` when the radial distortion is monotonic for every radius (and always for
    ``"none"``). Cached per (model, coefficients).
    """
    return _radius_limit(intrinsics.distortion_model, tuple(float(v) for v in intrinsics.D))


@functools.lru_cache(maxsize=1024)
def _radius_limit(model: str, coefficients: tuple[float, ...]) -> float:
    if model == "none":
        return math.inf
    if model == "equidistant":
        k1, k2, k3, k4 = coefficients
        # d theta_d / d theta as a polynomial in t = theta^2.
        t_limit = _smallest_positive_root(Polynomial([1.0, 3 * k1, 5 * k2, 7 * k3, 9 * k4]))
        theta_limit = math.sqrt(t_limit) if math.isfinite(t_limit) else math.inf
        return math.tan(theta_limit) if theta_limit < math.pi / 2 else math.inf
    if model == "plumb_bob":
        k = _rational_coefficients(coefficients)
        numerator = Polynomial([1.0, k[0], k[1], k[2]])  # in s = r^2
        denominator = Polynomial([1.0, k[3], k[4], k[5]])
        s = Polynomial([0.0, 1.0])
        # d/dr [r N(s) / D(s)] has the sign of (N + 2 s N') D - 2 s N D' (where D > 0).
        slope = (numerator + 2 * s * numerator.deriv()) * denominator - 2 * s * numerator * denominator.deriv()
        s_limit = min(_smallest_positive_root(slope), _smallest_positive_root(denominator))
        return math.sqrt(s_limit) if math.isfinite(s_limit) else math.inf
    raise IntrinsicsError(f"unknown distortion_model '{model}'")


def _smallest_positive_root(poly: Polynomial) -> float:
    trimmed = poly.trim()
    if trimmed.degree() < 1:
        return math.inf
    roots = trimmed.roots()
    real = roots[np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots))].real
    positive = real[real > 0]
    return float(positive.min()) if positive.size else math.inf


def _rational_coefficients(D: tuple[float, ...] | FloatArray) -> tuple[float, float, float, float, float, float]:
    """(k1, k2, k3, k4, k5, k6) of a plumb_bob D (4, 5 or 8 values; missing ones are 0)."""
    d = [float(v) for v in D] + [0.0] * (8 - len(D))
    return d[0], d[1], d[4], d[5], d[6], d[7]


def distort_normalized(
    x: ArrayLike, y: ArrayLike, intrinsics: CameraIntrinsics
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Apply the distortion model to normalized image coordinates.

    Args:
        x, y: (N,) undistorted normalized coordinates (X/Z, Y/Z), camera optical frame.
        intrinsics: camera model.

    Returns:
        (xd, yd, r): (N,) float64 distorted normalized coordinates, and (N,) the undistorted
        radius ``sqrt(x^2 + y^2)`` (compare with ``max_undistorted_radius``).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    r2 = x * x + y * y
    r = np.sqrt(r2)
    model = intrinsics.distortion_model
    if model == "none":
        return x.copy(), y.copy(), r
    if model == "equidistant":
        k1, k2, k3, k4 = (float(v) for v in intrinsics.D)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(r > 1e-8, theta_d / np.where(r > 1e-8, r, 1.0), 1.0)
        return x * scale, y * scale, r
    k1, k2, k3, k4, k5, k6 = _rational_coefficients(intrinsics.D)
    p1, p2 = float(intrinsics.D[2]), float(intrinsics.D[3])
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xy2 = 2 * x * y
    xd = x * radial + p1 * xy2 + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * xy2
    return xd, yd, r


def project_camera(
    points_cam: ArrayLike, intrinsics: CameraIntrinsics, *, min_depth: float = DEFAULT_MIN_DEPTH
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Project points given in the camera optical frame to pixels.

    Args:
        points_cam: (N, 3) float [X, Y, Z], camera optical frame (x right, y down, z forward),
            metres. Non-finite rows are allowed (they come back invalid).
        intrinsics: the camera model (see module docstring).
        min_depth: smallest Z of a valid point, metres (> 0).

    Returns:
        uv: (N, 2) float64 pixels; NaN where Z <= 0 or the row is not finite, the model's
            value otherwise (also for invalid points: outside the image or fold-back).
        depth: (N,) float64 Z, metres (negative behind the camera; NaN for non-finite rows).
        valid: (N,) bool; finite row AND Z >= min_depth AND undistorted radius below
            ``max_undistorted_radius`` AND 0 <= u < width AND 0 <= v < height.
    """
    if not (isinstance(min_depth, (int, float)) and math.isfinite(min_depth) and min_depth > 0):
        raise ProjectionError(f"min_depth must be a positive finite number of metres, got {min_depth!r}")
    p = _points(points_cam, "points_cam")
    finite = np.all(np.isfinite(p), axis=1)
    depth = np.where(finite, p[:, 2], np.nan)
    in_front = finite & (depth > 0)
    z = np.where(in_front, depth, 1.0)
    x = np.where(in_front, p[:, 0] / z, np.nan)
    y = np.where(in_front, p[:, 1] / z, np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        xd, yd, r = distort_normalized(x, y, intrinsics)
        uv = _to_pixels(xd, yd, intrinsics)
        valid = (
            in_front
            & (depth >= min_depth)
            & (r < max_undistorted_radius(intrinsics))
            & (uv[:, 0] >= 0)
            & (uv[:, 0] < intrinsics.width)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] < intrinsics.height)
        )
    return uv, depth, valid


def undistort_points(uv: ArrayLike, intrinsics: CameraIntrinsics) -> FloatArray:
    """Rays through pixels: the inverse of the distortion model, within the valid region.

    Args:
        uv: (N, 2) float pixels of the (distorted) image.
        intrinsics: camera model.

    Returns:
        (N, 3) float64 rays [x, y, 1] in the camera optical frame (normalized image plane,
        Z = 1: multiply by a depth to get metres). Rows are NaN where the pixel is not
        finite or no undistorted radius inside the valid region maps to it.
    """
    pix = np.asarray(uv, dtype=np.float64)
    if pix.ndim != 2 or pix.shape[1] != 2:
        raise ProjectionError(f"uv must have shape (N, 2), got {pix.shape}")
    K = intrinsics.K
    yd = (pix[:, 1] - K[1, 2]) / K[1, 1]
    xd = (pix[:, 0] - K[0, 2] - K[0, 1] * yd) / K[0, 0]
    x, y = _undistort_normalized(xd, yd, intrinsics)
    return np.stack([x, y, np.where(np.isfinite(x), 1.0, np.nan)], axis=1)


def _undistort_normalized(
    xd: FloatArray, yd: FloatArray, intrinsics: CameraIntrinsics
) -> tuple[FloatArray, FloatArray]:
    limit = max_undistorted_radius(intrinsics)
    model = intrinsics.distortion_model
    if model == "none":
        return xd.copy(), yd.copy()
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if model == "equidistant":
            x, y = _undistort_equidistant(xd, yd, intrinsics, limit)
        else:
            x, y = _undistort_plumb_bob(xd, yd, intrinsics, limit)
        # Accept only solutions inside the valid region that reproduce the input.
        rx, ry, r = distort_normalized(x, y, intrinsics)
        residual = np.hypot(rx - xd, ry - yd)
        ok = np.isfinite(residual) & (residual <= 1e-9 * np.maximum(1.0, np.hypot(xd, yd))) & (r < limit)
    return np.where(ok, x, np.nan), np.where(ok, y, np.nan)


def _undistort_equidistant(
    xd: FloatArray, yd: FloatArray, intrinsics: CameraIntrinsics, limit: float
) -> tuple[FloatArray, FloatArray]:
    """1-D Newton on theta_d(theta), clamped to [0, theta_limit]; only unconverged rows iterate."""
    k1, k2, k3, k4 = (float(v) for v in intrinsics.D)
    theta_d = np.hypot(xd, yd)
    theta_max = math.atan(limit) if math.isfinite(limit) else math.pi / 2
    theta = np.minimum(theta_d, theta_max)
    active = np.flatnonzero(np.isfinite(theta_d))
    for _ in range(_UNDISTORT_ITERATIONS):
        if active.size == 0:
            break
        t = theta[active]
        t2 = t * t
        f = t * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - theta_d[active]
        df = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
        step = f / df
        theta[active] = np.clip(t - step, 0.0, theta_max)
        active = active[np.abs(step) > _UNDISTORT_TOLERANCE]
    scale = np.where(theta_d > 1e-12, np.tan(theta) / np.where(theta_d > 1e-12, theta_d, 1.0), 1.0)
    return xd * scale, yd * scale


def _undistort_plumb_bob(
    xd: FloatArray, yd: FloatArray, intrinsics: CameraIntrinsics, limit: float
) -> tuple[FloatArray, FloatArray]:
    """Newton's method on the 2-D distortion map, started at the distorted point and kept
    inside the valid radius (so it cannot converge to a folded-back solution). Only the
    rows that have not converged iterate (pixels without a solution use all iterations)."""
    k1, k2, k3, k4, k5, k6 = _rational_coefficients(intrinsics.D)
    p1, p2 = float(intrinsics.D[2]), float(intrinsics.D[3])
    x, y = xd.copy(), yd.copy()
    active = np.flatnonzero(np.isfinite(xd) & np.isfinite(yd))
    for _ in range(_UNDISTORT_ITERATIONS):
        if active.size == 0:
            break
        xa, ya = x[active], y[active]
        r2 = xa * xa + ya * ya
        num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
        dnum = k1 + r2 * (2 * k2 + r2 * 3 * k3)
        dden = k4 + r2 * (2 * k5 + r2 * 3 * k6)
        c = num / den
        dc = (dnum * den - num * dden) / (den * den)  # d c / d r2
        fx = xa * c + 2 * p1 * xa * ya + p2 * (r2 + 2 * xa * xa) - xd[active]
        fy = ya * c + p1 * (r2 + 2 * ya * ya) + 2 * p2 * xa * ya - yd[active]
        a = c + 2 * xa * xa * dc + 2 * p1 * ya + 6 * p2 * xa
        b = 2 * xa * ya * dc + 2 * p1 * xa + 2 * p2 * ya
        d = c + 2 * ya * ya * dc + 6 * p1 * ya + 2 * p2 * xa
        det = a * d - b * b
        sx = (d * fx - b * fy) / det
        sy = (a * fy - b * fx) / det
        xa, ya = xa - sx, ya - sy
        if math.isfinite(limit):
            r = np.hypot(xa, ya)
            shrink = np.where(r > limit, 0.999 * limit / np.where(r > 0, r, 1.0), 1.0)
            xa, ya = xa * shrink, ya * shrink
        x[active], y[active] = xa, ya
        active = active[np.hypot(sx, sy) > _UNDISTORT_TOLERANCE]
    return x, y


def undistortion_maps(
    intrinsics: CameraIntrinsics, new_intrinsics: CameraIntrinsics | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Pixel maps for ``cv2.remap`` from the distorted image to an undistorted pinhole one.

    Args:
        intrinsics: model of the distorted (raw) image.
        new_intrinsics: pinhole model (distortion "none") of the output image; default: the
            same K and size without distortion.

    Returns:
        (map_x, map_y): (new.height, new.width) float32 source pixel of each output pixel
        (as ``cv2.initUndistortRectifyMap`` / ``cv2.fisheye.initUndistortRectifyMap`` with
        R = I). Output pixels whose ray is outside the valid distortion region map to -1
        (so ``remap`` fills them with the border value instead of folded-back content).
    """
    target = new_intrinsics or CameraIntrinsics(K=intrinsics.K, width=intrinsics.width, height=intrinsics.height)
    if target.distortion_model != "none":
        raise IntrinsicsError(
            f"new_intrinsics must be a pinhole model (distortion_model 'none'), got '{target.distortion_model}'"
        )
    v, u = np.mgrid[0 : target.height, 0 : target.width].astype(np.float64)
    Kn = target.K
    y = (v - Kn[1, 2]) / Kn[1, 1]
    x = (u - Kn[0, 2] - Kn[0, 1] * y) / Kn[0, 0]
    xd, yd, r = distort_normalized(x.ravel(), y.ravel(), intrinsics)
    uv = _to_pixels(xd, yd, intrinsics)
    outside = ~(r < max_undistorted_radius(intrinsics))
    uv[outside] = -1.0
    shape = (target.height, target.width)
    return uv[:, 0].reshape(shape).astype(np.float32), uv[:, 1].reshape(shape).astype(np.float32)


def undistort_image(
    image: NDArray[Any], intrinsics: CameraIntrinsics, new_intrinsics: CameraIntrinsics | None = None
) -> NDArray[Any]:
    """Undistorted copy of ``image`` (H, W[, C], any dtype cv2.remap takes), bilinear.

    The image must have the size of ``intrinsics``; the result has the size of
    ``new_intrinsics`` (default: same K and size). Pixels with no source are 0.
    """
    import cv2  # imported here: the rest of the module needs only numpy

    array = np.asarray(image)
    if array.ndim not in (2, 3) or array.shape[:2] != (intrinsics.height, intrinsics.width):
        raise ProjectionError(
            f"image has shape {array.shape}, expected ({intrinsics.height}, {intrinsics.width}[, channels]) "
            "from the intrinsics"
        )
    map_x, map_y = undistortion_maps(intrinsics, new_intrinsics)
    result: NDArray[Any] = cv2.remap(
        array, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return result


def _to_pixels(xd: FloatArray, yd: FloatArray, intrinsics: CameraIntrinsics) -> FloatArray:
    K = intrinsics.K
    return np.stack([K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]], axis=1)


def _points(points: ArrayLike, name: str) -> FloatArray:
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProjectionError(f"{name} must be an (N, 3) array of numbers: {exc}") from exc
    if p.ndim != 2 or p.shape[1] != 3:
        raise ProjectionError(f"{name} must have shape (N, 3), got {p.shape}")
    return p

"""Mutual information between lidar reflectivity and image intensity.

Pandey, McBride, Savarese & Eustice, "Automatic extrinsic calibration of vision and lidar by
maximizing mutual information" (JFR 2015): where the extrinsic is right, a lidar point's
reflectivity and the gray level of the pixel it projects onto are statistically dependent
(lane markings, signs and number plates are bright in both), so their mutual information
is highest there. Unlike the edge score (``calibration.alignment``) it reads every point in
view, not only depth discontinuities, including the ground a few metres ahead, where a
translation error moves the projection most.

Three pure functions on numpy arrays:

- ``intensity_levels(intensity, bins)``: each point's reflectivity as a histogram bin,
  by rank (histogram equalization), so a sensor's units and a few saturated returns do not
  matter;
- ``image_levels(image, config)``: the image as a (H, W) float map of gray levels in
  ``[0, bins - 1]`` (histogram-equalized, Gaussian-blurred: the blur widens the basin and
  makes the information a smooth function of the projection);
- ``mutual_information(levels, uv, intensity_bins, valid, config)``: the joint histogram
  of (reflectivity bin, gray level) over the valid projected points, each gray value split
  linearly between its two nearest bins, smoothed by a Gaussian kernel (a kernel density
  estimate), and ``MI = H(X) + H(Y) - H(X, Y)`` in nats.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import gaussian_filter

from calibration.alignment import AlignmentError, NoOverlapError, to_gray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class MutualInformationConfig:
    """Histogram settings of the mutual-information score.

    Attributes:
        bins: histogram bins per variable (reflectivity and gray level), >= 2.
        image_blur_sigma_px: Gaussian blur of the equalized gray image, pixels (0 = none).
        histogram_sigma_bins: Gaussian kernel smoothing the joint histogram, bins (0 = none).
        min_points: fewer valid points than this give a score of 0 (too few to estimate
            a joint histogram).
    """

    bins: int = 32
    image_blur_sigma_px: float = 2.0
    histogram_sigma_bins: float = 1.0
    min_points: int = 50

    def __post_init__(self) -> None:
        checks = (
            ("bins", 2 <= self.bins <= 256),
            ("image_blur_sigma_px", self.image_blur_sigma_px >= 0),
            ("histogram_sigma_bins", self.histogram_sigma_bins >= 0),
            ("min_points", self.min_points >= 1),
        )
        for name, ok in checks:
            if not ok:
                raise AlignmentError(f"MutualInformationConfig.{name} = {getattr(self, name)!r} is out of range")


def intensity_levels(intensity: ArrayLike, bins: int, source: str = "intensity") -> IntArray:
    """Histogram bin of each point's reflectivity, by rank.

    Equal values share their mean rank, so a constant column gives one bin.

    Args:
        intensity: (N,) float reflectivity / intensity per point (any units, finite).
        bins: number of bins, >= 2.
        source: name used in error messages (e.g. the scan's file name).

    Returns:
        (N,) int64 in ``[0, bins - 1]``; about N / bins points per bin when values are distinct.
    """
    try:
        values = np.asarray(intensity, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise AlignmentError(f"{source} must be an (N,) array of numbers: {exc}") from None
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise AlignmentError(f"{source} has a non-finite value at row {bad}: {float(values[bad])}")
    if bins < 2:
        raise AlignmentError(f"bins must be >= 2, got {bins!r}")
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts + 1) / 2.0  # 0-based mean rank of each distinct value
    rank = (mean_rank[inverse.reshape(-1)] + 0.5) / values.size  # centre of the rank cell, in (0, 1)
    return np.minimum((rank * bins).astype(np.int64), bins - 1)


def image_levels(image: ArrayLike, config: MutualInformationConfig | None = None) -> NDArray[np.float32]:
    """Gray levels of an image on the histogram's scale.

    Args:
        image: (H, W) gray or (H, W, 3) colour image, uint8 (the camera's own image).
        config: bins and blur.

    Returns:
        (H, W) float32 in ``[0, bins - 1]``: the histogram-equalized gray image, blurred.
    """
    cfg = config or MutualInformationConfig()
    equalized = np.asarray(cv2.equalizeHist(to_gray(image)), dtype=np.float32)
    if cfg.image_blur_sigma_px > 0:
        equalized = np.asarray(cv2.GaussianBlur(equalized, (0, 0), cfg.image_blur_sigma_px), dtype=np.float32)
    return np.ascontiguousarray(equalized * np.float32((cfg.bins - 1) / 255.0), dtype=np.float32)


def mutual_information(
    levels: NDArray[np.float32],
    uv: ArrayLike,
    intensity_bins: ArrayLike,
    valid: ArrayLike,
    config: MutualInformationConfig | None = None,
    weights: ArrayLike | None = None,
) -> float:
    """Mutual information of reflectivity and gray level over the valid projected points.

    Args:
        levels: (H, W) float32 from ``image_levels``; pixel (0, 0) is the centre of the
            top-left pixel (OpenCV convention); sampled bilinearly.
        uv: (N, 2) float pixels [u, v] of the points (the camera's projection).
        intensity_bins: (N,) int from ``intensity_levels`` with the same ``bins``.
        valid: (N,) bool, the projection's validity mask (in the image, in front).
        config: bins and histogram smoothing.
        weights: (N,) float >= 0 per point, or None (all 1).

    Returns:
        Mutual information in nats, >= 0 (0 when fewer than ``config.min_points`` are valid
        or the image or the reflectivity is constant).

    Raises:
        NoOverlapError: no valid point.
        AlignmentError: inconsistent shapes, bins out of range.
    """
    cfg = config or MutualInformationConfig()
    b = cfg.bins
    p = np.asarray(uv, dtype=np.float64)
    ib = np.asarray(intensity_bins).reshape(-1)
    ok = np.asarray(valid, dtype=bool).reshape(-1)
    w = np.ones(ib.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    m = np.asarray(levels, dtype=np.float32)
    if p.ndim != 2 or p.shape[1] != 2 or not (p.shape[0] == ib.shape[0] == ok.shape[0] == w.shape[0]):
        raise AlignmentError(
            f"uv (N, 2), intensity_bins (N,), valid (N,) and weights (N,) must agree, "
            f"got {p.shape}, {ib.shape}, {ok.shape}, {w.shape}"
        )
    if m.ndim != 2:
        raise AlignmentError(f"levels must be an (H, W) map from image_levels, got shape {m.shape}")
    if not ok.any():
        raise NoOverlapError("no lidar point projects into the image")
    if ib.size and (ib.min() < 0 or ib.max() >= b):
        raise AlignmentError(f"intensity_bins must lie in [0, {b - 1}] (config.bins = {b}), got {ib.min()}..{ib.max()}")
    if int(ok.sum()) < cfg.min_points:
        return 0.0
    grid = p[ok].astype(np.float32).reshape(1, -1, 2)
    # map2 None: ``grid`` holds both coordinates (the OpenCV stubs do not admit None)
    gray = cv2.remap(m, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]
    gray = np.clip(gray.reshape(-1).astype(np.float64), 0.0, b - 1.0)
    low = np.minimum(np.floor(gray).astype(np.int64), b - 2)
    upper_share = gray - low
    row = ib[ok].astype(np.int64) * b + low
    wk = w[ok]
    counts = np.bincount(row, weights=wk * (1.0 - upper_share), minlength=b * b)
    counts += np.bincount(row + 1, weights=wk * upper_share, minlength=b * b)
    joint: FloatArray = counts.astype(np.float64).reshape(b, b)
    if cfg.histogram_sigma_bins > 0:
        joint = np.asarray(gaussian_filter(joint, cfg.histogram_sigma_bins, mode="constant"), dtype=np.float64)
    total = float(joint.sum())
    if total <= 0:
        return 0.0
    joint /= total
    information = _entropy(joint.sum(axis=1)) + _entropy(joint.sum(axis=0)) - _entropy(joint.reshape(-1))
    return float(information) if information > 1e-12 else 0.0  # rounding of independent variables


def _entropy(p: FloatArray) -> float:
    q = p[p > 0]
    return float(-np.dot(q, np.log(q)))

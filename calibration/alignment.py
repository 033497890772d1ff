"""Lidar-camera edge alignment: image edge maps, lidar depth discontinuities, and a score.

The score follows Levinson & Thrun, "Automatic online calibration of cameras and lasers"
(RSS 2013): lidar points at depth discontinuities should project onto image edges. Three
pieces, each a pure function on numpy arrays:

- ``edge_map(image)``: (H, W) float32 map rewarding proximity to image edges: Canny edges
  weighted by gradient magnitude, spread by an inverse distance transform (a value ``e`` at
  an edge pixel contributes ``e * decay**d`` at Chebyshev distance ``d``), then, by
  default, minus its local mean (a Gaussian blur), so a textured patch (foliage, gravel)
  is not worth more than a clean edge: only being *on* an edge pays.
- ``depth_discontinuities(points, ring)``: points where the range jumps between horizontal
  neighbours of the same laser ring (the nearer point is kept), or where a ring has missing
  returns (the return next to the hole is an object silhouette against the sky or a dark
  surface). Isolated spikes (foliage, rain) are dropped: the near side must continue a
  smooth surface and an adjacent ring must have a discontinuity at nearly the same azimuth.
- ``alignment_score(edge_map, uv, weights, valid)``: weighted mean of the edge map,
  sampled bilinearly at the projected discontinuities.

Projection is not done here: use ``Rig.project`` or ``calibration.camera_models.project_camera``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import CalibrationError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class AlignmentError(CalibrationError):
    """Bad input to the alignment score: wrong array shapes, empty scans, bad settings."""


class NoOverlapError(AlignmentError):
    """A camera sees none of a lidar's points: the score is undefined for that pair."""


@dataclass(frozen=True)
class EdgeMapConfig:
    """How an image becomes an edge map.

    Attributes:
        blur_sigma_px: Gaussian blur before gradients, pixels (0 = none).
        canny_low, canny_high: Canny hysteresis thresholds on the blurred 8-bit gray image.
        decay: inverse-distance-transform factor per pixel of Chebyshev distance, in (0, 1).
        reach_px: farthest distance an edge spreads, pixels.
        edge_fraction: weight of the edge itself against its spread (Levinson's alpha).
        local_mean_sigma_px: sigma of the local mean subtracted from the map, pixels
            (0 = keep the map non-negative, in [0, 1]).
    """

    blur_sigma_px: float = 1.0
    canny_low: float = 30.0
    canny_high: float = 90.0
    decay: float = 0.9
    reach_px: int = 40
    edge_fraction: float = 0.3
    local_mean_sigma_px: float = 15.0

    def __post_init__(self) -> None:
        checks = (
            ("blur_sigma_px", self.blur_sigma_px >= 0),
            ("canny_low", 0 <= self.canny_low <= self.canny_high),
            ("canny_high", self.canny_high > 0),
            ("decay", 0 < self.decay < 1),
            ("reach_px", self.reach_px >= 0),
            ("edge_fraction", 0 <= self.edge_fraction <= 1),
            ("local_mean_sigma_px", self.local_mean_sigma_px >= 0),
        )
        for name, ok in checks:
            if not ok:
                raise AlignmentError(f"EdgeMapConfig.{name} = {getattr(self, name)!r} is out of range")


#: Coarse map for the first stage of a search: wider blur and spread (a wide basin).
COARSE_EDGES = EdgeMapConfig(blur_sigma_px=2.0, decay=0.97, reach_px=60, local_mean_sigma_px=30.0)
#: Fine map for the final stage and for reported scores.
FINE_EDGES = EdgeMapConfig()


@dataclass(frozen=True)
class DiscontinuityConfig:
    """How depth discontinuities are found in a lidar scan.

    Attributes:
        min_jump_m: smallest range jump between horizontal neighbours, metres.
        gap_jump_m: jump assigned to a return next to missing returns (a hole), metres.
        max_gap_deg: holes wider than this azimuth span make no edge (scan crop limits).
        gap_factor: neighbours farther apart than this many azimuth steps form a hole.
        weight_power: weight = min(jump, max_weight_jump_m) ** weight_power (Levinson: 0.5).
        max_weight_jump_m: jumps are clipped to this before weighting, metres.
        smooth_fraction: the near side continues a surface when its other neighbour's range
            differs by less than smooth_fraction * range + 0.05 m.
        trend_factor: a jump must also exceed ``trend_factor`` times the near side's own range
            step (the range difference to its other neighbour). A surface seen at a grazing
            angle (a wall or a vehicle's side along the road) steps in range by more than
            ``min_jump_m`` from one firing to the next without any silhouette; 1 drops those
            steps. 0 (the default) keeps them: measured in ``fusion bench refine
            --trend-factor``, 1 removes the pitch bias on the simulated drive (73 % of its
            discontinuities were such steps) but leaves too few edges on nuScenes CAM_FRONT,
            whose optimum then jumps (docs/BENCHMARKS.md).
        min_run: that many consecutive smooth pairs are required on the near side.
        ring_support: required number of adjacent rings (0, 1 or 2) with a discontinuity of
            the same side within ``support_steps`` azimuth steps.
        support_steps: azimuth window of ``ring_support``, in azimuth steps.
        min_range_m, max_range_m: range limits of kept points, metres.
        ring_gap_deg: without a ring column, elevation gaps wider than this separate rings.
        max_ring_span_deg: an elevation cluster wider than this is split into bins ...
        elevation_bin_deg: ... of this height (lidars whose rings do not separate cleanly).
    """

    min_jump_m: float = 0.5
    gap_jump_m: float = 3.0
    max_gap_deg: float = 20.0
    gap_factor: float = 1.6
    weight_power: float = 0.5
    max_weight_jump_m: float = 10.0
    smooth_fraction: float = 0.1
    trend_factor: float = 0.0
    min_run: int = 1
    ring_support: int = 1
    support_steps: float = 2.0
    min_range_m: float = 1.0
    max_range_m: float = 80.0
    ring_gap_deg: float = 0.05
    max_ring_span_deg: float = 0.3
    elevation_bin_deg: float = 0.4

    def __post_init__(self) -> None:
        checks = (
            ("min_jump_m", self.min_jump_m > 0),
            ("gap_jump_m", self.gap_jump_m >= 0),
            ("max_gap_deg", self.max_gap_deg > 0),
            ("gap_factor", self.gap_factor > 1),
            ("weight_power", self.weight_power >= 0),
            ("max_weight_jump_m", self.max_weight_jump_m > 0),
            ("smooth_fraction", self.smooth_fraction >= 0),
            ("trend_factor", self.trend_factor >= 0),
            ("min_run", self.min_run >= 0),
            ("ring_support", self.ring_support in (0, 1, 2)),
            ("support_steps", self.support_steps > 0),
            ("min_range_m", 0 <= self.min_range_m < self.max_range_m),
            ("ring_gap_deg", self.ring_gap_deg > 0),
            ("max_ring_span_deg", self.max_ring_span_deg > 0),
            ("elevation_bin_deg", self.elevation_bin_deg > 0),
        )
        for name, ok in checks:
            if not ok:
                raise AlignmentError(f"DiscontinuityConfig.{name} = {getattr(self, name)!r} is out of range")


@dataclass(frozen=True, eq=False)
class Discontinuities:
    """Depth-discontinuity points of one lidar scan.

    Attributes:
        points: (M, 3) float64 edge positions, lidar frame, metres: the nearer point of the
            jump, turned about the lidar z axis by half an azimuth step towards the far side
            (the silhouette lies uniformly between the two firings; the half step removes
            the bias of the near point lying inside the object).
        weights: (M,) float64 > 0, ``min(jump, max_weight_jump_m) ** weight_power``.
        far_points: (M, 3) float64 the far side: the neighbouring firing direction at the
            near range, lidar frame, metres. Projecting ``points`` and ``far_points`` gives
            the silhouette's crossing direction in the image (``channel_weights``).
        source_index: (M,) int64 row of the nearer point in the input scan.
        is_hole: (M,) bool, True where the far side is missing returns, not a farther return.
    """

    points: FloatArray
    weights: FloatArray
    far_points: FloatArray
    source_index: IntArray
    is_hole: BoolArray

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def select(self, mask: ArrayLike) -> Discontinuities:
        """The subset where ``mask`` ((M,) bool) is True."""
        keep = np.asarray(mask, dtype=bool)
        return Discontinuities(
            self.points[keep], self.weights[keep], self.far_points[keep], self.source_index[keep], self.is_hole[keep]
        )


def to_gray(image: ArrayLike) -> NDArray[np.uint8]:
    """(H, W) uint8 gray image of an (H, W) or (H, W, 3) BGR/RGB image (uint8, or float in 0..255)."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)) or min(array.shape[:2]) < 3:
        raise AlignmentError(f"image must be (H, W) or (H, W, 3) with H, W >= 3, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).astype(np.uint8)
    if array.ndim == 3:
        return np.asarray(cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    return np.ascontiguousarray(array)


def edge_pixels(
    image: ArrayLike, config: EdgeMapConfig = FINE_EDGES
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """Gradients and Canny edges of an image, after the config's Gaussian blur.

    Args:
        image: (H, W) gray or (H, W, 3) colour image, uint8.
        config: ``blur_sigma_px`` and the Canny thresholds are used.

    Returns:
        (gx, gy, edges): (H, W) float32 Sobel derivatives along u and v of the blurred gray
        image (gray levels per pixel, 3x3 kernel), and (H, W) bool Canny edge pixels.
    """
    gray = to_gray(image)
    blurred = cv2.GaussianBlur(gray, (0, 0), config.blur_sigma_px) if config.blur_sigma_px > 0 else gray
    as_float = blurred.astype(np.float32)
    gx = cv2.Sobel(as_float, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(as_float, cv2.CV_32F, 0, 1, ksize=3)
    edges = cv2.Canny(blurred, config.canny_low, config.canny_high, L2gradient=True) > 0
    return np.asarray(gx, dtype=np.float32), np.asarray(gy, dtype=np.float32), np.asarray(edges, dtype=bool)


def edge_map(image: ArrayLike, config: EdgeMapConfig = FINE_EDGES) -> NDArray[np.float32]:
    """Oriented edge maps of an image (see the module docstring).

    An edge pixel's strength ``e`` (gradient magnitude on Canny edges, 1 = strong) is split
    between two channels by its gradient direction: ``e * gx^2 / |g|^2`` (channel 0: the
    gradient is horizontal, a vertical edge) and ``e * gy^2 / |g|^2`` (channel 1). A depth
    discontinuity found between horizontal neighbours of a ring is a vertical silhouette
    and reads mostly channel 0, so it is not rewarded for sitting on a horizontal texture
    edge (``channel_weights``).

    Args:
        image: (H, W) gray or (H, W, 3) colour image, uint8 (the camera's own image,
            distorted as recorded).
        config: blur, Canny thresholds, spread and normalization.

    Returns:
        (2, H, W) float32. With ``local_mean_sigma_px == 0``: in [0, 1]. Otherwise each
        channel minus its Gaussian local mean (positive on and near edges, negative beside
        them, about 0 in uniform texture).
    """
    gx, gy, edges = edge_pixels(image, config)
    squared = gx * gx + gy * gy
    magnitude = np.sqrt(squared)
    strength = np.zeros(edges.shape, dtype=np.float32)
    if edges.any():
        scale = float(np.percentile(magnitude[edges], 95.0))
        strength[edges] = np.minimum(magnitude[edges] / max(scale, 1e-6), 1.0)
    share_x = gx * gx / np.maximum(squared, 1e-12)
    kernel = np.ones((3, 3), np.uint8)
    channels = []
    for share in (share_x, 1.0 - share_x):
        seed = (strength * share).astype(np.float32)
        spread = seed.copy()
        for _ in range(config.reach_px):
            # spread(d) = max(seed, decay * max over the 8 neighbours of spread(d - 1))
            spread = np.maximum(seed, config.decay * cv2.dilate(spread, kernel))
        channel = config.edge_fraction * seed + (1.0 - config.edge_fraction) * spread
        if config.local_mean_sigma_px > 0:
            channel = channel - cv2.GaussianBlur(channel, (0, 0), config.local_mean_sigma_px)
        channels.append(channel)
    return np.ascontiguousarray(np.stack(channels), dtype=np.float32)


def assign_rings(points: ArrayLike, config: DiscontinuityConfig | None = None) -> IntArray:
    """Ring index of each point of a scan without a ring column, from its elevation.

    Elevations (angle above the lidar's xy plane) are sorted and split where consecutive
    values differ by more than ``ring_gap_deg``; a cluster spanning more than
    ``max_ring_span_deg`` (lasers that do not separate cleanly) is cut into bins of
    ``elevation_bin_deg``. Rings are numbered from the lowest elevation.

    Args:
        points: (N, 3+) float [x, y, z, ...], lidar frame, metres.

    Returns:
        (N,) int64 ring index, 0 = lowest; -1 for rows that are not finite.
    """
    cfg = config or DiscontinuityConfig()
    xyz = _xyz(points, "points")
    rings = np.full(len(xyz), -1, dtype=np.int64)
    finite = np.flatnonzero(np.all(np.isfinite(xyz), axis=1))
    if finite.size == 0:
        return rings
    elevation = np.degrees(np.arctan2(xyz[finite, 2], np.hypot(xyz[finite, 0], xyz[finite, 1])))
    order = np.argsort(elevation, kind="stable")
    sorted_elevation = elevation[order]
    cluster = np.zeros(finite.size, dtype=np.int64)
    cluster[1:] = np.cumsum(np.diff(sorted_elevation) > cfg.ring_gap_deg)
    starts = np.full(int(cluster[-1]) + 1, np.inf)
    ends = np.full(int(cluster[-1]) + 1, -np.inf)
    np.minimum.at(starts, cluster, sorted_elevation)
    np.maximum.at(ends, cluster, sorted_elevation)
    wide = (ends - starts) > cfg.max_ring_span_deg
    sub = np.where(
        wide[cluster], np.floor((sorted_elevation - starts[cluster]) / cfg.elevation_bin_deg).astype(np.int64), 0
    )
    _, label = np.unique(cluster * (1 << 20) + sub, return_inverse=True)
    rings[finite[order]] = label.reshape(-1)
    return rings


def depth_discontinuities(
    points: ArrayLike, ring: ArrayLike | None = None, config: DiscontinuityConfig | None = None
) -> Discontinuities:
    """Depth-discontinuity points of a spinning-lidar scan.

    Within each ring, points are sorted by azimuth (about the lidar z axis, which must be
    the spin axis). A point is kept when the range to its horizontal neighbour grows by
    more than ``min_jump_m`` (it is the nearer side of a silhouette) or the neighbour is
    missing (a hole of up to ``max_gap_deg``), its other side continues a smooth surface,
    and an adjacent ring has a discontinuity of the same side within ``support_steps``
    azimuth steps. See ``DiscontinuityConfig`` for every threshold.

    Args:
        points: (N, 3+) float [x, y, z, ...], lidar frame, metres; non-finite rows ignored.
        ring: (N,) int laser ring of each point (the ``ring`` column), or None to derive it
            from elevations with ``assign_rings``.
        config: thresholds.

    Returns:
        The discontinuities (possibly empty).
    """
    cfg = config or DiscontinuityConfig()
    xyz = _xyz(points, "points")
    if ring is None:
        rings = assign_rings(xyz, cfg)
    else:
        rings = np.asarray(ring).reshape(-1)
        if rings.shape[0] != xyz.shape[0] or not np.all(np.isfinite(rings.astype(np.float64))):
            raise AlignmentError(f"ring must be (N,) = ({xyz.shape[0]},) finite integers, got shape {rings.shape}")
        rings = rings.astype(np.int64)
    rng = np.linalg.norm(xyz, axis=1)
    usable = np.all(np.isfinite(xyz), axis=1) & (rng >= cfg.min_range_m) & (rng <= cfg.max_range_m)
    index = np.flatnonzero(usable)
    if index.size < 3:
        return _empty()
    X, r, rank = xyz[index], rng[index], _ring_rank(xyz[index], rings[index])
    azimuth = np.arctan2(X[:, 1], X[:, 0])
    order = np.lexsort((azimuth, rank))
    X, r, rank, azimuth, index = X[order], r[order], rank[order], azimuth[order], index[order]
    nxt, prv, step = _ring_neighbours(rank, azimuth)
    gap = np.mod(azimuth[nxt] - azimuth, 2 * np.pi)  # azimuth from each point to its next one
    adjacent = (gap > 0) & (gap < cfg.gap_factor * step)
    hole = ~adjacent & (gap < np.radians(cfg.max_gap_deg)) & (nxt != np.arange(len(r)))
    dr = r[nxt] - r
    smooth = adjacent & (np.abs(dr) < cfg.smooth_fraction * np.minimum(r, r[nxt]) + 0.05)
    # jump seen from each point towards its next (right) and previous (left) neighbour
    jump_right = np.where(adjacent, dr, np.where(hole, cfg.gap_jump_m, 0.0))
    jump_left = np.where(adjacent[prv], -dr[prv], np.where(hole[prv], cfg.gap_jump_m, 0.0))
    smooth_left = _run(smooth, prv, prv, cfg.min_run)  # pairs (prv, i), (prv(prv), prv), ...
    smooth_right = _run(smooth, np.arange(len(r)), nxt, cfg.min_run)
    # the near side's own range step: prv -> i for a jump to the right, i -> nxt to the left
    edge_right = (jump_right > cfg.min_jump_m + cfg.trend_factor * np.abs(dr[prv])) & smooth_left
    edge_left = (jump_left > cfg.min_jump_m + cfg.trend_factor * np.abs(dr)) & smooth_right
    right = edge_right & (~edge_left | (jump_right >= jump_left))
    keep = edge_right | edge_left
    side = np.where(right, 1.0, -1.0)
    if cfg.ring_support:
        keep &= _ring_support(rank, azimuth, side, keep, step, cfg) >= cfg.ring_support
    if not keep.any():
        return _empty()
    jump = np.where(right, jump_right, jump_left)[keep]
    horizontal = np.hypot(X[keep, 0], X[keep, 1])

    def turned(fraction: float) -> FloatArray:
        angle = azimuth[keep] + side[keep] * fraction * step[keep]
        return np.stack([horizontal * np.cos(angle), horizontal * np.sin(angle), X[keep, 2]], axis=1)

    is_hole = np.where(right, hole, hole[prv])[keep]
    weights = np.minimum(jump, cfg.max_weight_jump_m) ** cfg.weight_power
    return Discontinuities(turned(0.5), weights.astype(np.float64), turned(1.0), index[keep].astype(np.int64), is_hole)


def channel_weights(uv: ArrayLike, uv_far: ArrayLike) -> FloatArray:
    """How much each discontinuity reads each ``edge_map`` channel.

    Args:
        uv: (M, 2) float pixels of ``Discontinuities.points``.
        uv_far: (M, 2) float pixels of ``Discontinuities.far_points`` (same projection).

    Returns:
        (M, 2) float64 ``[dx^2, dy^2]`` of the unit image direction from ``uv`` to
        ``uv_far`` (rows sum to 1; ``[0.5, 0.5]`` where the direction is undefined).
    """
    d = np.asarray(uv_far, dtype=np.float64).reshape(-1, 2) - np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    squared = d * d
    total = squared.sum(axis=1, keepdims=True)
    ok = np.isfinite(total) & (total > 1e-12)
    return np.where(ok, squared / np.where(ok, total, 1.0), 0.5)


def sample_edges(maps: NDArray[np.float32], uv: ArrayLike, weights_per_channel: ArrayLike) -> FloatArray:
    """Edge-map value seen by each point: bilinear samples mixed by channel weights.

    Sampling is ``cv2.remap`` (bilinear; OpenCV quantizes the interpolation weights to
    1/32 pixel), seven times faster than numpy gathers for the refinement's inner loop.

    Args:
        maps: (C, H, W) float32 from ``edge_map``; pixel (0, 0) is the centre of the top-left
            pixel (OpenCV convention).
        uv: (M, 2) float pixels [u, v]; positions outside the image read the nearest border
            pixel (callers mask them with the projection's ``valid``).
        weights_per_channel: (M, C) float, e.g. ``channel_weights``.

    Returns:
        (M,) float64.
    """
    m = np.asarray(maps, dtype=np.float32)
    p = np.nan_to_num(np.asarray(uv, dtype=np.float64).reshape(-1, 2), nan=-1.0, posinf=-1.0, neginf=-1.0)
    mix = np.asarray(weights_per_channel, dtype=np.float64).reshape(p.shape[0], -1)
    if m.ndim != 3 or mix.shape[1] != m.shape[0]:
        raise AlignmentError(f"maps must be (C, H, W) with C = {mix.shape[1]} channel weights, got {m.shape}")
    result = np.zeros(p.shape[0])
    if p.shape[0] == 0:
        return result
    grid = p.astype(np.float32).reshape(1, -1, 2)
    for channel in range(m.shape[0]):
        # map2 None: ``grid`` holds both coordinates (the OpenCV stubs do not admit None)
        sampled = cv2.remap(m[channel], grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # type: ignore[call-overload]
        result += mix[:, channel] * sampled.reshape(-1)
    return result


def alignment_score(
    maps: NDArray[np.float32], uv: ArrayLike, uv_far: ArrayLike, weights: ArrayLike, valid: ArrayLike
) -> float:
    """Weighted mean of the edge maps at projected discontinuity points.

    Args:
        maps: (2, H, W) float32 from ``edge_map`` of the camera's image.
        uv: (M, 2) float64 projected pixels of ``Discontinuities.points``.
        uv_far: (M, 2) float64 projected pixels of ``Discontinuities.far_points``.
        weights: (M,) float64 ``Discontinuities.weights``.
        valid: (M,) bool, the projection's validity mask of ``uv`` (in the image, in front).

    Returns:
        The score (higher = better aligned; about 0 for points unrelated to the image).

    Raises:
        NoOverlapError: no valid point.
        AlignmentError: inconsistent shapes.
    """
    p = np.asarray(uv, dtype=np.float64)
    far = np.asarray(uv_far, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    ok = np.asarray(valid, dtype=bool).reshape(-1)
    if p.ndim != 2 or p.shape[1] != 2 or far.shape != p.shape or not (p.shape[0] == w.shape[0] == ok.shape[0]):
        raise AlignmentError(
            "uv (M, 2), uv_far (M, 2), weights (M,) and valid (M,) must agree, "
            f"got {p.shape}, {far.shape}, {w.shape}, {ok.shape}"
        )
    total = float(w[ok].sum())
    if not ok.any() or total <= 0:
        raise NoOverlapError("no discontinuity point projects into the image")
    values = sample_edges(maps, p[ok], channel_weights(p[ok], far[ok]))
    return float(np.dot(w[ok], values) / total)


def _xyz(points: ArrayLike, name: str) -> FloatArray:
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AlignmentError(f"{name} must be an (N, 3+) array of numbers: {exc}") from None
    if array.ndim != 2 or array.shape[1] < 3:
        raise AlignmentError(f"{name} must have shape (N, 3+) [x, y, z, ...], got {array.shape}")
    return np.ascontiguousarray(array[:, :3])


def _empty() -> Discontinuities:
    return Discontinuities(
        np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    )


def _ring_rank(xyz: FloatArray, rings: IntArray) -> IntArray:
    """Rings renumbered 0..R-1 by increasing mean elevation (adjacent numbers = adjacent lasers)."""
    ids, inverse = np.unique(rings, return_inverse=True)
    elevation = np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1]))
    mean = np.bincount(inverse, weights=elevation, minlength=len(ids)) / np.bincount(inverse, minlength=len(ids))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(mean, kind="stable")] = np.arange(len(ids))
    return rank[inverse.reshape(-1)]


def _ring_neighbours(rank: IntArray, azimuth: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
    """Circular next/previous index within each ring (input sorted by ring, then azimuth),
    and each point's ring azimuth step (median spacing, radians)."""
    n = len(rank)
    starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
    ends = np.r_[starts[1:], n]
    nxt = np.arange(1, n + 1)
    nxt[ends - 1] = starts
    prv = np.arange(-1, n - 1)
    prv[starts] = ends - 1
    step = np.empty(n)
    spacing = np.diff(azimuth)
    for start, end in zip(starts, ends, strict=True):
        inner = spacing[start : end - 1]
        inner = inner[inner > 0]
        step[start:end] = float(np.median(inner)) if inner.size else np.inf
    return nxt, prv, step


def _run(smooth: BoolArray, first: IntArray, partner: IntArray, length: int) -> BoolArray:
    """True where ``length`` consecutive pairs, starting with the pair at ``first`` and
    walking through ``partner``, are smooth (pair k = (k, next(k)))."""
    ok = np.ones(len(smooth), dtype=bool)
    at = first
    for _ in range(length):
        ok &= smooth[at]
        at = partner[at]
    return ok


def _ring_support(
    rank: IntArray,
    azimuth: FloatArray,
    side: FloatArray,
    candidate: BoolArray,
    step: FloatArray,
    cfg: DiscontinuityConfig,
) -> IntArray:
    """Number of adjacent rings (0..2) with a same-side candidate within ``support_steps``."""
    support = np.zeros(len(rank), dtype=np.int64)
    stride = 8.0  # > 2 pi: keys of different rings never mix
    for sign in (1.0, -1.0):
        members = np.flatnonzero(candidate & (side == sign))
        if members.size == 0:
            continue
        keys = rank[members] * stride + azimuth[members]
        keys_sorted = np.r_[np.sort(keys), np.inf]  # a sentinel keeps searchsorted in range
        for delta in (-1, 1):
            query = (rank[members] + delta) * stride + azimuth[members]
            pos = np.searchsorted(keys_sorted, query)
            below = keys_sorted[np.maximum(pos - 1, 0)]
            nearest = np.minimum(np.abs(keys_sorted[pos] - query), np.abs(below - query))
            support[members] += nearest <= cfg.support_steps * step[members]
    return support

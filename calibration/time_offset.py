"""Constant clock offset between two sensors, from their motion (yaw rates).

Both sensors see the vehicle turn: odometry reports its heading, a lidar's consecutive
sweeps register to the heading change between them. With ``rate_a(t)`` and ``rate_b(t)``
the yaw-rate series on each sensor's own stamps, the offset is the ``offset`` maximizing
the normalized cross-correlation (NCC) of ``rate_a(t)`` and ``rate_b(t - offset)`` over
their overlap:

1. both series are resampled (linear interpolation) to ``resample_hz``;
2. the NCC is evaluated at every lag step in ``[-max_offset, +max_offset]``;
3. around the best lag, the NCC is maximized again over a continuous lag (series ``b``
   interpolated at ``t - lag``; bounded scalar search): the sub-sample refinement.

Sign convention: ``offset_ns`` is what to ADD to the stamps of series ``b`` to put them on
the clock of series ``a`` (if ``b``'s stamps run 37 ms late, ``offset_ns = -37e6``). With
``a`` the rig's reference sensor this is the ``time_offset_ms`` of ``b`` in the rig YAML
(``stamp + offset = capture time on the reference clock``).

Confidence: ``correlation`` (peak NCC, 1 = identical shapes) and ``sharpness`` (how much
the NCC drops ``sharpness_lag_s`` either side of the peak). A straight drive has no yaw
excitation and no defined offset: ``InsufficientMotionError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar

from calibration.errors import CalibrationError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Smallest yaw-rate standard deviation (rad/s) over the overlap: below it the vehicle
#: barely turns (straight driving) and the correlation peak is meaningless.
MIN_EXCITATION_RAD_S = 0.02
#: Thresholds of ``TimeOffsetResult.well_defined`` (see ``estimate_time_offset``).
MIN_CORRELATION = 0.8
MIN_SHARPNESS = 0.002


class TimeOffsetError(CalibrationError):
    """Yaw-rate series cannot be compared: bad shapes, unordered stamps, too little overlap."""


class InsufficientMotionError(TimeOffsetError):
    """A series has too little yaw excitation (straight driving) to define a time offset."""


@dataclass(frozen=True, eq=False)
class TimeOffsetResult:
    """Outcome of ``estimate_time_offset``.

    Attributes:
        offset_ns: add to series ``b``'s stamps to get series ``a``'s clock, nanoseconds.
        correlation: NCC at the refined peak, in [-1, 1].
        sharpness: NCC at the peak minus the mean NCC ``sharpness_lag_s`` either side.
        well_defined: correlation >= MIN_CORRELATION, sharpness >= MIN_SHARPNESS and the
            peak is not at the end of the searched lag range.
        lags_ns: (K,) int64 searched lags (grid), nanoseconds.
        ncc: (K,) float64 NCC at each grid lag.
        overlap_s: length of the compared interval, seconds.
        excitation_rad_s: (2,) float64 yaw-rate standard deviation of a and b there.
    """

    offset_ns: int
    correlation: float
    sharpness: float
    well_defined: bool
    lags_ns: IntArray
    ncc: FloatArray
    overlap_s: float
    excitation_rad_s: FloatArray

    @property
    def offset_ms(self) -> float:
        return self.offset_ns / 1e6


def estimate_time_offset(
    stamps_a_ns: ArrayLike,
    rate_a: ArrayLike,
    stamps_b_ns: ArrayLike,
    rate_b: ArrayLike,
    *,
    max_offset_ns: int = 500_000_000,
    resample_hz: float = 100.0,
    sharpness_lag_s: float = 0.1,
    min_excitation_rad_s: float = MIN_EXCITATION_RAD_S,
    names: tuple[str, str] = ("a", "b"),
) -> TimeOffsetResult:
    """Clock offset of series ``b`` relative to series ``a`` (module docstring).

    Args:
        stamps_a_ns: (Na,) int64 strictly increasing stamps of series a, nanoseconds.
        rate_a: (Na,) float64 yaw rates of series a, rad/s (any consistent sign).
        stamps_b_ns: (Nb,) int64 strictly increasing stamps of series b, nanoseconds.
        rate_b: (Nb,) float64 yaw rates of series b, rad/s, same sign convention as a.
        max_offset_ns: largest |offset| searched, nanoseconds.
        resample_hz: common sampling rate of the comparison, Hz.
        sharpness_lag_s: lag at which ``sharpness`` is measured, seconds.
        min_excitation_rad_s: smallest yaw-rate standard deviation accepted.
        names: the two series' names, used in error messages (e.g. topics).

    Raises:
        InsufficientMotionError: a series barely turns over the overlap.
        TimeOffsetError: bad arrays, or an overlap shorter than ``4 * max_offset``.
    """
    ta, ra = _series(stamps_a_ns, rate_a, names[0])
    tb, rb = _series(stamps_b_ns, rate_b, names[1])
    if not (max_offset_ns > 0 and resample_hz > 0 and sharpness_lag_s > 0):
        raise TimeOffsetError(
            f"max_offset_ns, resample_hz and sharpness_lag_s must be positive, got "
            f"{max_offset_ns}, {resample_hz}, {sharpness_lag_s}"
        )
    origin = min(ta[0], tb[0])
    sa, sb = (ta - origin) / 1e9, (tb - origin) / 1e9  # seconds from a common origin (int64 difference first)
    max_lag = max_offset_ns / 1e9
    start, stop = max(sa[0], sb[0] + max_lag), min(sa[-1], sb[-1] - max_lag)
    if stop - start < 2 * max_lag:
        raise TimeOffsetError(
            f"series '{names[0]}' ({sa[-1] - sa[0]:.2f} s) and '{names[1]}' ({sb[-1] - sb[0]:.2f} s) overlap "
            f"by {max(stop - start, 0.0) + 2 * max_lag:.2f} s, need at least {4 * max_lag:.2f} s "
            f"for offsets up to {max_lag * 1e3:.0f} ms"
        )
    grid = np.arange(start, stop, 1.0 / resample_hz)
    a = np.interp(grid, sa, ra)
    b_now = np.interp(grid, sb, rb)
    excitation = np.array([a.std(), b_now.std()])
    for name, series in zip(names, (a, b_now), strict=True):
        require_excitation(series, name, min_excitation_rad_s, f"over the {stop - start:.1f} s overlap")

    def ncc(lag: float) -> float:
        return _ncc(a, np.interp(grid - lag, sb, rb))

    step = 1.0 / resample_hz
    lags = np.arange(-np.floor(max_lag / step), np.floor(max_lag / step) + 1) * step
    values = np.array([ncc(lag) for lag in lags])
    best = int(np.argmax(values))
    refined = minimize_scalar(
        lambda lag: -ncc(lag),
        bounds=(lags[max(best - 1, 0)], lags[min(best + 1, len(lags) - 1)]),
        method="bounded",
        options={"xatol": 1e-6},
    )
    offset = float(refined.x) if -refined.fun >= values[best] else float(lags[best])
    peak = ncc(offset)
    sharpness = peak - 0.5 * (ncc(offset - sharpness_lag_s) + ncc(offset + sharpness_lag_s))
    at_edge = best in (0, len(lags) - 1)
    return TimeOffsetResult(
        offset_ns=round(offset * 1e9),
        correlation=peak,
        sharpness=sharpness,
        well_defined=bool(peak >= MIN_CORRELATION and sharpness >= MIN_SHARPNESS and not at_edge),
        lags_ns=np.round(lags * 1e9).astype(np.int64),
        ncc=values,
        overlap_s=float(stop - start),
        excitation_rad_s=excitation,
    )


def require_excitation(
    rates: ArrayLike, name: str, min_excitation_rad_s: float = MIN_EXCITATION_RAD_S, where: str = ""
) -> float:
    """Standard deviation of a yaw-rate series (rad/s); ``InsufficientMotionError`` naming
    the series when it is below ``min_excitation_rad_s`` (e.g. checked on odometry before
    registering lidar sweeps)."""
    value = float(np.std(np.asarray(rates, dtype=np.float64)))
    if not value >= min_excitation_rad_s:
        raise InsufficientMotionError(
            f"series '{name}' has yaw-rate std {value:.4f} rad/s{' ' + where if where else ''}, "
            f"below {min_excitation_rad_s} rad/s: the vehicle barely turns (straight driving), "
            "so the time offset is not observable; record a drive with turns"
        )
    return value


def yaw_rates_from_poses(stamps_ns: ArrayLike, poses: ArrayLike) -> tuple[IntArray, FloatArray]:
    """Yaw rate between consecutive poses, at the midpoints of their stamps.

    Args:
        stamps_ns: (N,) int64 strictly increasing, nanoseconds.
        poses: (N, 4, 4) float64 body -> fixed frame (e.g. base_link -> odom, or the
            pose of a lidar relative to its first sweep).

    Returns:
        (N-1,) int64 midpoint stamps and (N-1,) float64 yaw rates, rad/s: the rotation
        about the body's z axis between consecutive poses divided by their time step.
    """
    t = np.asarray(stamps_ns, dtype=np.int64).reshape(-1)
    P = np.asarray(poses, dtype=np.float64)
    if P.shape != (t.shape[0], 4, 4) or t.shape[0] < 2:
        raise TimeOffsetError(f"poses must be (N, 4, 4) with N = {t.shape[0]} >= 2 stamps, got {P.shape}")
    relative = np.einsum("nji,njk->nik", P[:-1, :3, :3], P[1:, :3, :3])  # R_i^T R_{i+1}
    return _rates(t, _yaw_of(relative))


def yaw_rates_from_sweeps(
    stamps_ns: ArrayLike,
    sweeps: Sequence[ArrayLike],
    *,
    voxel_m: float = 0.3,
    max_correspondence_m: float = 1.0,
    max_range_m: float = 60.0,
    names: Sequence[str] | None = None,
) -> tuple[IntArray, FloatArray]:
    """Yaw rate of a lidar from the registration of its consecutive sweeps.

    Each sweep is registered to the previous one with Open3D point-to-plane ICP (after a
    voxel down-sampling); the yaw of the relative motion about the lidar z axis (assumed
    close to vertical) divided by the stamp difference is the rate at the midpoint.
    Sweeps are taken as instantaneous (motion-compensated or short); the previous step's
    motion seeds each registration.

    Args:
        stamps_ns: (N,) int64 strictly increasing sweep stamps, nanoseconds.
        sweeps: N arrays (M_i, 3+) float [x, y, z, ...], lidar frame, metres.
        voxel_m: down-sampling voxel, metres.
        max_correspondence_m: ICP correspondence distance, metres.
        max_range_m: points farther than this are dropped, metres.
        names: per-sweep labels for error messages (e.g. "topic @ stamp").

    Returns:
        (N-1,) int64 midpoint stamps and (N-1,) float64 yaw rates, rad/s.
    """
    import open3d as o3d

    t = np.asarray(stamps_ns, dtype=np.int64).reshape(-1)
    if len(sweeps) != t.shape[0] or t.shape[0] < 2:
        raise TimeOffsetError(f"need N >= 2 sweeps with N stamps, got {len(sweeps)} sweeps and {t.shape[0]} stamps")
    clouds = []
    for index, sweep in enumerate(sweeps):
        xyz = np.asarray(sweep, dtype=np.float64)
        label = names[index] if names is not None else f"sweep {index}"
        if xyz.ndim != 2 or xyz.shape[1] < 3:
            raise TimeOffsetError(f"{label}: points must be (M, 3+), got {xyz.shape}")
        xyz = xyz[:, :3]
        keep = np.all(np.isfinite(xyz), axis=1) & (np.linalg.norm(xyz, axis=1) <= max_range_m)
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz[keep])).voxel_down_sample(voxel_m)
        if len(cloud.points) < 50:
            raise TimeOffsetError(f"{label}: only {len(cloud.points)} points after down-sampling, need 50")
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=3 * voxel_m, max_nn=20))
        clouds.append(cloud)
    estimation = o3d.pipelines.registration.TransformationEstimationPointToPlane()
    criteria = o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=50)
    motion = np.eye(4)
    yaws = np.empty(len(clouds) - 1)
    for i in range(len(clouds) - 1):
        # source = sweep i+1, target = sweep i: the result maps lidar(t_{i+1}) -> lidar(t_i)
        result = o3d.pipelines.registration.registration_icp(
            clouds[i + 1], clouds[i], max_correspondence_m, motion, estimation, criteria
        )
        motion = np.asarray(result.transformation)
        yaws[i] = float(_yaw_of(motion[None, :3, :3])[0])
    return _rates(t, yaws)


def _rates(t: IntArray, yaws: FloatArray) -> tuple[IntArray, FloatArray]:
    dt = np.diff(t)
    if np.any(dt <= 0):
        raise TimeOffsetError(f"stamps must increase strictly; index {int(np.argmin(dt)) + 1} does not")
    middle = t[:-1] + dt // 2
    return middle.astype(np.int64), yaws / (dt / 1e9)


def _yaw_of(R: FloatArray) -> FloatArray:
    """Rotation angle about z of (K, 3, 3) relative rotations (small roll/pitch ignored)."""
    return np.arctan2(R[:, 1, 0] - R[:, 0, 1], R[:, 0, 0] + R[:, 1, 1])


def _series(stamps: ArrayLike, rates: ArrayLike, name: str) -> tuple[IntArray, FloatArray]:
    t = np.asarray(stamps).reshape(-1)
    r = np.asarray(rates, dtype=np.float64).reshape(-1)
    if t.shape != r.shape or t.size < 4:
        raise TimeOffsetError(f"series '{name}': need >= 4 stamps and as many rates, got {t.shape} and {r.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t.astype(np.float64)))):
        raise TimeOffsetError(f"series '{name}' has non-finite stamps or rates")
    t = t.astype(np.int64)
    if np.any(np.diff(t) <= 0):
        bad = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise TimeOffsetError(
            f"series '{name}': stamps must increase strictly; index {bad} ({int(t[bad])} ns) does not"
        )
    return t, r


def _ncc(x: FloatArray, y: FloatArray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    denominator = float(np.sqrt(np.dot(xc, xc) * np.dot(yc, yc)))
    return float(np.dot(xc, yc) / denominator) if denominator > 0 else 0.0

"""Numba kernels of the lidar de-skew and sweep accumulation: one pass over the points each.

Compiled lazily on first call and cached on disk (``cache=True``); :func:`warm_up` compiles
them on purpose (benchmarks call it before timing and report its time apart). De-skew
transforms positions in float64, accumulation in float32 (see :func:`transform_into`); both
store float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba as nb
import numpy as np
from numpy.typing import NDArray

_F = TypeVar("_F", bound=Callable[..., Any])

#: Status codes of :func:`time_groups`.
IN_ORDER, OUT_OF_ORDER, OUT_OF_RANGE = 0, 1, 2


def _jit(fn: _F) -> _F:
    """``numba.njit(cache=True, nogil=True)`` (the node prepares frames beside its executor
    thread) that keeps the function's type for mypy."""
    return cast(_F, nb.njit(cache=True, nogil=True)(fn))


def _jit_fma(fn: _F) -> _F:
    """:func:`_jit` that lets LLVM fuse multiply-adds (no other fast-math liberties)."""
    return cast(_F, nb.njit(cache=True, nogil=True, fastmath={"contract"})(fn))


@_jit
def time_groups(
    points: NDArray[np.float32],
    ix: int,
    iy: int,
    iz: int,
    it: int,
    max_abs_time_s: float,
    group: NDArray[np.int64],
    offsets: NDArray[np.int64],
) -> tuple[int, int, int, int]:
    """Group a sweep's points by firing time, for sweeps whose times never decrease.

    Args:
        points: (N, F) float32 scan columns; x, y, z at columns ``ix, iy, iz``; the per-point
            time (seconds after the stamp) at column ``it`` (-1: no time field, all at 0).
        group: (N,) int64 output, the time group of each point, -1 for a point with a
            non-finite coordinate or time (dropped).
        offsets: (N,) int64 output, the first ``n_groups`` entries are the groups' distinct
            time offsets (ns after the stamp), increasing.

    Returns:
        (n_groups, n_dropped, status, index): status ``IN_ORDER`` when complete;
        ``OUT_OF_ORDER`` as soon as a time goes back (the outputs are then incomplete and the
        caller groups with ``np.unique`` instead); ``OUT_OF_RANGE`` when point ``index`` has a
        finite time with ``|time| > max_abs_time_s``.
    """
    n_groups = 0
    dropped = 0
    previous = np.int64(0)
    for i in range(points.shape[0]):
        x, y, z = points[i, ix], points[i, iy], points[i, iz]
        t = np.float64(points[i, it]) if it >= 0 else 0.0
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z) and math.isfinite(t)):
            group[i] = -1
            dropped += 1
            continue
        if abs(t) > max_abs_time_s:
            return n_groups, dropped, OUT_OF_RANGE, i
        offset = np.int64(round(t * 1e9))
        if n_groups == 0 or offset != previous:
            if n_groups > 0 and offset < previous:
                return n_groups, dropped, OUT_OF_ORDER, i
            offsets[n_groups] = offset
            n_groups += 1
            previous = offset
        group[i] = n_groups - 1
    return n_groups, dropped, IN_ORDER, -1


@_jit
def apply_grouped(
    points: NDArray[np.float32],
    ix: int,
    iy: int,
    iz: int,
    ii: int,
    group: NDArray[np.int64],
    transforms: NDArray[np.float64],
    out: NDArray[np.float32],
) -> int:
    """Transform every kept point by its group's transform, compacting the output.

    Args:
        points: (N, F) float32 scan columns (x, y, z at ``ix, iy, iz``; intensity at ``ii``,
            -1: none, written as 0).
        group: (N,) int64 group per point, -1 = drop.
        transforms: (G, 4, 4) float64, one per group.
        out: (>= kept, 4) float32 output [x, y, z, intensity], written in point order.

    Returns:
        The number of rows written.
    """
    n = 0
    for i in range(points.shape[0]):
        g = group[i]
        if g < 0:
            continue
        T = transforms[g]
        x, y, z = np.float64(points[i, ix]), np.float64(points[i, iy]), np.float64(points[i, iz])
        out[n, 0] = T[0, 0] * x + T[0, 1] * y + T[0, 2] * z + T[0, 3]
        out[n, 1] = T[1, 0] * x + T[1, 1] * y + T[1, 2] * z + T[1, 3]
        out[n, 2] = T[2, 0] * x + T[2, 1] * y + T[2, 2] * z + T[2, 3]
        out[n, 3] = points[i, ii] if ii >= 0 else np.float32(0.0)
        n += 1
    return n


@_jit_fma
def transform_into(
    source: NDArray[np.float32], T: NDArray[np.float64], time_lag_s: float, out: NDArray[np.float32]
) -> None:
    """``out[k] = [T @ xyz_k, intensity_k, time_lag_s]`` for the rows of ``source``.

    float32 arithmetic with fused multiply-adds (twice as fast as float64 here): the error
    is float32 rounding of the result, under 1e-5 m at 100 m.

    Args:
        source: (N, 4) float32 [x, y, z, intensity].
        T: (4, 4) float64 transform applied to x, y, z.
        out: (N, 5) float32 destination (a slice of the accumulated cloud).
    """
    r00, r01, r02, t0 = np.float32(T[0, 0]), np.float32(T[0, 1]), np.float32(T[0, 2]), np.float32(T[0, 3])
    r10, r11, r12, t1 = np.float32(T[1, 0]), np.float32(T[1, 1]), np.float32(T[1, 2]), np.float32(T[1, 3])
    r20, r21, r22, t2 = np.float32(T[2, 0]), np.float32(T[2, 1]), np.float32(T[2, 2]), np.float32(T[2, 3])
    lag = np.float32(time_lag_s)
    for k in range(source.shape[0]):
        x, y, z = source[k, 0], source[k, 1], source[k, 2]
        out[k, 0] = r00 * x + r01 * y + r02 * z + t0
        out[k, 1] = r10 * x + r11 * y + r12 * z + t1
        out[k, 2] = r20 * x + r21 * y + r22 * z + t2
        out[k, 3] = source[k, 3]
        out[k, 4] = lag


@_jit
def radar_rows(
    points: NDArray[np.float32],
    columns: NDArray[np.int64],
    T: NDArray[np.float64],
    time_lag_s: float,
    propagate: bool,
    out: NDArray[np.float32],
) -> int:
    """Radar detections to ``[x, y, z, rcs, vx, vy, time_lag_s]`` rows in the target frame.

    Args:
        points: (R, F) float32 scan columns; ``columns`` (5,) int64 holds the column of x, y,
            z, vr_compensated and rcs.
        T: (4, 4) float64 radar (scan stamp) -> base_link (frame stamp).
        time_lag_s: frame stamp - scan stamp, seconds.
        propagate: also move each position by velocity * time_lag_s.
        out: (>= R, 7) float32 output; rows with a non-finite input are skipped.

    Returns:
        The number of rows written. Velocity = vr_compensated * unit line of sight, rotated
        by T (0 for a detection at the radar origin).
    """
    n = 0
    ix, iy, iz, iv, ir = columns[0], columns[1], columns[2], columns[3], columns[4]
    for i in range(points.shape[0]):
        x, y, z = np.float64(points[i, ix]), np.float64(points[i, iy]), np.float64(points[i, iz])
        v, rcs = np.float64(points[i, iv]), points[i, ir]
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z) and math.isfinite(v) and math.isfinite(rcs)):
            continue
        distance = math.sqrt(x * x + y * y + z * z)
        scale = v / distance if distance > 0.0 else 0.0
        ux, uy, uz = x * scale, y * scale, z * scale
        vx = T[0, 0] * ux + T[0, 1] * uy + T[0, 2] * uz
        vy = T[1, 0] * ux + T[1, 1] * uy + T[1, 2] * uz
        px = T[0, 0] * x + T[0, 1] * y + T[0, 2] * z + T[0, 3]
        py = T[1, 0] * x + T[1, 1] * y + T[1, 2] * z + T[1, 3]
        pz = T[2, 0] * x + T[2, 1] * y + T[2, 2] * z + T[2, 3]
        if propagate:
            px += vx * time_lag_s
            py += vy * time_lag_s
            pz += (T[2, 0] * ux + T[2, 1] * uy + T[2, 2] * uz) * time_lag_s
        out[n, 0] = px
        out[n, 1] = py
        out[n, 2] = pz
        out[n, 3] = rcs
        out[n, 4] = vx
        out[n, 5] = vy
        out[n, 6] = time_lag_s
        n += 1
    return n


def warm_up() -> None:
    """Compile (or load from the cache) every kernel with the argument types used at run time:
    writable and read-only (zero-copy message buffers, held sweeps) C-contiguous inputs."""
    for writable in (True, False):
        points = np.zeros((2, 6), dtype=np.float32)
        points.setflags(write=writable)
        group = np.empty(2, dtype=np.int64)
        offsets = np.empty(2, dtype=np.int64)
        time_groups(points, 0, 1, 2, 5, 1.0, group, offsets)
        out = np.empty((2, 4), dtype=np.float32)
        apply_grouped(points, 0, 1, 2, 3, group, np.tile(np.eye(4), (2, 1, 1)), out)
        out.setflags(write=writable)
        transform_into(out, np.eye(4), 0.0, np.empty((2, 5), dtype=np.float32))
        radar_rows(points, np.arange(5, dtype=np.int64), np.eye(4), 0.0, False, np.empty((2, 7), dtype=np.float32))

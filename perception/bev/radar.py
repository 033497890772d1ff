"""Radar BEV features: occupancy, mean RCS, mean compensated velocity and count per cell.

``radar_bev(points, grid) -> (5, ny, nx) float32``, channels :data:`RADAR_CHANNELS`:

- ``occupancy``: 1 where the cell holds at least one radar point, else 0;
- ``rcs_mean``: mean radar cross-section, dBsm (mean of the dB values);
- ``vx_mean``, ``vy_mean``: mean ego-motion-compensated velocity, base_link m/s;
- ``count``: number of points in the cell.

Means are ``float32(sum / count)`` with the sums taken in float64 in input order; every
channel is 0 in empty cells. A point is ignored when any of its values is not finite, when
it lies outside the grid's x/y extent, or when z is outside ``[z_min, z_max)`` (the same
rule and float32 cell index as the lidar branch, :mod:`perception.bev._scatter`). The
result is identical to the numpy implementation in ``benchmarks/bev.py``.

A scan holds at most a few hundred points per radar, so the kernel sorts the points' cell
indices (stable, so each cell's points keep their input order) and writes only the
occupied cells into a zeroed output.
"""

from __future__ import annotations

from typing import Final

import numba as nb
import numpy as np
from numpy.typing import NDArray

from perception.bev._scatter import cell_index, check_points, grid_scalars, is_finite, output
from perception.bev_grid import BevGrid

RADAR_CHANNELS: Final = ("occupancy", "rcs_mean", "vx_mean", "vy_mean", "count")
#: Column layout of the radar input.
RADAR_COLUMNS: Final = ("x", "y", "z", "rcs", "vx", "vy", "time_lag_s")


def radar_bev(
    points: NDArray[np.float32], grid: BevGrid, *, source: str = "", out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """Per-cell radar features.

    Args:
        points: (R, 7) float32 ``[x, y, z, rcs, vx, vy, time_lag_s]`` in base_link at the
            frame time: metres, dBsm, m/s, seconds. ``vx, vy`` is the ego-motion-compensated
            velocity (the radial ``vr_compensated`` times the unit line of sight, rotated
            into base_link); ``time_lag_s`` (>= 0) is not a feature but must be finite.
        grid: the BEV grid.
        source: where the points came from (topic, radar ids), named in error messages.
        out: optional (5, ny, nx) float32 C-contiguous array to write into.

    Returns:
        (5, ny, nx) float32 C-contiguous (``out`` when given), channels
        :data:`RADAR_CHANNELS`, row along +y, column along +x.

    Raises:
        BevError: ``points`` is not an (R, 7) float32 array, ``grid`` is not a BevGrid, or
            ``out`` has the wrong shape / dtype / layout.
    """
    g = grid_scalars(grid)
    array = check_points(
        points,
        function="radar_bev",
        argument="points",
        columns=(len(RADAR_COLUMNS),),
        layout=f"[{', '.join(RADAR_COLUMNS)}]",
        source=source,
    )
    out = output(out, (len(RADAR_CHANNELS), grid.ny, grid.nx), function="radar_bev")
    out[...] = 0.0
    _radar_kernel(array, *g, out)
    return out


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _radar_kernel(
    points: NDArray[np.float32],
    x_min: np.float32,
    y_min: np.float32,
    res: np.float32,
    nx_f: np.float32,
    ny_f: np.float32,
    z_min: np.float32,
    z_max: np.float32,
    nx: np.int32,
    ny: np.int32,
    out: NDArray[np.float32],
) -> None:
    """Write the occupied cells of the zeroed ``out`` (5, ny, nx) from (R, 7) ``points``."""
    n = points.shape[0]
    cell = np.empty(n, dtype=np.int64)
    for k in range(n):
        valid = True
        for j in range(points.shape[1]):
            valid &= is_finite(points[k, j])
        c = cell_index(points[k, 0], points[k, 1], points[k, 2], x_min, y_min, res, nx_f, ny_f, z_min, z_max, nx)
        cell[k] = c if valid else -1
    order = np.argsort(cell, kind="mergesort")  # stable: a cell's points stay in input order
    planes = out.reshape((out.shape[0], nx * ny))
    i = 0
    while i < n and cell[order[i]] < 0:
        i += 1
    while i < n:
        c = cell[order[i]]
        rcs = 0.0
        vx = 0.0
        vy = 0.0
        count = 0
        while i < n and cell[order[i]] == c:
            k = order[i]
            rcs += points[k, 3]
            vx += points[k, 4]
            vy += points[k, 5]
            count += 1
            i += 1
        planes[0, c] = 1.0
        planes[1, c] = rcs / count
        planes[2, c] = vx / count
        planes[3, c] = vy / count
        planes[4, c] = count

"""Lidar BEV features: per-cell statistics of the (accumulated) sweeps, one pass over the points.

``lidar_bev(points, grid) -> (6, ny, nx) float32``, channels :data:`LIDAR_CHANNELS`:

- ``density``: ``log1p(count)`` of the points in the cell;
- ``z_max``, ``z_min``: highest / lowest z, metres;
- ``z_mean``, ``intensity_mean``: ``float32(sum / count)`` with the sum taken in float64 in
  input order;
- ``time_lag_min``: the newest point's time lag, seconds (0 for the current sweep).

Every channel is 0 in empty cells. A point is ignored when any of its values is not finite,
when it lies outside the grid's x/y extent, or when z is outside ``[z_min, z_max)``. Cell
index and z test follow :mod:`perception.bev._scatter` (``grid.cell_of`` in float32).

The result is identical, bit for bit, to the straightforward numpy implementation
(``np.add.at`` / ``np.maximum.at`` / ``np.minimum.at``, float64 sums) in
``benchmarks/bev.py``.

Speed (numba, one core; ``fusion bench bev``): the points are processed in chunks of
:data:`CHUNK`. Per chunk, a branch-free loop (SIMD) computes every point's cell index, then
a branch-free scalar loop updates the cell's 32-byte record (count, float64 sums, z max /
min, newest lag) and appends first-hit cells to a list; the output is zeroed and only the
touched cells are written, then reset. The records live in a per-thread workspace (about
2.4 MB for the default grid) reused from call to call: fresh buffers cost more in page
faults than the computation. ``out=`` reuses the output the same way. The kernels release
the GIL (``nogil``); they compile on first use and are cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import threading
from typing import Any, Final

import numba as nb
import numpy as np
from numpy.typing import NDArray

from perception.bev._scatter import cell_index, check_points, grid_scalars, is_finite, output
from perception.bev_grid import BevGrid

LIDAR_CHANNELS: Final = ("density", "z_max", "z_min", "z_mean", "intensity_mean", "time_lag_min")
#: Points per chunk: a chunk's points (80 KB) and cell indices stay in cache between its two loops.
CHUNK: Final = 4096
#: log1p(n) for small counts, computed by numpy so density matches ``np.log1p`` exactly.
_LOG1P: Final = np.log1p(np.arange(1 << 16, dtype=np.float64)).astype(np.float32)


def lidar_bev(
    points: NDArray[np.float32], grid: BevGrid, *, source: str = "", out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """Per-cell lidar features.

    Args:
        points: (N, 5) float32 ``[x, y, z, intensity, time_lag_s]`` in base_link at the
            frame time, metres / seconds (``time_lag_s`` >= 0: frame stamp minus the sweep's
            stamp), or (N, 4) ``[x, y, z, intensity]`` (time lag 0 for every point).
        grid: the BEV grid.
        source: where the points came from (topic, file), named in error messages.
        out: optional (6, ny, nx) float32 C-contiguous array to write into (a buffer reused
            from frame to frame saves the page faults of a fresh 1.5 MB array).

    Returns:
        (6, ny, nx) float32 C-contiguous (``out`` when given), channels
        :data:`LIDAR_CHANNELS`, row along +y, column along +x (see :mod:`perception.bev_grid`).

    Raises:
        BevError: ``points`` is not an (N, 5) / (N, 4) float32 array, ``grid`` is not a
            BevGrid, or ``out`` has the wrong shape / dtype / layout.
    """
    g = grid_scalars(grid)
    array = check_points(
        points,
        function="lidar_bev",
        argument="points",
        columns=(5, 4),
        layout="[x, y, z, intensity, time_lag_s] (time_lag_s optional)",
        source=source,
    )
    out = output(out, (len(LIDAR_CHANNELS), grid.ny, grid.nx), function="lidar_bev")
    work = _workspace(grid.nx * grid.ny)
    work.clean = False
    _lidar_kernel(array.reshape(-1), array.shape[1], *g, _LOG1P, out, work.wide, work.narrow, work.count, work.touched)
    work.clean = True
    return out


class _Workspace:
    """Per-cell accumulators reused from call to call. One 32-byte record per cell, so that a point touches one
    cache line: float64 [sum z, sum intensity], float32 [z max, z min, newest lag], int32
    count; ``wide`` (float64), ``narrow`` (float32) and ``count`` (int32) view the same
    memory. Kept clean between calls: the kernel resets the cells it touched. One extra cell
    at index ``n_cells`` collects the ignored points (branch-free loop)."""

    def __init__(self, n_cells: int) -> None:
        self.wide = np.zeros(4 * (n_cells + 1), dtype=np.float64)
        self.narrow = self.wide.view(np.float32)
        self.count = self.wide.view(np.int32)
        records = self.narrow.reshape(n_cells + 1, 8)
        records[:, 4:7] = (-np.inf, np.inf, np.inf)
        self.touched = np.empty(n_cells + 2, dtype=np.uint32)
        self.clean = True


_local = threading.local()


def _workspace(n_cells: int) -> _Workspace:
    """This thread's workspace for grids of ``n_cells`` cells (a call interrupted before the
    kernel finished leaves it dirty: it is rebuilt)."""
    spaces: dict[int, _Workspace] = _local.__dict__.setdefault("spaces", {})
    work = spaces.get(n_cells)
    if work is None or not work.clean:
        work = spaces[n_cells] = _Workspace(n_cells)
    return work


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _chunk_cells(block: NDArray[np.float32], columns: int, g: Any, ignored: np.int32, cell: NDArray[np.uint32]) -> None:
    """cell[k] = flat cell of point k of ``block`` (flat (n * columns,)), or ``ignored`` when
    the point is ignored. One loop per column count, each with a constant stride and no
    branch, so that LLVM vectorizes it."""
    x_min, y_min, res, nx_f, ny_f, z_min, z_max, nx, _ = g
    skip = np.int32(ignored)
    if columns == 5:
        for k in range(block.shape[0] // 5):
            x, y, z, i, t = block[5 * k], block[5 * k + 1], block[5 * k + 2], block[5 * k + 3], block[5 * k + 4]
            c = cell_index(x, y, z, x_min, y_min, res, nx_f, ny_f, z_min, z_max, nx)
            cell[k] = np.uint32(c if (c >= 0) & is_finite(i) & is_finite(t) else skip)
    else:
        for k in range(block.shape[0] // 4):
            x, y, z, i = block[4 * k], block[4 * k + 1], block[4 * k + 2], block[4 * k + 3]
            c = cell_index(x, y, z, x_min, y_min, res, nx_f, ny_f, z_min, z_max, nx)
            cell[k] = np.uint32(c if (c >= 0) & is_finite(i) else skip)


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _lidar_kernel(
    flat: NDArray[np.float32],
    columns: int,
    x_min: np.float32,
    y_min: np.float32,
    res: np.float32,
    nx_f: np.float32,
    ny_f: np.float32,
    z_min: np.float32,
    z_max: np.float32,
    nx: np.int32,
    ny: np.int32,
    log1p_table: NDArray[np.float32],
    out: NDArray[np.float32],
    wide: NDArray[np.float64],
    narrow: NDArray[np.float32],
    count: NDArray[np.int32],
    touched: NDArray[np.uint32],
) -> None:
    """Fill ``out`` (6, ny, nx) from ``flat`` (N * columns,) float32 points (see lidar_bev).

    Cell c's record (see _Workspace): wide[4c], wide[4c + 1] = float64 sums of z and
    intensity; narrow[8c + 4], [8c + 5], [8c + 6] = z max, z min, newest lag; count[8c + 7].
    Records come in clean (0 / -inf, inf, inf / 0) and leave clean."""
    g = (x_min, y_min, res, nx_f, ny_f, z_min, z_max, nx, ny)
    n_cells = nx * ny
    # unsigned indices: no negative-index wraparound code in the hot loop
    u1, u2, u3, u4, u5, u6, u7, u8 = (np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4),
                                      np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8))  # fmt: skip
    stride = np.uint64(columns)
    has_lag = columns == 5
    n_touched = np.uint64(0)
    cell = np.empty(CHUNK, dtype=np.uint32)
    n_points = flat.shape[0] // columns
    for start in range(0, n_points, CHUNK):
        stop = min(start + CHUNK, n_points)
        block = flat[start * columns : stop * columns]
        _chunk_cells(block, columns, g, n_cells, cell)
        # Branch-free: ignored points go to the spare cell; a cell's first point appends it
        # to `touched` (the append always writes, it advances only on a first hit).
        for k in range(stop - start):
            c = np.uint64(cell[k])
            p = np.uint64(k) * stride
            z = block[p + u2]
            lag = block[p + u4] if has_lag else np.float32(0.0)
            w = c * u4
            r = c * u8
            seen = count[r + u7]
            count[r + u7] = seen + 1
            touched[n_touched] = c
            n_touched += np.uint64(seen == 0)
            wide[w] += z
            wide[w + u1] += block[p + u3]
            narrow[r + u4] = max(narrow[r + u4], z)
            narrow[r + u5] = min(narrow[r + u5], z)
            narrow[r + u6] = min(narrow[r + u6], lag)
    out[:] = 0.0
    planes = out.reshape((out.shape[0], n_cells))
    n_table = log1p_table.shape[0]
    for j in range(n_touched):
        i = np.int64(touched[j])
        n = count[8 * i + 7]
        if i < n_cells:
            planes[0, i] = log1p_table[n] if n < n_table else np.float32(math.log1p(n))
            planes[1, i] = narrow[8 * i + 4]
            planes[2, i] = narrow[8 * i + 5]
            planes[3, i] = wide[4 * i] / n
            planes[4, i] = wide[4 * i + 1] / n
            planes[5, i] = narrow[8 * i + 6]
        wide[4 * i] = 0.0
        wide[4 * i + 1] = 0.0
        narrow[8 * i + 4] = -np.inf
        narrow[8 * i + 5] = np.inf
        narrow[8 * i + 6] = np.inf
        count[8 * i + 7] = 0

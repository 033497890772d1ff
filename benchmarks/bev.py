"""BEV feature speed (``fusion bench bev``): lidar, radar and ultrasonic branches.

``lidar_bev``: :func:`perception.bev.lidar_bev` on ``--sweeps`` copies of one sweep (copy
``k`` gets time lag ``0.05 k`` s and a small x/y jitter, like accumulated sweeps), against
the straightforward numpy implementation of the same features (``np.add.at`` /
``np.maximum.at`` / ``np.minimum.at``), interleaved in the same run; the outputs are
asserted identical before timing. ``lidar_bev_out``: the same into a reused output
buffer (``out=``), as a runtime that keeps its BEV tensors does (no page faults of a fresh
array). ``radar_bev``: 5 radars x 125 points against its numpy
twin. ``ultrasonic_bev``: the 12 ultrasonics of the default rig
(:class:`perception.bev.UltrasonicBev`, cone tables built once) against a numpy
per-sensor implementation of the same rule on the same tables.

Points: ``--points-file`` (an (N, >=4) float32 ``.npy`` or a KITTI / nuScenes ``.bin``; the
first four columns are used as x, y, z, intensity, as-is) or, by default, 300,000 random
points. One core: ``numba.set_num_threads(1)``. The first (compiling or cache-loading) call
of each kernel is timed apart and reported as ``first_call_ms``. Beside the wall-clock
medians, ``cpu_median_ms`` / ``cpu_baseline_median_ms`` / ``cpu_speedup`` are the medians
of the same runs' thread CPU time, which leave out the time spent waiting for a core on
a loaded machine.

The numpy baselines below are also the reference implementations the tests compare with.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks.inputs import add_points_arguments, load_points
from benchmarks.timing import median_ms, speedup, time_interleaved
from perception.bev_grid import BevGrid

HELP = "lidar / radar / ultrasonic BEV features (numba) vs straightforward numpy (np.add.at)"

SWEEP_LAG_S = 0.05
RADARS = 5
RADAR_POINTS = 125


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_points_arguments(parser, minimum_columns=4)
    parser.add_argument(
        "--sweeps", type=int, default=10, help="copies of the --points-file sweep accumulated (default 10)"
    )


# --- numpy reference implementations -----------------------------------------------------


def _cells_numpy(points: NDArray[np.float32], grid: BevGrid) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Flat cell index and keep mask: ``grid.cell_of`` on the float32 points, z slab, finite rows."""
    with np.errstate(invalid="ignore"):
        row, col, inside = grid.cell_of(points)
        z = points[:, 2]
        keep = inside & (z >= grid.z_min) & (z < grid.z_max) & np.all(np.isfinite(points), axis=1)
    return row * grid.nx + col, keep


def lidar_bev_numpy(points: NDArray[np.float32], grid: BevGrid) -> NDArray[np.float32]:
    """The lidar features of :func:`perception.bev.lidar_bev` with np.add.at / np.maximum.at."""
    flat, keep = _cells_numpy(points, grid)
    flat = flat[keep]
    kept = points[keep]
    z = kept[:, 2]
    lag = kept[:, 4] if points.shape[1] == 5 else np.zeros(len(kept), dtype=np.float32)
    n_cells = grid.nx * grid.ny
    count = np.zeros(n_cells, dtype=np.int64)
    np.add.at(count, flat, 1)
    sum_z = np.zeros(n_cells)
    np.add.at(sum_z, flat, z.astype(np.float64))
    sum_i = np.zeros(n_cells)
    np.add.at(sum_i, flat, kept[:, 3].astype(np.float64))
    z_max = np.full(n_cells, -np.inf, dtype=np.float32)
    np.maximum.at(z_max, flat, z)
    z_min = np.full(n_cells, np.inf, dtype=np.float32)
    np.minimum.at(z_min, flat, z)
    lag_min = np.full(n_cells, np.inf, dtype=np.float32)
    np.minimum.at(lag_min, flat, lag)
    out = np.zeros((6, n_cells), dtype=np.float32)
    hit = count > 0
    out[0] = np.log1p(count.astype(np.float64))
    out[1, hit] = z_max[hit]
    out[2, hit] = z_min[hit]
    out[3, hit] = sum_z[hit] / count[hit]
    out[4, hit] = sum_i[hit] / count[hit]
    out[5, hit] = lag_min[hit]
    return out.reshape(6, grid.ny, grid.nx)


def radar_bev_numpy(points: NDArray[np.float32], grid: BevGrid) -> NDArray[np.float32]:
    """The radar features of :func:`perception.bev.radar_bev` with np.add.at."""
    flat, keep = _cells_numpy(points, grid)
    flat = flat[keep]
    kept = points[keep].astype(np.float64)
    n_cells = grid.nx * grid.ny
    count = np.zeros(n_cells, dtype=np.int64)
    np.add.at(count, flat, 1)
    sums = np.zeros((3, n_cells))
    for row, column in enumerate((3, 4, 5)):  # rcs, vx, vy
        np.add.at(sums[row], flat, kept[:, column])
    out = np.zeros((5, n_cells), dtype=np.float32)
    hit = count > 0
    out[0, hit] = 1.0
    out[1:4, hit] = sums[:, hit] / count[hit]
    out[4] = count
    return out.reshape(5, grid.ny, grid.nx)


def ultrasonic_bev_numpy(rasterizer: Any, ranges: NDArray[np.float64]) -> NDArray[np.float32]:
    """The rule of :class:`perception.bev.UltrasonicBev` in numpy, one sensor at a time, on
    the rasterizer's own cone tables (``cone_cells``)."""
    grid = rasterizer.grid
    out = np.zeros((2, grid.ny * grid.nx), dtype=np.float32)
    band = rasterizer.band_m
    for index, (cone, r) in enumerate(zip(rasterizer.cones, ranges, strict=True)):
        if np.isnan(r) or (r < 0 and r != -np.inf):
            continue
        r = cone.min_range_m if r == -np.inf else r
        cells, distance = rasterizer.cone_cells(index)
        if r > cone.max_range_m:
            out[1, cells] = 1.0
            continue
        out[1, cells[distance < r - band]] = 1.0
        out[0, cells[np.abs(distance - r) <= band]] = 1.0
    return out.reshape(2, grid.ny, grid.nx)


# --- inputs --------------------------------------------------------------------------------


def lidar_input(args: argparse.Namespace) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """(N, 5) float32 [x, y, z, intensity, time_lag_s]: ``--sweeps`` jittered copies of the
    ``--points-file`` sweep (copy k lagging 0.05 k s), or 300,000 random points."""
    rng = np.random.default_rng(0)
    if args.sweeps < 1:
        raise SystemExit(f"--sweeps must be >= 1, got {args.sweeps}")
    if args.points_file is None:
        n = 300_000
        points = np.empty((n, 5), dtype=np.float32)
        points[:, :4] = rng.uniform([-60, -60, -3.5, 0], [60, 60, 5.5, 255], (n, 4))
        points[:, 4] = SWEEP_LAG_S * rng.integers(0, args.sweeps, n)
        return points, {"points": n, "sweeps": args.sweeps, "source": "random"}
    sweep = load_points(args.points_file, args.columns, minimum_columns=4)[:, :4]
    copies = []
    for k in range(args.sweeps):
        copy = np.empty((len(sweep), 5), dtype=np.float32)
        copy[:, :4] = sweep
        if k:
            copy[:, :2] += rng.normal(0.0, 0.05, (len(sweep), 2)).astype(np.float32)
        copy[:, 4] = SWEEP_LAG_S * k
        copies.append(copy)
    points = np.concatenate(copies)
    return points, {
        "points": len(points),
        "sweeps": args.sweeps,
        "points_per_sweep": len(sweep),
        "source": args.points_file,
    }


def radar_input(rig: Any) -> NDArray[np.float32]:
    """(RADARS * RADAR_POINTS, 7) float32 radar points in base_link: per radar of ``rig``,
    random returns within 80 m and its horizontal field of view."""
    from calibration import Modality
    from calibration.transforms import apply_transform

    rng = np.random.default_rng(1)
    scans = []
    for sensor in rig.of(Modality.RADAR)[:RADARS]:
        half = np.radians(sensor.radar.horizontal_fov_deg) / 2
        azimuth = rng.uniform(-half, half, RADAR_POINTS)
        distance = rng.uniform(1.0, 80.0, RADAR_POINTS)
        local = np.stack([distance * np.cos(azimuth), distance * np.sin(azimuth), np.zeros(RADAR_POINTS)], axis=1)
        scan = np.empty((RADAR_POINTS, 7), dtype=np.float32)
        scan[:, :3] = apply_transform(sensor.extrinsic, local)
        scan[:, 3] = rng.normal(5.0, 8.0, RADAR_POINTS)
        scan[:, 4:6] = rng.normal(0.0, 5.0, (RADAR_POINTS, 2))
        scan[:, 6] = rng.uniform(0.0, 0.07, RADAR_POINTS)
        scans.append(scan)
    return np.concatenate(scans)


# --- the stage -----------------------------------------------------------------------------


def _first_call_ms(fn: Any) -> float:
    start = time.perf_counter_ns()
    fn()
    return round((time.perf_counter_ns() - start) / 1e6, 1)


def _cpu_timed(fn: Any, sink: list[int]) -> Any:
    """``fn`` that also appends its thread CPU time (ns) to ``sink``: on a shared machine the
    wall time also counts the waits for a core, the CPU time does not."""

    def timed() -> None:
        start = time.thread_time_ns()
        fn()
        sink.append(time.thread_time_ns() - start)

    return timed


def _compare(name: str, ours: NDArray[np.float32], baseline: NDArray[np.float32]) -> None:
    if not np.array_equal(ours, baseline):
        differ = int(np.count_nonzero(ours != baseline))
        raise SystemExit(f"bench bev: {name} output differs from the numpy baseline in {differ} values")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numba

    from calibration import default_rig_path, load_rig
    from perception.bev import UltrasonicBev, lidar_bev, radar_bev

    numba.set_num_threads(1)
    grid = BevGrid()
    rig = load_rig(default_rig_path())
    grid_size = {"grid": f"{grid.ny}x{grid.nx}", "resolution_m": grid.resolution}

    points, lidar_info = lidar_input(args)
    radar_points = radar_input(rig)
    rasterizer = UltrasonicBev.from_rig(rig, grid)
    ranges = np.random.default_rng(2).uniform(0.1, 6.0, len(rasterizer.cones))
    ranges[::4] = np.inf  # nothing detected
    ranges[1] = -np.inf  # too close

    first = {
        "lidar_bev": _first_call_ms(lambda: lidar_bev(points, grid)),
        "radar_bev": _first_call_ms(lambda: radar_bev(radar_points, grid)),
        "ultrasonic_bev": _first_call_ms(lambda: rasterizer(ranges)),
    }
    _compare("lidar_bev", lidar_bev(points, grid), lidar_bev_numpy(points, grid))
    _compare("radar_bev", radar_bev(radar_points, grid), radar_bev_numpy(radar_points, grid))
    _compare("ultrasonic_bev", rasterizer(ranges), ultrasonic_bev_numpy(rasterizer, ranges))

    lidar_out = np.empty((6, grid.ny, grid.nx), dtype=np.float32)
    stages = {
        "lidar_bev": (
            lambda: lidar_bev(points, grid),
            lambda: lidar_bev_numpy(points, grid),
            "numpy np.add.at / np.maximum.at / np.minimum.at",
            {**lidar_info, **grid_size},
        ),
        "lidar_bev_out": (
            lambda: lidar_bev(points, grid, out=lidar_out),
            lambda: lidar_bev_numpy(points, grid),
            "numpy np.add.at / np.maximum.at / np.minimum.at",
            {**lidar_info, **grid_size, "out": "reused output buffer"},
        ),
        "radar_bev": (
            lambda: radar_bev(radar_points, grid),
            lambda: radar_bev_numpy(radar_points, grid),
            "numpy np.add.at",
            {"points": len(radar_points), "radars": RADARS, **grid_size},
        ),
        "ultrasonic_bev": (
            lambda: rasterizer(ranges),
            lambda: ultrasonic_bev_numpy(rasterizer, ranges),
            "numpy, one sensor at a time, same cone tables",
            {"sensors": len(rasterizer.cones), "cone_cells": int(rasterizer.cone_cells_total), **grid_size},
        ),
    }
    results: dict[str, Any] = {}
    for name, (ours, baseline, label, inputs) in stages.items():
        cpu: list[list[int]] = [[], []]
        times = time_interleaved([_cpu_timed(ours, cpu[0]), _cpu_timed(baseline, cpu[1])], args.runs, args.warmup)
        candidate, base = median_ms(times[0]), median_ms(times[1])
        cpu_candidate, cpu_base = median_ms(cpu[0][args.warmup :]), median_ms(cpu[1][args.warmup :])
        results[name] = {
            "median_ms": candidate,
            "runs": len(times[0]),
            "input": inputs,
            "first_call_ms": first[name.removesuffix("_out")],
            "baseline": label,
            "baseline_median_ms": base,
            "speedup": speedup(base, candidate),
            "cpu_median_ms": cpu_candidate,
            "cpu_baseline_median_ms": cpu_base,
            "cpu_speedup": speedup(cpu_base, cpu_candidate),
        }
    return results

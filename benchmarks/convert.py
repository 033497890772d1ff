"""Benchmarks of the PointCloud2 <-> numpy conversions (``fusion bench convert``).

Each benchmark times the library function and a straightforward baseline in the same
process, interleaved run by run (so drift hits both alike), checks both produce identical
results and reports medians of ``time.perf_counter_ns`` in milliseconds.
"""

from __future__ import annotations

import argparse
import array
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sensor_msgs.msg import PointCloud2

from benchmarks.timing import median_ms, speedup, time_interleaved
from fusion_node.convert import (
    XYZI_FIELDS,
    pointcloud2_to_array,
    pointcloud2_to_structured,
    structured_to_pointcloud2,
)

FRAME_ID = "lidar_top"
STAMP_NS = 1_700_000_000_000_000_000


def make_points(n_points: int, point_step: int, seed: int = 0) -> NDArray[np.void]:
    """(n_points,) structured array: float32 x, y, z, intensity at 0..12, padded to point_step."""
    if point_step < 16:
        raise ValueError(f"point_step must be >= 16, got {point_step}")
    dtype = np.dtype(
        {"names": list(XYZI_FIELDS), "formats": ["<f4"] * 4, "offsets": [0, 4, 8, 12], "itemsize": point_step}
    )
    rng = np.random.default_rng(seed)
    points = np.zeros(n_points, dtype=dtype)
    for name in ("x", "y", "z"):
        points[name] = rng.uniform(-80.0, 80.0, n_points).astype(np.float32)
    points["intensity"] = rng.uniform(0.0, 255.0, n_points).astype(np.float32)
    return points


def _result(
    stage: str, n_points: int, point_step: int, baseline: str, times: list[list[int]], **extra: Any
) -> dict[str, Any]:
    candidate_ms, baseline_ms = median_ms(times[0]), median_ms(times[1])
    return {
        "stage": stage,
        "input": {"points": n_points, "point_step": point_step},
        "median_ms": candidate_ms,
        "min_ms": round(min(times[0]) / 1e6, 4),
        "runs": len(times[0]),
        "baseline": baseline,
        "baseline_median_ms": baseline_ms,
        "speedup": speedup(baseline_ms, candidate_ms),
        **extra,
    }


def naive_pointcloud2_to_array(msg: Any) -> NDArray[np.float32]:
    """Baseline: structured view, then one column per field stacked and cast."""
    points = pointcloud2_to_structured(msg)
    return np.stack([points[f] for f in XYZI_FIELDS], axis=1).reshape(-1, 4).astype(np.float32)


def bench_pointcloud_to_array(
    n_points: int = 300_000, point_step: int = 32, runs: int = 20, warmup: int = 3
) -> dict[str, Any]:
    """Time ``pointcloud2_to_array`` (x, y, z, intensity float32) against the baseline."""
    msg = structured_to_pointcloud2(make_points(n_points, point_step), frame_id=FRAME_ID, stamp_ns=STAMP_NS)
    fast = pointcloud2_to_array(msg)
    slow = naive_pointcloud2_to_array(msg)
    if not np.array_equal(fast, slow) or fast.shape != (n_points, 4):
        raise AssertionError("pointcloud2_to_array and the baseline disagree")
    times = time_interleaved(
        [lambda: pointcloud2_to_array(msg), lambda: naive_pointcloud2_to_array(msg)],
        runs,
        warmup,
    )
    return _result(
        "pointcloud2_to_array",
        n_points,
        point_step,
        "pointcloud2_to_structured + np.stack([s[f] for f in fields], axis=1).astype(float32)",
        times,
    )


def _metadata_only(points: NDArray[np.void]) -> PointCloud2:
    """A PointCloud2 with the header and layout of ``points`` and no data yet."""
    msg = structured_to_pointcloud2(points[:0], frame_id=FRAME_ID, stamp_ns=STAMP_NS)
    msg.width = len(points)
    msg.row_step = points.dtype.itemsize * len(points)
    msg.is_dense = True
    return msg


def naive_structured_to_pointcloud2(points: NDArray[np.void]) -> PointCloud2:
    """Baseline: metadata, then ``msg.data = points.tobytes()``."""
    msg = _metadata_only(points)
    msg.data = points.tobytes()
    return msg


def bench_array_to_pointcloud2(
    n_points: int = 300_000, point_step: int = 32, runs: int = 20, warmup: int = 3
) -> dict[str, Any]:
    """Time ``structured_to_pointcloud2`` (by default it scans x, y, z for NaN/inf to set
    is_dense) against ``msg.data = points.tobytes()``. Also reports, interleaved in the same
    runs: the builder with ``is_dense`` given (no scan), ``msg.data = array.array('B',
    points.tobytes())`` and the constructor ``PointCloud2(..., data=points.tobytes())``."""
    points = make_points(n_points, point_step)
    built = structured_to_pointcloud2(points, frame_id=FRAME_ID, stamp_ns=STAMP_NS)
    naive = naive_structured_to_pointcloud2(points)
    if bytes(built.data) != bytes(naive.data) or built.fields != naive.fields:
        raise AssertionError("structured_to_pointcloud2 and the baseline disagree")
    if (built.width, built.row_step, built.is_dense) != (naive.width, naive.row_step, True):
        raise AssertionError("structured_to_pointcloud2 and the baseline disagree")

    def array_of_tobytes() -> PointCloud2:
        msg = _metadata_only(points)
        msg.data = array.array("B", points.tobytes())
        return msg

    def constructor() -> PointCloud2:
        meta = _metadata_only(points)
        return PointCloud2(
            header=meta.header,
            height=meta.height,
            width=meta.width,
            fields=meta.fields,
            is_bigendian=False,
            point_step=meta.point_step,
            row_step=meta.row_step,
            data=points.tobytes(),
            is_dense=True,
        )

    times = time_interleaved(
        [
            lambda: structured_to_pointcloud2(points, frame_id=FRAME_ID, stamp_ns=STAMP_NS),
            lambda: naive_structured_to_pointcloud2(points),
            lambda: structured_to_pointcloud2(points, frame_id=FRAME_ID, stamp_ns=STAMP_NS, is_dense=True),
            array_of_tobytes,
            constructor,
        ],
        runs,
        warmup,
    )
    return _result(
        "structured_to_pointcloud2",
        n_points,
        point_step,
        "msg.data = points.tobytes()",
        times[:2],
        alternatives_median_ms={
            "structured_to_pointcloud2(..., is_dense=True) (no NaN scan)": median_ms(times[2]),
            "msg.data = array.array('B', points.tobytes())": median_ms(times[3]),
            "PointCloud2(..., data=points.tobytes())": median_ms(times[4]),
        },
    )


HELP = "PointCloud2 <-> (N, 4) float32 arrays"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", type=int, default=300_000, help="points per cloud")
    parser.add_argument("--point-step", type=int, default=32, help="bytes per point (>= 16)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    kwargs = {"n_points": args.points, "point_step": args.point_step, "runs": args.runs, "warmup": args.warmup}
    return {
        "pointcloud2_to_array": bench_pointcloud_to_array(**kwargs),
        "array_to_pointcloud2": bench_array_to_pointcloud2(**kwargs),
    }

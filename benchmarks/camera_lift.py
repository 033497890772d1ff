"""Camera -> BEV lift speed (``fusion bench camera-lift``).

``lift_cameras`` (numba) of 6 camera feature maps through a lookup table of the rig, against
a straightforward numpy implementation of the same mean (fancy indexing of all samples,
``(gathered * weights).sum``), interleaved in the same run; the outputs must agree within
1e-5. Sizes: the network's (``BevGrid(resolution=0.8)``, 128x128 cells, 4 heights, C = 32,
28x50 feature maps of 224x400 images at stride 8), then a 256x256 grid (0.4 m) and C = 64
as extra rows. ``camera_lift_torch``: ``CameraLift.forward`` (batch 1) at the network's
sizes. ``camera_lut_build_*``: ``build_camera_lut`` (a one-off at start-up), timed apart.

numba and torch run on ``--threads`` threads (default 1, the issue's one-core target);
``first_call_ms`` is the first numba call of the process (JIT compilation, or loading the
cached machine code), not part of the medians. Cameras come from ``--rig`` (default: the
shipped default rig); features are random (the lift's cost does not depend on the values).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks.timing import median_ms, speedup, time_interleaved

HELP = "camera -> BEV lift (numba) vs numpy fancy indexing; torch CameraLift; lookup-table build"

#: (row name, grid resolution m, channels); the first row is the network's size.
_LIFT_ROWS: tuple[tuple[str, float, int], ...] = (
    ("camera_lift", 0.8, 32),
    ("camera_lift_256x256", 0.4, 32),
    ("camera_lift_c64", 0.8, 64),
)
_TOLERANCE = 1e-5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rig", default=None, help="rig YAML (default: the shipped config/rigs/default.yaml)")
    parser.add_argument("--threads", type=int, default=1, help="numba and torch threads (default 1: one core)")


def numpy_lift(
    features: NDArray[np.float32], index: NDArray[np.int64], camera: NDArray[np.int8], present: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """Baseline: (Ncam, C, Hf, Wf) features -> (C, S * cells) gather -> (C, cells) mean of present samples."""
    n_cameras, channels = features.shape[:2]
    flat = np.concatenate(
        [features.transpose(1, 0, 2, 3).reshape(channels, -1), np.zeros((channels, 1), np.float32)], axis=1
    )
    weights = np.append(present.astype(np.float32), np.float32(0.0))[np.where(camera >= 0, camera, n_cameras)]
    total = (flat[:, index] * weights).sum(axis=1)
    count = weights.sum(axis=0)
    out = np.zeros_like(total)
    np.divide(total, count, out=out, where=count > 0)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numba
    import torch

    from calibration import default_rig_path, load_rig
    from perception.bev.camera_lift import lift_cameras
    from perception.bev.camera_lut import build_camera_lut
    from perception.bev_grid import BevGrid

    if args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(args.threads)
    rig_path = args.rig or default_rig_path()
    rig = load_rig(rig_path)
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}
    tables = {}
    first_call_ms = None
    for resolution in sorted({row[1] for row in _LIFT_ROWS}, reverse=True):
        grid = BevGrid(resolution=resolution)
        build_runs = min(args.runs, 5)
        (build_times,) = time_interleaved([lambda grid=grid: build_camera_lut(rig, grid)], build_runs, 1)
        tables[resolution] = table = build_camera_lut(rig, grid)
        results[f"camera_lut_build_{grid.ny}x{grid.nx}"] = {
            "median_ms": median_ms(build_times),
            "runs": len(build_times),
            "input": _table_input(table, str(rig_path)),
        }
    for name, resolution, channels in _LIFT_ROWS:
        table = tables[resolution]
        features = rng.standard_normal((table.num_cameras, channels, *table.feature_size)).astype(np.float32)
        present = np.ones(table.num_cameras, dtype=np.bool_)
        if first_call_ms is None:
            start = time.perf_counter_ns()
            lift_cameras(features, table, present)
            first_call_ms = round((time.perf_counter_ns() - start) / 1e6, 1)
        ours = lift_cameras(features, table, present)
        base = numpy_lift(features, table.index, table.camera, present).reshape(ours.shape)
        difference = float(np.max(np.abs(ours - base)))
        if difference > _TOLERANCE:
            raise SystemExit(f"camera-lift {name}: numba and numpy outputs differ by {difference} (> {_TOLERANCE})")
        times = time_interleaved(
            [
                lambda f=features, t=table, p=present: lift_cameras(f, t, p),
                lambda f=features, t=table, p=present: numpy_lift(f, t.index, t.camera, p),
            ],
            args.runs,
            args.warmup,
        )
        candidate, baseline = median_ms(times[0]), median_ms(times[1])
        results[name] = {
            "median_ms": candidate,
            "runs": len(times[0]),
            "input": {**_table_input(table, str(rig_path)), "channels": channels, "threads": args.threads},
            "baseline": "numpy fancy-indexing gather + sum",
            "baseline_median_ms": baseline,
            "speedup": speedup(baseline, candidate),
            "max_abs_diff": difference,
        }
        if name == _LIFT_ROWS[0][0]:
            results[name]["first_call_ms"] = first_call_ms
    results["camera_lift_torch"] = _torch_row(tables[_LIFT_ROWS[0][1]], _LIFT_ROWS[0][2], args, rng)
    return results


def _torch_row(table: Any, channels: int, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    import torch

    from perception.bev.camera_lift import lift_cameras
    from perception.bev.camera_lift_torch import CameraLift

    lift = CameraLift(table).eval()
    features = rng.standard_normal((1, table.num_cameras, channels, *table.feature_size)).astype(np.float32)
    present = torch.ones(1, table.num_cameras)
    inputs = torch.from_numpy(features)
    with torch.inference_mode():
        difference = float(np.max(np.abs(lift(inputs, present)[0].numpy() - lift_cameras(features[0], table))))
        if difference > _TOLERANCE:
            raise SystemExit(f"camera-lift torch: CameraLift and lift_cameras differ by {difference} (> {_TOLERANCE})")
        (times,) = time_interleaved([lambda: lift(inputs, present)], args.runs, args.warmup)
    return {
        "median_ms": median_ms(times),
        "runs": len(times),
        "input": {**_table_input(table, ""), "channels": channels, "batch": 1, "threads": args.threads},
        "max_abs_diff_vs_numba": difference,
    }


def _table_input(table: Any, rig: str) -> dict[str, Any]:
    return {
        "cameras": table.num_cameras,
        "grid": list(table.grid.shape),
        "heights": len(table.heights_m),
        "samples_per_cell": table.samples,
        "valid_samples": int(np.count_nonzero(table.camera >= 0)),
        "feature_size": list(table.feature_size),
        "image_size": list(table.image_size),
        **({"rig": rig} if rig else {}),
    }

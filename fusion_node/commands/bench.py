"""``fusion bench STAGE``: benchmarks of the runtime's stages.

Every stage reports the median of ``--runs`` timed runs after ``--warmup`` untimed ones and,
where a baseline runs beside it in the same process, the baseline median and the ratio.
``--json`` prints one JSON object: {stage: {median_ms, runs, input, baseline_median_ms, ...}}.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def _convert(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.convert import bench_array_to_pointcloud2, bench_pointcloud_to_array

    return {
        "pointcloud2_to_array": bench_pointcloud_to_array(
            n_points=args.points, point_step=args.point_step, runs=args.runs, warmup=args.warmup
        ),
        "array_to_pointcloud2": bench_array_to_pointcloud2(
            n_points=args.points, point_step=args.point_step, runs=args.runs, warmup=args.warmup
        ),
    }


STAGES: dict[str, tuple[str, Callable[[argparse.Namespace], dict[str, Any]]]] = {
    "convert": ("PointCloud2 <-> (N, 4) float32 arrays", _convert),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, (help_text, _) in STAGES.items():
        stage = stages.add_parser(name, help=help_text, description=help_text)
        stage.add_argument("--runs", type=int, default=20, help="timed runs (median reported, >= 5)")
        stage.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs")
        stage.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "convert":
            stage.add_argument("--points", type=int, default=300_000, help="points per cloud")
            stage.add_argument("--point-step", type=int, default=32, help="bytes per point (>= 16)")


def run(args: argparse.Namespace) -> int:
    if args.runs < 5:
        raise SystemExit(f"fusion bench: --runs must be at least 5, got {args.runs}")
    results = STAGES[args.stage][1](args)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, result in results.items():
        line = f"{name:<24} median {result['median_ms']:8.3f} ms over {result['runs']} runs"
        if "baseline_median_ms" in result:
            line += (
                f"   baseline ({result.get('baseline', 'baseline')}) {result['baseline_median_ms']:.3f} ms,"
                f" speedup {result['baseline_median_ms'] / result['median_ms']:.1f}x"
            )
        print(line)
    return 0

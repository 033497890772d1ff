"""``fusion bench STAGE``: benchmarks of the runtime's stages.

Each stage is a module in ``benchmarks/`` that provides ``HELP``, ``add_arguments(parser)``
and ``run(args) -> {name: result}``; a result holds at least ``median_ms`` and ``runs`` and,
where a baseline ran beside it in the same process, ``baseline``, ``baseline_median_ms`` and
``speedup``. Every stage reports the median of ``--runs`` timed runs after ``--warmup``
untimed ones. ``--json`` prints one JSON object: {name: result}. Stage modules are imported
to build ``--help``, so they import heavy dependencies (open3d, torch) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import json
from types import ModuleType
from typing import Any

# stage name -> module in benchmarks/ (imported only when that stage is chosen or listed)
STAGES: dict[str, str] = {
    "convert": "benchmarks.convert",
    "sim": "benchmarks.sim",
    "bag": "benchmarks.bag",
    "projection": "benchmarks.projection",
    "refine": "benchmarks.refine",
    "camera-lift": "benchmarks.camera_lift",
    "sync": "benchmarks.sync",
    "bev": "benchmarks.bev",
    "ego-motion": "benchmarks.ego_motion",
    "network": "benchmarks.network",
    "transport": "benchmarks.transport",
}


def _stage(name: str) -> ModuleType:
    return importlib.import_module(STAGES[name])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name in STAGES:
        module = _stage(name)
        stage = stages.add_parser(name, help=module.HELP, description=module.HELP)
        stage.add_argument("--runs", type=int, default=20, help="timed runs (median reported, >= 5)")
        stage.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs")
        stage.add_argument("--json", action="store_true", help="print one JSON object")
        module.add_arguments(stage)


def run(args: argparse.Namespace) -> int:
    if args.runs < 5:
        raise SystemExit(f"fusion bench: --runs must be at least 5, got {args.runs}")
    results = _stage(args.stage).run(args)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for line in result_lines(results):
        print(line)
    return 0


def result_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """One line per result of a stage: the median time (and the baseline's, with the speedup)
    for a timing; the result as JSON for a measurement that is not a timing (refine's
    observability)."""
    lines = []
    for name, result in results.items():
        if "median_ms" not in result:
            lines.append(f"{name:<24} {json.dumps(result)}")
            continue
        median = float(result["median_ms"])
        line = f"{name:<24} median {median:8.3f} ms over {result['runs']} runs"
        if "baseline_median_ms" in result:
            baseline = float(result["baseline_median_ms"])
            name_of_baseline = result.get("baseline", "baseline")
            line += f"   baseline ({name_of_baseline}) {baseline:.3f} ms, speedup {baseline / median:.1f}x"
        lines.append(line)
    return lines

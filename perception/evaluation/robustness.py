"""The robustness table of the network issue: mAP with sensors dropped, against the full set.

Input: ``fusion eval --json`` files of one model on the same bags, one per configuration,
named ``<configuration>.json`` (``full``, ``drop_camera``, ``drop_radar``, ``drop_lidar``,
``drop_ultrasonic``, ``drop_cam_front``, ...). Output: a Markdown table of mAP, NDS, car AP,
drivable IoU and the ratio of mAP to the full set, with the issue's target for each dropped
group and whether it is met::

    python -m perception.evaluation.robustness out/eval/*.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from perception.evaluation.errors import EvaluationError

#: Configuration -> the least mAP ratio to the full set the network issue asks for.
TARGETS: Final = {
    "drop_camera": 0.90,
    "drop_radar": 0.95,
    "drop_lidar": 0.40,
    "drop_cam_front": 0.95,
}
FULL: Final = "full"


def load_results(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Configuration name (file stem) -> the metrics JSON; the full set must be among them."""
    results: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise EvaluationError(f"{path}: not a readable fusion eval --json file: {exc}") from exc
        if not isinstance(data, dict) or "mAP" not in data:
            raise EvaluationError(f"{path}: no 'mAP' key; expected the output of fusion eval --json")
        results[path.stem] = data
    if FULL not in results:
        raise EvaluationError(f"no {FULL}.json among {sorted(results)}: the ratios need the full sensor set")
    return results


def _value(data: dict[str, Any], *keys: str) -> float | None:
    node: Any = data
    for key in keys:
        if not isinstance(node, dict) or node.get(key) is None:
            return None
        node = node[key]
    return float(node)


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def robustness_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per configuration (full first), ratio of mAP to the full set, target, met."""
    full_map = float(results[FULL]["mAP"])
    lines = [
        "| configuration | frames | mAP | NDS | car AP | drivable IoU | mAP / full | target | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in sorted(results, key=lambda n: (n != FULL, n)):
        data = results[name]
        ratio = float(data["mAP"]) / full_map if full_map > 0 else None
        target = TARGETS.get(name)
        met = "" if target is None or ratio is None else ("yes" if ratio >= target else "**no**")
        lines.append(
            f"| {name} | {data.get('frames', '–')} | {_cell(_value(data, 'mAP'))} | {_cell(_value(data, 'NDS'))} "
            f"| {_cell(_value(data, 'per_class', 'car', 'AP'))} "
            f"| {_cell(_value(data, 'segmentation', 'drivable_iou'))} | {_cell(ratio, 2)} "
            f"| {'' if target is None else f'>= {target:.2f}'} | {met} |"
        )
    return "\n".join(lines) + "\n"


def print_table(argv: list[str] | None, usage: str, table: Callable[[list[str]], str]) -> int:
    """The command line of a table module: ``table(arguments)`` printed, or the usage / the
    error on stderr with exit code 2."""
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    try:
        print(table(arguments), end="")
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return print_table(
        argv,
        "python -m perception.evaluation.robustness CONFIG.json ...",
        lambda args: robustness_table(load_results([Path(a) for a in args])),
    )


if __name__ == "__main__":
    sys.exit(main())

"""One table for several models: the fused model, single-modality baselines, other fusers.

Input: per model, the folder ``scripts/evaluate_model.sh`` writes (``full.json`` and any
``drop_<group>.json``, the output of ``fusion eval --json`` on the same bags), named on the
command line as ``NAME=FOLDER``. Output: a Markdown table with one row per model, in the
order given. Its columns are mAP, NDS, car and pedestrian AP, car velocity error,
drivable IoU, and the mAP ratio to the model's own full set for each dropped group found
(the robustness targets of :mod:`perception.evaluation.robustness`)::

    python -m perception.evaluation.comparison fused_conv=out/eval/fusion_sim \\
        lidar_only=out/eval/baseline_lidar fused_attention=out/eval/fusion_attention
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from perception.evaluation.errors import EvaluationError
from perception.evaluation.robustness import FULL, TARGETS, _cell, _value, load_results, print_table


def load_models(specs: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``NAME=FOLDER`` specs -> name -> configuration -> metrics JSON (each folder needs full.json)."""
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise EvaluationError(f"{spec!r}: expected NAME=FOLDER (a folder written by scripts/evaluate_model.sh)")
        if name in models:
            raise EvaluationError(f"model name {name!r} given twice")
        paths = sorted(Path(folder).glob("*.json"))
        if not paths:
            raise EvaluationError(f"{folder}: no fusion eval --json files")
        models[name] = load_results(paths)
    return models


def comparison_table(models: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Markdown: one row per model; a dash where a model has no such figure."""
    drops = [name for name in TARGETS if any(name in results for results in models.values())]
    header = ["model", "frames", "mAP", "NDS", "car AP", "pedestrian AP", "car AVE (m/s)", "drivable IoU"]
    header += [f"mAP without {name.removeprefix('drop_')} / full (>= {TARGETS[name]:.2f})" for name in drops]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for model, results in models.items():
        full = results[FULL]
        cells = [
            model,
            str(full.get("frames", "–")),
            _cell(_value(full, "mAP")),
            _cell(_value(full, "NDS")),
            _cell(_value(full, "per_class", "car", "AP")),
            _cell(_value(full, "per_class", "pedestrian", "AP")),
            _cell(_value(full, "per_class", "car", "AVE"), 2),
            _cell(_value(full, "segmentation", "drivable_iou")),
        ]
        full_map = float(full["mAP"])
        for name in drops:
            dropped = results.get(name)
            ratio = float(dropped["mAP"]) / full_map if dropped is not None and full_map > 0 else None
            cells.append(_cell(ratio, 2))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return print_table(
        argv,
        "python -m perception.evaluation.comparison NAME=FOLDER ...",
        lambda specs: comparison_table(load_models(specs)),
    )


if __name__ == "__main__":
    sys.exit(main())

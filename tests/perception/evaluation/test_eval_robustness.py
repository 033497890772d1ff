"""The robustness table: ratios to the full sensor set, the issue's targets, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perception.evaluation.errors import EvaluationError
from perception.evaluation.robustness import load_results, main, robustness_table


def _write(folder: Path, name: str, mAP: float, car: float | None = 0.8) -> Path:
    data = {
        "mAP": mAP,
        "NDS": mAP / 2,
        "frames": 793,
        "per_class": {"car": {"AP": car}},
        "segmentation": {"drivable_iou": 0.9, "occupancy_iou": 0.5},
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_ratios_and_targets(tmp_path: Path) -> None:
    paths = [
        _write(tmp_path, "full", 0.60),
        _write(tmp_path, "drop_camera", 0.57),  # 0.95 >= 0.90: met
        _write(tmp_path, "drop_radar", 0.54),  # 0.90 < 0.95: not met
        _write(tmp_path, "drop_lidar", 0.30, car=None),  # 0.50 >= 0.40
        _write(tmp_path, "drop_ultrasonic", 0.59),  # no target
    ]
    table = robustness_table(load_results(paths))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    assert list(rows) == ["full", "drop_camera", "drop_lidar", "drop_radar", "drop_ultrasonic"]
    assert rows["full"][5] == "1.00"
    assert rows["drop_camera"][5:] == ["0.95", ">= 0.90", "yes"]
    assert rows["drop_radar"][5:] == ["0.90", ">= 0.95", "**no**"]
    assert rows["drop_lidar"][3] == "–"  # no car AP: no car predictions matched
    assert rows["drop_lidar"][5:] == ["0.50", ">= 0.40", "yes"]
    assert rows["drop_ultrasonic"][5:] == ["0.98", "", ""]


def test_the_full_set_is_required_and_bad_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    only = _write(tmp_path, "drop_radar", 0.5)
    with pytest.raises(EvaluationError, match=r"no full.json among \['drop_radar'\]"):
        load_results([only])
    broken = tmp_path / "full.json"
    broken.write_text("{not json")
    with pytest.raises(EvaluationError, match=r"full.json: not a readable fusion eval --json file"):
        load_results([broken])
    broken.write_text(json.dumps({"frames": 3}))
    assert main([str(broken)]) == 2
    assert "full.json: no 'mAP' key" in capsys.readouterr().err

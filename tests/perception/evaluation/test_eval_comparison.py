"""The model comparison table: one row per model, ratios to each model's own full set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perception.evaluation.comparison import comparison_table, load_models, main
from perception.evaluation.errors import EvaluationError


def _write(folder: Path, name: str, mAP: float, car_ave: float = 0.7) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "mAP": mAP,
        "NDS": mAP / 2,
        "frames": 793,
        "per_class": {"car": {"AP": 0.9, "AVE": car_ave}, "pedestrian": {"AP": 0.7}},
        "segmentation": {"drivable_iou": 0.88, "occupancy_iou": 0.5},
    }
    (folder / f"{name}.json").write_text(json.dumps(data))


def _rows(table: str) -> dict[str, list[str]]:
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}


def test_one_row_per_model_in_the_order_given(tmp_path: Path) -> None:
    _write(tmp_path / "fused", "full", 0.60)
    _write(tmp_path / "fused", "drop_radar", 0.54)
    _write(tmp_path / "fused", "drop_camera", 0.59)
    _write(tmp_path / "lidar", "full", 0.50, car_ave=1.25)
    table = comparison_table(load_models([f"lidar_only={tmp_path / 'lidar'}", f"fused={tmp_path / 'fused'}"]))
    header = table.splitlines()[0]
    assert "mAP without camera / full (>= 0.90)" in header
    assert "mAP without radar / full (>= 0.95)" in header
    assert "without lidar" not in header  # no model has that configuration
    rows = _rows(table)
    assert list(rows) == ["lidar_only", "fused"]
    assert rows["fused"][:7] == ["793", "0.600", "0.300", "0.900", "0.700", "0.70", "0.880"]
    assert rows["fused"][7:] == ["0.98", "0.90"]  # camera, radar in the targets' order
    assert rows["lidar_only"][5] == "1.25"
    assert rows["lidar_only"][7:] == ["–", "–"]


def test_bad_specs_and_folders_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(EvaluationError, match=r"'fused': expected NAME=FOLDER"):
        load_models(["fused"])
    with pytest.raises(EvaluationError, match=r"empty: no fusion eval --json files"):
        load_models([f"a={tmp_path / 'empty'}"])
    _write(tmp_path / "only_drop", "drop_radar", 0.5)
    with pytest.raises(EvaluationError, match=r"no full.json among \['drop_radar'\]"):
        load_models([f"a={tmp_path / 'only_drop'}"])
    _write(tmp_path / "ok", "full", 0.5)
    with pytest.raises(EvaluationError, match="model name 'a' given twice"):
        load_models([f"a={tmp_path / 'ok'}", f"a={tmp_path / 'ok'}"])
    assert main([]) == 2
    assert main([f"a={tmp_path / 'ok'}"]) == 0
    assert "| a | 793 | 0.500 |" in capsys.readouterr().out

"""`fusion eval` end to end on the sample bag with an (untrained) checkpoint: the JSON the
issue asks for, --drop, and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perception.model.config import ModelConfig
from perception.model.network import FusionNet
from perception.training.checkpoint import save_checkpoint

BAG = Path(__file__).resolve().parents[2] / "bags" / "sample_city_4s"
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "fusion_sim"
TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_checkpoint(path, {"model": FusionNet(TINY).state_dict(), "config": TINY.to_json(), "step": 0})
    return path


def _eval(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fusion_node.cli", "eval", "--quiet", "--threads", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_eval_writes_the_required_json(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    result = _eval(str(BAG), "--weights", str(weights), "--json", str(out), "--drop", "radar,cam_back")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    for key in ("mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE", "per_class", "segmentation", "frames"):
        assert key in metrics
    assert set(metrics["segmentation"]) == {"drivable_iou", "occupancy_iou"}
    assert {"AP", "ATE", "ASE", "AOE", "AVE"} <= set(metrics["per_class"]["car"])
    assert metrics["frames"] == 39
    assert "cam_back" in metrics["dropped"]
    assert "radar_front" in metrics["dropped"]
    assert metrics["radar_velocity"] is True
    assert "| car |" in result.stdout


@pytest.mark.slow
def test_eval_is_deterministic(weights: Path, tmp_path: Path) -> None:
    """Two runs on the same bag give the same metrics, to the last bit (only timings differ)."""
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        result = _eval(str(BAG), "--weights", str(weights), "--json", str(out))
        assert result.returncode == 0, result.stderr
        metrics = json.loads(out.read_text())
        metrics.pop("latency_ms", None)
        runs.append(metrics)
    assert runs[0] == runs[1]
    assert runs[0]["frames"] == 39


def test_unknown_drop_and_missing_ground_truth_are_clear_errors(weights: Path, tmp_path: Path) -> None:
    result = _eval(str(BAG), "--weights", str(weights), "--drop", "sonar")
    assert result.returncode == 2
    assert "--drop: 'sonar' is neither a group" in result.stderr
    bare = tmp_path / "bare"
    shutil.copytree(BAG, bare)
    (bare / "ground_truth.npz").unlink()
    result = _eval(str(bare), "--weights", str(weights))
    assert result.returncode == 2
    assert "no ground_truth.npz beside the bag" in result.stderr
    result = _eval(str(BAG), "--weights", str(tmp_path / "missing.pt"))
    assert result.returncode == 2
    assert "missing.pt: no such checkpoint" in result.stderr


@pytest.mark.slow
def test_the_runtime_postprocess_improves_velocities_and_drivable_area_and_changes_nothing_else() -> None:
    """The shipped model on the sample bag, scored as the node publishes (radar Doppler
    correction, drivable memory) and as the network outputs it: the same boxes and occupancy,
    better velocities and drivable area."""
    from fusion_node.evaluate import evaluate_bags
    from perception.backends import Predictor, load_backend

    predictor = Predictor(load_backend("onnxruntime", SHIPPED, threads=1))
    runtime = evaluate_bags([BAG], predictor).metrics
    network = evaluate_bags([BAG], predictor, radar_velocity=False, drivable_memory=False).metrics
    for key in ("mAP", "mATE", "mASE", "mAOE"):
        assert runtime[key] == network[key], key
    car, car_network = runtime["per_class"]["car"], network["per_class"]["car"]
    assert car["AP"] == car_network["AP"]
    assert car["AVE"] < 0.6 * car_network["AVE"], (car["AVE"], car_network["AVE"])
    assert runtime["NDS"] > network["NDS"]
    seg, seg_network = runtime["segmentation"], network["segmentation"]
    assert seg["occupancy_iou"] == seg_network["occupancy_iou"]
    assert seg["drivable_iou"] > seg_network["drivable_iou"] + 0.02, (seg, seg_network)

"""The INT8 copy of a bundle's graph for ONNX Runtime: `fusion export --int8`, the manifest
entry, the quantized and the float convolutions, the ``precision="int8"`` backend option, and
INT8 vs FP32 outputs of the shipped network on calibration frames it was not calibrated on,
and the drift check that flags a copy whose outputs move too far."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from calibration import default_rig_path, load_rig
from perception.backends import BackendError, load_backend
from perception.backends.bundle import INT8_FILE, BundleError, load_bundle
from perception.backends.int8_calibration import write_calibration_set
from perception.backends.int8_onnx import (
    KEEP_FLOAT,
    MAX_CENTRE_DRIFT,
    MAX_SEGMENTATION_DRIFT,
    Int8Drift,
    measure_drift,
    to_int8,
)
from perception.model.config import ModelConfig
from perception.model.network import FusionNet
from perception.training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "models" / "fusion_sim"
TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))


@pytest.fixture(scope="module")
def shards(simulated_shards: Callable[..., Path]) -> Path:
    return simulated_shards(seed=6, duration_s=0.8, frames_per_shard=4)


@pytest.fixture(scope="module")
def int8_bundle(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bundle written by `fusion export --int8` (the command under test)."""
    folder = tmp_path_factory.mktemp("bundles")
    checkpoint = folder / "tiny.pt"
    save_checkpoint(checkpoint, {"model": FusionNet(TINY).state_dict(), "config": TINY.to_json(), "step": 2})
    out = folder / "tiny_int8"
    command = [sys.executable, "-m", "fusion_node.cli", "export", str(checkpoint), "--out", str(out)]
    command += ["--int8", str(shards), "--int8-frames", "3", "--int8-method", "minmax"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
    (folder / "export.stdout").write_text(result.stdout)
    return out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--int8", "/nonexistent/shards"], "error: no shard_*.npz under ['/nonexistent/shards']"),
        (["--int8", "bags", "--int8-frames", "0"], "error: --int8-frames must be >= 1, got 0"),
    ],
)
def test_bad_int8_arguments_are_named_and_write_nothing(arguments: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    command = [sys.executable, "-m", "fusion_node.cli", "export", str(SHIPPED / "weights.pt"), "--out", str(out)]
    result = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()
    assert not out.with_name("bundle.partial").exists()


def _weight_sources(model: onnx.ModelProto) -> dict[str, str]:
    """Conv node name -> op type of the node that produces its weight (absent: an initializer)."""
    producers = {output: node.op_type for node in model.graph.node for output in node.output}
    return {
        node.name: producers.get(node.input[1], "initializer") for node in model.graph.node if node.op_type == "Conv"
    }


def test_export_writes_a_quantized_copy_listed_in_the_manifest(int8_bundle: Path) -> None:
    bundle = load_bundle(int8_bundle)
    assert bundle.int8_path == int8_bundle / INT8_FILE
    entry = bundle.manifest["int8"]
    assert (entry["file"], entry["method"], entry["calibration_frames"]) == (INT8_FILE, "minmax", 3)
    assert len(entry["calibration_sha256"]) == 64
    # the copy was compared with model.onnx on check frames drawn with another seed, and that is printed
    drift = entry["drift"]
    assert drift["frames"] >= 1
    assert drift["check_sha256"] != entry["calibration_sha256"]
    assert drift["bounds"] == {"centre": MAX_CENTRE_DRIFT, "segmentation": MAX_SEGMENTATION_DRIFT}
    assert 0.0 <= drift["peaks_kept"] <= 1.0
    assert drift["segmentation"] >= 0.0
    printed = (int8_bundle.parent / "export.stdout").read_text()
    assert f"INT8 copy against model.onnx on {drift['frames']} check frames" in printed
    sources = _weight_sources(onnx.load(str(bundle.int8_path)))
    encoders = {name for name in sources if name.startswith(KEEP_FLOAT)}
    assert {name.split("/")[1] for name in encoders} == {"lidar", "radar"}, "both encoders are in the graph"
    heads = {"/detection/heatmap/heatmap.1/Conv", "/detection/regression/regression.1/Conv"}
    heads.add("/segmentation/layers/layers.1/Conv")
    kept = encoders | heads
    assert heads <= set(sources)
    for name, source in sources.items():
        assert source == ("initializer" if name in kept else "DequantizeLinear"), name
    assert load_bundle(int8_bundle).fp16_path is None


def test_the_backend_runs_the_copy_and_refuses_bundles_without_one(
    int8_bundle: Path, shards: Path, tmp_path: Path, bundle_without: Callable[[Path, str, str], Path]
) -> None:
    int8 = load_backend("onnxruntime", int8_bundle, precision="int8")
    fp32 = load_backend("onnxruntime", int8_bundle)
    frame = write_calibration_set([shards], load_rig(default_rig_path()), TINY, tmp_path / "frame", frames=1)
    inputs = {name: value[0] for name, value in next(iter(frame.batches())).items()}
    for a, b in zip(int8.infer(inputs)[:3], fp32.infer(inputs)[:3], strict=True):
        assert a.shape == b.shape
        assert np.isfinite(a).all()
    plain = bundle_without(int8_bundle, INT8_FILE, "int8")
    with pytest.raises(BackendError, match=r"precision 'int8' needs model_int8.onnx .* --int8 DIRS"):
        load_backend("onnxruntime", plain, precision="int8")
    shutil.copy(int8_bundle / INT8_FILE, plain / INT8_FILE)  # dropped in after export: refused
    with pytest.raises(BundleError, match=r"model_int8.onnx: in the bundle, but .* `fusion export --int8`"):
        load_bundle(plain)


def test_the_shipped_network_in_int8_stays_close_to_fp32_and_a_bad_copy_is_flagged(
    shards: Path, tmp_path: Path
) -> None:
    config = load_bundle(SHIPPED).config
    rig = load_rig(default_rig_path())
    calibration = write_calibration_set([shards], rig, config, tmp_path / "cal", frames=3, seed=0)
    # minmax: 3 frames are too few for percentile clipping (the default, measured with 64
    # frames on the held-out drives in docs/BENCHMARKS.md)
    to_int8(SHIPPED / "model.onnx", tmp_path / "int8.onnx", calibration, "minmax")
    held_out = write_calibration_set([shards], rig, config, tmp_path / "other", frames=5, seed=3)
    fresh = [
        b for b in held_out.batches() if all(not np.array_equal(b["lidar"], c["lidar"]) for c in calibration.batches())
    ]
    assert fresh, "frames outside the calibration set"

    drift = measure_drift(SHIPPED / "model.onnx", tmp_path / "int8.onnx", fresh)
    # near objects, centre probabilities move by ~0.01; segmentation by ~0.002-0.007
    assert drift.frames == len(fresh)
    assert drift.centre_cells > 100 * len(fresh)
    assert drift.problems() == [], drift
    assert drift.peaks_kept >= 0.7, "the strongest peak of most classes stays where it is"

    # quantizing the two encoders that stay float moves the heatmaps far past the bound
    everything = to_int8(SHIPPED / "model.onnx", tmp_path / "all.onnx", calibration, "minmax", keep_float=())
    bad = measure_drift(SHIPPED / "model.onnx", everything, fresh)
    assert bad.centre > 2 * MAX_CENTRE_DRIFT > 2 * drift.centre
    assert any(problem.startswith("centre probabilities move by") for problem in bad.problems())


def test_a_drift_over_either_bound_is_named() -> None:
    within = Int8Drift(frames=2, centre_cells=500, centre=0.01, segmentation=0.005, peaks_kept=0.9)
    assert within.problems() == []
    centre = Int8Drift(frames=2, centre_cells=500, centre=0.05, segmentation=0.005, peaks_kept=0.9)
    assert centre.problems() == [f"centre probabilities move by 0.050 on average (bound {MAX_CENTRE_DRIFT})"]
    broken = Int8Drift(frames=2, centre_cells=500, centre=float("nan"), segmentation=0.02, peaks_kept=0.0)
    assert [p.split(" move")[0] for p in broken.problems()] == ["centre probabilities", "segmentation probabilities"]
    with pytest.raises(BundleError, match="no frames to compare"):
        measure_drift(SHIPPED / "model.onnx", SHIPPED / "model_int8.onnx", [])

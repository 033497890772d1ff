"""Model bundles (export, checksums, manifest checks) and the ONNX Runtime backend == torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from calibration import load_rig
from fusion_node.bag.replay import read_records
from perception.backends import BackendError, Predictor, load_backend
from perception.backends.bundle import BUNDLE_VERSION, BundleError, export_bundle, load_bundle
from perception.model.config import ModelConfig
from perception.model.network import FusionNet
from perception.pipeline import FramePipeline
from perception.training.checkpoint import save_checkpoint

BAG = Path(__file__).resolve().parents[3] / "bags" / "sample_city_4s"
TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8), fuser="attention")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"model": FusionNet(TINY).state_dict(), "config": TINY.to_json(), "step": 7})
    return path


@pytest.fixture(scope="module")
def bundle(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export_bundle(checkpoint, out, geometry_hash="abc", data_hash="seeds-1-2")
    return out


@pytest.fixture(scope="module")
def frame_inputs():
    rig = load_rig(BAG / "rig.yaml")
    pipeline = FramePipeline(rig, TINY)
    frames = []
    for record in read_records(BAG, rig):
        frames += pipeline.push(record)
        if len(frames) >= 3:
            break
    return frames[-1].inputs


def test_bundle_manifest_describes_the_graph(bundle: Path) -> None:
    loaded = load_bundle(bundle)
    manifest = loaded.manifest
    assert manifest["bundle_version"] == BUNDLE_VERSION
    assert manifest["opset"] >= 17
    assert manifest["camera_lookup"]["as_inputs"] is True
    assert manifest["training"] == {
        "checkpoint": manifest["training"]["checkpoint"],
        "step": 7,
        "data_hash": "seeds-1-2",
        "options": None,  # no options.json beside this checkpoint
    }
    names = [spec["name"] for spec in manifest["inputs"]]
    assert names[-2:] == ["lut_index", "lut_camera"]
    assert all(isinstance(d, int) and d > 0 for spec in manifest["inputs"] for d in spec["shape"])
    assert loaded.config == TINY


def test_bundle_records_the_training_run_options_and_names_a_bad_file(checkpoint: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(checkpoint, run / "last.pt")
    options = {"learning_rate": 5e-4, "init": "v3.pt", "batches": {"dropout": {"radar": 0.5}}}
    (run / "options.json").write_text(json.dumps(options))
    assert export_bundle(run / "last.pt", tmp_path / "b1").manifest["training"]["options"] == options
    (run / "options.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match=r"run/options.json: training options must be a JSON object, got list"):
        export_bundle(run / "last.pt", tmp_path / "b2")
    (run / "options.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"run/options.json: unreadable training options"):
        export_bundle(run / "last.pt", tmp_path / "b3")


def test_onnxruntime_backend_equals_torch(bundle: Path, checkpoint: Path, frame_inputs) -> None:
    torch_out = load_backend("torch", checkpoint, threads=1).infer(frame_inputs)
    ort_backend = load_backend("onnxruntime", bundle, threads=1)
    assert "CPUExecutionProvider" in ort_backend.providers
    ort_out = ort_backend.infer(frame_inputs)
    for a, b in zip(torch_out, ort_out, strict=True):
        assert a.shape == b.shape
        assert np.max(np.abs(a - b)) <= 1e-4
    prediction = Predictor(ort_backend)(frame_inputs)
    assert prediction.segmentation.shape == (2, 256, 256)
    assert set(prediction.timings_ms) == {"inference", "decode"}


def test_changed_files_and_bad_manifests_are_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    with open(copy / "model.onnx", "ab") as stream:
        stream.write(b"\0")
    with pytest.raises(BundleError, match=r"model\.onnx: sha256 .* does not match the manifest"):
        load_bundle(copy)
    shutil.copy(bundle / "model.onnx", copy / "model.onnx")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["bundle_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="field 'bundle_version' is 99, this runtime reads 1"):
        load_bundle(copy)
    del manifest["bundle_version"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="field 'bundle_version' is missing"):
        load_bundle(copy)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)


def test_export_never_overwrites_and_backends_are_named(bundle: Path, checkpoint: Path) -> None:
    with pytest.raises(BundleError, match="already exists"):
        export_bundle(checkpoint, bundle)
    with pytest.raises(BackendError, match=r"unknown backend 'tflite'; known: \['onnxruntime', 'tensorrt', 'torch'\]"):
        load_backend("tflite", bundle)


def test_build_only_without_tensorrt_says_what_is_missing(bundle: Path) -> None:
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here: the engine build is tested in test_tensorrt_backend.py")
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "export", str(bundle), "--build-only"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "TensorRT is not installed: see docs/TENSORRT.md" in result.stderr

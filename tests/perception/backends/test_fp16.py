"""The FP16 copy of a bundle's graph: conversion, bundle checksums, the onnxruntime ``precision``
option, ``fusion export --fp16`` / ``fusion eval --precision``, and FP16 vs FP32 outputs of the
shipped preview network on simulated frames."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calibration import load_rig
from fusion_node.bag.replay import read_records
from perception.backends import BackendError, load_backend
from perception.backends.bundle import FP16_FILE, BundleError, example_inputs, export_bundle, load_bundle
from perception.backends.fp16 import to_fp16
from perception.model.config import ModelConfig
from perception.model.network import FusionNet
from perception.pipeline import FramePipeline
from perception.training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[3]
BAG = REPO / "bags" / "sample_city_4s"
PREVIEW = REPO / "models" / "fusion_sim"
TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))
#: float16 unit roundoff (10 stored mantissa bits): the relative error of one rounding.
FP16_U = 2.0**-11


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fusion_node.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=REPO)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"model": FusionNet(TINY).state_dict(), "config": TINY.to_json(), "step": 3})
    return path


@pytest.fixture(scope="module")
def fp16_bundle(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bundle written by `fusion export --fp16` (the command under test)."""
    out = tmp_path_factory.mktemp("bundles") / "tiny_fp16"
    result = _cli("export", str(checkpoint), "--out", str(out), "--fp16")
    assert result.returncode == 0, result.stderr
    assert FP16_FILE in result.stdout
    return out


@pytest.fixture
def fp32_bundle(fp16_bundle: Path, bundle_without: Callable[[Path, str, str], Path]) -> Path:
    """The same bundle as exported without --fp16 (no FP16 file, no manifest entries for it)."""
    return bundle_without(fp16_bundle, FP16_FILE, "fp16")


@pytest.fixture(scope="module")
def preview_fp16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return to_fp16(PREVIEW / "model.onnx", tmp_path_factory.mktemp("preview") / FP16_FILE)


@pytest.fixture(scope="module")
def preview_frames() -> list[dict[str, Any]]:
    """Network inputs of 2 full frames of the simulated sample bag, for the preview network."""
    rig = load_rig(BAG / "rig.yaml")
    pipeline = FramePipeline(rig, load_bundle(PREVIEW).config)
    frames = []
    for record in read_records(BAG, rig):
        frames += pipeline.push(record)
        if len(frames) >= 4:
            break
    return [dict(frame.inputs) for frame in frames[2:4]]


def _interface(path: Path) -> list[tuple[str, str, list[int]]]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [(v.name, v.type, list(v.shape)) for v in (*session.get_inputs(), *session.get_outputs())]


def test_fp16_copy_keeps_the_fp32_interface_and_stores_fp16_weights(preview_fp16: Path) -> None:
    source = onnx.load(str(PREVIEW / "model.onnx"))
    copy = onnx.load(str(preview_fp16))
    interface = _interface(preview_fp16)
    assert interface == _interface(PREVIEW / "model.onnx")
    types = {name: kind for name, kind, _ in interface}
    assert types["lidar"] == types["heatmap"] == "tensor(float)"
    assert types["lut_index"] == "tensor(int64)"
    assert {t.data_type for t in copy.graph.initializer} == {TensorProto.FLOAT16}
    weights = {t.name: numpy_helper.to_array(t) for t in source.graph.initializer}
    for tensor in copy.graph.initializer:  # float32 rounded to float16; below its subnormal 6e-8 -> 6e-8
        half, full = numpy_helper.to_array(tensor).astype(np.float32), weights[tensor.name]
        np.testing.assert_allclose(half, full.astype(np.float16).astype(np.float32), rtol=0, atol=6e-8)
        assert np.array_equal(np.sign(half), np.sign(full))
    count = lambda model, op: sum(n.op_type == op for n in model.graph.node)  # noqa: E731
    assert count(copy, "Conv") == count(source, "Conv") == 25
    assert preview_fp16.stat().st_size < 0.55 * (PREVIEW / "model.onnx").stat().st_size


def test_fp16_outputs_stay_within_float16_rounding_of_fp32_on_simulated_frames(
    preview_fp16: Path, preview_frames: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Tolerance: float16 keeps 10 mantissa bits (unit roundoff u = 2**-11 = 4.9e-4). Rounding
    the weights and the activations ONNX Runtime stores in float16 (concatenations, the camera
    lift) gives output errors of a few u relative to each output's range: measured on the
    preview network over 4 frames of this bag <= 2.2 u (max |diff| 0.008 heatmap, 0.012
    regression, 0.014 segmentation logits on ranges of about 8, 14 and 22), and <= 3.5 u when
    every activation is rounded (torch emulation, as a GPU would). The bound, 8 u of the output's
    largest magnitude, leaves a 2x margin over that; a real conversion fault (a clamped
    constant, an overflow past 65504, a dropped cast) moves outputs by a sizeable fraction of
    their range."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = [
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for path in (PREVIEW / "model.onnx", preview_fp16)
    ]
    names = [i.name for i in sessions[0].get_inputs()]
    for inputs in preview_frames:
        feed = {name: np.ascontiguousarray(inputs[name])[None] for name in names}
        full, half = (session.run(["heatmap", "regression", "segmentation"], feed) for session in sessions)
        for name, a, b in zip(("heatmap", "regression", "segmentation"), full, half, strict=True):
            assert b.dtype == np.float32
            assert b.shape == a.shape
            error = float(np.max(np.abs(a - b)))
            assert 0.0 < error <= 8 * FP16_U * float(np.max(np.abs(a))), (name, error)
        scores = [1.0 / (1.0 + np.exp(-x[0])) for x in (full[0], half[0])]
        assert np.max(np.abs(scores[0] - scores[1])) <= 2e-3  # decode threshold 0.1: no box flips on noise
        masks = [x[1] > 0 for x in (full, half)]
        assert np.mean(masks[0] == masks[1]) >= 0.999


def test_bundle_lists_and_verifies_the_fp16_copy(fp16_bundle: Path, fp32_bundle: Path, tmp_path: Path) -> None:
    from perception.training.checkpoint import file_sha256

    bundle = load_bundle(fp16_bundle)
    assert bundle.fp16_path == fp16_bundle / FP16_FILE
    assert bundle.manifest["files"][FP16_FILE] == file_sha256(fp16_bundle / FP16_FILE)
    assert bundle.manifest["fp16"]["converter"].startswith("onnxruntime.transformers.float16 1.")
    assert load_bundle(fp32_bundle).fp16_path is None

    changed = tmp_path / "changed"
    shutil.copytree(fp16_bundle, changed)
    with open(changed / FP16_FILE, "ab") as stream:
        stream.write(b"\0")
    with pytest.raises(BundleError, match=r"model_fp16\.onnx: sha256 .* does not match the manifest"):
        load_bundle(changed)
    (changed / FP16_FILE).unlink()
    with pytest.raises(BundleError, match=r"model_fp16\.onnx: missing from the bundle"):
        load_bundle(changed)
    shutil.copy(fp16_bundle / FP16_FILE, fp32_bundle / FP16_FILE)  # dropped in after export
    with pytest.raises(BundleError, match=r"model_fp16\.onnx: in the bundle, but field 'files' of .*manifest\.json"):
        load_bundle(fp32_bundle)


def test_onnxruntime_precision_option(fp16_bundle: Path, fp32_bundle: Path) -> None:
    arrays = {name: value[0] for name, value in example_inputs(TINY, seed=1).items()}  # no batch axis
    full = load_backend("onnxruntime", fp16_bundle, threads=1)
    half = load_backend("onnxruntime", fp16_bundle, threads=1, precision="fp16")
    assert (full.precision, half.precision) == ("fp32", "fp16")
    for a, b in zip(full.infer(arrays), half.infer(arrays), strict=True):
        assert b.dtype == np.float32
        assert a.shape == b.shape
        assert 0.0 < np.max(np.abs(a - b)) <= 8 * FP16_U * np.max(np.abs(a))

    with pytest.raises(BackendError) as missing:
        load_backend("onnxruntime", fp32_bundle, precision="fp16")
    assert f"precision 'fp16' needs model_fp16.onnx in the bundle {fp32_bundle}" in str(missing.value)
    assert "fusion export <checkpoint> --out <new bundle> --fp16" in str(missing.value)
    with pytest.raises(BackendError, match=r"onnxruntime: precision 'bf16' is not one of \['fp32', 'fp16', 'int8'\]"):
        load_backend("onnxruntime", fp16_bundle, precision="bf16")
    with pytest.raises(BackendError, match=r"backend 'torch' takes no option precision='fp16'; its options: \["):
        load_backend("torch", fp16_bundle, precision="fp16")


def test_values_beyond_float16_and_unreadable_graphs_are_refused(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    scale = numpy_helper.from_array(np.array([[1e5, 1.0]], dtype=np.float32), name="scale")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "scale"], ["y"])], "g", [x], [y], [scale])
    path = tmp_path / "big.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(
        BundleError, match=r"big\.onnx: tensor 'scale' holds 100000, beyond float16's largest value 65504"
    ):
        to_fp16(path, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()

    scale.CopyFrom(numpy_helper.from_array(np.array([[3.0, 0.5]], dtype=np.float32), name="scale"))
    graph = helper.make_graph([helper.make_node("Mul", ["x", "scale"], ["y"])], "g", [x], [y], [scale])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    import onnxruntime as ort

    session = ort.InferenceSession(str(to_fp16(path, tmp_path / "ok.onnx")), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {"x": np.array([[1.0, 2.0]], dtype=np.float32)})
    np.testing.assert_array_equal(result, [[3.0, 1.0]])

    state = FusionNet(TINY).state_dict()
    state["detection.heatmap.1.bias"][0] = 1e5  # a weight float16 cannot hold
    save_checkpoint(tmp_path / "big.pt", {"model": state, "config": TINY.to_json(), "step": 1})
    with pytest.raises(BundleError, match=r"model\.onnx: tensor '.*' holds 100000, beyond float16's"):
        export_bundle(tmp_path / "big.pt", tmp_path / "bundle", fp16=True)
    assert sorted(tmp_path.iterdir()) == sorted(tmp_path / name for name in ("big.onnx", "big.pt", "ok.onnx"))

    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(BundleError, match=r"junk\.onnx: not a readable ONNX graph"):
        to_fp16(tmp_path / "junk.onnx", tmp_path / "junk16.onnx")


def test_cli_refuses_fp16_it_cannot_serve(fp16_bundle: Path, fp32_bundle: Path) -> None:
    result = _cli("export", str(fp16_bundle), "--build-only", "--fp16")
    assert result.returncode == 2
    assert "--fp16 writes a new bundle; with --build-only use --precision" in result.stderr
    args = ["eval", "--quiet", "--threads", "1", str(BAG), "--precision", "fp16"]
    result = _cli(*args, "--weights", str(fp32_bundle), "--backend", "onnxruntime")
    assert result.returncode == 2
    assert f"needs model_fp16.onnx in the bundle {fp32_bundle}" in result.stderr
    result = _cli(*args, "--weights", str(fp16_bundle), "--backend", "torch")
    assert result.returncode == 2
    assert "backend 'torch' takes no option precision='fp16'" in result.stderr


@pytest.mark.slow
def test_eval_runs_the_fp16_copy(fp16_bundle: Path, tmp_path: Path) -> None:
    reports = {}
    for precision in ("fp32", "fp16"):
        out = tmp_path / f"{precision}.json"
        result = _cli(
            "eval", "--quiet", "--threads", "1", str(BAG), "--weights", str(fp16_bundle),
            "--backend", "onnxruntime", "--precision", precision, "--json", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports[precision] = json.loads(out.read_text())
    assert reports["fp16"]["precision"] == "fp16"
    assert reports["fp32"]["precision"] == "fp32"
    assert reports["fp16"]["frames"] == reports["fp32"]["frames"] > 0
    assert abs(reports["fp16"]["mAP"] - reports["fp32"]["mAP"]) <= 0.01

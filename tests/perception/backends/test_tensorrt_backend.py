"""The TensorRT backend. Here (no TensorRT, no GPU): option checks and the clear error that
points at docs/TENSORRT.md. On a machine with TensorRT 10 and a CUDA GPU: a tiny bundle built
to FP32 / FP16 / INT8 engines, compared with ONNX Runtime, cached, rebuilt on a mismatch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from calibration import default_rig_path, load_rig
from perception.backends import load_backend
from perception.backends.base import BackendError
from perception.backends.bundle import Bundle, export_bundle, input_shapes, load_bundle
from perception.backends.engine_cache import sidecar_path
from perception.backends.tensorrt_backend import TensorRTBackend, build_engine
from perception.model.config import ModelConfig
from perception.model.inputs import InputEncoder
from perception.model.network import INPUT_NAMES, FusionNet
from perception.training.checkpoint import save_checkpoint

TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))
NO_TENSORRT = "TensorRT cannot be installed on these machines (see docs/TENSORRT.md)"


def _tensorrt_installed() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precision": "fp8"}, r"precision 'fp8' is not one of \['fp32', 'fp16', 'int8'\]"),
        ({"workspace_mb": 0}, r"workspace_mb must be an integer >= 1 \(MiB\), got 0"),
        ({"calibrator": "percentile"}, r"calibrator 'percentile' is not one of \['entropy', 'minmax'\]"),
        ({"precision": "int8"}, r"precision 'int8' needs calibration="),
        ({"calibration": "cal"}, r"calibration='cal' is only used with precision 'int8', not 'fp16'"),
    ],
)
def test_bad_options_name_the_option_and_value(options: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=message):
        TensorRTBackend(tmp_path, **options)
    with pytest.raises(BackendError, match=message):
        build_engine(tmp_path, **options)


@pytest.mark.skipif(_tensorrt_installed(), reason="TensorRT is installed here")
def test_without_tensorrt_every_entry_point_points_at_the_docs(tmp_path: Path) -> None:
    for attempt in (
        lambda: TensorRTBackend(tmp_path),
        lambda: build_engine(tmp_path, "fp32"),
        lambda: load_backend("tensorrt", tmp_path, precision="fp16"),
    ):
        with pytest.raises(BackendError, match=r"TensorRT is not installed: see docs/TENSORRT\.md"):
            attempt()


# --- on a machine with TensorRT 10 and a CUDA GPU -------------------------------------------------


@pytest.fixture(scope="module")
def gpu() -> None:
    pytest.importorskip("tensorrt", reason=NO_TENSORRT)
    import torch

    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but no CUDA device is available")


@pytest.fixture(scope="module")
def bundle(gpu: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bundle")
    checkpoint = directory / "tiny.pt"
    save_checkpoint(checkpoint, {"model": FusionNet(TINY).state_dict(), "config": TINY.to_json(), "step": 0})
    return export_bundle(checkpoint, directory / "tiny").path


@pytest.fixture(scope="module")
def frame(gpu: None) -> dict[str, np.ndarray]:
    """One frame's inputs: the default rig's lookup table, random rasters and images."""
    inputs = InputEncoder(load_rig(default_rig_path()), TINY).encode(None, None, None, {})
    rng = np.random.default_rng(0)
    for name in ("lidar", "radar", "ultrasonic", "images"):
        inputs[name] = rng.random(inputs[name].shape, dtype=np.float32)
    inputs["camera_present"][:] = 1.0
    inputs["modality_present"][:] = 1.0
    return inputs


def _onnxruntime(bundle: Path, frame: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(Path(bundle) / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {i.name: np.ascontiguousarray(frame[i.name])[None] for i in session.get_inputs()}
    return list(session.run(["heatmap", "regression", "segmentation"], feed))


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-3), ("fp16", 1e-2)])
def test_engine_matches_onnxruntime(precision: str, tolerance: float, bundle: Path, frame, tmp_path: Path) -> None:
    backend = TensorRTBackend(bundle, precision=precision, cache_dir=tmp_path, workspace_mb=512)
    assert backend.build.built
    assert backend.engine_path.name.startswith(f"fusion_{load_bundle(bundle).checksum[:16]}_{precision}_trt")
    outputs = backend.infer(frame)
    for got, want in zip(outputs, _onnxruntime(bundle, frame), strict=True):
        assert got.shape == want.shape
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=tolerance, rtol=0)
    assert set(backend.last_timings_ms) == {"stage", "h2d", "inference", "d2h"}
    assert all(v >= 0 for v in backend.last_timings_ms.values())
    again = backend.infer(frame)  # buffers are reused; results stay the same
    for first, second in zip(outputs, again, strict=True):
        np.testing.assert_array_equal(first, second)


def test_cached_engine_is_reused_and_rebuilt_on_mismatch(
    bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = build_engine(bundle, "fp16", cache_dir=tmp_path, workspace_mb=512)
    assert first.built
    stamp = first.path.stat().st_mtime_ns
    second = TensorRTBackend(bundle, precision="fp16", cache_dir=tmp_path, build_only=True)
    assert not second.build.built
    assert second.engine_path == first.path
    assert first.path.stat().st_mtime_ns == stamp
    with pytest.raises(BackendError, match=r"build_only=True; it cannot run"):
        second.infer({})
    sidecar = json.loads(sidecar_path(first.path).read_text())
    sidecar["key"]["gpu_name"] = "Some Other GPU"
    sidecar_path(first.path).write_text(json.dumps(sidecar))
    with caplog.at_level(logging.WARNING, logger="perception.backends.tensorrt_backend"):
        third = build_engine(bundle, "fp16", cache_dir=tmp_path, workspace_mb=512)
    assert third.built
    assert "gpu_name 'Some Other GPU'" in third.reason
    assert "gpu_name 'Some Other GPU'" in caplog.text


def test_int8_with_calibration_set_writes_and_reuses_the_calibration_cache(bundle: Path, frame, tmp_path: Path) -> None:
    from perception.backends.int8_calibration import CalibrationSet

    directory = tmp_path / "calibration"
    directory.mkdir()
    rng = np.random.default_rng(1)
    files = []
    for k in range(4):  # perturbed copies of the frame, with the batch axis
        arrays = {n: np.asarray(frame[n])[None].copy() for n in INPUT_NAMES}
        arrays["lidar"] *= rng.random(dtype=np.float32)
        np.savez(directory / f"batch_{k:04d}.npz", **arrays)
        files.append(f"batch_{k:04d}.npz")
    calibration = CalibrationSet(directory, "ab" * 32, tuple(files))
    engines = tmp_path / "engines"
    backend = TensorRTBackend(bundle, precision="int8", calibration=calibration, cache_dir=engines, workspace_mb=512)
    caches = list(engines.glob("*.calib"))
    assert len(caches) == 1
    assert caches[0].stat().st_size > 0
    heatmap, _, segmentation = backend.infer(frame)
    assert np.isfinite(heatmap).all()
    assert segmentation.shape == (1, 2, *TINY.input_grid.shape)
    # a build from the calibration cache alone
    rebuilt = build_engine(bundle, "int8", calibration=caches[0], cache_dir=tmp_path / "other", workspace_mb=512)
    assert rebuilt.built
    assert rebuilt.key.calibration.startswith("cache:entropy:")


def test_parser_errors_name_the_node(gpu: None, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Unique", ["x"], ["y"], name="not_in_tensorrt")],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    from perception.training.checkpoint import file_sha256

    fake = Bundle(tmp_path, {"files": {"model.onnx": file_sha256(tmp_path / "model.onnx")}}, TINY)
    with pytest.raises(BackendError, match=r"cannot parse the graph:\n  node 0 'not_in_tensorrt' \(Unique\)"):
        build_engine(fake, "fp32", cache_dir=tmp_path / "engines")


def test_input_shapes_are_checked(bundle: Path, frame, tmp_path: Path) -> None:
    backend = TensorRTBackend(bundle, precision="fp32", cache_dir=tmp_path)
    bad = dict(frame)
    bad["lidar"] = np.zeros((6, 8, 8), np.float32)
    with pytest.raises(BackendError, match=r"input 'lidar' has shape \(6, 8, 8\); the engine takes \(6, 256, 256\)"):
        backend.infer(bad)
    assert input_shapes(TINY)["lidar"][0] == (1, 6, 256, 256)

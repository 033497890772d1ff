"""INT8 calibration sets: written from simulated shards through the runtime's input path,
exactly the network's input arrays, reproducible, verified on load; calibrators need TensorRT."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from calibration import default_rig_path, load_rig
from perception.backends.base import BackendError
from perception.backends.bundle import input_shapes
from perception.backends.int8_calibration import (
    MANIFEST,
    CalibrationSetError,
    arrays_sha256,
    calibration_cache_name,
    load_calibration_set,
    make_calibrator,
    write_calibration_set,
)
from perception.model.config import ModelConfig
from perception.model.inputs import InputEncoder
from perception.training.dataset import ShardReader

TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))


@pytest.fixture(scope="module")
def rig():
    return load_rig(default_rig_path())


@pytest.fixture(scope="module")
def shards(simulated_shards: Callable[..., Path]) -> Path:
    return simulated_shards(seed=5, duration_s=0.6, frames_per_shard=3)  # 5 frames in 2 shards


@pytest.fixture(scope="module")
def written(shards: Path, rig, tmp_path_factory: pytest.TempPathFactory):
    return write_calibration_set([shards], rig, TINY, tmp_path_factory.mktemp("cal") / "set", frames=3, seed=1)


def test_batches_are_exactly_the_encoder_inputs_with_a_batch_axis(written, shards: Path, rig) -> None:
    manifest = json.loads((written.path / MANIFEST).read_text())
    assert manifest["frames"] == 3
    assert len(written.files) == 3
    assert {spec["name"] for spec in manifest["inputs"]} == set(input_shapes(TINY))
    reader = ShardReader(InputEncoder(rig, TINY))
    expected = {}
    for shard in sorted({b["shard"] for b in manifest["batches"]}):
        for index, (inputs, _) in enumerate(reader.frames(Path(shard))):
            expected[(shard, index)] = inputs
    for entry, batch in zip(manifest["batches"], written.batches(), strict=True):
        reference = expected[(entry["shard"], entry["frame"])]
        for name, (shape, dtype) in input_shapes(TINY).items():
            assert batch[name].shape == shape, name
            assert batch[name].dtype == np.dtype(dtype), name
            np.testing.assert_array_equal(batch[name][0], reference[name])
        assert entry["sha256"] == arrays_sha256(batch)
    # real frames, not placeholders: every modality is there
    assert all(batch["modality_present"].sum() >= 3 for batch in written.batches())


def test_same_inputs_give_the_same_hash_and_another_seed_does_not(written, shards: Path, rig, tmp_path: Path) -> None:
    again = write_calibration_set([shards], rig, TINY, tmp_path / "again", frames=3, seed=1)
    assert again.sha256 == written.sha256
    assert again.files == written.files
    other = write_calibration_set([shards], rig, TINY, tmp_path / "other", frames=3, seed=2)
    picked = [(b["shard"], b["frame"]) for b in json.loads((other.path / MANIFEST).read_text())["batches"]]
    reference = [(b["shard"], b["frame"]) for b in json.loads((written.path / MANIFEST).read_text())["batches"]]
    assert picked != reference
    assert other.sha256 != written.sha256
    everything = write_calibration_set([shards], rig, TINY, tmp_path / "all", frames=64)
    assert len(everything.files) == 5  # fewer frames than asked: all of them, in stream order


def test_load_verifies_manifest_and_batches(written, tmp_path: Path) -> None:
    assert load_calibration_set(written.path) == written
    copy = tmp_path / "copy"
    shutil.copytree(written.path, copy)
    with np.load(copy / "batch_0001.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["lidar"][0, 0, 0, 0] += 1.0
    np.savez(copy / "batch_0001.npz", **arrays)
    with pytest.raises(CalibrationSetError, match=r"copy/batch_0001\.npz: content does not match its sha256"):
        load_calibration_set(copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["batches"][0]["sha256"] = "0" * 64
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CalibrationSetError, match=r"calibration\.json: field 'sha256' does not match its batches"):
        load_calibration_set(copy)
    with pytest.raises(CalibrationSetError, match=r"nowhere/calibration\.json: not a calibration set manifest"):
        load_calibration_set(tmp_path / "nowhere")


def test_bad_arguments_are_clear_errors(written, shards: Path, rig, tmp_path: Path) -> None:
    with pytest.raises(CalibrationSetError, match=r"set: already exists"):
        write_calibration_set([shards], rig, TINY, written.path)
    with pytest.raises(CalibrationSetError, match=r"frames must be >= 1, got 0"):
        write_calibration_set([shards], rig, TINY, tmp_path / "zero", frames=0)
    with pytest.raises(CalibrationSetError, match=r"no shard_\*\.npz under"):
        write_calibration_set([tmp_path], rig, TINY, tmp_path / "none")
    with pytest.raises(CalibrationSetError, match=r"algorithm 'percentile' is not one of"):
        calibration_cache_name("ab" * 32, written.sha256, "percentile", "10.3.0")


def test_calibration_cache_name_encodes_graph_data_algorithm_and_version(written) -> None:
    name = calibration_cache_name("0123456789abcdef" * 4, written.sha256, "entropy", "10.3.0")
    assert name == f"fusion_0123456789abcdef_int8-entropy_cal{written.sha256[:16]}_trt10.3.0.calib"


def test_calibrators_without_tensorrt_point_at_the_docs(written, tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here; the GPU tests cover the calibrators")
    with pytest.raises(BackendError, match=r"TensorRT is not installed: see docs/TENSORRT\.md"):
        make_calibrator("entropy", written, tmp_path / "x.calib")
    with pytest.raises(BackendError, match=r"TensorRT is not installed"):
        from perception.backends.int8_calibration import MinMaxCalibrator  # noqa: F401


def test_calibrator_feeds_device_buffers_and_writes_its_cache(written, tmp_path: Path) -> None:
    pytest.importorskip("tensorrt", reason="TensorRT cannot be installed on these machines (see docs/TENSORRT.md)")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import tensorrt as trt

    calibrator = make_calibrator("minmax", written, tmp_path / "cache.calib")
    assert isinstance(calibrator, trt.IInt8MinMaxCalibrator)
    names = list(input_shapes(TINY))
    first = calibrator.get_batch(names)
    assert len(first) == len(names)
    assert all(isinstance(p, int) and p for p in first)
    batches = 1
    while calibrator.get_batch(names) is not None:
        batches += 1
    assert batches == len(written.files)
    assert calibrator.read_calibration_cache() is None
    calibrator.write_calibration_cache(b"TRT-calibration")
    assert calibrator.read_calibration_cache() == b"TRT-calibration"

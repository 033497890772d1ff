"""Shards -> the runtime's input path -> batches -> `fusion train`, with dropout and resume."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from calibration import default_rig_path, load_rig
from perception.model.config import MODALITIES, ModelConfig
from perception.model.inputs import InputEncoder
from perception.training.checkpoint import CheckpointError, load_checkpoint, load_model_config
from perception.training.dataset import DropoutConfig, ShardReader, batches, shard_files, shards_sha256


@pytest.fixture(scope="module")
def shards(simulated_shards: Callable[..., Path]) -> Path:
    return simulated_shards(seed=3, duration_s=1.2, frames_per_shard=6)


@pytest.fixture(scope="module")
def encoder() -> InputEncoder:
    return InputEncoder(load_rig(default_rig_path()), ModelConfig())


def test_frames_carry_every_modality_and_accumulate_sweeps(shards: Path, encoder: InputEncoder) -> None:
    reader = ShardReader(encoder)
    frames = list(reader.frames(shard_files([shards])[0]))
    assert len(frames) == 6
    inputs, truth = frames[-1]
    assert np.array_equal(inputs["modality_present"], np.ones(4, np.float32))
    assert inputs["lidar"][0].max() > np.log1p(2)  # dense cells: several sweeps accumulated
    assert inputs["lidar"][5].max() > 0.15  # a time-lag channel from older sweeps (10 Hz)
    assert inputs["camera_present"].sum() >= 5
    assert inputs["images"].shape == (6, 3, *encoder.config.image_size)
    assert truth["segmentation"].shape == (2, *encoder.config.input_grid.shape)
    assert len(truth["boxes"]) > 0


def test_dropout_removes_groups_and_keeps_one(encoder: InputEncoder) -> None:
    rng = np.random.default_rng(0)
    config = DropoutConfig(1.0, 1.0, 1.0, 1.0, 0.0)
    for _ in range(20):
        keep, cameras = config.sample(rng, 6)
        assert sum(keep.values()) == 1
        assert cameras.all()
    keep, _ = DropoutConfig(0.0, 0.0, 0.0, 0.0, 0.0).sample(rng, 6, allowed=("lidar",))
    assert keep == {m: m == "lidar" for m in MODALITIES}


def test_dropped_modality_is_zero_with_presence_zero(shards: Path, encoder: InputEncoder) -> None:
    stream = batches(
        shard_files([shards]),
        encoder,
        batch_size=2,
        seed=1,
        dropout=DropoutConfig(0.0, 0.0, 0.0, 0.0, 0.0),
        allowed=("radar", "camera"),
        buffer_size=4,
    )
    batch = next(stream)
    assert batch["modality_present"].tolist() == [[0.0, 1.0, 0.0, 1.0]] * 2
    assert not batch["lidar"].any()
    assert not batch["ultrasonic"].any()
    assert batch["heatmap"].shape == (2, 10, 128, 128)


def test_a_model_sees_only_the_groups_it_was_trained_on(shards: Path) -> None:
    lidar_only = InputEncoder(load_rig(default_rig_path()), ModelConfig(modalities=("lidar",)))
    inputs, _ = list(ShardReader(lidar_only).frames(shard_files([shards])[0]))[-1]
    assert inputs["modality_present"].tolist() == [1.0, 0.0, 0.0, 0.0]  # radar, sonar, cameras delivered
    assert inputs["lidar"].any()
    for absent in ("radar", "ultrasonic", "images"):
        assert not inputs[absent].any(), absent
    assert not inputs["camera_present"].any()


def test_model_config_modalities_are_checked_and_old_configs_load_with_all() -> None:
    with pytest.raises(ValueError, match=r"modalities must be a non-empty subset of .* got \('camera', 'lidar'\)"):
        ModelConfig(modalities=("camera", "lidar"))
    with pytest.raises(ValueError, match="got \\(\\)"):
        ModelConfig(modalities=())
    old = json.loads(ModelConfig().to_json())
    del old["modalities"]
    assert ModelConfig.from_json(json.dumps(old)).modalities == MODALITIES
    radar_camera = ModelConfig(modalities=("radar", "camera"))
    assert ModelConfig.from_json(radar_camera.to_json()) == radar_camera


def test_fusion_train_checkpoints_and_resumes(shards: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "fusion_node.cli", "train", "--data", str(shards), "--out", str(run)]
    command += ["--batch", "2", "--workers", "0", "--quiet", "--max-steps"]
    first = subprocess.run([*command, "2"], capture_output=True, text=True, timeout=240, check=False)
    assert first.returncode == 0, first.stderr
    assert len((run / "log.jsonl").read_text().splitlines()) == 2
    second = subprocess.run([*command, "3"], capture_output=True, text=True, timeout=240, check=False)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout
    assert "at step 2" in second.stdout
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert load_checkpoint(run / "last.pt")["step"] == 3
    lidar_run = tmp_path / "lidar_only"
    only = [*command[:7], str(lidar_run), *command[8:], "1", "--modalities", "lidar"]
    assert subprocess.run(only, capture_output=True, text=True, timeout=240, check=False).returncode == 0
    assert load_model_config(load_checkpoint(lidar_run / "last.pt"), "test").modalities == ("lidar",)

    # fine-tuning: a new run from the first one's weights, with a fresh schedule
    def tune(out: str, init: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        arguments = [*command[:7], str(tmp_path / out), *command[8:], "1", "--init", str(init), *extra]
        return subprocess.run(arguments, capture_output=True, text=True, timeout=240, check=False)

    tuned = tune("tuned", run / "last.pt", "--velocity-weight", "1.0", "--dropout", "radar=0.3")
    assert tuned.returncode == 0, tuned.stderr
    assert f"initialized from the weights of {run / 'last.pt'}" in tuned.stdout
    options = json.loads((tmp_path / "tuned" / "options.json").read_text())
    assert (options["init"], options["velocity_weight"]) == (str(run / "last.pt"), 1.0)
    assert options["batches"]["dropout"] == {
        "lidar": 0.2,
        "radar": 0.3,
        "ultrasonic": 0.2,
        "camera": 0.2,
        "single_camera": 0.1,
    }
    assert options["batches"]["modalities"] == ["lidar", "radar", "ultrasonic", "camera"]
    assert load_checkpoint(tmp_path / "tuned" / "last.pt")["step"] == 1
    other = tune("other", lidar_run / "last.pt")  # trained on lidar only: another config
    assert other.returncode == 2
    assert "error: --init" in other.stderr
    assert "its model config differs from this run's" in other.stderr
    bad = tune("bad", run / "last.pt", "--dropout", "radar=1.5")
    assert bad.returncode == 2
    assert "--dropout 'radar=1.5': expected NAME=P with NAME in ['lidar'," in bad.stderr


def test_bad_training_arguments_and_files(shards: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "train", "--data", str(shards), "--modalities", "lidar,sonar"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown ['sonar']" in result.stderr
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bogus\.pt: not a readable weights-only checkpoint"):
        load_checkpoint(bogus)


def test_training_steps_lower_the_loss_on_a_fixed_batch(shards: Path) -> None:
    """The whole training path (shard frames -> targets -> network -> losses -> AdamW) learns:
    20 steps on one fixed batch of real simulated frames more than halve the total loss."""
    import torch

    from perception.model.losses import total_loss
    from perception.model.network import INPUT_NAMES, FusionNet

    torch.manual_seed(0)
    config = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))
    encoder = InputEncoder(load_rig(default_rig_path()), config)
    batch = next(batches(shard_files([shards]), encoder, batch_size=2, seed=0, augment=False, buffer_size=2))
    model = FusionNet(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        terms = total_loss(model(*(batch[name] for name in INPUT_NAMES)), batch)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        losses.append(float(terms["total"]))
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


def test_training_data_hash_follows_shard_content_and_names(shards: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shards, copy)
    assert shards_sha256([copy]) == shards_sha256([shards]), "the hash is of content and names, not of location"
    first = shard_files([copy])[0]
    first.write_bytes(first.read_bytes() + b"\0")
    changed = shards_sha256([copy])
    assert changed != shards_sha256([shards])
    first.rename(first.with_name("shard_99999.npz"))
    assert shards_sha256([copy]) != changed
    with pytest.raises(FileNotFoundError, match="no shard_"):
        shards_sha256([tmp_path / "empty"])

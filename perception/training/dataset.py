"""Training samples from simulated shards (simulation.shards), through the runtime's own path.

Each shard is read in order, frame by frame, like a live stream: the lidar sweeps are
de-skewed and accumulated (perception.ego_motion.SweepAccumulator), radar scans brought to the
frame stamp, and the frame encoded by :class:`perception.model.inputs.InputEncoder` — the same
code the node runs. The ego trajectory for the compensation comes from every pose the shard
stores (frame, camera and radar stamps). Then, per sample:

- **augmentation** (perception.training.augment) of every modality and the ground truth;
- **modality dropout**: each group (lidar, radar, ultrasonic, all cameras) is removed with its
  probability, and single cameras too; at least one group always stays. Removal is what the
  runtime sees when a sensor is missing: zeros and a presence flag 0.

:func:`batches` mixes the samples of several shards through a shuffle buffer and stacks them
into batches of tensors named as the network inputs plus the targets (heatmap, index,
regression, weight, segmentation).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from numpy.typing import NDArray

from calibration import Modality, rig_from_dict
from calibration.poses import PoseTrajectory
from perception.ego_motion import SweepAccumulator, radar_to_frame
from perception.model.config import MODALITIES, ModelConfig
from perception.model.inputs import Arrays, InputEncoder, decode_image
from perception.model.targets import detection_targets
from perception.samples import PointScan
from perception.training.augment import Augmentation
from simulation.shards import TrainingFrame, read_shard

RADAR_FIELDS = ("x", "y", "z", "vr", "vr_compensated", "rcs")
#: Allowed extrapolation of the shard trajectory at its ends (the last sweep runs 0.1 s on).
EXTRAPOLATION_NS = 150_000_000


@dataclass(frozen=True)
class DropoutConfig:
    """Probability of removing each modality group from a training sample."""

    lidar: float = 0.2
    radar: float = 0.2
    ultrasonic: float = 0.2
    camera: float = 0.2
    single_camera: float = 0.1

    def sample(
        self, rng: np.random.Generator, cameras: int, allowed: Sequence[str] = MODALITIES
    ) -> tuple[dict[str, bool], NDArray[np.bool_]]:
        """(keep per group, keep per camera); groups not ``allowed`` are always removed, and
        at least one allowed group is kept."""
        keep = {m: m in allowed and bool(rng.random() >= getattr(self, m)) for m in MODALITIES}
        if not any(keep.values()):
            keep[allowed[int(rng.integers(len(allowed)))]] = True
        keep_camera = rng.random(cameras) >= self.single_camera
        return keep, keep_camera


#: No dropout at all (evaluation, or training a model on fixed groups).
NO_DROPOUT = DropoutConfig(0.0, 0.0, 0.0, 0.0, 0.0)


def shard_files(directories: Sequence[str | Path]) -> list[Path]:
    """Every shard_*.npz under the directories (recursively), sorted."""
    files = sorted(p for d in directories for p in Path(d).rglob("shard_*.npz"))
    if not files:
        raise FileNotFoundError(f"no shard_*.npz under {[str(d) for d in directories]}")
    return files


def shards_sha256(directories: Sequence[str | Path]) -> str:
    """One sha256 over every shard's name (relative to its directory) and content: the
    training-data hash a bundle's manifest records (``fusion export --data``)."""
    from perception.training.checkpoint import file_sha256

    digest = hashlib.sha256()
    for directory in directories:
        for path in shard_files([directory]):
            digest.update(f"{path.relative_to(directory)}={file_sha256(path)}\n".encode())
    return digest.hexdigest()


def shard_trajectory(frames: Sequence[TrainingFrame]) -> PoseTrajectory:
    """The ego poses of a shard's frames (lidar, camera and radar capture times) as one
    trajectory, extrapolating up to :data:`EXTRAPOLATION_NS` past its ends."""
    poses: dict[int, NDArray[np.float64]] = {}
    for frame in frames:
        poses[frame.stamp_ns] = frame.ego_pose
        for entry in (*frame.cameras.values(), *frame.radars.values()):
            if entry is not None and np.all(np.isfinite(entry[2])):
                poses.setdefault(int(entry[1]), entry[2])
    stamps = np.array(sorted(poses), dtype=np.int64)
    return PoseTrajectory(stamps, np.stack([poses[int(s)] for s in stamps]), max_extrapolation_ns=EXTRAPOLATION_NS)


class ShardReader:
    """Frames of one shard -> (inputs, truth) pairs, in stream order."""

    def __init__(self, encoder: InputEncoder) -> None:
        self.encoder = encoder
        rig = encoder.rig
        self.lidar_id = rig.reference_sensor
        self.radar_to_base = {s.id: rig.to_base(s.id) for s in rig.of(Modality.RADAR)}

    def frames(
        self,
        path: Path,
        *,
        rng: np.random.Generator | None = None,
        augment: bool = False,
        dropout: DropoutConfig | None = None,
        allowed: Sequence[str] = MODALITIES,
    ) -> Iterator[tuple[Arrays, dict[str, Any]]]:
        frames = list(read_shard(path))
        trajectory = shard_trajectory(frames)
        accumulator = SweepAccumulator(
            self.encoder.config.lidar_sweeps,
            self.encoder.rig.to_base(self.lidar_id),
            max_age_ns=int(0.35e9),
            source=f"{path}:{self.lidar_id}",
        )
        camera_ids = self.encoder.config.camera_ids
        for frame in frames:
            lidar = accumulator.add(frame.lidar, frame.stamp_ns, trajectory)
            radar_parts = [
                radar_to_frame(
                    PointScan(RADAR_FIELDS, points),
                    stamp,
                    frame.stamp_ns,
                    trajectory,
                    self.radar_to_base[rid],
                    source=rid,
                )
                for rid, entry in frame.radars.items()
                if entry is not None
                for points, stamp, _ in [entry]
            ]
            ranges = np.array(
                [
                    np.nan if frame.ultrasonic.get(sid) is None else frame.ultrasonic[sid][0]  # type: ignore[index]
                    for sid in self.encoder.ultrasonic.sensor_ids
                ],
                dtype=np.float32,
            )
            if rng is not None:
                keep, keep_camera = (dropout or NO_DROPOUT).sample(rng, len(camera_ids), allowed)
            else:
                keep, keep_camera = {m: m in allowed for m in MODALITIES}, None
            images = {}
            for k, camera in enumerate(camera_ids):
                entry = frame.cameras.get(camera)
                usable = entry is not None and keep.get("camera", True) and (keep_camera is None or keep_camera[k])
                images[camera] = decode_image(entry[0], f"{path}:{camera}") if usable and entry is not None else None
            augmentation = Augmentation.sample(rng) if augment and rng is not None else None
            inputs = self.encoder.encode(
                lidar if keep.get("lidar", True) else None,
                (np.concatenate(radar_parts) if radar_parts else np.zeros((0, 7), np.float32))
                if keep.get("radar", True)
                else None,
                ranges if keep.get("ultrasonic", True) else None,
                images,
                augmentation=augmentation,
            )
            boxes = augmentation.boxes(frame.boxes) if augmentation else frame.boxes
            segmentation: NDArray[Any] = np.stack([frame.drivable, frame.occupancy])
            if augmentation:
                segmentation = augmentation.raster(segmentation, self.encoder.config.input_grid)
            yield inputs, {"boxes": boxes, "segmentation": segmentation, "stamp_ns": frame.stamp_ns}


def training_sample(inputs: Arrays, truth: dict[str, Any], config: ModelConfig) -> Arrays:
    """Inputs plus the detection and segmentation targets of one frame."""
    targets = detection_targets(truth["boxes"], config.output_grid, config.num_classes)
    return inputs | {
        "heatmap": targets.heatmap,
        "index": targets.index,
        "regression": targets.regression,
        "weight": targets.weight,
        "segmentation": truth["segmentation"].astype(np.float32),
    }


def batches(
    files: Sequence[Path],
    encoder: InputEncoder,
    *,
    batch_size: int,
    seed: int,
    augment: bool = True,
    dropout: DropoutConfig | None = None,
    allowed: Sequence[str] = MODALITIES,
    buffer_size: int = 48,
) -> Iterator[dict[str, torch.Tensor]]:
    """An endless stream of shuffled training batches (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    reader = ShardReader(encoder)
    buffer: list[Arrays] = []
    while True:
        for index in rng.permutation(len(files)):
            for inputs, truth in reader.frames(
                files[index], rng=rng, augment=augment, dropout=dropout, allowed=allowed
            ):
                buffer.append(training_sample(inputs, truth, encoder.config))
                while len(buffer) >= buffer_size:
                    picks = rng.choice(len(buffer), size=batch_size, replace=False)
                    chosen = [buffer[i] for i in picks]
                    for i in sorted(picks, reverse=True):
                        buffer.pop(i)
                    yield {key: torch.from_numpy(np.stack([s[key] for s in chosen])) for key in chosen[0]}


def steps_per_epoch(files: Sequence[Path], batch_size: int) -> int:
    """Batches per pass over the files (frames counted from the shard headers)."""
    frames = 0
    for path in files:
        with np.load(path, allow_pickle=False) as data:
            frames += int(data["stamp_ns"].shape[0])
    return max(1, math.floor(frames / batch_size))


def rig_of_shard(path: Path) -> Any:
    """The rig stored in a shard (meta/rig YAML)."""
    with np.load(path, allow_pickle=False) as data:
        return rig_from_dict(yaml.safe_load(str(data["meta/rig"])), source=f"{path}:meta/rig")


class BatchStream(torch.utils.data.IterableDataset[dict[str, torch.Tensor]]):
    """:func:`batches` as an IterableDataset, so a DataLoader worker prepares the next
    batches (reading, compensation, BEV, images, targets) while the model trains."""

    def __init__(self, files: Sequence[Path], encoder: InputEncoder, **options: Any) -> None:
        self.files = list(files)
        self.encoder = encoder
        self.options = options

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return batches(self.files, self.encoder, **self.options)


def background_batches(
    files: Sequence[Path], encoder: InputEncoder, *, workers: int = 1, **options: Any
) -> Iterator[dict[str, torch.Tensor]]:
    """:func:`batches` prepared by ``workers`` background processes (0: in this process)."""
    if workers == 0:
        return batches(files, encoder, **options)
    loader = torch.utils.data.DataLoader(
        BatchStream(files, encoder, **options), batch_size=None, num_workers=workers, prefetch_factor=4
    )
    return iter(loader)

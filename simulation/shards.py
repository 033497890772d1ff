"""Training shards: synchronized frames as plain arrays, without the bag overhead.

One frame per reference-lidar sweep: the sweep, and for every other sensor the message whose
stamp is nearest the sweep's (within half that sensor's period; otherwise it is missing),
each with the ego pose at its own stamp, plus the ground truth. ``shard_NNNNN.npz`` files
hold ``frames_per_shard`` frames each; they load with ``numpy.load(allow_pickle=False)``.

Keys (F frames; ``<id>`` a rig sensor id; ragged data concatenated with (F + 1,) offsets):

    stamp_ns (F,) int64                    reference sweep stamps
    ego_pose (F, 4, 4) float64             base_link -> odom at stamp_ns
    lidar/points (P, C) float32            sensor frame; columns lidar/fields (str)
    lidar/offsets (F + 1,) int64
    camera/<id>/jpeg (B,) uint8            encoded images, back to back
    camera/<id>/offsets (F + 1,) int64     empty range = missing
    camera/<id>/stamp_ns (F,) int64        -1 = missing
    camera/<id>/ego_pose (F, 4, 4)         base_link -> odom at the image stamp
    camera/<id>/K (3, 3) float64, camera/<id>/size (2,) int64 [width, height] of the images
    radar/<id>/points (R, 6) float32       [x, y, z, vr, vr_compensated, rcs], radar frame
    radar/<id>/offsets, radar/<id>/stamp_ns, radar/<id>/ego_pose   as for cameras
    ultrasonic/ids (U,) str
    ultrasonic/range (F, U) float32        metres; inf = nothing detected, nan = missing
    ultrasonic/stamp_ns (F, U) int64       -1 = missing
    truth/offsets (F + 1,) int64 and truth/{centers, sizes, yaws, velocities, labels,
        track_ids, num_lidar_points}       boxes in base_link at stamp_ns (perception.ground_truth.Boxes)
    truth/drivable, truth/occupancy (F, ny, nx) uint8   BEV rasters (perception.bev_grid)
    meta/grid (JSON), meta/rig (YAML), meta/config (JSON), meta/format_version
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from calibration import Modality
from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes, rasterize_boxes
from perception.samples import PointScan, RangeReading, SensorRecord
from simulation.errors import SimulationError
from simulation.simulator import Simulator

FORMAT_VERSION = 1
#: A frame is complete once records stamped this long after it have arrived.
HORIZON_NS = 300_000_000
_BOX_FIELDS = ("centers", "sizes", "yaws", "velocities", "labels", "track_ids", "num_lidar_points")


@dataclass(frozen=True)
class ShardSummary:
    directory: Path
    shards: int
    frames: int
    size_bytes: int


@dataclass(frozen=True)
class TrainingFrame:
    """One synchronized frame read back from a shard (arrays as documented in the module)."""

    stamp_ns: int
    ego_pose: NDArray[np.float64]
    lidar: PointScan
    cameras: dict[str, tuple[bytes, int, NDArray[np.float64]] | None]  # jpeg, stamp, ego pose
    radars: dict[str, tuple[NDArray[np.float32], int, NDArray[np.float64]] | None]
    ultrasonic: dict[str, tuple[float, int] | None]  # range (inf: nothing), stamp
    boxes: Boxes
    drivable: NDArray[np.uint8]
    occupancy: NDArray[np.uint8]


class _ShardBuffer:
    def __init__(self, simulator: Simulator) -> None:
        rig = simulator.rig
        self.simulator = simulator
        self.cameras = [s.id for s in rig.of(Modality.CAMERA)]
        self.radars = [s.id for s in rig.of(Modality.RADAR)]
        self.ultrasonics = [s.id for s in rig.of(Modality.ULTRASONIC)]
        self.frames: list[dict[str, Any]] = []

    def add(self, lidar: SensorRecord, matches: dict[str, SensorRecord | None]) -> None:
        truth, drivable = self.simulator.frame_truth(lidar.stamp_ns)
        self.frames.append({"lidar": lidar, "matches": matches, "truth": truth, "drivable": drivable})

    def arrays(self) -> dict[str, Any]:
        sim, frames = self.simulator, self.frames
        out: dict[str, Any] = {}
        stamps = np.array([f["lidar"].stamp_ns for f in frames], dtype=np.int64)
        out["stamp_ns"] = stamps
        out["ego_pose"] = sim.ego_poses(stamps)
        scans = [f["lidar"].payload for f in frames]
        out["lidar/points"] = np.concatenate([s.points for s in scans])
        out["lidar/offsets"] = _offsets([len(s.points) for s in scans])
        out["lidar/fields"] = np.array(scans[0].fields)
        for cam in self.cameras:
            records = [f["matches"].get(cam) for f in frames]
            blobs = [np.frombuffer(r.payload.data, np.uint8) if r else np.zeros(0, np.uint8) for r in records]
            out[f"camera/{cam}/jpeg"] = np.concatenate(blobs)
            out[f"camera/{cam}/offsets"] = _offsets([b.size for b in blobs])
            out.update(_stamps_and_poses(f"camera/{cam}", records, sim))
            image = next((r.payload for r in records if r is not None), None)
            intrinsics = sim.camera_intrinsics(cam) if image is None else image.intrinsics
            out[f"camera/{cam}/K"] = np.asarray(intrinsics.K, dtype=np.float64)
            out[f"camera/{cam}/size"] = np.array([intrinsics.width, intrinsics.height], dtype=np.int64)
        for radar in self.radars:
            records = [f["matches"].get(radar) for f in frames]
            points = [r.payload.points if r else np.zeros((0, 6), np.float32) for r in records]
            out[f"radar/{radar}/points"] = np.concatenate(points)
            out[f"radar/{radar}/offsets"] = _offsets([len(p) for p in points])
            out.update(_stamps_and_poses(f"radar/{radar}", records, sim))
        out["ultrasonic/ids"] = np.array(self.ultrasonics)
        ranges = np.full((len(frames), len(self.ultrasonics)), np.nan, dtype=np.float32)
        us_stamps = np.full(ranges.shape, -1, dtype=np.int64)
        for i, frame in enumerate(frames):
            for j, sensor_id in enumerate(self.ultrasonics):
                record = frame["matches"].get(sensor_id)
                if record is not None:
                    reading: RangeReading = record.payload
                    ranges[i, j] = reading.range_m
                    us_stamps[i, j] = record.stamp_ns
        out["ultrasonic/range"], out["ultrasonic/stamp_ns"] = ranges, us_stamps
        boxes = [f["truth"].boxes for f in frames]
        out["truth/offsets"] = _offsets([len(b) for b in boxes])
        for name in _BOX_FIELDS:
            out[f"truth/{name}"] = np.concatenate([getattr(b, name) for b in boxes])
        grid = sim.config.grid
        out["truth/drivable"] = np.stack([f["drivable"] for f in frames])
        out["truth/occupancy"] = np.stack([rasterize_boxes(b, grid) for b in boxes])
        out["meta/grid"] = np.array(grid.to_json())
        out["meta/rig"] = np.array(yaml.safe_dump(sim.rig.to_dict(), sort_keys=False))
        out["meta/config"] = np.array(json.dumps(asdict(sim.config), default=str, sort_keys=True))
        out["meta/format_version"] = np.array(FORMAT_VERSION)
        return out


def _offsets(sizes: list[int]) -> NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _stamps_and_poses(prefix: str, records: list[SensorRecord | None], sim: Simulator) -> dict[str, Any]:
    stamps = np.array([r.stamp_ns if r else -1 for r in records], dtype=np.int64)
    poses = sim.ego_poses(np.where(stamps >= 0, stamps, sim.config.start_ns))
    poses[stamps < 0] = np.nan
    return {f"{prefix}/stamp_ns": stamps, f"{prefix}/ego_pose": poses}


def write_shards(
    directory: str | Path, simulator: Simulator, *, frames_per_shard: int = 50, progress: Any = None
) -> ShardSummary:
    """Run ``simulator`` and write its synchronized frames as shards into a new ``directory``."""
    if frames_per_shard < 1:
        raise SimulationError(f"frames_per_shard must be >= 1, got {frames_per_shard}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=False)
    rig = simulator.rig
    reference = rig.reference_sensor
    half_period = {s.id: int(0.5e9 / s.rate_hz) for s in rig.sensors}
    pending: deque[SensorRecord] = deque()
    recent: dict[str, deque[SensorRecord]] = {s.id: deque() for s in rig.sensors if s.id != reference}
    buffer, shards, frames = _ShardBuffer(simulator), 0, 0

    def flush() -> None:
        nonlocal buffer, shards, frames
        if buffer.frames:
            np.savez_compressed(directory / f"shard_{shards:05d}.npz", **buffer.arrays())
            shards, frames = shards + 1, frames + len(buffer.frames)
            buffer = _ShardBuffer(simulator)

    def finalize(lidar: SensorRecord) -> None:
        matches: dict[str, SensorRecord | None] = {}
        for sensor_id, queue in recent.items():
            best = min(queue, key=lambda r: abs(r.stamp_ns - lidar.stamp_ns), default=None)
            near = best is not None and abs(best.stamp_ns - lidar.stamp_ns) <= half_period[sensor_id]
            matches[sensor_id] = best if near else None
        buffer.add(lidar, matches)
        if len(buffer.frames) == frames_per_shard:
            flush()

    for record in simulator.records():
        if progress is not None:
            progress.update(1)
        if record.sensor_id == reference:
            pending.append(record)
        elif record.sensor_id in recent:
            recent[record.sensor_id].append(record)
        while pending and record.stamp_ns > pending[0].stamp_ns + HORIZON_NS:
            finalize(pending.popleft())
        oldest = pending[0].stamp_ns if pending else record.stamp_ns
        for queue in recent.values():
            while queue and queue[0].stamp_ns < oldest - HORIZON_NS:
                queue.popleft()
    while pending:
        finalize(pending.popleft())
    flush()
    size = sum(p.stat().st_size for p in directory.glob("shard_*.npz"))
    return ShardSummary(directory, shards, frames, size)


def read_shard(path: str | Path) -> Iterator[TrainingFrame]:
    """The frames of one shard file."""
    with np.load(path, allow_pickle=False) as data:
        if int(data["meta/format_version"]) != FORMAT_VERSION:
            raise SimulationError(f"{path}: shard format {int(data['meta/format_version'])}, expected {FORMAT_VERSION}")
        arrays = {key: data[key] for key in data.files}
    names = sorted({key.split("/")[1] for key in arrays if key.startswith(("camera/", "radar/"))})
    fields = tuple(str(f) for f in arrays["lidar/fields"])
    for i, stamp in enumerate(arrays["stamp_ns"]):
        cameras: dict[str, Any] = {}
        radars: dict[str, Any] = {}
        for name in names:
            for kind, target in (("camera", cameras), ("radar", radars)):
                prefix = f"{kind}/{name}"
                if f"{prefix}/offsets" not in arrays:
                    continue
                a, b = arrays[f"{prefix}/offsets"][i : i + 2]
                sensor_stamp = int(arrays[f"{prefix}/stamp_ns"][i])
                blob = arrays[f"{prefix}/jpeg" if kind == "camera" else f"{prefix}/points"][a:b]
                payload = blob.tobytes() if kind == "camera" else blob
                target[name] = None if sensor_stamp < 0 else (payload, sensor_stamp, arrays[f"{prefix}/ego_pose"][i])
        ultrasonic = {
            str(sensor_id): None
            if arrays["ultrasonic/stamp_ns"][i, j] < 0
            else (float(arrays["ultrasonic/range"][i, j]), int(arrays["ultrasonic/stamp_ns"][i, j]))
            for j, sensor_id in enumerate(arrays["ultrasonic/ids"])
        }
        a, b = arrays["truth/offsets"][i : i + 2]
        boxes = Boxes.create(
            arrays["truth/centers"][a:b],
            arrays["truth/sizes"][a:b],
            arrays["truth/yaws"][a:b],
            arrays["truth/labels"][a:b],
            velocities=arrays["truth/velocities"][a:b],
            track_ids=arrays["truth/track_ids"][a:b],
            num_lidar_points=arrays["truth/num_lidar_points"][a:b],
        )
        la, lb = arrays["lidar/offsets"][i : i + 2]
        yield TrainingFrame(
            stamp_ns=int(stamp),
            ego_pose=arrays["ego_pose"][i],
            lidar=PointScan(fields, arrays["lidar/points"][la:lb]),
            cameras=cameras,
            radars=radars,
            ultrasonic=ultrasonic,
            boxes=boxes,
            drivable=arrays["truth/drivable"][i],
            occupancy=arrays["truth/occupancy"][i],
        )


def shard_grid(path: str | Path) -> BevGrid:
    """The BEV grid of a shard's rasters."""
    with np.load(path, allow_pickle=False) as data:
        return BevGrid.from_json(str(data["meta/grid"]), source=str(path))


__all__ = ["ShardSummary", "TrainingFrame", "read_shard", "shard_grid", "write_shards"]

"""The simulator as a whole: records of every sensor, determinism, ground truth, shards."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import Modality, load_rig
from perception.samples import EncodedImage, OdometrySample, PointScan, RangeReading
from simulation.errors import SimConfigError, SimulationError
from simulation.scenario import ScenarioConfig
from simulation.shards import read_shard, write_shards
from simulation.simulator import SimConfig, Simulator


@pytest.fixture(scope="module")
def rig(repo):
    return load_rig(repo / "config" / "rigs" / "default.yaml")


def _config(seed: int = 0, duration: float = 0.5) -> SimConfig:
    return SimConfig(scenario=ScenarioConfig(seed=seed, duration_s=duration))


def _payload_key(record) -> object:
    payload = record.payload
    if isinstance(payload, PointScan):
        return payload.points.tobytes()
    if isinstance(payload, EncodedImage):
        return payload.data
    if isinstance(payload, OdometrySample):
        return payload.position.tobytes() + payload.linear_velocity.tobytes()
    return (payload.range_m, payload.detected)


@pytest.fixture(scope="module")
def run(rig):
    simulator = Simulator(rig, _config())
    return simulator, list(simulator.records())


def test_every_sensor_produces_its_payload_in_receive_order(rig, run) -> None:
    simulator, records = run
    kinds = {
        Modality.LIDAR: PointScan,
        Modality.RADAR: PointScan,
        Modality.CAMERA: EncodedImage,
        Modality.ULTRASONIC: RangeReading,
        Modality.ODOMETRY: OdometrySample,
    }
    seen = {r.sensor_id for r in records}
    assert seen == set(rig.ids)
    for record in records:
        sensor = rig.sensor(record.sensor_id)
        assert isinstance(record.payload, kinds[sensor.modality])
        assert record.receive_ns >= record.stamp_ns + sensor.latency_ns
    receive = [r.receive_ns for r in records]
    assert receive == sorted(receive)
    assert len(records) == len(simulator.written_captures)
    for record in records:
        if isinstance(record.payload, EncodedImage):
            intrinsics = record.payload.intrinsics
            assert (intrinsics.width, intrinsics.height) == (400, 225)  # default scale 0.25 of 1600x900
            assert record.payload.data[:2] == b"\xff\xd8"  # JPEG
        if isinstance(record.payload, RangeReading):
            assert record.payload.stamp_ns == record.stamp_ns
        if isinstance(record.payload, OdometrySample):
            assert record.payload.stamp_ns == record.stamp_ns


def test_same_seed_same_data_other_seed_other_data(rig, run) -> None:
    _, first = run
    again = list(Simulator(rig, _config()).records())
    assert [(r.sensor_id, r.stamp_ns, r.receive_ns) for r in again] == [
        (r.sensor_id, r.stamp_ns, r.receive_ns) for r in first
    ]
    assert all(_payload_key(a) == _payload_key(b) for a, b in zip(first, again, strict=True))
    other = list(Simulator(rig, _config(seed=1)).records())
    lidar = [r for r in other if r.sensor_id == "lidar_top"]
    assert not np.array_equal(
        lidar[0].payload.points, next(r for r in first if r.sensor_id == "lidar_top").payload.points
    )


def test_ground_truth_has_one_frame_per_written_reference_sweep(run) -> None:
    simulator, records = run
    sweeps = [r for r in records if r.sensor_id == "lidar_top"]
    truth = simulator.ground_truth()
    assert list(truth.stamps_ns) == [r.stamp_ns for r in sweeps]
    assert truth.drivable is not None
    assert truth.occupancy is not None
    assert truth.drivable.shape == (len(sweeps), *simulator.config.grid.shape)
    for frame in truth.frames:
        assert len(frame.boxes) > 0
        np.testing.assert_allclose(frame.ego_pose, simulator.ego_poses(np.array([frame.stamp_ns]))[0])


def test_bad_simulation_options_are_named(rig) -> None:
    with pytest.raises(SimConfigError, match="camera scale"):
        SimConfig(camera_scale=3.0)
    with pytest.raises(SimConfigError, match="jpeg quality"):
        SimConfig(jpeg_quality=0)
    with pytest.raises(SimulationError, match="frames_per_shard must be >= 1, got 0"):
        write_shards("/nonexistent/never", Simulator(rig, _config(duration=0.2)), frames_per_shard=0)


def test_shards_hold_synchronized_frames_and_truth(rig, tmp_path) -> None:
    simulator = Simulator(rig, _config(seed=4, duration=1.2))
    summary = write_shards(tmp_path / "shards", simulator, frames_per_shard=5)
    assert summary.shards == 3
    assert summary.frames == len(simulator.ground_truth())
    frames = [f for path in sorted((tmp_path / "shards").glob("shard_*.npz")) for f in read_shard(path)]
    assert len(frames) == summary.frames
    truth = simulator.ground_truth()
    cameras = [s.id for s in rig.of(Modality.CAMERA)]
    for frame, expected in zip(frames, truth.frames, strict=True):
        assert frame.stamp_ns == expected.stamp_ns
        assert frame.boxes == expected.boxes
        assert frame.lidar.fields == ("x", "y", "z", "intensity", "ring", "time")
        present = [c for c in cameras if frame.cameras[c] is not None]
        if frame.stamp_ns > simulator.config.start_ns + 100_000_000:  # every camera has started
            assert len(present) >= 5  # 12 Hz cameras: one within half a period unless dropped
        for camera in present:
            jpeg, stamp, pose = frame.cameras[camera]
            assert jpeg[:2] == b"\xff\xd8"
            assert abs(stamp - frame.stamp_ns) <= 0.5e9 / 12
            np.testing.assert_allclose(pose, simulator.ego_poses(np.array([stamp]))[0])
        readings = [v for v in frame.ultrasonic.values() if v is not None]
        assert len(readings) >= 10 or frame.stamp_ns < simulator.config.start_ns + 100_000_000
    np.testing.assert_array_equal(np.stack([f.drivable for f in frames]), truth.drivable)

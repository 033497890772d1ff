"""FramePipeline on the committed sample bag: frames, degradation without odometry, drops,
undecodable images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from calibration import load_rig
from fusion_node.bag.replay import read_records
from perception.ground_truth import GROUND_TRUTH_FILE, load_ground_truth
from perception.model.config import ModelConfig
from perception.model.inputs import InputEncoder
from perception.pipeline import FramePipeline
from perception.samples import EncodedImage

BAG = Path(__file__).resolve().parents[2] / "bags" / "sample_city_4s"


@pytest.fixture(scope="module")
def rig():
    return load_rig(BAG / "rig.yaml")


@pytest.fixture(scope="module")
def records(rig):
    return list(read_records(BAG, rig))


@pytest.fixture(scope="module")
def encoder(rig):
    return InputEncoder(rig, ModelConfig())


def _run(pipeline, records):
    frames = []
    for record in records:
        frames += pipeline.push(record)
    return frames + pipeline.flush()


def test_every_sweep_becomes_a_prepared_frame(rig, records, encoder) -> None:
    frames = _run(FramePipeline(rig, encoder.config, encoder=encoder), records)
    assert len(frames) == 39  # one per lidar sweep of the sample bag
    assert [f.stamp_ns for f in frames] == sorted(f.stamp_ns for f in frames)
    complete = [f for f in frames if f.frame.complete]
    assert len(complete) >= 35
    for f in complete:
        assert f.inputs["modality_present"].tolist() == [1.0, 1.0, 1.0, 1.0]
        assert f.inputs["camera_present"].sum() == 6
        assert f.notes == ()
    later = frames[-1]
    assert later.lidar_points.shape[1] == 5
    assert later.lidar_points[:, 4].max() > 0.15  # older sweeps accumulated with their lag
    truth = {f.stamp_ns: f.ego_pose for f in load_ground_truth(BAG / GROUND_TRUTH_FILE).frames}
    for f in frames:  # the odometry's pose at the frame stamp: the simulator's ego pose
        assert f.ego_pose is not None
        np.testing.assert_allclose(f.ego_pose, truth[f.stamp_ns], atol=0.02)


def test_without_odometry_frames_still_come_and_say_so(rig, records, encoder) -> None:
    no_odometry = [r for r in records if r.sensor_id != "odometry"]
    frames = _run(FramePipeline(rig, encoder.config, encoder=encoder), no_odometry)
    assert len(frames) == 39  # one per lidar sweep of the sample bag
    assert all(any("not ego-motion compensated" in n for n in f.notes) for f in frames)
    assert all(f.ego_pose is None for f in frames)


@pytest.mark.parametrize(("slack_ms", "released_at_once"), [(5, True), (-5, False)])
def test_odometry_just_short_of_the_frame_is_extrapolated(rig, records, encoder, slack_ms, released_at_once) -> None:
    """Odometry that stops short of the last instant a frame needs (its sweep's last firing or
    a radar stamp): within the allowed extrapolation the frame is prepared as soon as it is
    complete; beyond it, it waits until the odometry wait runs out (200 ms of newer data)."""
    reference = FramePipeline(rig, encoder.config, encoder=encoder)
    frames = [frame for record in records for frame in reference.collect(record)]
    frame = frames[10]
    _, end = reference._span(frame)
    played = [r for r in records if r.sensor_id != "odometry" or r.stamp_ns <= end - 10_000_000]
    short = end - max(r.stamp_ns for r in played if r.sensor_id == "odometry")
    allowed = short + slack_ms * 1_000_000
    pipeline = FramePipeline(rig, encoder.config, encoder=encoder, odometry_extrapolation_ns=allowed)
    newest = 0
    for record in played:
        newest = max(newest, record.stamp_ns)
        if any(f.stamp_ns == frame.stamp_ns for f in pipeline.collect(record)):
            break
    assert (newest - end < 150_000_000) is released_at_once, (newest - end) / 1e6
    with pytest.raises(ValueError, match="odometry_extrapolation_ns must be in"):
        FramePipeline(rig, encoder.config, encoder=encoder, odometry_extrapolation_ns=60_000_000)


@pytest.mark.parametrize("odometry_ends_early_s", [None, 0.15])
def test_a_looped_bag_keeps_yielding_frames(rig, records, encoder, odometry_ends_early_s) -> None:
    """The clock jumps back at every loop. Frames of the old pass still waiting for odometry
    (none at all, or odometry that stopped before the last sweep) are thrown away and counted;
    they never block the frames of the next pass."""
    last = max(r.stamp_ns for r in records)
    cut = None if odometry_ends_early_s is None else last - odometry_ends_early_s * 1e9
    played = [r for r in records if r.sensor_id != "odometry" or (cut is not None and r.stamp_ns < cut)]
    pipeline = FramePipeline(rig, encoder.config, encoder=encoder)
    per_pass = []
    for _ in range(3):
        frames = [frame for record in played for frame in pipeline.collect(record)]
        per_pass.append(len(frames))
        assert len(pipeline._waiting) <= 3, "frames pile up behind one that can never be covered"
    assert min(per_pass[1:]) >= 30, per_pass
    assert pipeline.sync.resets == 2
    assert pipeline.discarded >= 2


def test_dropped_sensors_are_absent_but_frames_are_the_same(rig, records, encoder) -> None:
    pipeline = FramePipeline(rig, encoder.config, encoder=encoder, drop=frozenset({"lidar_top", "cam_front"}))
    frames = _run(pipeline, records)
    assert len(frames) == 39  # one per lidar sweep of the sample bag
    f = frames[-1]
    assert f.inputs["modality_present"][0] == 0.0
    assert not f.inputs["lidar"].any()
    assert f.inputs["camera_present"][encoder.config.camera_ids.index("cam_front")] == 0.0
    with pytest.raises(ValueError, match=r"drop: unknown sensor ids \['sonar'\]"):
        FramePipeline(rig, encoder.config, encoder=encoder, drop=frozenset({"sonar"}))


def test_an_undecodable_image_drops_that_camera_only(rig, records, encoder) -> None:
    broken = []
    for record in records:
        if record.sensor_id == "cam_back" and isinstance(record.payload, EncodedImage):
            bad = EncodedImage(b"\xff\xd8\xff" + b"\x00" * 64, "jpeg", record.payload.intrinsics)
            record = dataclasses.replace(record, payload=bad)
        broken.append(record)
    frames = _run(FramePipeline(rig, encoder.config, encoder=encoder), broken)
    assert len(frames) == 39  # one per lidar sweep of the sample bag
    f = frames[-1]
    assert any("cam_back" in n for n in f.notes)
    k = encoder.config.camera_ids.index("cam_back")
    assert f.inputs["camera_present"][k] == 0.0
    assert np.count_nonzero(f.inputs["camera_present"]) == 5

"""The committed sample bag (bags/sample_city_4s): opens with rosbags and, independently, with
the mcap reader + mcap-ros2-support; every promised topic is there at its rate; the README
lists every topic; the ground truth beside it matches the bag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration import Modality, load_rig
from fusion_node.bag import BagReader
from perception.ground_truth import load_ground_truth

SAMPLE = Path(__file__).resolve().parent.parent / "bags" / "sample_city_4s"
DURATION_S = 4.0


@pytest.fixture(scope="module")
def rig():
    return load_rig(SAMPLE / "rig.yaml")


@pytest.fixture(scope="module")
def contents():
    with BagReader(SAMPLE) as reader:
        topics, counts = reader.topics, reader.message_counts
        stamps: dict[str, list[int]] = {}
        for message in reader.messages():
            header = getattr(message.msg, "header", None)
            if header is not None:
                stamps.setdefault(message.topic, []).append(header.stamp.sec * 10**9 + header.stamp.nanosec)
    return topics, counts, stamps


def test_sample_is_small_enough_to_commit() -> None:
    size = sum(p.stat().st_size for p in SAMPLE.iterdir())
    assert size <= 30 * 2**20


def test_every_promised_topic_is_there_at_its_rate(rig, contents) -> None:
    topics, counts, stamps = contents
    for sensor in rig.sensors:
        assert sensor.topic in topics, sensor.topic
        expected = sensor.rate_hz * DURATION_S
        assert counts[sensor.topic] == pytest.approx(expected, rel=0.03, abs=1.5), sensor.topic
        period = np.median(np.diff(sorted(stamps[sensor.topic]))) / 1e9
        assert period == pytest.approx(1.0 / sensor.rate_hz, rel=0.02), sensor.topic
        if sensor.modality is Modality.CAMERA:
            assert counts[sensor.camera.info_topic] == counts[sensor.topic]
    assert topics["/ground_truth/objects"] == "visualization_msgs/msg/MarkerArray"


def test_opens_with_the_independent_mcap_reader(contents) -> None:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    _, counts, _ = contents
    seen: dict[str, int] = {}
    with next(SAMPLE.glob("*.mcap")).open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None
        assert {chunk.compression for chunk in summary.chunk_indexes} == {"zstd"}
        for _, channel, _, decoded in reader.iter_decoded_messages():
            seen[channel.topic] = seen.get(channel.topic, 0) + 1
            assert decoded is not None
    assert seen == counts


def test_ground_truth_matches_the_lidar_sweeps(contents) -> None:
    _, counts, stamps = contents
    truth = load_ground_truth(SAMPLE)
    assert len(truth) == counts["/sensing/lidar/top/points"]
    assert list(truth.stamps_ns) == sorted(stamps["/sensing/lidar/top/points"])
    assert sum(len(frame.boxes) for frame in truth.frames) > 0


def test_readme_lists_every_topic(contents) -> None:
    topics, _, _ = contents
    readme = (SAMPLE.parent / "README.md").read_text()
    for topic, msgtype in topics.items():
        assert f"`{topic}`" in readme, topic
        assert msgtype.replace("/msg/", "/") in readme or msgtype in readme, msgtype

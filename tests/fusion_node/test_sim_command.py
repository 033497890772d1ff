"""``fusion sim``: bags and shards from the command line, and its refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibration import load_rig
from fusion_node.bag import BagReader
from perception.ground_truth import load_ground_truth


def _sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "sim", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "drive"
    result = _sim("--out", str(out), "--duration", "1.0", "--seed", "2", "--layout", "intersection")
    assert result.returncode == 0, result.stderr
    assert "lidar frames with ground truth" in result.stdout
    return out


def test_bag_has_every_rig_topic_with_its_type_and_rate(bag: Path, repo: Path) -> None:
    rig = load_rig(repo / "config" / "rigs" / "default.yaml")
    assert load_rig(bag / "rig.yaml").ids == rig.ids
    with BagReader(bag) as reader:
        topics, counts = reader.topics, reader.message_counts
        stamps: dict[str, list[int]] = {}
        for message in reader.messages():
            header = getattr(message.msg, "header", None)
            if header is not None and message.topic != "/ground_truth/objects":
                stamps.setdefault(message.topic, []).append(header.stamp.sec * 10**9 + header.stamp.nanosec)
    for sensor in rig.sensors:
        assert sensor.topic in topics
        assert counts[sensor.topic] == pytest.approx(sensor.rate_hz * 1.0, abs=1.5), sensor.id
        if len(stamps[sensor.topic]) > 2:
            period = np.median(np.diff(sorted(stamps[sensor.topic]))) / 1e9
            assert period == pytest.approx(1.0 / sensor.rate_hz, rel=0.05)
    assert topics["/ground_truth/objects"] == "visualization_msgs/msg/MarkerArray"
    assert topics["/sensing/camera/front/camera_info"] == "sensor_msgs/msg/CameraInfo"
    truth = load_ground_truth(bag)
    assert len(truth) == counts["/ground_truth/objects"] == counts["/sensing/lidar/top/points"]


def test_bag_opens_with_the_independent_mcap_reader(bag: Path) -> None:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    path = next(bag.glob("*.mcap"))
    seen: dict[str, int] = {}
    with path.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, _, decoded in reader.iter_decoded_messages():
            seen[channel.topic] = seen.get(channel.topic, 0) + 1
            if channel.topic == "/sensing/lidar/top/points":
                assert [f.name for f in decoded.fields] == ["x", "y", "z", "intensity", "ring", "time"]
    with BagReader(bag) as reader:
        assert seen == reader.message_counts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "-1"], "duration must be in (0, 3600] s, got -1"),
        (["--layout", "spiral"], "layout must be one of"),
        (["--camera-scale", "3"], "camera scale must be in [0.05, 1], got 3.0"),
        (["--density", "9"], "density must be in [0, 5], got 9.0"),
        (["--rig", "/nonexistent/rig.yaml"], "/nonexistent/rig.yaml"),
        (["--storage", "parquet"], "parquet"),
    ],
)
def test_bad_arguments_are_refused_with_the_value(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "never"
    result = (
        _sim("--out", str(out), "--duration", "0.3", *args)
        if "--duration" not in args
        else _sim("--out", str(out), *args)
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("x")
    result = _sim("--out", str(tmp_path / "keep"), "--duration", "0.3")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert (tmp_path / "keep" / "precious.txt").read_text() == "x"


def test_cached_scenario_is_generated_once(tmp_path: Path, repo: Path) -> None:
    from fusion_node.bag.scenarios import ensure_scenario_bag
    from simulation.scenario import ScenarioConfig
    from simulation.simulator import SimConfig

    rig = load_rig(repo / "config" / "rigs" / "default.yaml")
    config = SimConfig(scenario=ScenarioConfig(seed=9, duration_s=0.3))
    first = ensure_scenario_bag(rig, config, root=tmp_path)
    stamp = (first / "metadata.yaml").stat().st_mtime_ns
    again = ensure_scenario_bag(rig, config, root=tmp_path)
    assert again == first
    assert (first / "metadata.yaml").stat().st_mtime_ns == stamp  # reused, not regenerated
    other = ensure_scenario_bag(rig, SimConfig(scenario=ScenarioConfig(seed=10, duration_s=0.3)), root=tmp_path)
    assert other != first
    assert not list(tmp_path.glob("*.partial"))
    with BagReader(first) as reader:
        assert reader.message_counts["/sensing/lidar/top/points"] == 2  # sweeps ending at 0.1 s and 0.2 s

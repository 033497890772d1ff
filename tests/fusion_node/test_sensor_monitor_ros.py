"""sensor_monitor over real DDS: separate processes, real topics, real /diagnostics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros


def _env(domain: int) -> dict[str, str]:
    return dict(os.environ, ROS_DOMAIN_ID=str(domain))


@pytest.mark.slow
def test_demo_reports_stopped_and_malformed_sensors(tmp_path: Path) -> None:
    """Every rig sensor is received; a stopped radar is ERROR, malformed lidar clouds WARN."""
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "fault-demo", "--duration", "5", "--out", str(tmp_path)],
        env=_env(41),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    sensors = summary["sensors"]
    assert len(sensors) == 25
    assert sensors["radar_front_left"]["level"] == "ERROR"
    assert "stopped" in sensors["radar_front_left"]["message"]
    assert sensors["lidar_top"]["level"] == "WARN"
    assert sensors["lidar_top"]["rejected"] == 3
    assert "height*row_step" in sensors["lidar_top"]["message"] or "row_step" in sensors["lidar_top"]["message"]
    for sensor_id, status in sensors.items():
        if sensor_id not in ("radar_front_left", "lidar_top"):
            assert status["level"] == "OK", (sensor_id, status)
            # best-effort subscription (sensor_data QoS): a few early messages may be lost, not more
            assert status["received"] >= 0.9 * status["sent"], (sensor_id, status)
    # the node logged the malformed message with its reason, through the forwarded log prefix
    assert "[sensor_monitor]" in result.stdout


def _start_node_expecting_refusal(parameter: str, domain: int) -> str:
    """Run sensor_monitor with one parameter override; it must exit 2. Returns its output."""
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.sensor_monitor_node", "--ros-args", "-p", parameter],
        env=_env(domain),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_bad_parameter_refuses_to_start() -> None:
    output = _start_node_expecting_refusal("diagnostics_period_s:=100.0", 42)
    assert "diagnostics_period_s" in output
    assert "100.0" in output


def test_bad_rig_refuses_to_start(tmp_path: Path) -> None:
    rig = tmp_path / "rig.yaml"
    rig.write_text("sensors:\n  - {id: lidar, modality: lidar, topic: /l, frame_id: l, rate_hz: -1}\n")
    output = _start_node_expecting_refusal(f"rig_path:={rig}", 43)
    assert "rate_hz" in output
    assert str(rig) in output

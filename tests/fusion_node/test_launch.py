"""`fusion launch`: real nodes as supervised processes, prefixed logs, clean Ctrl-C, a dying
node stops the graph, malformed configs are refused by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOMAIN = 47  # not shared with the other DDS tests


def _launch(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN))
    return subprocess.Popen(
        [sys.executable, "-m", "fusion_node.cli", "launch", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(process: subprocess.Popen[str], needle: str, timeout_s: float) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            lines.append(line.rstrip())
            if needle in line:
                return lines
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise AssertionError(f"{needle!r} not seen within {timeout_s} s; output: {lines}")


def test_ctrl_c_stops_the_graph_cleanly() -> None:
    process = _launch("config/launch/monitor.yaml")
    try:
        _read_until(process, "[launch] started sensor_monitor", 30)
        time.sleep(3.0)  # the node is up and spinning
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        lines = _read_until(process, "[launch] sensor_monitor stopped", 30)
        assert process.wait(timeout=15) == 0
        assert any("stop requested" in line for line in lines)
    finally:
        if process.poll() is None:
            process.kill()


def test_a_node_that_dies_stops_the_graph_with_exit_1() -> None:
    process = _launch("config/launch/monitor.yaml", "--set", "sensor_monitor.qos=bogus")
    try:
        lines = _read_until(process, "exited with code", 60)
        assert process.wait(timeout=30) == 1
        assert any(line.startswith("[sensor_monitor]") and "qos" in line for line in lines)
    finally:
        if process.poll() is None:
            process.kill()


def test_malformed_configs_are_refused_by_name(tmp_path: Path) -> None:
    config = tmp_path / "launch" / "bad.yaml"
    config.parent.mkdir()
    config.write_text("nodes:\n  - name: a\n    module: fusion_node.sensor_monitor_node\n    colour: red\n")
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "launch", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "nodes[0] (a): unknown keys ['colour']" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "launch", "config/launch/monitor.yaml", "--set", "ghost.x=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown nodes ['ghost']" in result.stderr

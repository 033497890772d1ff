"""The runtime's DDS transports (fusion_node/dds_transport.py): chosen by FUSION_DDS_TRANSPORT
unless the user configured Fast DDS; the ``tcp`` profile has no shared memory, and under it a
subscriber killed with SIGKILL is replaced by one that receives at once (what LARGE_DATA's
shared memory does not guarantee)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fusion_node.dds_transport import PROFILE, USER_CHOICE, TransportError, transport_environment
from fusion_node.processes import start_child, stop_child

#: A 0.6 MB message (the sample bag's point clouds) at 10 Hz, reliable, as the replay sends.
PUBLISHER = """
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8MultiArray
rclpy.init()
node = rclpy.create_node("transport_test_publisher")
qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
publisher = node.create_publisher(UInt8MultiArray, "transport_test", qos)
message = UInt8MultiArray(data=bytes(600_000))
try:
    while rclpy.ok():
        publisher.publish(message)
        rclpy.spin_once(node, timeout_sec=0.1)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""
#: Prints one line per message received.
SUBSCRIBER = """
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8MultiArray
rclpy.init()
node = rclpy.create_node("transport_test_subscriber")
qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
node.create_subscription(UInt8MultiArray, "transport_test", lambda m: print("received", len(m.data), flush=True), qos)
rclpy.spin(node)
"""
DOMAIN = 95


def test_the_transport_is_the_one_named_unless_the_user_configured_fast_dds() -> None:
    large_data = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
    assert transport_environment({}) == large_data
    assert transport_environment({"FUSION_DDS_TRANSPORT": ""}) == large_data
    assert transport_environment({"FUSION_DDS_TRANSPORT": "tcp"}) == {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)}
    assert transport_environment({"FUSION_DDS_TRANSPORT": "tcp", "FASTDDS_BUILTIN_TRANSPORTS": "SHM"}) == {}
    assert transport_environment({"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}) == {}
    with pytest.raises(TransportError, match="FUSION_DDS_TRANSPORT='shm' names no DDS transport; choose one of"):
        transport_environment({"FUSION_DDS_TRANSPORT": "shm"})


def test_the_profile_uses_udp_and_tcp_and_no_shared_memory() -> None:
    namespace = {"dds": "http://www.eprosima.com"}
    root = ET.parse(PROFILE).getroot()
    kinds = {t.text for t in root.iterfind(".//dds:transport_descriptor/dds:type", namespace)}
    assert kinds == {"UDPv4", "TCPv4"}
    participant = root.find(".//dds:participant", namespace)
    assert participant is not None
    assert participant.get("is_default_profile") == "true"
    assert participant.findtext(".//dds:useBuiltinTransports", namespaces=namespace) == "false"


def _fastdds_files() -> set[str]:
    shm = Path("/dev/shm")
    return {p.name for p in shm.glob("fastdds_*")} if shm.is_dir() else set()


def _start(code: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in USER_CHOICE}
    env |= {"ROS_DOMAIN_ID": str(DOMAIN)} | transport_environment({"FUSION_DDS_TRANSPORT": "tcp"})
    return start_child([sys.executable, "-c", code], env=env)


def _received_lines(process: subprocess.Popen[str]) -> list[str]:
    """The lines ``process`` prints, collected by a thread as they come."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_received(process: subprocess.Popen[str], lines: list[str], count: int, timeout_s: float) -> float:
    """Seconds until ``process`` printed ``count`` "received" lines; fails after ``timeout_s``."""
    start = time.monotonic()
    while sum(line.startswith("received 600000") for line in lines) < count:
        assert time.monotonic() - start < timeout_s, f"fewer than {count} messages in {timeout_s:.0f} s: {lines[-20:]}"
        assert process.poll() is None, f"the subscriber exited ({process.returncode}): {lines[-20:]}"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.ros
@pytest.mark.slow
def test_a_subscriber_killed_with_sigkill_is_replaced_by_one_that_receives() -> None:
    before = _fastdds_files()
    children = [_start(PUBLISHER), _start(SUBSCRIBER)]
    try:
        _wait_received(children[1], _received_lines(children[1]), 5, 60.0)
        children[1].send_signal(signal.SIGKILL)
        assert children[1].wait(timeout=10) == -signal.SIGKILL
        for _ in range(5):  # each replacement reuses what the last one left, as a restarted node does
            children.append(_start(SUBSCRIBER))
            took = _wait_received(children[-1], _received_lines(children[-1]), 5, 30.0)
            children[-1].send_signal(signal.SIGKILL)
            children[-1].wait(timeout=10)
            print(f"replacement received 5 messages {took:.1f} s after its start")
        assert children[0].poll() is None, "the publisher survives its subscribers' deaths"
        assert stop_child(children[0]) == 0, "the publisher exits cleanly on SIGINT"
    finally:
        for child in children:
            stop_child(child)
    assert _fastdds_files() == before, "no shared-memory segment or port is created, so none is left behind"

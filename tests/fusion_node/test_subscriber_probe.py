"""fusion_node.subscriber_probe: a probe process answers which topics have no subscriber, and
stops waiting when a process it watches dies."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fusion_node import subscriber_probe
from fusion_node.processes import start_child, stop_child

SUBSCRIBER = """
import rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("probe_test_subscriber")
node.create_subscription(String, "/probe_test/heard", lambda m: None, 10)
print("subscribed", flush=True)
try:
    rclpy.spin(node)
except Exception:
    pass
"""


@pytest.mark.ros
def test_the_probe_names_the_topics_without_a_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", "96")
    subscriber = start_child([sys.executable, "-c", SUBSCRIBER], env=dict(os.environ))
    try:
        assert subscriber.stdout is not None
        assert subscriber.stdout.readline().strip() == "subscribed"
        waiting = subscriber_probe.probe(["/probe_test/heard", "/probe_test/unheard"], 8.0, [subscriber])
    finally:
        stop_child(subscriber)
    assert waiting == ["/probe_test/unheard"]


def test_the_probe_stops_when_a_watched_process_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", "96")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.raises(RuntimeError, match="a process exited while waiting for subscribers"):
        subscriber_probe.probe(["/probe_test/unheard"], 60.0, [dead])

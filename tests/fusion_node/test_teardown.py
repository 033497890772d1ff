"""A DDS teardown that hangs ends the process after the timeout; one that returns does not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

# destroy_node blocks as Fast DDS does when a reliable writer is stuck on a slow peer.
HANGING = """
import threading, sys
from fusion_node.teardown import close_ros
class StuckNode:
    def destroy_node(self):
        print("destroying", flush=True)
        threading.Event().wait()
close_ros(StuckNode(), what="test", timeout_s=0.5, exit_code=7)
print("not reached", flush=True)
"""

REAL = """
import rclpy
from rclpy.context import Context
from std_msgs.msg import String
from fusion_node.teardown import close_ros
context = Context()
rclpy.init(context=context)
node = rclpy.create_node("teardown_test", context=context)
node.create_publisher(String, "teardown_test", 10)
close_ros(node, context, what="test", timeout_s=5.0, exit_code=7)
print("after teardown, context ok:", context.ok(), flush=True)
"""


def _run(code: str, domain: int) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROS_DOMAIN_ID": str(domain)},
    )
    return done, time.monotonic() - start


def test_a_hanging_teardown_exits_with_the_given_code_and_says_why() -> None:
    done, took = _run(HANGING, 91)
    assert done.returncode == 7, done
    assert "destroying" in done.stdout
    assert "not reached" not in done.stdout
    assert "test: the DDS teardown did not return within 0.5 s" in done.stderr
    assert took < 30


def test_a_teardown_that_returns_lets_the_process_go_on() -> None:
    done, _ = _run(REAL, 92)
    assert done.returncode == 0, done.stderr
    assert "after teardown, context ok: False" in done.stdout
    assert "did not return" not in done.stderr

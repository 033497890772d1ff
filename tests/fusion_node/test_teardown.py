"""A DDS teardown that hangs ends the process after the timeout; one that returns does not. A spin
ends quietly on an error that races the shutdown, and raises one while the node runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from fusion_node.teardown import spin_until_shutdown

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

# ... and one stuck inside a C call that holds the GIL (as rclpy's calls into DDS do): the
# watchdog thread cannot run, faulthandler's timer still can
HANGING_IN_C = """
import ctypes
from fusion_node.teardown import close_ros
class StuckNode:
    def destroy_node(self):
        print("destroying", flush=True)
        ctypes.PyDLL(None).sleep(60)
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


EXITING = """
import atexit, sys
{imports}
from fusion_node.teardown import exit_process
atexit.register(lambda: print("atexit ran", flush=True))
sys.stdout.write("work done")  # no newline, no flush: exit_process must flush it
exit_process(3)
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


def test_a_teardown_stuck_holding_the_gil_exits_with_its_stack_and_the_given_code() -> None:
    done, took = _run(HANGING_IN_C, 91)
    assert done.returncode == 7, done
    assert "destroying" in done.stdout
    assert "not reached" not in done.stdout
    assert "Timeout (0:00:02.500000)!" in done.stderr, done.stderr
    assert "in destroy_node" in done.stderr, done.stderr
    assert took < 30


def test_the_exit_timer_ends_a_process_that_holds_the_gil_unless_disarmed() -> None:
    code = """
import ctypes, sys, time
from fusion_node.teardown import arm_exit_timer
disarm = arm_exit_timer(0.2, 0)
disarm()
time.sleep(0.4)
print("disarmed timer did not fire", flush=True)
arm_exit_timer(0.2, 5)
ctypes.PyDLL(None).sleep(60)
print("not reached", flush=True)
"""
    done, took = _run(code, 91)
    assert done.returncode == 5, done
    assert done.stdout == "disarmed timer did not fire\n"
    assert took < 30


def test_a_teardown_that_returns_lets_the_process_go_on() -> None:
    done, _ = _run(REAL, 92)
    assert done.returncode == 0, done.stderr
    assert "after teardown, context ok: False" in done.stdout
    assert "did not return" not in done.stderr


def test_a_process_that_used_ros_exits_at_once_with_its_output_flushed() -> None:
    done, _ = _run(EXITING.format(imports="import rclpy"), 93)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "work done", "stdout flushed; the finalization (atexit, GC) skipped"


def test_a_process_without_ros_exits_the_normal_way() -> None:
    done, _ = _run(EXITING.format(imports=""), 93)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "work doneatexit ran\n"


def _node_whose_timer_raises(shut_down_first: bool) -> Any:
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    context = Context()
    rclpy.init(context=context, domain_id=94, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("spin_test", context=context)

    def tick() -> None:
        if shut_down_first:
            rclpy.try_shutdown(context=context)
        raise RuntimeError("Unable to convert call argument '0' to Python object")

    node.create_timer(0.01, tick)
    return node


def test_an_error_racing_the_shutdown_ends_the_spin_quietly() -> None:
    node = _node_whose_timer_raises(shut_down_first=True)
    spin_until_shutdown(node)  # returns: the context was shut down when the take failed
    assert not node.context.ok()


def test_an_error_while_running_is_raised() -> None:
    import rclpy

    node = _node_whose_timer_raises(shut_down_first=False)
    try:
        with pytest.raises(RuntimeError, match="Unable to convert"):
            spin_until_shutdown(node)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=node.context)

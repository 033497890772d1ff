"""Leaving DDS without hanging: node teardown bounded in time.

Fast DDS can block for good in ``destroy_node`` when a reliable writer is stuck on a slow
peer over its TCP large-data transport (seen here: ``fusion replay --qos reliable`` at 3x
into a node that cannot keep up, SIGINT, then ``destroy_node`` never returned; eProsima/Fast-DDS
issues #4203 and #6193 describe the same class of deadlock). A Ctrl-C must still end the
process, so the teardown runs under a watchdog: past ``timeout_s`` it says what happened and
exits the process without waiting for DDS. The work before it (the bag played, the outputs
published, the recording closed) is complete by then; only the middleware's goodbye is lost.

rclpy calls into the middleware without releasing the GIL, so a teardown stuck inside one of
those calls leaves the Python watchdog thread no chance to run. ``faulthandler``'s timer
thread needs no GIL: ``GIL_GRACE_S`` after the watchdog's time it prints every thread's stack
(where DDS hung) and exits the process with code 1.

After a clean teardown the process can still take long to end: Python's finalization
garbage-collects every object left (torch, numba, rclpy's handles), seconds of CPU on a
loaded machine, and Fast DDS can deadlock in rclpy's destructors (ros2/rclpy#456 works around
that class of hang). Seen here: a fusion node at low priority beside a training job, its
teardown returned, was still "Garbage-collecting" 10 s after SIGINT and got SIGABRT.
Processes that used ROS therefore end through :func:`exit_process`, which skips the
finalization.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import sys
import threading
from typing import Any, Final, NoReturn

#: Seconds the node teardown may take before the process exits without it.
TEARDOWN_TIMEOUT_S: Final = 5.0
#: Seconds after that until faulthandler ends a teardown that holds the GIL (exit code 1).
GIL_GRACE_S: Final = 2.0


def close_ros(
    node: Any, context: Any = None, *, what: str, timeout_s: float = TEARDOWN_TIMEOUT_S, exit_code: int = 0
) -> None:
    """Destroy ``node`` and shut ``context`` (None: the default one) down; if that has not
    returned after ``timeout_s``, print why on stderr and end the process with ``exit_code``."""
    import rclpy

    done = threading.Event()

    def watchdog() -> None:
        if done.wait(timeout_s):
            return
        sys.stdout.flush()
        print(
            f"{what}: the DDS teardown did not return within {timeout_s:g} s (a writer stuck on a slow "
            f"peer); exiting without it",
            file=sys.stderr,
            flush=True,
        )
        os._exit(exit_code)

    threading.Thread(target=watchdog, name="teardown-watchdog", daemon=True).start()
    faulthandler.dump_traceback_later(timeout_s + GIL_GRACE_S, exit=True)
    try:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    finally:
        faulthandler.cancel_dump_traceback_later()
        done.set()


def exit_process(code: int) -> NoReturn:
    """``sys.exit(code)`` for a process that imported rclpy: flush the logs and stdio and end
    here, without Python's finalization (module docstring). What the process owed is done by
    then: the outputs published, bags closed, the node torn down. A process that never
    imported rclpy exits the normal way (atexit handlers and all)."""
    if "rclpy" not in sys.modules:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken pipe: nothing more to say
            stream.flush()
    os._exit(code)


def spin_until_shutdown(node: Any) -> None:
    """Spin ``node`` (an executor on its context, as ``rclpy.spin``) until Ctrl-C or a shutdown
    of its context. rclpy can fail a take that races the shutdown ("Unable to convert call
    argument '0' to Python object", seen when a node was stopped with SIGINT under a running
    replay): an error raised once the context is no longer ok ends the spin as the shutdown
    does; one raised while it is ok propagates."""

    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        if node.context.ok():
            raise
    finally:
        executor.shutdown(timeout_sec=1.0)

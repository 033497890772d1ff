"""Leaving DDS without hanging: node teardown bounded in time.

Fast DDS can block for good in ``destroy_node`` when a reliable writer is stuck on a slow
peer over its TCP large-data transport (seen here: ``fusion replay --qos reliable`` at 3x
into a node that cannot keep up, SIGINT, then ``destroy_node`` never returned; eProsima/Fast-DDS
issues #4203 and #6193 describe the same class of deadlock). A Ctrl-C must still end the
process, so the teardown runs under a watchdog: past ``timeout_s`` it says what happened and
exits the process without waiting for DDS. The work before it (the bag played, the outputs
published, the recording closed) is complete by then; only the middleware's goodbye is lost.

rclpy calls into the middleware without releasing the GIL, so a teardown stuck inside one of
those calls leaves the Python watchdog thread no chance to run (seen here: ``fusion replay``'s
``destroy_node`` blocked after its peer node was killed with SIGKILL). Two timers that need no
GIL cover that case: ``GIL_GRACE_S`` after the watchdog's time ``faulthandler``'s thread prints
every thread's stack (where DDS hung), and just after it a POSIX timer (:func:`arm_exit_timer`)
has a libc thread call ``_exit`` with the caller's exit code, so the replay that played its
bag still ends with 0.

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
import ctypes
import faulthandler
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Final, NoReturn

#: Seconds the node teardown may take before the process exits without it.
TEARDOWN_TIMEOUT_S: Final = 5.0
#: Seconds after that until faulthandler prints the stacks of a teardown that holds the GIL ...
GIL_GRACE_S: Final = 2.0
#: ... and the exit timer ends the process this long after the stacks (time to write them).
STACKS_WRITTEN_S: Final = 0.25


def close_ros(
    node: Any, context: Any = None, *, what: str, timeout_s: float = TEARDOWN_TIMEOUT_S, exit_code: int = 0
) -> None:
    """Destroy ``node`` and shut ``context`` (None: the default one) down; if that has not
    returned after ``timeout_s``, print why on stderr and end the process with ``exit_code``.
    A teardown stuck holding the GIL ends ``GIL_GRACE_S`` later with every thread's stack on
    stderr, with the same ``exit_code`` (module docstring)."""
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

    for stream in (sys.stdout, sys.stderr):  # an exit past the GIL cannot flush them
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    threading.Thread(target=watchdog, name="teardown-watchdog", daemon=True).start()
    disarm = arm_exit_timer(timeout_s + GIL_GRACE_S + STACKS_WRITTEN_S, exit_code)
    faulthandler.dump_traceback_later(timeout_s + GIL_GRACE_S, exit=disarm is None)
    try:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    finally:
        faulthandler.cancel_dump_traceback_later()
        if disarm is not None:
            disarm()
        done.set()


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


class _SigEvent(ctypes.Structure):
    """Linux ``struct sigevent`` (64 bytes) with the ``SIGEV_THREAD`` members of its union."""

    _fields_ = [
        ("sigev_value", ctypes.c_void_p),
        ("sigev_signo", ctypes.c_int),
        ("sigev_notify", ctypes.c_int),
        ("sigev_notify_function", ctypes.c_void_p),
        ("sigev_notify_attributes", ctypes.c_void_p),
        ("_pad", ctypes.c_int * 8),
    ]


_SIGEV_THREAD: Final = 2
_CLOCK_MONOTONIC: Final = 1


def arm_exit_timer(after_s: float, code: int) -> Callable[[], None] | None:
    """End the process with ``_exit(code)`` after ``after_s`` seconds unless disarmed, from a
    thread libc starts (a POSIX timer with ``SIGEV_THREAD`` whose notify function is ``_exit``
    and whose value is ``code``): no Python code runs, so a main thread that holds the GIL
    cannot stop it. Python's buffers are not flushed.

    Returns:
        The function that disarms the timer, or None where POSIX timers are not available
        (not Linux/glibc); the caller then needs another way out.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        event = _SigEvent(
            sigev_value=code,
            sigev_notify=_SIGEV_THREAD,
            sigev_notify_function=ctypes.cast(libc._exit, ctypes.c_void_p).value,
        )
        timer = ctypes.c_void_p()
        if libc.timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer)) != 0:
            return None
        seconds = max(after_s, 1e-3)
        spec = _ITimerSpec(it_value=_TimeSpec(int(seconds), int((seconds % 1.0) * 1e9)))
        if libc.timer_settime(timer, 0, ctypes.byref(spec), None) != 0:
            libc.timer_delete(timer)
            return None
    except (OSError, AttributeError):
        return None
    return lambda: libc.timer_delete(timer)


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

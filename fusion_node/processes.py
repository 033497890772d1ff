"""Child processes that cannot outlive the process that started them.

A node started by ``fusion demo`` (and later ``fusion launch``) must die with its parent even
when the parent is killed without cleanup (SIGKILL, a test timeout): otherwise it keeps
publishing on the DDS domain and pollutes every later run. Linux delivers a signal to a child
whose parent dies when the child asked for it with ``prctl(PR_SET_PDEATHSIG)``; that request
is made between fork and exec, so it also covers a parent that dies during start-up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1


_SIG_SETMASK = 2
_SIGSET_BYTES = 128  # sizeof(sigset_t) in glibc


def _prepare_child() -> None:  # runs in the child between fork and exec: libc calls only
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # A clean signal state whatever the forking thread had (its mask and ignored signals
    # survive exec): nothing blocked, SIGINT at its default, so the child's Ctrl-C handling
    # (Python's KeyboardInterrupt, rclpy's shutdown) is installed and stop_child reaches it.
    libc.sigprocmask(_SIG_SETMASK, ctypes.create_string_buffer(_SIGSET_BYTES), None)
    libc.signal(signal.SIGINT, ctypes.c_void_p(0))  # SIG_DFL


def start_child(command: Sequence[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``command`` with stdout+stderr piped as text and a clean signal state; it gets
    SIGTERM if this process dies. Python children run with ``faulthandler`` on, so one that
    ``stop_child`` finds stuck prints where it is stuck."""
    preexec = _prepare_child if sys.platform.startswith("linux") else None
    return subprocess.Popen(
        list(command),
        env=dict(os.environ if env is None else env, PYTHONFAULTHANDLER="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec,  # only libc calls run between fork and exec
    )


def forward_logs(process: subprocess.Popen[str], prefix: str) -> threading.Thread:
    """Print the child's output lines as ``[prefix] line`` from a daemon thread."""

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"[{prefix}] {line.rstrip()}", flush=True)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


#: Seconds a child stuck past its SIGINT gets to print its Python stacks on SIGABRT.
ABORT_GRACE_S = 3.0


def stop_child(process: subprocess.Popen[Any], *, timeout_s: float = 10.0) -> int:
    """SIGINT (the nodes' clean shutdown); after ``timeout_s`` SIGABRT, on which a child of
    ``start_child`` prints every thread's Python stack (``faulthandler``: it needs no lock, so
    it also reports a thread blocked inside a C call such as a DDS publish), then SIGKILL;
    the exit code (negative: the signal that ended it)."""
    for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGABRT, ABORT_GRACE_S), (signal.SIGKILL, None)):
        if process.poll() is not None:
            break
        process.send_signal(sig)
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return int(process.returncode)

"""Child processes that cannot outlive the process that started them.

A node started by ``fusion demo`` (and later ``fusion launch``) must die with its parent even
when the parent is killed without cleanup (SIGKILL, a test timeout): otherwise it keeps
publishing on the DDS domain and pollutes every later run. Linux delivers a signal to a child
whose parent dies when the child asked for it with ``prctl(PR_SET_PDEATHSIG)``; that request
is made between fork and exec, so it also covers a parent that dies during start-up.
"""

from __future__ import annotations

import ctypes
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
    SIGTERM if this process dies."""
    preexec = _prepare_child if sys.platform.startswith("linux") else None
    return subprocess.Popen(
        list(command),
        env=env,
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


def stop_child(process: subprocess.Popen[Any], *, timeout_s: float = 10.0) -> int:
    """SIGINT (the nodes' clean shutdown), then SIGKILL after ``timeout_s``; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)

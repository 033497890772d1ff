"""Children started with fusion_node.processes die with their parent, even on SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from fusion_node.processes import ABORT_GRACE_S, start_child, stop_child

# The middle process starts a sleeping grandchild with start_child, prints its pid and waits.
MIDDLE = """
import sys, time
from fusion_node.processes import start_child
child = start_child([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead for our purpose
        return stat.read().split()[2] != "Z"


def test_child_dies_when_parent_is_killed() -> None:
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE], stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    grandchild = int(middle.stdout.readline())
    assert _alive(grandchild)
    middle.send_signal(signal.SIGKILL)
    middle.wait()
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), f"grandchild {grandchild} outlived its killed parent"


def test_stop_child_interrupts_then_reports_exit_code() -> None:
    code = "import time\ntry:\n print('ready', flush=True)\n time.sleep(60)\n"
    code += "except KeyboardInterrupt:\n raise SystemExit(3)"
    child = start_child([sys.executable, "-c", code])
    assert child.stdout is not None
    # SIGINT once the handler is in place: one that lands during start-up (a loaded machine
    # can take over a second) may be swallowed by a site hook
    assert child.stdout.readline().strip() == "ready"
    with open(f"/proc/{child.pid}/status") as status:
        signals = [line.strip() for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt"))]
    assert stop_child(child, timeout_s=5) == 3, f"SIGINT did not reach the child's handler: {signals}"


def test_stop_child_prints_where_a_stuck_child_is_then_ends_it() -> None:
    # SIGINT ignored and the main thread inside a C call that holds the GIL: no Python code of
    # the child can run, as in a DDS publish blocked on a slow reliable reader
    code = "import ctypes, signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('ready', flush=True)\n"
    code += "def stuck_in_c():\n    ctypes.PyDLL(None).sleep(60)\nstuck_in_c()\n"
    child = start_child([sys.executable, "-c", code])
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    start = time.monotonic()
    assert stop_child(child, timeout_s=1) == -signal.SIGABRT
    assert time.monotonic() - start < 1 + ABORT_GRACE_S
    printed = child.stdout.read()
    assert "Fatal Python error: Aborted" in printed, printed
    assert "line 5 in stuck_in_c" in printed, printed

"""Wait in a process of its own until topics have subscribers (``fusion demo``'s start-up).

``python -m fusion_node.subscriber_probe TIMEOUT_S TOPIC...`` prints one JSON list, the topics
still without a subscriber after at most ``TIMEOUT_S`` (``[]``: all have one), then leaves DDS
and exits 0.

A process of its own, for two reasons. Its DDS participant is new at every call: Fast DDS now
and then leaves a new participant undiscovered by another for minutes, while a fresh one sees
it at once. And a participant teardown that hangs (Fast DDS's TCP teardown, seen once in a
dozen demos) ends with this process instead of blocking the caller: :func:`probe` stops it once
it has answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from fusion_node.processes import start_child, stop_child
from fusion_node.teardown import exit_process

#: Start-up of the probe process (interpreter, rclpy, DDS participant) beyond its timeout.
STARTUP_S = 30.0


def probe(topics: Sequence[str], timeout_s: float, alive: Sequence[subprocess.Popen[Any]]) -> list[str]:
    """The topics without a subscriber after at most ``timeout_s``, seen by a probe process.
    Raises RuntimeError when a process in ``alive`` exits meanwhile, or the probe gives no
    answer."""
    child = start_child([sys.executable, "-m", __name__, str(timeout_s), *topics])
    answer: list[str] = []
    reader = threading.Thread(target=lambda: answer.append(child.stdout.readline() if child.stdout else ""))
    reader.start()
    try:
        deadline = time.monotonic() + timeout_s + STARTUP_S
        while reader.is_alive() and time.monotonic() < deadline:
            dead = [p.args for p in alive if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a process exited while waiting for subscribers: {dead}")
            reader.join(0.2)
    finally:
        stop_child(child, timeout_s=5.0)
        reader.join()
    try:
        waiting = json.loads(answer[0]) if answer else None
    except json.JSONDecodeError:
        waiting = None
    if not isinstance(waiting, list):
        raise RuntimeError(f"the subscriber probe gave no answer (exit code {child.returncode}): {answer!r}")
    return [str(t) for t in waiting]


def main(argv: Sequence[str] | None = None) -> int:
    import rclpy

    from fusion_node.dds_transport import use_runtime_transport
    from fusion_node.teardown import close_ros

    args = list(sys.argv[1:] if argv is None else argv)
    timeout_s, topics = float(args[0]), args[1:]
    use_runtime_transport()
    rclpy.init()
    node = rclpy.create_node("fusion_subscriber_probe")
    deadline = time.monotonic() + timeout_s
    while (waiting := [t for t in topics if node.count_subscribers(t) == 0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(json.dumps(waiting), flush=True)
    close_ros(node, what="subscriber probe")
    return 0


if __name__ == "__main__":
    exit_process(main())

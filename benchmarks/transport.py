"""``fusion bench transport``: one-way latency of a point-cloud-sized message between two
processes over DDS: the runtime's ``tcp`` transport (fusion_node/fastdds_tcp.xml: UDP
discovery, TCP data) against its default, Fast DDS's LARGE_DATA builtin (shared memory on one
machine), as the baseline (fusion_node/dds_transport.py).

Each round starts a subscriber and a publisher process on the transport under test (a domain
of their own), waits until they are matched, and has the publisher send ``warmup + runs``
messages of ``--size-mb`` at ``--rate-hz``, reliable, each carrying its send time
(``time.time_ns``, one clock: both run on this machine). The subscriber reports every latency.
Rounds alternate between the two transports (``--rounds`` each), so load drift hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.timing import median_ms, speedup

HELP = "one-way DDS latency of a point-cloud-sized message: the tcp transport vs LARGE_DATA"
DOMAIN = 97
TOPIC = "bench_transport"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size-mb", type=float, default=0.6, help="message size (the sample bag's clouds: 0.6)")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="publishing rate")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per transport, alternating")


def _environment(transport: str) -> dict[str, str]:
    from fusion_node.dds_transport import USER_CHOICE, VARIABLE, transport_environment

    env = {k: v for k, v in os.environ.items() if k not in USER_CHOICE}
    return env | {"ROS_DOMAIN_ID": str(DOMAIN)} | transport_environment({VARIABLE: transport})


def _round(transport: str, args: argparse.Namespace) -> list[int]:
    """Latencies (ns) of one round's timed messages."""
    count = args.warmup + args.runs
    peer = [sys.executable, "-m", "benchmarks.transport"]
    env = _environment(transport)
    subscriber = subprocess.Popen([*peer, "subscribe", str(count)], env=env, stdout=subprocess.PIPE, text=True)
    publisher = subprocess.Popen(
        [*peer, "publish", str(count), str(args.size_mb), str(args.rate_hz)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        out, _ = subscriber.communicate(timeout=120 + count / args.rate_hz)
    finally:
        publisher.kill()
        publisher.wait()
        subscriber.kill()
    if subscriber.returncode != 0:
        raise RuntimeError(f"{transport}: the subscriber exited with {subscriber.returncode}")
    latencies: list[int] = json.loads(out)
    return latencies[args.warmup :]


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    times: dict[str, list[int]] = {"tcp": [], "large_data": []}
    for _ in range(args.rounds):
        for transport, sink in times.items():
            sink.extend(_round(transport, args))
    candidate, baseline = median_ms(times["tcp"]), median_ms(times["large_data"])
    return {
        f"transport_{args.size_mb:g}MB": {
            "median_ms": candidate,
            "runs": len(times["tcp"]),
            "baseline": "LARGE_DATA (shared memory)",
            "baseline_median_ms": baseline,
            "speedup": speedup(baseline, candidate),
        }
    }


def _publish(count: int, size_mb: float, rate_hz: float) -> None:
    import rclpy
    from std_msgs.msg import UInt8MultiArray

    from fusion_node.qos import QOS_PROFILES

    rclpy.init()
    node = rclpy.create_node("bench_transport_publisher")
    publisher = node.create_publisher(UInt8MultiArray, TOPIC, QOS_PROFILES["reliable"])
    while publisher.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)  # the reader's side of the match settles
    payload = bytes(max(8, int(size_mb * 1e6)) - 8)
    message = UInt8MultiArray()
    for _ in range(count):
        message.data = time.time_ns().to_bytes(8, "little") + payload
        publisher.publish(message)
        rclpy.spin_once(node, timeout_sec=1.0 / rate_hz)


def _subscribe(count: int) -> None:
    import rclpy
    from std_msgs.msg import UInt8MultiArray

    from fusion_node.qos import QOS_PROFILES

    rclpy.init()
    node = rclpy.create_node("bench_transport_subscriber")
    latencies: list[int] = []

    def received(message: Any) -> None:
        latencies.append(time.time_ns() - int.from_bytes(bytes(message.data[:8]), "little"))

    node.create_subscription(UInt8MultiArray, TOPIC, received, QOS_PROFILES["reliable"])
    while len(latencies) < count:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(latencies))


if __name__ == "__main__":  # a peer process of one round
    role, number = sys.argv[1], int(sys.argv[2])
    if role == "publish":
        _publish(number, float(sys.argv[3]), float(sys.argv[4]))
    else:
        _subscribe(number)

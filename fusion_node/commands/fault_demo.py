"""``fusion fault-demo``: sensor faults on live DDS topics, reported by the sensor monitor.

Loads and validates the rig, starts the ``sensor_monitor`` node as a separate process
(large-message DDS transport), publishes every sensor of the rig at its nominal rate with
messages built by the conversion module, then breaks things on purpose (a radar stops, the
lidar sends malformed clouds) and checks that /diagnostics reports exactly that. Writes
``out/fault_demo/summary.json`` and prints a per-sensor table.
"""

from __future__ import annotations

import argparse
import faulthandler
import heapq
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from calibration import Modality, default_rig_path, load_rig
from fusion_node.dds_transport import use_runtime_transport
from fusion_node.processes import forward_logs, start_child, stop_child

DISCOVERY_TIMEOUT_S = 60.0
#: Seconds beyond discovery + publishing after which the demo is declared hung.
WATCHDOG_MARGIN_S = 60.0
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rig", default=None, help="rig YAML (default: the shipped default rig)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of publishing (>= 3)")
    parser.add_argument("--out", default="out/fault_demo", help="output folder for summary.json")
    parser.add_argument(
        "--stop-sensor", default="radar_front_left", help="sensor that stops half-way through ('' for none)"
    )
    parser.add_argument("--malformed", type=int, default=3, help="malformed lidar clouds sent near the end")


def _malformed_cloud(msg: Any) -> Any:
    msg.data = msg.data[: len(msg.data) // 2]  # truncated: data length != height * row_step
    return msg


def run(args: argparse.Namespace) -> int:
    if args.duration < 3.0:
        print(f"error: --duration must be at least 3 s, got {args.duration}", file=sys.stderr)
        return 2
    rig_path = Path(args.rig) if args.rig else default_rig_path()
    rig = load_rig(rig_path)
    if args.stop_sensor and args.stop_sensor not in rig.ids:
        print(f"error: --stop-sensor '{args.stop_sensor}' is not in the rig; ids: {list(rig.ids)}", file=sys.stderr)
        return 2
    print(f"rig '{rig.name}': {len(rig.sensors)} sensors from {rig_path}")

    use_runtime_transport()  # this process (the player) and the monitor it starts
    env = dict(os.environ)
    monitor = start_child(
        [
            sys.executable,
            "-m",
            "fusion_node.sensor_monitor_node",
            "--ros-args",
            "-p",
            f"rig_path:={rig_path}",
            "-p",
            "diagnostics_period_s:=0.5",
            "-p",
            "qos:=reliable",  # the demo checks exact counts: replay-style reliable delivery
        ],
        env=env,
    )
    forward_logs(monitor, "sensor_monitor")
    # A hang anywhere (DDS discovery, a blocking publish, shutdown) ends the demo with every
    # thread's traceback instead of silently; the monitor dies with us (PR_SET_PDEATHSIG).
    faulthandler.dump_traceback_later(DISCOVERY_TIMEOUT_S + args.duration + WATCHDOG_MARGIN_S, exit=True)
    try:
        summary = _play(rig, args, monitor)
    finally:
        stop_child(monitor)
        faulthandler.cancel_dump_traceback_later()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _print_table(summary)
    print(f"summary written to {out / 'summary.json'}")
    if summary["unexpected"]:
        print(f"UNEXPECTED: {summary['unexpected']}", file=sys.stderr)
        return 1
    print("demo ok: every sensor arrived over DDS, the stopped and the malformed sensor were reported")
    return 0


def _play(rig: Any, args: argparse.Namespace, monitor: subprocess.Popen[str]) -> dict[str, Any]:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from fusion_node.sensor_inputs import message_type
    from fusion_node.test_pattern import TestPattern

    rclpy.init()
    node = rclpy.create_node("fusion_demo_player")
    try:
        publishers = {s.id: node.create_publisher(message_type(s), s.topic, 10) for s in rig.sensors}
        latest: dict[str, Any] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: latest.update(msg=m), 10)
        deadline = time.monotonic() + DISCOVERY_TIMEOUT_S
        while unmatched := [sid for sid, p in publishers.items() if p.get_subscription_count() == 0]:
            if monitor.poll() is not None:
                raise RuntimeError(f"sensor_monitor exited with code {monitor.returncode} during discovery")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"sensor_monitor did not subscribe within {DISCOVERY_TIMEOUT_S:.0f} s to: {unmatched}"
                )
            rclpy.spin_once(node, timeout_sec=0.1)
        print(f"discovery done: {len(publishers)} topics matched; publishing for {args.duration:.1f} s")

        pattern = TestPattern(seed=0)
        start = time.monotonic()
        start_stamp = time.time_ns()
        queue = [(0.0, i, s) for i, s in enumerate(rig.sensors)]
        heapq.heapify(queue)
        malformed_at = args.duration - 1.0
        sent: dict[str, int] = dict.fromkeys(rig.ids, 0)
        malformed_sent = 0
        lidar = rig.of(Modality.LIDAR)[0] if rig.of(Modality.LIDAR) else None
        while queue:
            due, index, sensor = heapq.heappop(queue)
            if due >= args.duration:
                continue
            while (wait := start + due - time.monotonic()) > 0:
                rclpy.spin_once(node, timeout_sec=min(wait, 0.02))
            if sensor.id == args.stop_sensor and due >= args.duration / 2:
                continue  # the sensor "fails" half-way: no more messages, no reschedule
            msg = pattern.message(sensor, start_stamp + int(due * 1e9))
            if lidar is not None and sensor.id == lidar.id and due >= malformed_at and malformed_sent < args.malformed:
                msg = _malformed_cloud(msg)
                malformed_sent += 1
            publishers[sensor.id].publish(msg)
            sent[sensor.id] += 1
            heapq.heappush(queue, (due + 1.0 / sensor.rate_hz, index, sensor))
        latest.clear()
        settle = time.monotonic() + 5.0
        while "msg" not in latest and time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return _summarize(rig, args, latest.get("msg"), sent, malformed_sent)


def _summarize(
    rig: Any, args: argparse.Namespace, diagnostics: Any, sent: dict[str, int], malformed: int
) -> dict[str, Any]:
    sensors: dict[str, Any] = {}
    for status in diagnostics.status if diagnostics else []:
        sensor_id = status.name.split(": ", 1)[-1]
        values = {kv.key: kv.value for kv in status.values}
        sensors[sensor_id] = {
            "level": LEVELS.get(status.level[0], "?"),
            "message": status.message,
            "sent": sent.get(sensor_id, 0),
            "received": int(values.get("received", 0)),
            "rejected": int(values.get("rejected", 0)),
            "rate_hz": float(values.get("rate_hz", 0.0)),
        }
    lidar = rig.of(Modality.LIDAR)[0].id if rig.of(Modality.LIDAR) else None
    unexpected = []
    for sensor_id in rig.ids:
        got = sensors.get(sensor_id)
        if got is None:
            unexpected.append(f"{sensor_id}: no diagnostics")
            continue
        want = "ERROR" if sensor_id == args.stop_sensor else "WARN" if sensor_id == lidar and malformed else "OK"
        if got["level"] != want:
            unexpected.append(f"{sensor_id}: {got['level']} ({got['message']}), expected {want}")
        if sensor_id == lidar and got["rejected"] != malformed:
            unexpected.append(f"{sensor_id}: {got['rejected']} rejected, expected {malformed}")
    return {
        "rig": rig.name,
        "duration_s": args.duration,
        "stopped_sensor": args.stop_sensor,
        "malformed_sent": malformed,
        "messages_sent": sum(sent.values()),
        "messages_received": sum(s["received"] for s in sensors.values()),
        "sensors": sensors,
        "unexpected": unexpected,
    }


def _print_table(summary: dict[str, Any]) -> None:
    print(f"\n{'sensor':<24} {'level':<6} {'sent':>5} {'recv':>5} {'rej':>4} {'rate':>6}  message")
    for sensor_id, s in summary["sensors"].items():
        print(
            f"{sensor_id:<24} {s['level']:<6} {s['sent']:>5} {s['received']:>5} {s['rejected']:>4} "
            f"{s['rate_hz']:>6.1f}  {s['message'][:70]}"
        )
    print(f"\n{summary['messages_received']} of {summary['messages_sent']} messages received over DDS")

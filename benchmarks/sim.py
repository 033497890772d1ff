"""Simulator speed (``fusion bench sim``): synchronized frames per second on the default rig.

A frame is one reference-lidar period (0.1 s of driving) with every sensor's messages in it:
1 lidar sweep, ~7 camera images, ~6.5 radar scans, 24 ultrasonic readings, 5 odometry
messages. The baseline is real time: the ratio says how many times faster than the vehicle
produces the data the simulator renders it. Per-sensor render times are medians per call.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import numpy as np

HELP = "simulator: synchronized frames/s and per-sensor render times (baseline: real time)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of driving to render (>= runs / 10)")
    parser.add_argument("--seed", type=int, default=0, help="scenario seed")
    parser.add_argument("--camera-scale", type=float, default=0.25, help="image size / rig size")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from calibration import Modality, default_rig_path, load_rig
    from simulation.scenario import ScenarioConfig
    from simulation.simulator import SimConfig, Simulator

    rig = load_rig(default_rig_path())
    reference = rig.reference_sensor
    period_s = 1.0 / rig.sensor(reference).rate_hz
    duration = max(args.duration, (args.runs + args.warmup + 1) * period_s)
    started = time.perf_counter()
    simulator = Simulator(
        rig, SimConfig(scenario=ScenarioConfig(seed=args.seed, duration_s=duration), camera_scale=args.camera_scale)
    )
    setup_ms = (time.perf_counter() - started) * 1e3
    per_call: dict[str, list[float]] = defaultdict(list)
    frame_ms: list[float] = []
    current = 0.0
    frames_seen = 0
    for capture in simulator.captures:
        sensor = rig.sensor(capture.sensor_id)
        if sensor.id == reference and not capture.dropped:
            if frames_seen > args.warmup:
                frame_ms.append(current)
            frames_seen += 1
            current = 0.0
        start = time.perf_counter()
        simulator.render(capture)
        elapsed = (time.perf_counter() - start) * 1e3
        current += elapsed
        if frames_seen > args.warmup and not capture.dropped:
            per_call[sensor.modality.value].append(elapsed)
    median = float(np.median(frame_ms))
    realtime_ms = period_s * 1e3
    results: dict[str, Any] = {
        "frame": {
            "median_ms": round(median, 2),
            "runs": len(frame_ms),
            "frames_per_s": round(1e3 / median, 2),
            "baseline": "real time (one lidar period)",
            "baseline_median_ms": realtime_ms,
            "speedup": round(realtime_ms / median, 2),
            "setup_ms": round(setup_ms, 1),
            "input": {"rig": str(default_rig_path().name), "camera_scale": args.camera_scale, "seed": args.seed},
        }
    }
    for modality in Modality:
        times = per_call.get(modality.value)
        if times:
            results[f"{modality.value}_message"] = {"median_ms": round(float(np.median(times)), 3), "runs": len(times)}
    return results

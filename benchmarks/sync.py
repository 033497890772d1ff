"""Frame synchronizer speed and quality (``fusion bench sync``).

Without ``--bag``: a synthetic stream of the rig (default ``config/rigs/default.yaml``: 1 lidar
at 10 Hz, 6 cameras at 12 Hz, 5 radars at 13 Hz, 12 ultrasonics at 20 Hz) with the simulator's
timing (``simulation.timing``: random phase, trigger jitter, latency + exponential jitter,
0.3 % lost), at least ``--messages`` messages, pushed in arrival order with clock="arrival".
With ``--bag BAG``: the header stamps of the bag's sensor topics
(:func:`fusion_node.bag.stamps.bag_stamps`) replayed in log-time order with clock="data"; the
rig comes from BAG/rig.yaml unless ``--rig`` is given.

One timed run = a fresh synchronizer, every message pushed, ``flush()``. The baseline, timed
interleaved in the same run, is a straightforward ApproximateTime-like matcher: unsorted
per-sensor lists, and for every push a scan of the pending references for the oldest and, per
sensor, of the whole queue for its newest stamp and (when the frame goes out) its nearest
message. Both must give identical frames (checked; an error otherwise).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import median_ms, speedup, time_interleaved

HELP = "frame synchronizer over a synthetic rig stream or a bag's stamps (--bag) vs a linear-scan matcher"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", type=Path, default=None, help="replay this bag's sensor stamps (clock=data)")
    parser.add_argument("--rig", type=Path, default=None, help="rig YAML (default: BAG/rig.yaml, or the default rig)")
    parser.add_argument(
        "--messages", type=int, default=100_000, help="synthetic stream length without --bag (default 100000)"
    )
    parser.add_argument(
        "--tolerance-margin-ms", type=float, default=5.0, help="added to every half-period tolerance (default 5)"
    )


class LinearScanMatcher:
    """The baseline: same rules as ``Synchronizer`` (targets, tolerances, deadlines, emission
    when every sensor is decided, one use per message, pruning), done the obvious way."""

    def __init__(self, config: Any) -> None:
        from perception.sync import Missing, MissingReason

        self._missing, self._reason = Missing, MissingReason
        self.config = config
        self.queues: dict[str, list[Any]] = {s.sensor_id: [] for s in config.sensors}
        self.newest = {s.sensor_id: -1 for s in config.sensors}
        self.horizon = {s.sensor_id: -1 for s in config.sensors}
        self.seen: set[str] = set()
        self.refs: list[Any] = []
        self.last_frame = -1
        self.now = -1

    def push(self, record: Any) -> list[Any]:
        sensor_id, stamp = record.sensor_id, record.stamp_ns
        if sensor_id not in self.queues and sensor_id != self.config.reference:
            return []  # ignored (odometry)
        if sensor_id == self.config.reference:
            if stamp > self.last_frame:
                self.refs.append(record)
        else:
            self.seen.add(sensor_id)
            if stamp > self.horizon[sensor_id]:
                queue = self.queues[sensor_id]
                queue.append(record)
                self.newest[sensor_id] = max(self.newest[sensor_id], stamp)
                if len(queue) > self.config.sensor(sensor_id).queue_size:
                    queue.remove(min(queue, key=lambda r: r.stamp_ns))
        now = record.receive_ns if self.config.clock == "arrival" else stamp
        self.now = max(self.now, now)
        frames = []
        while self.refs:
            head = min(self.refs, key=lambda r: r.stamp_ns)
            forced = len(self.refs) > self.config.max_pending
            waiting = any(
                self.newest[s.sensor_id] < head.stamp_ns + s.offset_ns and self.now < head.stamp_ns + s.deadline_ns
                for s in self.config.sensors
            )
            if waiting and not forced:
                break
            frames.append(self._emit(head))
        return frames

    def flush(self) -> list[Any]:
        frames = [self._emit(min(self.refs, key=lambda r: r.stamp_ns)) for _ in range(len(self.refs))]
        for queue in self.queues.values():
            queue.clear()
        return frames

    def _emit(self, head: Any) -> Any:
        from perception.sync import Frame

        self.refs.remove(head)
        self.last_frame = head.stamp_ns
        records, missing = {self.config.reference: head}, {}
        for s in self.config.sensors:
            target, queue = head.stamp_ns + s.offset_ns, self.queues[s.sensor_id]
            inside = [r for r in queue if abs(r.stamp_ns - target) <= s.tolerance_ns]
            if inside:
                best = min(inside, key=lambda r: (abs(r.stamp_ns - target), r.stamp_ns))
                records[s.sensor_id] = best
                queue.remove(best)
            elif s.sensor_id not in self.seen:
                missing[s.sensor_id] = self._missing(self._reason.NEVER_SEEN, "")
            else:
                late = self.newest[s.sensor_id] < target
                missing[s.sensor_id] = self._missing(self._reason.LATE if late else self._reason.STALE, "")
            self.horizon[s.sensor_id] = horizon = target + s.tolerance_ns
            queue[:] = [r for r in queue if r.stamp_ns > horizon]
        return Frame(head.stamp_ns, head, records, missing)


def _synthetic(rig: Any, messages: int) -> list[Any]:
    from calibration import Modality
    from perception.samples import RangeReading, SensorRecord
    from simulation.timing import TimingConfig, schedule

    sensors = [s for s in rig.sensors if s.modality is not Modality.ODOMETRY]
    duration_s = messages / sum(s.rate_hz for s in sensors) * 1.01 + 1.0
    captures = schedule(rig, duration_s, TimingConfig(), np.random.default_rng(0))
    payload = RangeReading(0, "unused", 1.0, 0.1, 5.0, 0.5, True)  # never read by the synchronizer
    base = 1_700_000_000 * 10**9
    keep = {s.id for s in sensors}
    records = [
        SensorRecord(c.sensor_id, base + round(c.t * 1e9), base + round(c.receive_t * 1e9), payload)
        for c in captures
        if c.sensor_id in keep and not c.dropped
    ]
    records.sort(key=lambda r: (r.receive_ns, r.sensor_id))
    return records


def _signature(frames: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            f.stamp_ns,
            tuple(sorted((k, r.stamp_ns) for k, r in f.records.items())),
            tuple(sorted((k, m.reason.value) for k, m in f.missing.items())),
        )
        for f in frames
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from calibration import default_rig_path, load_rig
    from perception.sync import SyncConfig, Synchronizer

    if args.bag is not None:
        from fusion_node.bag.stamps import bag_stamps

        rig = load_rig(args.rig or Path(args.bag) / "rig.yaml")
        clock = "data"
        stream: list[Any] = sorted(bag_stamps(args.bag, rig), key=lambda m: m.log_time_ns)
        source = str(args.bag)
    else:
        if args.messages < 1:
            raise SystemExit(f"fusion bench sync: --messages must be >= 1, got {args.messages}")
        rig = load_rig(args.rig or default_rig_path())
        clock = "arrival"
        stream = _synthetic(rig, args.messages)
        source = f"synthetic ({rig.name}, simulation.timing defaults, seed 0)"
    config = SyncConfig.from_rig(rig, clock=clock, tolerance_margin_ns=round(args.tolerance_margin_ms * 1e6))
    outputs: dict[str, list[Any]] = {}

    def ours() -> None:
        sync: Synchronizer[Any] = Synchronizer(config)
        frames = [frame for record in stream for frame in sync.push(record)]
        outputs["ours"] = frames + sync.flush()
        outputs["stats"] = [sync.stats]

    def baseline() -> None:
        matcher = LinearScanMatcher(config)
        frames = [frame for record in stream for frame in matcher.push(record)]
        outputs["baseline"] = frames + matcher.flush()

    times = time_interleaved([ours, baseline], args.runs, args.warmup)
    frames, stats = outputs["ours"], outputs["stats"][0]
    if _signature(frames) != _signature(outputs["baseline"]):
        raise RuntimeError("synchronizer and linear-scan baseline disagree on the frames")
    candidate, base = median_ms(times[0]), median_ms(times[1])
    references = sum(1 for m in stream if m.sensor_id == config.reference)
    result = {
        "median_ms": candidate,
        "runs": len(times[0]),
        "input": {"messages": len(stream), "reference_messages": references, "clock": clock, "source": source},
        "baseline": "ApproximateTime-like linear scan per push (same frames)",
        "baseline_median_ms": base,
        "speedup": speedup(base, candidate),
        "messages_per_s": _rate(len(stream), candidate),
        "baseline_messages_per_s": _rate(len(stream), base),
        "frames_per_s": _rate(len(frames), candidate),
        **_quality(frames, stats, config),
        "emit_delay_ms": _emit_delay(config, stream),
    }
    if not getattr(args, "json", False):
        spread = result["spread_complete_ms"]
        print(
            f"{len(stream)} messages ({source}): {result['messages_per_s']} messages/s, "
            f"{result['frames_per_s']} frames/s; {result['frames']} frames from {references} reference messages, "
            f"{result['frames_complete']} complete ({result['completeness']}); "
            f"spread in complete frames median {spread['median']} ms, max {spread['max']} ms"
        )
    return {"synchronizer": result}


def _emit_delay(config: Any, stream: list[Any]) -> dict[str, float | None]:
    """Clock at emission minus frame stamp (frames flushed at the end left out), untimed pass."""
    from perception.sync import Synchronizer

    sync: Synchronizer[Any] = Synchronizer(config)
    delays = [sync.now_ns - frame.stamp_ns for record in stream for frame in sync.push(record)]
    if not delays:
        return {"median": None, "p95": None, "max": None}
    values = np.array(delays, dtype=np.float64) / 1e6
    return {
        key: round(float(fn(values)), 3)
        for key, fn in (("median", np.median), ("p95", lambda v: np.percentile(v, 95)), ("max", np.max))
    }


def _rate(count: int, ms: float) -> int | None:
    return round(count / (ms / 1e3)) if ms > 0 else None


def _quality(frames: list[Any], stats: Any, config: Any) -> dict[str, Any]:
    """Completeness, stamp spread inside complete frames, misses, per-sensor offsets vs tolerance."""
    complete = [f for f in frames if f.complete]
    spreads = np.array([f.spread_ns for f in complete], dtype=np.float64) / 1e6

    def ms(ns: int | None) -> float | None:
        return None if ns is None else round(ns / 1e6, 3)

    return {
        "frames": len(frames),
        "frames_complete": len(complete),
        "frames_partial": len(frames) - len(complete),
        "completeness": round(len(complete) / len(frames), 4) if frames else None,
        "spread_complete_ms": {
            "median": round(float(np.median(spreads)), 3) if spreads.size else None,
            "max": round(float(spreads.max()), 3) if spreads.size else None,
        },
        "missing": {
            reason: sum(s.missing[reason] for s in stats.sensors.values()) for reason in ("late", "stale", "never_seen")
        },
        "per_sensor": {
            s.sensor_id: {
                "max_offset_ms": ms(stats.sensors[s.sensor_id].staleness_max_ns),
                "tolerance_ms": ms(s.tolerance_ns),
                "matched": stats.sensors[s.sensor_id].matched,
            }
            for s in config.sensors
        },
    }

"""The fusion node under a looped replay, overload and a crash: real processes over real DDS.

Every test starts the fusion node (ONNX Runtime, the shipped bundle ``models/fusion_sim``,
``use_sim_time``) and ``fusion replay bags/sample_city_4s --loop --clock`` as separate
processes, and watches ``~/output/detections`` and ``/diagnostics`` from an rclpy node in this
process. The bag's stamps repeat at every loop: the data clock and ``/clock`` jump back by
the bag's length (4 s) at each restart.

1. Looped replay, with every sensor and without odometry: outputs of the second and third
   pass arrive, /diagnostics counts the resets and keeps coming after the jump, the node exits
   0 on SIGINT.
2. Overload (3x for 60 s): resident memory flat after warm-up, drop-oldest drops counted and
   adding up, latency bounded and flat.
3. SIGKILL mid-replay: a new node publishes again, the replay survives, the new node's
   diagnostics are sane. The node and the replay run on the ``tcp`` DDS transport, the one
   under which a killed process's replacement is matched again (fusion_node/dds_transport.py).

The machine these run on is shared and loaded: the assertions are about behaviour (keeps
publishing, bounded, counted), with margins, never about exact speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from calibration import Modality, load_rig
from fusion_node.convert import time_to_ns
from fusion_node.dds_transport import USER_CHOICE, VARIABLE
from fusion_node.output_topics import NODE_NAME, TOPICS
from fusion_node.processes import forward_logs, start_child, stop_child

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BAG = REPO / "bags" / "sample_city_4s"
MODEL = REPO / "models" / "fusion_sim"
LIDAR_TOPIC = "/sensing/lidar/top/points"
#: Start-up of a node (imports, ONNX session, warm-up frame) plus DDS discovery: 5-15 s
#: measured on the loaded 2-core machine; the limit leaves a wide margin.
READY_TIMEOUT_S = 60.0
#: Frames between "ready" and "published" at a /diagnostics snapshot: the worker's input slot,
#: the prepare thread, the inference slot and the inference thread hold one each
#: (fusion_node/output_worker.py). ready - (published + dropped + failed) is never negative
#: and never more than this: anything else is a frame lost without being counted, or a queue.
IN_FLIGHT_MAX = 4
#: Fast DDS now and then leaves every process discovered but no data flowing (the node's
#: /diagnostics, which tick on the replayed /clock, never reach the probe; seen once in a
#: fresh-clone run of the overload test): a graph with no /diagnostics this long after the
#: replay started is stopped and started again, once.
FLOW_TIMEOUT_S = 20.0


def _env(domain: int, transport: str | None = None) -> dict[str, str]:
    """The children's environment: their own domain; ``transport`` (FUSION_DDS_TRANSPORT)
    replaces the test process's."""
    if transport is None:
        return dict(os.environ, ROS_DOMAIN_ID=str(domain))
    env = {k: v for k, v in os.environ.items() if k not in USER_CHOICE}
    return env | {"ROS_DOMAIN_ID": str(domain), VARIABLE: transport}


def _node_command() -> list[str]:
    parameters = [
        f"weights:={MODEL}",
        "backend:=onnxruntime",
        f"rig_path:={BAG / 'rig.yaml'}",
        "qos:=reliable",  # the replay is reliable too: overload reaches the node, not DDS
        "diagnostics_period_s:=0.5",
        "use_sim_time:=true",  # end-to-end latency on the bag's clock (/clock from the replay)
    ]
    return [sys.executable, "-m", "fusion_node.fusion_node", "--ros-args", *(a for p in parameters for a in ("-p", p))]


def _replay_command(rate: float, topics: list[str] | None = None) -> list[str]:
    return [
        *(sys.executable, "-m", "fusion_node.cli", "replay", str(BAG), "--loop", "--rate", str(rate)),
        *("--qos", "reliable", "--clock", "100", "--no-keyboard", "--quiet"),
        *(["--topics", *topics] if topics else []),
    ]


def _bag_lidar_stamps() -> set[int]:
    from fusion_node.bag.reader import BagReader

    with BagReader(BAG) as reader:
        return {time_to_ns(m.msg.header.stamp) for m in reader.messages([LIDAR_TOPIC])}


def _rss_mb(pid: int) -> float:
    """Resident memory of a live process, MiB (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


@dataclass(frozen=True)
class Diagnostics:
    """One /diagnostics array of the fusion node: status name (without the node prefix) ->
    level, message and values; ``received`` is this process's monotonic time of arrival."""

    received: float
    levels: dict[str, int]
    messages: dict[str, str]
    values: dict[str, dict[str, str]]

    @property
    def frames(self) -> dict[str, str]:
        return self.values["frames"]

    @property
    def latency(self) -> dict[str, str]:
        return self.values["latency"]

    def count(self, key: str) -> int:
        return int(self.frames[key])

    def in_flight(self) -> int:
        """ready - (published + dropped + failed): frames in the worker's slots and stages."""
        return self.count("frames_ready") - sum(
            self.count(k) for k in ("frames_published", "frames_dropped", "frames_failed")
        )

    def latency_ms(self, key: str) -> float:
        return float(self.latency[key])


@dataclass
class Probe:
    """An rclpy node in the test process: records the node's detections (arrival time,
    stamp) and its /diagnostics."""

    domain: int
    outputs: list[tuple[float, int]] = field(default_factory=list)
    diagnostics: list[Diagnostics] = field(default_factory=list)

    def __post_init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import PointCloud2

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.domain, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("resilience_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.detections_topic = TOPICS["detections"].resolved()
        self.node.create_subscription(PointCloud2, self.detections_topic, self._on_detections, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_detections(self, msg: Any) -> None:
        self.outputs.append((time.monotonic(), time_to_ns(msg.header.stamp)))

    def _on_diagnostics(self, msg: Any) -> None:
        prefix = f"{NODE_NAME}: "
        mine = [s for s in msg.status if s.name.startswith(prefix)]
        if not mine:
            return
        self.diagnostics.append(
            Diagnostics(
                received=time.monotonic(),
                levels={s.name[len(prefix) :]: s.level[0] for s in mine},
                messages={s.name[len(prefix) :]: s.message for s in mine},
                values={s.name[len(prefix) :]: {kv.key: kv.value for kv in s.values} for s in mine},
            )
        )

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(left, 0.05))

    def spin_until(
        self,
        done: Callable[[], bool],
        timeout_s: float,
        alive: dict[str, subprocess.Popen[str]],
        what: str,
        report: Callable[[], str] = lambda: "",
    ) -> float:
        """Spin until ``done()``; fails when a process in ``alive`` exits or ``timeout_s``
        passes, with ``report()`` in the message. Returns the seconds it took."""
        start = time.monotonic()
        while not done():
            for name, process in alive.items():
                assert process.poll() is None, (
                    f"{name} exited with {process.returncode} while waiting for {what}; {report()}"
                )
            assert time.monotonic() - start < timeout_s, f"no {what} within {timeout_s:.0f} s; {report()}"
            self.executor.spin_once(timeout_sec=0.05)
        return time.monotonic() - start

    def wait_ready(self, topics: list[str], alive: dict[str, subprocess.Popen[str]]) -> None:
        """Spin until the node is ready (:meth:`node_ready`). Fast DDS now and then leaves a new
        participant undiscovered for minutes (fusion_node/commands/demo.py): after a third of
        READY_TIMEOUT_S this probe is replaced by a fresh participant, twice at most."""
        for attempt in range(3):
            try:
                self.spin_until(lambda: self.node_ready(topics), READY_TIMEOUT_S / 3, alive, "ready")
                return
            except AssertionError:
                if attempt == 2 or any(process.poll() is not None for process in alive.values()):
                    raise
                self.close()
                self.__post_init__()

    def node_ready(self, topics: list[str]) -> bool:
        """The fusion node subscribes to every sensor topic and publishes detections (its
        /diagnostics cannot prove the data path here: on sim time they wait for /clock)."""
        return self.node.count_publishers(self.detections_topic) > 0 and all(
            self.node.count_subscribers(t) > 0 for t in topics
        )

    def outputs_after(self, t: float) -> list[int]:
        return [stamp for received, stamp in self.outputs if received > t]

    def diagnostics_after(self, t: float) -> list[Diagnostics]:
        return [d for d in self.diagnostics if d.received > t]

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.context.destroy()  # the DDS participant goes now, not at garbage collection


@contextmanager
def _graph(domain: int) -> Iterator[tuple[Probe, list[subprocess.Popen[str]]]]:
    """A probe on ``domain`` and a list for the child processes; every child still running
    at the end is stopped (SIGINT, then SIGKILL)."""
    probe = Probe(domain)
    children: list[subprocess.Popen[str]] = []
    try:
        yield probe, children
    finally:
        probe.close()
        for child in reversed(children):
            stop_child(child)


def _start(
    children: list[subprocess.Popen[str]], command: list[str], domain: int, prefix: str, transport: str | None = None
) -> subprocess.Popen[str]:
    process = start_child(command, env=_env(domain, transport))
    children.append(process)
    forward_logs(process, prefix)
    return process


def _start_flowing(
    children: list[subprocess.Popen[str]], probe: Probe, domain: int, replay_command: list[str]
) -> tuple[subprocess.Popen[str], subprocess.Popen[str], float]:
    """The node, ready, then the replay, started again (once, with a fresh probe) when no
    /diagnostics from the node reach the probe within FLOW_TIMEOUT_S (see there). Returns (node,
    replay, the monotonic time the replay that carried data started)."""
    for attempt in range(2):
        node = _start(children, _node_command(), domain, "fusion_node")
        probe.wait_ready(_sensor_topics(), {"fusion_node": node})
        replay = _start(children, replay_command, domain, "replay")
        start = time.monotonic()
        alive = {"fusion_node": node, "replay": replay}
        try:
            probe.spin_until(lambda t=start: bool(probe.diagnostics_after(t)), FLOW_TIMEOUT_S, alive, "/diagnostics")
            return node, replay, start
        except AssertionError:
            if attempt == 1 or any(process.poll() is not None for process in alive.values()):
                raise
        print(f"no /diagnostics {FLOW_TIMEOUT_S:.0f} s into the replay (no data flowing): starting the graph again")
        for process in (replay, node):
            stop_child(process)
            children.remove(process)
        probe.close()
        probe.__post_init__()
        probe.outputs.clear()
        probe.diagnostics.clear()
    raise AssertionError("unreachable")


def _backward_steps(stamps: list[int]) -> list[int]:
    """Indices i where stamps[i] < stamps[i - 1]: a later pass of the loop began."""
    return [i for i in range(1, len(stamps)) if stamps[i] < stamps[i - 1]]


def _sensor_topics(*, odometry: bool = True) -> list[str]:
    return [s.topic for s in load_rig(BAG / "rig.yaml").sensors if odometry or s.modality is not Modality.ODOMETRY]


def _counters_add_up(arrays: list[Diagnostics]) -> list[str]:
    """Problems with the frame counters of each array (empty: they add up)."""
    problems = []
    for d in arrays:
        if not 0 <= d.in_flight() <= IN_FLIGHT_MAX:
            counts = {k: d.frames[k] for k in ("frames_ready", "frames_published", "frames_dropped", "frames_failed")}
            problems.append(f"ready != published + dropped + failed (+ <= {IN_FLIGHT_MAX} in flight): {counts}")
        if d.count("frames_ready") > int(d.values["sensor lidar_top"]["received"]):
            problems.append(f"more frames than lidar sweeps received: {d.frames['frames_ready']}")
        if d.count("frames_failed") or d.count("pipeline_errors"):
            problems.append(f"failed frames / pipeline errors: {d.frames['last_error']!r}")
    return problems


# -- 1. looped replay: the clock jumps back ---------------------------------------------------
#: Passes of the bag whose outputs the test waits for after the first (two jumps back).
JUMPS = 2
LOOP_TIMEOUT_S = 45.0  # 11 loops of the 4 s bag at 1x; a working node needs about 3


@pytest.mark.parametrize(
    ("odometry", "domain"),
    [
        pytest.param(True, 71, id="every_sensor"),
        # no odometry in the bag: frames go out uncompensated once odometry_wait_ms of data time
        # has passed ("degradation, never a stall", perception/pipeline.py), loops included
        pytest.param(False, 74, id="without_odometry"),
    ],
)
def test_looped_replay_keeps_publishing_after_the_clock_jumps_back(odometry: bool, domain: int) -> None:
    """Each case on its own DDS domain: nothing of a previous graph can be matched."""
    lidar_stamps, inputs = _bag_lidar_stamps(), _sensor_topics()
    with _graph(domain) as (probe, children):
        node = _start(children, _node_command(), domain, "fusion_node")
        probe.wait_ready(inputs, {"fusion_node": node})
        topics = None if odometry else _sensor_topics(odometry=False)
        replay = _start(children, _replay_command(1.0, topics), domain, "replay")

        def passes_seen() -> bool:
            stamps = [s for _, s in probe.outputs]
            steps = _backward_steps(stamps)
            return len(steps) >= JUMPS and len(stamps) - steps[-1] >= 3

        alive = {"fusion_node": node, "replay": replay}
        try:
            took = probe.spin_until(passes_seen, LOOP_TIMEOUT_S, alive, f"outputs of {JUMPS + 1} passes of the bag")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {_loop_report(probe)}") from None
        probe.spin(1.5)  # /diagnostics of the last pass
        assert replay.poll() is None, "the looping replay runs until stopped"
        assert stop_child(replay) == 0
        node_code = stop_child(node)
    print(f"outputs of {JUMPS + 1} passes after {took:.1f} s of replay; {_loop_report(probe)}")
    assert node_code == 0, "the node exits cleanly on SIGINT after the jumps"

    stamps = [s for _, s in probe.outputs]
    assert set(stamps) <= lidar_stamps, "every output is stamped with a lidar stamp of the bag"
    first_jump = _backward_steps(stamps)[0]
    assert set(stamps[:first_jump]) & set(stamps[first_jump:]), "a lidar stamp published again after a later one"
    jump_seen_at = probe.outputs[first_jump][0]
    after = probe.diagnostics_after(jump_seen_at)
    assert len(after) >= 3, "/diagnostics keeps coming after /clock jumped back"
    last = probe.diagnostics[-1]
    # every pass the node's outputs show began with a reset of the synchronizer, which dropped
    # the messages it held (reason "reset" in the sensors' sync_dropped)
    assert last.count("sync_resets") >= JUMPS, last.frames
    dropped = {name: v.get("sync_dropped", "") for name, v in last.values.items() if name.startswith("sensor ")}
    assert any("reset=" in text for text in dropped.values()), dropped
    reported = [int(d.frames["last_frame_stamp_ns"]) for d in after]
    assert set(reported) <= lidar_stamps
    assert min(reported) < max(stamps[:first_jump]), "/diagnostics reports the frames of the new pass"
    assert not _counters_add_up(probe.diagnostics), _counters_add_up(probe.diagnostics)[:3]


def _loop_report(probe: Probe) -> str:
    stamps = [s for _, s in probe.outputs]
    text = f"{len(stamps)} outputs, backward steps at {_backward_steps(stamps)}"
    if probe.diagnostics:
        d = probe.diagnostics[-1]
        keys = ("frames_ready", "frames_published", "frames_dropped", "sync_resets", "sync_frames_discarded")
        counts = {k: d.frames[k] for k in keys}
        text += f"; last /diagnostics: {counts}"
        text += f", lidar_top received {d.values['sensor lidar_top']['received']}"
    return text


# -- 2. overload: 3x the input rate for 60 s ---------------------------------------------------
RATE = 3.0
OVERLOAD_S = 60.0
WINDOW_S = 20.0
#: Resident memory may rise this much from the first 20 s to the last 20 s of the replay.
#: What is legitimately held is bounded but may fill late, when a load spike makes the
#: subscription callbacks fall behind: the reliable reader histories (depth 50 per topic: 36
#: MiB of the sample bag's largest messages, 29 of them lidar; twice that with the middleware's
#: copies), at most IN_FLIGHT_MAX frames in the worker, the sweep history; plus allocator
#: noise (~20 MiB). Measured: +10 to +42 MiB. A queue that grows (frames of ~0.6 MB, up to 30
#: a second at 3x; 15 MiB/s measured when frames piled up in FramePipeline) exceeds it in
#: seconds.
RSS_GROWTH_MB = 96.0
#: Wall-clock bound of one frame's path under drop-oldest: the sweep waiting to be taken in
#: (the executor runs at niceness +5 so that, with both worker threads always busy at 3x, it
#: gets a fraction of a core for ~1,900 messages/s: input then waits in the reliable reader
#: history, which bounds it), waiting for late sensors and odometry (up to odometry_wait_ms =
#: 0.2 s of data), then in each size-1 slot at most one cycle of the stage after it, and the
#: stages themselves (ego motion + encoding, inference + decode + publish: 0.15-0.4 s
#: together measured on the loaded 2-core machine). Measured p50: 0.2-0.4 s locally, up to
#: 0.6 s on CI, p95 up to 1 s. end_to_end is on the bag's clock, which runs at up to RATE x
#: wall time. A growing queue instead adds the backlog (tens of frames after a few seconds at
#: 3x) and the growth check below catches it whatever the bound.
FRAME_WALL_BOUND_MS = 1600.0
E2E_P95_BOUND_MS = RATE * FRAME_WALL_BOUND_MS
E2E_P50_BOUND_MS = RATE * FRAME_WALL_BOUND_MS / 2
#: queue_wait (wall clock, both slots): drop-oldest bounds it by one cycle of each next stage.
QUEUE_WAIT_P95_BOUND_MS = FRAME_WALL_BOUND_MS
#: Outputs in every 10 s of the replay after the first: the node publishes 3-5 frames a
#: second here; a handful means it keeps publishing.
MIN_OUTPUTS_PER_10_S = 5


def test_overload_at_three_times_the_rate_keeps_memory_and_latency_bounded() -> None:
    domain = 72
    rss: list[tuple[float, float]] = []  # (seconds since the replay started, MiB)
    with _graph(domain) as (probe, children):
        node, replay, start = _start_flowing(children, probe, domain, _replay_command(RATE))
        while (elapsed := time.monotonic() - start) < OVERLOAD_S:
            assert node.poll() is None, f"fusion_node exited with {node.returncode} after {elapsed:.1f} s of overload"
            assert replay.poll() is None, f"the replay exited with {replay.returncode} after {elapsed:.1f} s"
            rss.append((elapsed, _rss_mb(node.pid)))
            probe.spin(1.0 - (time.monotonic() - start) % 1.0)
        assert stop_child(replay) == 0
        node_code = stop_child(node)
    report = _overload_report(probe, start, rss)
    print(report)
    assert node_code == 0, "the node exits cleanly on SIGINT after the overload"

    problems = []
    counts = [
        sum(1 for t, _ in probe.outputs if start + a <= t < start + a + 10.0) for a in range(10, int(OVERLOAD_S), 10)
    ]
    if min(counts) < MIN_OUTPUTS_PER_10_S:
        problems.append(f"outputs per 10 s after the first 10 s: {counts} (fewer than {MIN_OUTPUTS_PER_10_S})")
    first = max(mb for t, mb in rss if t < WINDOW_S)
    last = max(mb for t, mb in rss if t >= OVERLOAD_S - WINDOW_S)
    if last > first + RSS_GROWTH_MB:
        problems.append(f"resident memory grew: max {first:.0f} MiB in the first 20 s, {last:.0f} MiB in the last 20 s")

    arrays = [d for d in probe.diagnostics if d.received >= start]
    assert arrays, "no /diagnostics during the overload"
    problems += _counters_add_up(arrays)[:3]
    final = arrays[-1]
    dropped = final.count("frames_dropped")
    if dropped == 0:
        problems.append(f"no frame dropped at {RATE:g}x: {final.frames}")
    if f"{dropped} dropped" not in final.messages["frames"] or final.frames["queue_policy"] != "drop_oldest":
        problems.append(f"drops not reported: {final.messages['frames']!r}, {final.frames['queue_policy']}")
    if final.count("frames_published") < 0.8 * len(probe.outputs_after(start)):
        problems.append("the published counter is below the outputs received")

    late = [d for d in arrays if d.received >= start + OVERLOAD_S - WINDOW_S and "end_to_end.p50_ms" in d.latency]
    early = [
        d for d in arrays if start + 10.0 <= d.received < start + 10.0 + WINDOW_S and "end_to_end.p50_ms" in d.latency
    ]
    if not late or not early:
        problems.append("no end-to-end latency reported in the first or the last 20 s")
    else:
        p50 = max(d.latency_ms("end_to_end.p50_ms") for d in late)
        p95 = max(d.latency_ms("end_to_end.p95_ms") for d in late)
        wait = max(d.latency_ms("queue_wait.p95_ms") for d in late)
        early_p50 = max(d.latency_ms("end_to_end.p50_ms") for d in early)
        if p50 > E2E_P50_BOUND_MS or p95 > E2E_P95_BOUND_MS:
            problems.append(f"end to end in the last 20 s: p50 up to {p50:.0f} ms, p95 up to {p95:.0f} ms (bag clock)")
        if p50 > 2 * early_p50 + 200.0:
            problems.append(f"end-to-end p50 grows: {early_p50:.0f} ms at 10-30 s, up to {p50:.0f} ms in the last 20 s")
        if wait > QUEUE_WAIT_P95_BOUND_MS:
            problems.append(f"queue wait p95 up to {wait:.0f} ms in the last 20 s")
    assert not problems, "\n".join([*problems, report])


def _overload_report(probe: Probe, start: float, rss: list[tuple[float, float]]) -> str:
    lines = [
        "t_s  rss_MiB  outputs  lidar_in  ready  published  dropped  resets  e2e_p50  e2e_p95  e2e_p99  "
        "frame_ready_p95  queue_wait_p95  inference_p50"
    ]
    for t, mb in rss[::5]:
        known = [d for d in probe.diagnostics if d.received <= start + t]
        outputs = sum(1 for r, _ in probe.outputs if r <= start + t)
        row = f"{t:4.0f}  {mb:7.0f}  {outputs:7d}"
        if known:
            d = known[-1]
            row += "  " + d.values["sensor lidar_top"]["received"]
            row += "  " + "  ".join(
                d.frames[k] for k in ("frames_ready", "frames_published", "frames_dropped", "sync_resets")
            )
            stages = ("end_to_end.p50", "end_to_end.p95", "end_to_end.p99", "frame_ready.p95", "queue_wait.p95")
            row += "  " + "  ".join(d.latency.get(f"{k}_ms", "-") for k in (*stages, "inference.p50"))
        lines.append(row)
    return "\n".join(lines)


# -- 3. the node killed and restarted mid-replay ------------------------------------------------
#: A restarted node publishes within this long of its start: start-up (5-15 s measured on the
#: loaded machine) plus one frame, with a wide margin.
RESTART_BOUND_S = 60.0
#: Frames the first node publishes before it is killed: more than the new node publishes before
#: the probe's reader has matched it (those outputs never reach the probe), so that a counter
#: carried over from the killed node is told apart from a fresh one.
FIRST_NODE_FRAMES = 30


def _published(diagnostics: list[Diagnostics]) -> int:
    """The highest frames_published in ``diagnostics`` (0 when there are none)."""
    return max((d.count("frames_published") for d in diagnostics), default=0)


def _restart_report(probe: Probe, cutoff: float) -> str:
    """What the node said about itself since ``cutoff``: its frame counters and what each sensor
    received."""
    after = probe.diagnostics_after(cutoff)
    text = f"{len(probe.outputs_after(cutoff))} outputs and {len(after)} /diagnostics since then"
    if after:
        last = after[-1]
        keys = ("frames_ready", "frames_partial", "frames_published", "frames_dropped", "sync_resets")
        frames = {k: last.frames.get(k) for k in keys}
        text += f"; last frames: {frames}"
        received = {n[len("sensor ") :]: v.get("received") for n, v in last.values.items() if n.startswith("sensor ")}
        text += f"; received per sensor: {received}; messages: {last.messages}"
    return text


#: The transport under which a SIGKILLed node's replacement is matched at once: with
#: LARGE_DATA's shared memory it can stay deaf (fusion_node/dds_transport.py); the probe, in
#: this process, stays on the default and reaches the nodes over TCP.
RESTART_TRANSPORT = "tcp"


def test_node_killed_mid_replay_is_replaced_and_publishes_again() -> None:
    domain, lidar_stamps, topics = 73, _bag_lidar_stamps(), _sensor_topics()
    with _graph(domain) as (probe, children):
        first = _start(children, _node_command(), domain, "fusion_node#1", RESTART_TRANSPORT)
        probe.wait_ready(topics, {"fusion_node#1": first})
        replay = _start(children, _replay_command(1.0), domain, "replay", RESTART_TRANSPORT)
        alive = {"fusion_node#1": first, "replay": replay}
        started = time.monotonic()
        report = lambda: _restart_report(probe, started)  # noqa: E731
        probe.spin_until(
            lambda: _published(probe.diagnostics) >= FIRST_NODE_FRAMES,
            READY_TIMEOUT_S,
            alive,
            f"{FIRST_NODE_FRAMES} frames published by the first node",
            report,
        )

        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        killed = time.monotonic()
        published_by_first = _published(probe.diagnostics)
        probe.spin(0.5)  # samples already on the wire
        cutoff = time.monotonic()
        second = _start(children, _node_command(), domain, "fusion_node#2", RESTART_TRANSPORT)
        alive = {"fusion_node#2": second, "replay": replay}
        took = probe.spin_until(
            lambda: len(probe.outputs_after(cutoff)) >= 3,
            RESTART_BOUND_S,
            alive,
            "new outputs",
            lambda: _restart_report(probe, cutoff),
        )
        probe.spin_until(
            lambda: any(d.count("frames_published") >= 3 for d in probe.diagnostics_after(cutoff)),
            10.0,
            alive,
            "/diagnostics of the new node",
        )
        assert replay.poll() is None, "the replay survives the node's death"
        assert stop_child(replay) == 0, "the replay exits cleanly after the node's death"
        second_code = stop_child(second)
    new_outputs = probe.outputs_after(cutoff)
    print(f"new node published {took:.1f} s after its start ({time.monotonic() - killed:.1f} s after the kill)")
    assert second_code == 0
    assert set(new_outputs) <= lidar_stamps

    arrays = probe.diagnostics_after(cutoff)
    last = arrays[-1]
    print({k: last.frames[k] for k in ("frames_ready", "frames_published", "frames_dropped", "sync_resets")})
    print({k: v for k, v in last.latency.items() if k.startswith("end_to_end")})
    assert not _counters_add_up(arrays), _counters_add_up(arrays)[:3]
    # a fresh process: its counters start at zero, not where the killed node stopped. The probe
    # misses the new node's first outputs (published before its reader matched the new writer),
    # so the counter may exceed what arrived here, but a counter carried over from the killed
    # node would be at least its count plus every output that arrived before this /diagnostics
    arrived = sum(1 for at, _ in probe.outputs if cutoff < at <= last.received)
    assert 3 <= last.count("frames_published") < published_by_first + arrived, (
        f"{last.count('frames_published')} published by the new node; {arrived} of its outputs "
        f"arrived before its last /diagnostics; the killed node had published {published_by_first}"
    )
    assert len(last.levels) == 2 + len(topics), "frames, latency and one status per sensor"
    assert last.levels["sensor lidar_top"] == 0, last.messages["sensor lidar_top"]
    assert int(last.values["sensor lidar_top"]["rejected"]) == 0
    # p95: a frame published just after /clock jumped back has a negative end to end (its stamp is
    # of the previous pass), which can pull the median of a few frames below zero
    p95 = last.latency_ms("end_to_end.p95_ms")
    assert 0.0 < p95 < 2 * FRAME_WALL_BOUND_MS, f"end-to-end p95 {p95} ms at 1x"
    assert last.latency_ms("inference.p50_ms") > 0.0

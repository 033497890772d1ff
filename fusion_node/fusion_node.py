"""fusion_node: every rig sensor in, objects / BEV grids / points out, in base_link.

Thin node over the ROS-free core::

    subscriptions (one per rig sensor, odometry included; executor thread)
      -> sensor_inputs.to_record        malformed: counted with the reason, reported, dropped
      -> perception.pipeline.FramePipeline   synchronizer, ego motion, BEV / image encoding
      -> output_worker.OutputWorker      three threads joined by size-1 slots (a newer frame
                                         replaces a waiting one, counted: never a growing queue):
           prepare                       ego motion, BEV / image encoding
           infer                         backend + decode + postprocess; publishes detections, occupancy,
                                         drivable (end-to-end latency is measured here)
           visualize                     objects (markers), points, debug image

Outputs (:data:`fusion_node.output_topics.OUTPUT_TOPICS`) are stamped with the frame stamp
(the lidar sweep's header stamp) in base_link; ``~/output/debug_image`` is a camera image and
carries that camera's frame_id. ``/diagnostics`` (every ``diagnostics_period_s``) carries:

* ``fusion_node: frames``: ready / prepared / published / complete / partial / dropped
  (replaced in a slot before inference: no output) / visualized frames, visual frames skipped
  (a newer frame was drawn instead), the last frame's missing sensors with the synchronizer's
  reasons, pipeline notes (e.g. not ego-motion compensated) and errors;
* ``fusion_node: latency``: p50 / p95 per stage over the last ``latency_window`` frames
  (ego_motion, encode; frame_ready = frame stamp to frame ready, which includes waiting for
  late sensors and odometry; queue_wait, inference, decode, radar_velocity,
  drivable_memory, publish, visual_publish) and end to end (frame stamp to detections
  published; visual_end_to_end: to markers and points published; p99 too; on the node clock:
  wall time, or ``/clock`` with ``use_sim_time``), WARN when the end-to-end p95 is above ``latency_warn_ms``;
* ``fusion_node: sensor <id>``: received, rejected with the last reason, frames missing it by
  reason, messages the synchronizer dropped by reason; WARN while it is missing from the
  latest frame or when it had rejected messages since the previous report.

Parameters are declared and validated at start-up (:data:`PARAMETERS`); a bad value, an
unusable rig, weights or backend make the node exit with code 2 and a message naming them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np

from calibration import CalibrationError, Modality, Rig, Sensor, default_rig_path, load_rig
from fusion_node.errors import ConversionError
from fusion_node.output_topics import NODE_NAME
from fusion_node.output_worker import FrameSlot, OutputWorker, QueueCounts, nice_current_thread
from fusion_node.parameters import ParameterError, ParameterSpec, declare_parameters
from fusion_node.teardown import close_ros, exit_process, spin_until_shutdown
from perception.sync import DEFAULT_MATCH, MATCHES, SyncConfig

PARAMETERS: Final = (
    ParameterSpec("rig_path", str, "", "rig YAML file; empty = the shipped default rig"),
    ParameterSpec("weights", str, "", "model checkpoint (.pt) or bundle directory (required)"),
    ParameterSpec("backend", str, "torch", "inference backend", choices=("torch", "onnxruntime", "tensorrt")),
    ParameterSpec("threads", int, 2, "CPU threads of the backend", minimum=1, maximum=64),
    ParameterSpec(
        "precision",
        str,
        "",
        "onnxruntime: fp32, fp16 or int8 (the bundle's copies); tensorrt: engine precision; empty: the default",
        choices=("", "fp32", "fp16", "int8"),
    ),
    ParameterSpec("qos", str, "sensor_data", "QoS of the sensor subscriptions", choices=("sensor_data", "reliable")),
    ParameterSpec(
        "score_threshold", float, 0.3, "detections below this score are not published", minimum=0.0, maximum=1.0
    ),
    ParameterSpec("max_objects", int, 100, "most detections per frame (highest scores)", minimum=1, maximum=500),
    ParameterSpec(
        "queue_policy",
        str,
        "drop_oldest",
        "a frame ready while the previous one still waits for inference replaces it (drop_oldest) "
        "or is dropped (drop_newest)",
        choices=("drop_oldest", "drop_newest"),
    ),
    ParameterSpec(
        "odometry_wait_ms",
        float,
        200.0,
        "data time a frame waits for odometry to cover it",
        minimum=0.0,
        maximum=5000.0,
    ),
    ParameterSpec(
        "odometry_extrapolation_ms",
        float,
        25.0,
        "how far the newest odometry may fall short of a frame's last firing (poses extrapolated)",
        minimum=0.0,
        maximum=50.0,
    ),
    ParameterSpec(
        "sync_match",
        str,
        DEFAULT_MATCH,
        "camera / radar / ultrasonic message per lidar sweep: nearest its stamp, or latest at it (no wait)",
        choices=MATCHES,
    ),
    ParameterSpec(
        "radar_velocity",
        bool,
        True,
        "correct each detection's velocity with the radar Doppler of the detections inside it",
    ),
    ParameterSpec(
        "drivable_memory",
        bool,
        True,
        "fuse the drivable area over time (ego-motion compensated memory of earlier frames)",
    ),
    ParameterSpec("diagnostics_period_s", float, 1.0, "period of /diagnostics, seconds", minimum=0.05, maximum=10.0),
    ParameterSpec("latency_window", int, 100, "frames in the latency percentiles", minimum=10, maximum=10000),
    ParameterSpec("latency_warn_ms", float, 150.0, "end-to-end p95 above this is a WARN", minimum=1.0, maximum=60000.0),
    ParameterSpec("publish_points", bool, True, "publish the accumulated lidar points on ~/output/points"),
    ParameterSpec("publish_debug_image", bool, False, "publish a camera image with projected boxes"),
    ParameterSpec("debug_camera", str, "", "camera id of the debug image; empty = the rig's first camera"),
    ParameterSpec("marker_text", bool, True, "class and score label above each box"),
    ParameterSpec("marker_velocity", bool, True, "velocity arrow on each moving box"),
    ParameterSpec(
        "marker_lifetime_s", float, 0.0, "marker lifetime, 0 = until the next frame", minimum=0.0, maximum=60.0
    ),
    ParameterSpec("warmup", bool, True, "run one synthetic frame through the pipeline and model before subscribing"),
)
#: Stages reported in the latency status, in pipeline order.
STAGES: Final = (
    "ego_motion",
    "encode",
    "frame_ready",
    "queue_wait",
    "inference",
    "decode",
    "radar_velocity",
    "drivable_memory",
    "publish",
    "end_to_end",
    "visual_publish",
    "visual_end_to_end",
)
OK, WARN = 0, 1


class LatencyWindow:
    """Per-stage milliseconds of the last ``size`` frames -> percentiles."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: dict[str, deque[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        self._values.setdefault(stage, deque(maxlen=self.size)).append(float(ms))

    def percentiles(self, stage: str, qs: tuple[int, ...] = (50, 95)) -> dict[int, float]:
        """q -> milliseconds (empty before the first value)."""
        values = self._values.get(stage)
        if not values:
            return {}
        result = np.percentile(np.fromiter(values, dtype=np.float64), qs)
        return {q: float(v) for q, v in zip(qs, result, strict=True)}

    def count(self, stage: str) -> int:
        return len(self._values.get(stage, ()))


class NodeStats:
    """Counters shared by the subscription thread, the worker and the diagnostics timer."""

    def __init__(self, sensor_ids: tuple[str, ...], window: int) -> None:
        self.lock = threading.Lock()
        self.received = dict.fromkeys(sensor_ids, 0)
        self.rejected = dict.fromkeys(sensor_ids, 0)
        self.last_rejection = dict.fromkeys(sensor_ids, "")
        self.reported_rejected = dict.fromkeys(sensor_ids, 0)
        self.latency = LatencyWindow(window)
        self.ready = self.prepared = self.published = self.visualized = 0
        self.complete = self.partial = self.not_compensated = 0
        self.failed = self.pipeline_errors = self.reported_failures = 0
        self.last_error = ""
        self.last_missing: dict[str, Any] = {}
        self.last_notes: tuple[str, ...] = ()
        self.last_stamp_ns = -1
        self.last_published_stamp_ns = -1

    def receive(self, sensor_id: str) -> None:
        with self.lock:
            self.received[sensor_id] += 1

    def reject(self, sensor_id: str, reason: str) -> None:
        with self.lock:
            self.rejected[sensor_id] += 1
            self.last_rejection[sensor_id] = reason

    def error(self, reason: str, *, worker: bool) -> None:
        with self.lock:
            if worker:
                self.failed += 1
            else:
                self.pipeline_errors += 1
            self.last_error = reason

    def ready_frame(self) -> None:
        """The synchronizer released a frame (it goes to the worker slot)."""
        with self.lock:
            self.ready += 1

    def prepared_frame(self, prepared: Any, ready_ms: float) -> None:
        """A frame left the pipeline ``ready_ms`` after its stamp (node clock)."""
        with self.lock:
            self.prepared += 1
            frame = prepared.frame
            self.complete += frame.complete
            self.partial += not frame.complete
            self.last_missing = dict(frame.missing)
            self.last_notes = prepared.notes
            self.last_stamp_ns = prepared.stamp_ns
            self.not_compensated += any(n.startswith("not ego-motion compensated") for n in prepared.notes)
            for stage in ("ego_motion", "encode"):
                if stage in prepared.timings_ms:
                    self.latency.add(stage, prepared.timings_ms[stage])
            self.latency.add("frame_ready", ready_ms)

    def published_frame(self, stamp_ns: int, timings_ms: dict[str, float]) -> None:
        """Detections and grids of the frame stamped ``stamp_ns`` went out."""
        with self.lock:
            self.published += 1
            self.last_published_stamp_ns = stamp_ns
            for stage, ms in timings_ms.items():
                self.latency.add(stage, ms)

    def visualized_frame(self, timings_ms: dict[str, float]) -> None:
        """Markers, points (and the debug image) of a published frame went out."""
        with self.lock:
            self.visualized += 1
            for stage, ms in timings_ms.items():
                self.latency.add(stage, ms)


def _status(level: int, name: str, message: str, values: dict[str, Any], hardware_id: str = "") -> Any:
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    return DiagnosticStatus(
        level=bytes([level]),
        name=f"{NODE_NAME}: {name}",
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items() if v) or "none"


def diagnostic_statuses(
    stats: NodeStats, rig: Rig, sync_stats: Any, queues: QueueCounts, warn_ms: float, discarded_on_reset: int = 0
) -> list[Any]:
    """The node's DiagnosticStatus list (frames, latency, one per sensor); marks rejections
    and failures as reported. ``discarded_on_reset``: frames the pipeline threw away while
    they waited for odometry because the clock jumped back."""
    with stats.lock:
        missing = stats.last_missing
        missing_text = "; ".join(f"{sid} ({m.reason.value}): {m.detail}" for sid, m in sorted(missing.items()))
        new_failures = stats.failed + stats.pipeline_errors - stats.reported_failures
        stats.reported_failures = stats.failed + stats.pipeline_errors
        frames_level = WARN if missing or new_failures or stats.last_notes else OK
        message = f"{stats.published} frames published, {stats.partial} partial, {queues.dropped} dropped"
        if missing:
            message += f"; last frame misses {', '.join(sorted(missing))}"
        statuses = [
            _status(
                frames_level,
                "frames",
                message,
                {
                    "frames_ready": stats.ready,
                    "frames_prepared": stats.prepared,
                    "frames_published": stats.published,
                    "frames_complete": stats.complete,
                    "frames_partial": stats.partial,
                    "frames_dropped": queues.dropped,
                    "frames_visualized": stats.visualized,
                    "visual_frames_skipped": queues.visual_skipped,
                    "queue_policy": queues.policy,
                    "frames_failed": stats.failed,
                    "frames_not_compensated": stats.not_compensated,
                    "pipeline_errors": stats.pipeline_errors,
                    "last_error": stats.last_error,
                    "last_frame_stamp_ns": stats.last_stamp_ns,
                    "last_published_stamp_ns": stats.last_published_stamp_ns,
                    "last_frame_missing": missing_text,
                    "last_frame_notes": "; ".join(stats.last_notes),
                    "sync_frames_forced": sync_stats.frames_forced,
                    "sync_frames_discarded": sync_stats.frames_discarded,
                    "sync_resets": sync_stats.resets,
                    "frames_discarded_on_reset": discarded_on_reset,
                },
            )
        ]
        latency: dict[str, Any] = {"window_frames": stats.latency.count("end_to_end")}
        for stage in STAGES:
            for q, ms in stats.latency.percentiles(
                stage, (50, 95, 99) if stage.endswith("end_to_end") else (50, 95)
            ).items():
                latency[f"{stage}.p{q}_ms"] = f"{ms:.2f}"
        e2e = stats.latency.percentiles("end_to_end")
        slow = bool(e2e) and e2e[95] > warn_ms
        text = f"end to end p50 {e2e[50]:.1f} ms, p95 {e2e[95]:.1f} ms" if e2e else "no frame published yet"
        statuses.append(_status(WARN if slow else OK, "latency", text, latency))
        for sensor in rig.sensors:
            statuses.append(_sensor_status(stats, sensor, sync_stats.sensors.get(sensor.id)))
            stats.reported_rejected[sensor.id] = stats.rejected[sensor.id]
    return statuses


def _sensor_status(stats: NodeStats, sensor: Sensor, synced: Any) -> Any:
    sid = sensor.id
    values: dict[str, Any] = {
        "topic": sensor.topic,
        "modality": sensor.modality.value,
        "received": stats.received[sid],
        "rejected": stats.rejected[sid],
        "last_rejection": stats.last_rejection[sid],
    }
    problems = []
    if sid in stats.last_missing:
        gone = stats.last_missing[sid]
        problems.append(f"missing from the latest frame ({gone.reason.value}): {gone.detail}")
    if stats.rejected[sid] > stats.reported_rejected[sid]:
        problems.append(f"{stats.rejected[sid]} rejected, last: {stats.last_rejection[sid]}")
    if synced is not None:
        values["frames_missing"] = _counts(synced.missing)
        values["sync_dropped"] = _counts(synced.dropped)
    if sensor.modality is Modality.ODOMETRY:
        compensation = [n for n in stats.last_notes if n.startswith("not ego-motion compensated")]
        if stats.last_stamp_ns >= 0 and compensation:
            problems.append(compensation[0])
    message = "; ".join(problems) if problems else f"ok, {stats.received[sid]} received"
    return _status(WARN if problems else OK, f"sensor {sid}", message, values, hardware_id=sensor.frame_id)


def warm_up(rig: Rig, predictor: Any, encoder: Any = None) -> float:
    """Run synthetic frames (test-pattern messages of every sensor), as many as the model
    accumulates lidar sweeps plus one, through a throwaway pipeline and the model, so JIT
    compilation, cache loads and first-call allocations (of every accumulation depth) do not
    land on the first real frames. Returns the seconds it took; errors propagate (start-up
    refuses)."""
    from fusion_node.sensor_inputs import to_record
    from fusion_node.test_pattern import TestPattern
    from perception.pipeline import FramePipeline

    began = time.perf_counter()
    pattern, pipeline = TestPattern(seed=0), FramePipeline(rig, predictor.config, encoder=encoder)
    first, period = 1_000_000_000, rig.sensor(rig.reference_sensor).period_ns
    stamps = [first + k * period for k in range(predictor.config.lidar_sweeps + 1)]
    for sensor in rig.of(Modality.ODOMETRY):
        for odometry_stamp in range(first - 5 * 20_000_000, stamps[-1] + 6 * 20_000_000, 20_000_000):
            pipeline.push(to_record(sensor, pattern.message(sensor, odometry_stamp), odometry_stamp))
    prepared = []
    for stamp in stamps:
        for sensor in rig.sensors:
            if sensor.modality is not Modality.ODOMETRY:
                prepared += pipeline.push(to_record(sensor, pattern.message(sensor, stamp), stamp))
    for frame in prepared + pipeline.flush():
        predictor(frame.inputs)
    return time.perf_counter() - began


def _check_parameters(params: dict[str, Any]) -> None:
    """Checks that need more than one value's spec (ParameterError names the parameter)."""
    weights = params["weights"]
    if not weights:
        raise ParameterError("parameter 'weights': required (a checkpoint .pt or a model bundle directory), got ''")
    if not Path(weights).exists():
        raise ParameterError(f"parameter 'weights': {weights!r} does not exist")


def _load(node: Any, params: dict[str, Any]) -> tuple[Rig, Any, Any]:
    """Rig, predictor and frame pipeline; raises with a message naming what is wrong."""
    from perception.backends import Predictor, load_backend
    from perception.model.decode import DecodeConfig
    from perception.pipeline import FramePipeline

    _check_parameters(params)
    rig = load_rig(params["rig_path"] or default_rig_path())
    camera = params["debug_camera"]
    if camera and camera not in {s.id for s in rig.cameras}:
        raise ParameterError(
            f"parameter 'debug_camera': {camera!r} is not a camera of rig {rig.name!r} "
            f"({rig.source}); cameras: {[s.id for s in rig.cameras]}"
        )
    try:
        precision = {"precision": params["precision"]} if params["precision"] else {}
        backend = load_backend(params["backend"], params["weights"], threads=params["threads"], **precision)
    except Exception as exc:
        raise ParameterError(
            f"parameters 'backend' ({params['backend']!r}) / 'weights' ({params['weights']!r}) / 'precision' "
            f"({params['precision']!r}): {exc}"
        ) from exc
    predictor = Predictor(backend, DecodeConfig(score_threshold=params["score_threshold"], top_k=params["max_objects"]))
    try:
        pipeline = FramePipeline(
            rig,
            predictor.config,
            sync=SyncConfig.from_rig(rig, match=params["sync_match"]),
            odometry_wait_ns=round(params["odometry_wait_ms"] * 1e6),
            odometry_extrapolation_ns=round(params["odometry_extrapolation_ms"] * 1e6),
        )
        if params["warmup"]:
            node.get_logger().info(f"warm-up frames done in {warm_up(rig, predictor, pipeline.encoder):.2f} s")
    except Exception as exc:  # start-up boundary: say which inputs do not fit together
        raise ParameterError(
            f"the model of 'weights' ({params['weights']!r}) does not run on the rig of 'rig_path' "
            f"({rig.source}): {type(exc).__name__}: {exc}"
        ) from exc
    return rig, predictor, pipeline


def _subscribe(node: Any, rig: Rig, pipeline: Any, slot: FrameSlot, stats: NodeStats, qos: Any) -> None:
    from fusion_node.sensor_inputs import message_type, to_record

    clock, logger = node.get_clock(), node.get_logger()

    def on_message(sensor: Sensor, msg: Any) -> None:
        stats.receive(sensor.id)
        try:
            record = to_record(sensor, msg, clock.now().nanoseconds)
        except (ConversionError, ValueError) as exc:
            stats.reject(sensor.id, str(exc))
            logger.warning(f"dropped message: {exc}", throttle_duration_sec=1.0)
            return
        except Exception as exc:  # node boundary: one bad message never kills the node
            stats.reject(sensor.id, f"internal error: {type(exc).__name__}: {exc}")
            logger.error(f"dropped message on {sensor.topic} after an internal error: {exc!r}")
            return
        try:
            frames = pipeline.collect(record)  # synchronization only: the worker prepares frames
        except Exception as exc:  # a record the synchronizer cannot take is reported, the stream goes on
            stats.error(f"{sensor.id} at {record.stamp_ns}: {type(exc).__name__}: {exc}", worker=False)
            logger.error(f"pipeline error on {sensor.topic}: {exc!r}", throttle_duration_sec=1.0)
            return
        now_ns = clock.now().nanoseconds
        for frame in frames:
            stats.ready_frame()
            slot.put((frame, time.perf_counter(), (now_ns - frame.stamp_ns) / 1e6))

    def callback(sensor: Sensor) -> Callable[[Any], None]:
        return lambda msg: on_message(sensor, msg)

    for sensor in rig.sensors:
        node.create_subscription(message_type(sensor), sensor.topic, callback(sensor), qos)


#: Niceness added to the executor thread once the worker threads run (see main).
EXECUTOR_NICENESS = 5


def main(args: list[str] | None = None) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node

    from fusion_node.dds_transport import use_runtime_transport
    from fusion_node.output_topics import DIAGNOSTICS_TOPIC
    from fusion_node.qos import QOS_PROFILES
    from perception.errors import PerceptionError

    use_runtime_transport()
    rclpy.init(args=args)
    node = Node(NODE_NAME)
    try:
        params = declare_parameters(node, PARAMETERS)
        rig, predictor, pipeline = _load(node, params)
    except (ParameterError, CalibrationError, PerceptionError, OSError, ValueError) as exc:
        node.get_logger().fatal(f"refusing to start: {exc}")
        node.destroy_node()
        rclpy.try_shutdown()
        return 2

    slot = FrameSlot(params["queue_policy"])
    stats = NodeStats(rig.ids, params["latency_window"])
    worker = OutputWorker(node, predictor, rig, slot, stats, params, pipeline)
    diagnostics = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)

    def publish_diagnostics() -> None:
        array = DiagnosticArray()
        array.header.stamp = node.get_clock().now().to_msg()
        array.status = diagnostic_statuses(
            stats, rig, pipeline.sync.stats, worker.counts, params["latency_warn_ms"], pipeline.discarded
        )
        diagnostics.publish(array)

    node.create_timer(params["diagnostics_period_s"], publish_diagnostics)
    worker.start()
    _subscribe(node, rig, pipeline, slot, stats, QOS_PROFILES[params["qos"]])
    node.get_logger().info(
        f"fusing {len(rig.sensors)} sensors of rig '{rig.name}' with the {params['backend']} backend "
        f"({params['weights']}); outputs under /{NODE_NAME}/output"
    )
    # The executor (sensor callbacks, 640 messages/s on the default rig) yields the cores to the
    # prepare and inference threads, started above at the default priority: a callback delayed
    # by a few ms changes no stamp, while a preempted inference thread stalls its peers.
    nice_current_thread(EXECUTOR_NICENESS)
    try:
        spin_until_shutdown(node)
    finally:
        worker.stop()
        close_ros(node, what=NODE_NAME)
    return 0


if __name__ == "__main__":
    exit_process(main())

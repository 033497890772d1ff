"""fusion_node: every rig sensor in, objects / BEV grids / points out, in base_link.

Thin node over the ROS-free core::

    subscriptions (one per rig sensor, odometry included; executor thread)
      -> sensor_inputs.to_record        malformed: counted with the reason, reported, dropped
      -> perception.pipeline.FramePipeline   synchronizer, ego motion, BEV / image encoding
      -> FrameSlot (size 1)              a newer frame replaces a waiting one (drop-oldest,
                                         counted): never a growing queue
      -> worker thread                   backend inference + decode, message building, publish

Outputs (:data:`fusion_node.output_topics.OUTPUT_TOPICS`) are stamped with the frame stamp
(the lidar sweep's header stamp) in base_link; ``~/output/debug_image`` is a camera image and
carries that camera's frame_id. ``/diagnostics`` (every ``diagnostics_period_s``) carries:

* ``fusion_node: frames``: prepared / published / complete / partial / dropped (drop-oldest)
  frames, the last frame's missing sensors with the synchronizer's reasons, pipeline notes
  (e.g. not ego-motion compensated) and errors;
* ``fusion_node: latency``: p50 / p95 per stage over the last ``latency_window`` frames
  (ego_motion, encode; frame_ready = frame stamp to frame prepared, which includes waiting for
  the sweep's end, late sensors and odometry; queue_wait, inference, decode, publish) and end
  to end (frame stamp to publish, p99 too; on the node clock: wall time, or ``/clock`` with
  ``use_sim_time``), WARN when the end-to-end p95 is above ``latency_warn_ms``;
* ``fusion_node: sensor <id>``: received, rejected with the last reason, frames missing it by
  reason, messages the synchronizer dropped by reason; WARN while it is missing from the
  latest frame or when it had rejected messages since the previous report.

Parameters are declared and validated at start-up (:data:`PARAMETERS`); a bad value, an
unusable rig, weights or backend make the node exit with code 2 and a message naming them.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np

from calibration import BASE_LINK, CalibrationError, Modality, Rig, Sensor, default_rig_path, load_rig
from fusion_node.errors import ConversionError
from fusion_node.output_topics import NODE_NAME, OUTPUT_TOPICS
from fusion_node.parameters import ParameterError, ParameterSpec, declare_parameters

PARAMETERS: Final = (
    ParameterSpec("rig_path", str, "", "rig YAML file; empty = the shipped default rig"),
    ParameterSpec("weights", str, "", "model checkpoint (.pt) or bundle directory (required)"),
    ParameterSpec("backend", str, "torch", "inference backend", choices=("torch", "onnxruntime", "tensorrt")),
    ParameterSpec("threads", int, 2, "CPU threads of the backend", minimum=1, maximum=64),
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
STAGES: Final = ("ego_motion", "encode", "frame_ready", "queue_wait", "inference", "decode", "publish", "end_to_end")
OK, WARN = 0, 1


class FrameSlot:
    """A queue of size 1 between the subscription thread and the worker.

    ``put`` never blocks: with ``drop_oldest`` a waiting item is replaced (the newest frame
    wins), with ``drop_newest`` the new item is discarded; either way ``dropped`` counts it.
    """

    def __init__(self, policy: str = "drop_oldest") -> None:
        if policy not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"queue policy must be 'drop_oldest' or 'drop_newest', got {policy!r}")
        self.policy = policy
        self.dropped = 0
        self._item: Any = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: Any) -> bool:
        """Offer an item; True when an item (the old or the new one) was dropped."""
        with self._cond:
            dropped = self._full
            if dropped:
                self.dropped += 1
            if not dropped or self.policy == "drop_oldest":
                self._item, self._full = item, True
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None) -> Any:
        """The waiting item, or None after ``timeout`` seconds / when closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


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
        self.ready = self.prepared = self.published = self.complete = self.partial = self.not_compensated = 0
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
        with self.lock:
            self.published += 1
            self.last_published_stamp_ns = stamp_ns
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


def diagnostic_statuses(stats: NodeStats, rig: Rig, sync_stats: Any, slot: FrameSlot, warn_ms: float) -> list[Any]:
    """The node's DiagnosticStatus list (frames, latency, one per sensor); marks rejections
    and failures as reported."""
    with stats.lock:
        missing = stats.last_missing
        missing_text = "; ".join(f"{sid} ({m.reason.value}): {m.detail}" for sid, m in sorted(missing.items()))
        new_failures = stats.failed + stats.pipeline_errors - stats.reported_failures
        stats.reported_failures = stats.failed + stats.pipeline_errors
        frames_level = WARN if missing or new_failures or stats.last_notes else OK
        message = f"{stats.published} frames published, {stats.partial} partial, {slot.dropped} dropped"
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
                    "frames_dropped": slot.dropped,
                    "queue_policy": slot.policy,
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
                },
            )
        ]
        latency: dict[str, Any] = {"window_frames": stats.latency.count("end_to_end")}
        for stage in STAGES:
            for q, ms in stats.latency.percentiles(stage, (50, 95, 99) if stage == "end_to_end" else (50, 95)).items():
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


class OutputWorker:
    """The worker thread: inference + decode on prepared frames, then every publisher."""

    def __init__(
        self,
        node: Any,
        predictor: Any,
        rig: Rig,
        slot: FrameSlot,
        stats: NodeStats,
        params: dict[str, Any],
        pipeline: Any,
    ):
        from fusion_node.bag.writer import message_class

        self.node = node
        self.pipeline = pipeline
        self.predictor = predictor
        self.rig = rig
        self.slot = slot
        self.stats = stats
        self.params = params
        self.grid = predictor.config.input_grid
        self.clock = node.get_clock()
        self.publishers = {
            t.key: node.create_publisher(message_class(t.msg_type), t.name, 5)
            for t in OUTPUT_TOPICS
            if not t.enabled_by or params[t.enabled_by]
        }
        cameras = [s.id for s in rig.cameras]
        self.camera = params["debug_camera"] or (cameras[0] if cameras else "")
        self._thread = threading.Thread(target=self._run, name="fusion_worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.slot.close()
        self._thread.join(timeout=10.0)

    def _run(self) -> None:
        while True:
            item = self.slot.get(timeout=0.5)
            if item is None:
                if self.slot.closed:
                    return
                continue
            frame, queued_at, ready_ms = item
            try:
                queue_wait_ms = (time.perf_counter() - queued_at) * 1e3
                prepared = self.pipeline.prepare(frame)  # ego motion + encoding, off the callbacks
                self.stats.prepared_frame(prepared, ready_ms)
                self.process(prepared, queue_wait_ms)
            except Exception as exc:  # worker boundary: one bad frame never stops the outputs
                self.stats.error(f"frame {frame.stamp_ns}: {type(exc).__name__}: {exc}", worker=True)
                self.node.get_logger().error(f"frame {frame.stamp_ns} failed: {exc!r}", throttle_duration_sec=1.0)

    def process(self, prepared: Any, queue_wait_ms: float) -> None:
        from fusion_node import convert
        from fusion_node.output_topics import boxes_to_detections, points_to_pointcloud2

        prediction = self.predictor(prepared.inputs)
        began = time.perf_counter()
        stamp, frame, p = prepared.stamp_ns, BASE_LINK, self.params
        boxes = prediction.boxes
        messages: dict[str, Any] = {
            "objects": convert.boxes_to_marker_array(
                boxes,
                stamp_ns=stamp,
                frame_id=frame,
                lifetime_ns=round(p["marker_lifetime_s"] * 1e9),
                with_text=p["marker_text"],
                with_velocity=p["marker_velocity"],
            ),
            "detections": boxes_to_detections(boxes, frame_id=frame, stamp_ns=stamp),
            "drivable": convert.raster_to_occupancy_grid(
                prediction.segmentation[0].astype(bool), self.grid, frame_id=frame, stamp_ns=stamp
            ),
            "occupancy": convert.raster_to_occupancy_grid(
                prediction.segmentation[1].astype(bool), self.grid, frame_id=frame, stamp_ns=stamp
            ),
        }
        if "points" in self.publishers:
            messages["points"] = points_to_pointcloud2(prepared.lidar_points, frame_id=frame, stamp_ns=stamp)
        if "debug_image" in self.publishers:
            image = self._debug_image(prepared, boxes)
            if image is not None:
                messages["debug_image"] = image
        for key, msg in messages.items():
            self.publishers[key].publish(msg)
        published = time.perf_counter()
        timings = dict(prediction.timings_ms)
        timings["queue_wait"] = queue_wait_ms
        timings["publish"] = (published - began) * 1e3
        timings["end_to_end"] = (self.clock.now().nanoseconds - stamp) / 1e6
        self.stats.published_frame(stamp, timings)

    def _debug_image(self, prepared: Any, boxes: Any) -> Any:
        import cv2

        from fusion_node import convert
        from visualization import draw_boxes_on_camera

        record = prepared.frame.records.get(self.camera)
        if record is None:
            return None
        image = cv2.imdecode(np.frombuffer(record.payload.data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return None
        drawn = draw_boxes_on_camera(np.asarray(image, dtype=np.uint8), boxes, self.rig, self.camera)
        frame_id = self.rig.sensor(self.camera).frame_id
        return convert.array_to_image(drawn, "bgr8", frame_id=frame_id, stamp_ns=prepared.stamp_ns)


def warm_up(rig: Rig, predictor: Any, encoder: Any = None) -> float:
    """Run one synthetic frame (test-pattern messages of every sensor) through a throwaway
    pipeline and the model, so JIT compilation and first-call allocations do not land on the
    first real frame. Returns the seconds it took; errors propagate (start-up refuses)."""
    from fusion_node.sensor_inputs import to_record
    from fusion_node.test_pattern import TestPattern
    from perception.pipeline import FramePipeline

    began = time.perf_counter()
    pattern, pipeline = TestPattern(seed=0), FramePipeline(rig, predictor.config, encoder=encoder)
    stamp = 1_000_000_000
    for sensor in rig.of(Modality.ODOMETRY):
        for k in range(-5, 16):
            pipeline.push(to_record(sensor, pattern.message(sensor, stamp + k * 20_000_000), stamp + k * 20_000_000))
    prepared = []
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
        backend = load_backend(params["backend"], params["weights"], threads=params["threads"])
    except Exception as exc:
        raise ParameterError(
            f"parameters 'backend' ({params['backend']!r}) / 'weights' ({params['weights']!r}): {exc}"
        ) from exc
    predictor = Predictor(backend, DecodeConfig(score_threshold=params["score_threshold"], top_k=params["max_objects"]))
    try:
        pipeline = FramePipeline(rig, predictor.config, odometry_wait_ns=round(params["odometry_wait_ms"] * 1e6))
        if params["warmup"]:
            node.get_logger().info(f"warm-up frame done in {warm_up(rig, predictor, pipeline.encoder):.2f} s")
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


def main(args: list[str] | None = None) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node

    from fusion_node.output_topics import DIAGNOSTICS_TOPIC
    from fusion_node.qos import QOS_PROFILES
    from perception.errors import PerceptionError

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
        array.status = diagnostic_statuses(stats, rig, pipeline.sync.stats, slot, params["latency_warn_ms"])
        diagnostics.publish(array)

    node.create_timer(params["diagnostics_period_s"], publish_diagnostics)
    worker.start()
    _subscribe(node, rig, pipeline, slot, stats, QOS_PROFILES[params["qos"]])
    node.get_logger().info(
        f"fusing {len(rig.sensors)} sensors of rig '{rig.name}' with the {params['backend']} backend "
        f"({params['weights']}); outputs under /{NODE_NAME}/output"
    )
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        worker.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fusion node's worker threads: ready frames in, published outputs out.

Three stages, each on its own thread, joined by size-1 slots (never a growing queue)::

    subscriptions --FrameSlot(queue_policy)--> prepare    ego motion + encoding (numba, numpy, OpenCV)
                  --FrameSlot(drop_oldest)---> infer      backend + decode + postprocess, then the outputs
                                                          downstream consumers act on: detections,
                                                          occupancy, drivable (end-to-end latency
                                                          is measured here)
                  --FrameSlot(drop_oldest)---> visualize  objects (MarkerArray), points, debug image

Why stages: one frame costs more than a lidar period when it is done in one thread on 2
cores (prepare ~20 ms, inference ~30-70 ms, messages ~15 ms in the demo), but the stages
hardly wait on each other: inference and image decoding release the GIL, so frame k+1 is
prepared while frame k is inferred and frame k-1 drawn. Throughput is set by the slowest stage,
not by the sum. A frame dropped before inference is counted in ``dropped`` (it produced no
output); a frame whose visualization is skipped because a newer one is ready is counted in
``visual_skipped`` (its detections and grids went out).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration import BASE_LINK, Rig
from fusion_node.output_topics import OUTPUT_TOPICS

#: Niceness added to the visualize thread (Linux): markers and points yield the CPU to the
#: prepare and inference threads, which decide the end-to-end latency of the detections.
VISUAL_NICENESS = 10


def nice_current_thread(increment: int) -> None:
    """Lower the scheduling priority of the calling thread only (Linux: niceness is per
    thread); threads it starts afterwards inherit it. A no-op where unsupported."""
    if increment and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + increment)


class FrameSlot:
    """A queue of size 1 between two threads.

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


@dataclass(frozen=True)
class QueueCounts:
    """What the worker's slots dropped, for /diagnostics.

    Attributes:
        policy: the input slot's policy (``queue_policy``).
        dropped: frames that produced no output (replaced or refused before inference).
        visual_skipped: frames whose markers / points / debug image were not drawn.
    """

    policy: str
    dropped: int
    visual_skipped: int = 0


@dataclass(frozen=True)
class _Inferred:
    prepared: Any
    prediction: Any


class OutputWorker:
    """The three stage threads of the fusion node (see the module docstring)."""

    def __init__(
        self,
        node: Any,
        predictor: Any,
        rig: Rig,
        slot: FrameSlot,
        stats: Any,
        params: dict[str, Any],
        pipeline: Any,
    ):
        from fusion_node.bag.writer import message_class
        from perception.postprocess import Postprocess

        self.node = node
        self.pipeline = pipeline
        self.predictor = predictor
        self.postprocess = Postprocess(
            rig,
            predictor.config,
            radar_velocity=params["radar_velocity"],
            drivable_memory=params["drivable_memory"],
        )
        self.rig = rig
        self.slot = slot
        self.inference_slot = FrameSlot("drop_oldest")
        self.visual_slot = FrameSlot("drop_oldest")
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
        self._threads = [
            threading.Thread(target=self._loop, args=(source, work, nice), name=f"fusion_{name}", daemon=True)
            for name, source, work, nice in (
                ("prepare", self.slot, self._prepare, 0),
                ("infer", self.inference_slot, self._infer, 0),
                ("visualize", self.visual_slot, self._visualize, VISUAL_NICENESS),
            )
        ]

    @property
    def counts(self) -> QueueCounts:
        return QueueCounts(self.slot.policy, self.slot.dropped + self.inference_slot.dropped, self.visual_slot.dropped)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for slot in (self.slot, self.inference_slot, self.visual_slot):
            slot.close()
        for thread in self._threads:
            thread.join(timeout=10.0)

    def _loop(self, source: FrameSlot, work: Callable[[Any], None], niceness: int) -> None:
        nice_current_thread(niceness)
        while True:
            item = source.get(timeout=0.5)
            if item is None:
                if source.closed:
                    return
                continue
            try:
                work(item)
            except Exception as exc:  # stage boundary: one bad frame never stops the outputs
                if not self.node.context.ok():  # Ctrl-C shut ROS down under a publish: stopping
                    return
                self.stats.error(f"{threading.current_thread().name}: {type(exc).__name__}: {exc}", worker=True)
                self.node.get_logger().error(f"frame failed: {exc!r}", throttle_duration_sec=1.0)

    # -- stages ------------------------------------------------------------------------
    def _prepare(self, item: tuple[Any, float, float]) -> None:
        frame, queued_at, ready_ms = item
        waited_ms = (time.perf_counter() - queued_at) * 1e3
        prepared = self.pipeline.prepare(frame)
        self.stats.prepared_frame(prepared, ready_ms)
        self.inference_slot.put((prepared, waited_ms, time.perf_counter(), ready_ms))

    def _infer(self, item: tuple[Any, float, float, float]) -> None:
        from fusion_node import convert
        from fusion_node.output_topics import boxes_to_detections

        prepared, waited_ms, prepared_at, ready_ms = item
        queue_wait_ms = waited_ms + (time.perf_counter() - prepared_at) * 1e3  # in both slots
        prediction = self.postprocess(self.predictor(prepared.inputs), prepared)
        began = time.perf_counter()
        stamp, frame = prepared.stamp_ns, BASE_LINK
        segmentation = prediction.segmentation
        messages = {
            "detections": boxes_to_detections(prediction.boxes, frame_id=frame, stamp_ns=stamp),
            "occupancy": convert.raster_to_occupancy_grid(
                segmentation[1].astype(bool), self.grid, frame_id=frame, stamp_ns=stamp
            ),
            "drivable": convert.raster_to_occupancy_grid(
                segmentation[0].astype(bool), self.grid, frame_id=frame, stamp_ns=stamp
            ),
        }
        for key, msg in messages.items():
            self.publishers[key].publish(msg)
        timings = dict(prediction.timings_ms)
        timings["queue_wait"] = queue_wait_ms
        timings["publish"] = (time.perf_counter() - began) * 1e3
        end_to_end = (self.clock.now().nanoseconds - stamp) / 1e6
        if end_to_end >= 0:  # negative: the clock jumped back while the frame was in flight
            timings["end_to_end"] = end_to_end
        self.stats.published_frame(stamp, timings)
        self.node.get_logger().debug(
            f"frame {stamp} published: ready after {ready_ms:.1f} ms, "
            + ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in timings.items())
        )
        self.visual_slot.put(_Inferred(prepared, prediction))

    def _visualize(self, item: _Inferred) -> None:
        from fusion_node import convert
        from fusion_node.output_topics import points_to_pointcloud2

        began = time.perf_counter()
        prepared, boxes, p = item.prepared, item.prediction.boxes, self.params
        stamp = prepared.stamp_ns
        messages: dict[str, Any] = {
            "objects": convert.boxes_to_marker_array(
                boxes,
                stamp_ns=stamp,
                frame_id=BASE_LINK,
                lifetime_ns=round(p["marker_lifetime_s"] * 1e9),
                with_text=p["marker_text"],
                with_velocity=p["marker_velocity"],
            )
        }
        if "points" in self.publishers:
            messages["points"] = points_to_pointcloud2(prepared.lidar_points, frame_id=BASE_LINK, stamp_ns=stamp)
        if "debug_image" in self.publishers:
            image = self._debug_image(prepared, boxes)
            if image is not None:
                messages["debug_image"] = image
        for key, msg in messages.items():
            self.publishers[key].publish(msg)
        timings = {"visual_publish": (time.perf_counter() - began) * 1e3}
        end_to_end = (self.clock.now().nanoseconds - stamp) / 1e6
        if end_to_end >= 0:
            timings["visual_end_to_end"] = end_to_end
        self.stats.visualized_frame(timings)

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

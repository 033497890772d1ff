"""Deterministic test-pattern messages for every sensor of a rig.

Used by ``fusion demo`` and the DDS integration tests until recorded or simulated bags exist
for a rig: each message has the sensor's real type, frame, field layout and rate, built
through the conversion module, with simple geometry (lidar rays hit the ground plane or a
wall 40 m away; radar returns on that wall; ultrasonics see a 2.5 m obstacle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from calibration import Modality, Sensor
from fusion_node import convert

WALL_RANGE_M = 40.0


def lidar_sweep(sensor: Sensor) -> np.ndarray:
    """(N,) structured float32 x, y, z, intensity, ring (uint16), time (float32 s) in the sensor frame."""
    spec = sensor.lidar
    elevations = np.radians(np.linspace(spec.vertical_fov_deg[0], spec.vertical_fov_deg[1], spec.beams))
    azimuths = np.radians(np.arange(0.0, 360.0, spec.horizontal_resolution_deg))
    el, az = np.meshgrid(elevations, azimuths, indexing="ij")
    height = float(sensor.extrinsic[2, 3])
    ground_range = np.where(el < 0, height / np.maximum(np.sin(-el), 1e-6), np.inf)
    wall_range = WALL_RANGE_M / np.cos(el)
    rng = np.minimum(ground_range, wall_range)
    keep = rng < spec.max_range_m
    direction = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    xyz = (direction * rng[..., None])[keep]
    points = np.zeros(
        len(xyz), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4"), ("ring", "u2"), ("time", "f4")]
    )
    points["x"], points["y"], points["z"] = xyz.T
    points["intensity"] = np.where(rng[keep] < wall_range[keep], 20.0, 80.0)
    points["ring"] = np.broadcast_to(np.arange(spec.beams)[:, None], el.shape)[keep]
    points["time"] = (az / (2 * np.pi) / sensor.rate_hz)[keep]
    return points


def radar_scan(sensor: Sensor, rng: np.random.Generator) -> np.ndarray:
    """(N, 6) float32 [x, y, z, vr, vr_compensated, rcs] returns on the wall ahead of the radar."""
    count = min(sensor.radar.max_points, 24)
    half_fov = np.radians(sensor.radar.horizontal_fov_deg / 2)
    azimuth = rng.uniform(-half_fov, half_fov, count)
    radius = WALL_RANGE_M + rng.normal(0.0, 0.3, count)
    scan = np.zeros((count, 6), dtype=np.float32)
    scan[:, 0] = radius * np.cos(azimuth)
    scan[:, 1] = radius * np.sin(azimuth)
    scan[:, 5] = rng.uniform(0.0, 15.0, count)
    return scan


def camera_image(sensor: Sensor, scale: float = 0.25) -> np.ndarray:
    """(H, W, 3) uint8 BGR: sky/ground split at the horizon row, sensor id written on it."""
    import cv2

    intr = sensor.camera.intrinsics.scaled(scale)
    image = np.empty((intr.height, intr.width, 3), dtype=np.uint8)
    horizon = int(np.clip(intr.cy, 0, intr.height))
    image[:horizon] = (235, 206, 135)
    image[horizon:] = (90, 90, 90)
    cv2.putText(image, sensor.id, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    return image


class TestPattern:
    """Builds one rclpy message per call for any sensor of the rig."""

    __test__ = False  # not a pytest class

    def __init__(self, seed: int = 0, camera_scale: float = 0.25) -> None:
        self._rng = np.random.default_rng(seed)
        self._camera_scale = camera_scale
        self._cache: dict[str, Any] = {}

    def message(self, sensor: Sensor, stamp_ns: int) -> Any:
        """A message of ``sensor``'s type stamped ``stamp_ns`` (int ns)."""
        frame = sensor.frame_id
        if sensor.modality is Modality.LIDAR:
            if sensor.id not in self._cache:
                self._cache[sensor.id] = lidar_sweep(sensor)
            return convert.structured_to_pointcloud2(self._cache[sensor.id], frame_id=frame, stamp_ns=stamp_ns)
        if sensor.modality is Modality.RADAR:
            return convert.radar_to_pointcloud2(radar_scan(sensor, self._rng), frame_id=frame, stamp_ns=stamp_ns)
        if sensor.modality is Modality.CAMERA:
            if sensor.id not in self._cache:
                self._cache[sensor.id] = camera_image(sensor, self._camera_scale)
            image = self._cache[sensor.id]
            if sensor.camera.compressed:
                return convert.array_to_compressed(image, "jpeg", frame_id=frame, stamp_ns=stamp_ns)
            return convert.array_to_image(image, "bgr8", frame_id=frame, stamp_ns=stamp_ns)
        if sensor.modality is Modality.ULTRASONIC:
            from perception.samples import RangeReading

            spec = sensor.ultrasonic
            return convert.reading_to_range(
                RangeReading(
                    stamp_ns=stamp_ns,
                    frame_id=frame,
                    range_m=2.5,
                    min_range_m=spec.min_range_m,
                    max_range_m=spec.max_range_m,
                    field_of_view_rad=spec.field_of_view_rad,
                    detected=True,
                )
            )
        from perception.samples import OdometrySample

        t = stamp_ns / 1e9
        return convert.sample_to_odometry(
            OdometrySample(
                stamp_ns=stamp_ns,
                frame_id=frame,
                child_frame_id="base_link",
                position=np.array([5.0 * t, 0.0, 0.0]),
                orientation_wxyz=np.array([1.0, 0.0, 0.0, 0.0]),
                linear_velocity=np.array([5.0, 0.0, 0.0]),
                angular_velocity=np.zeros(3),
            )
        )

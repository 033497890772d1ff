"""Ultrasonic sensor model: the nearest obstacle inside the sensor's cone.

A bumper ultrasonic transducer reports one range: the distance to the closest echo within
its opening angle. The model casts a small fan of rays (7 x 3 by default) that covers the
cone, ignores ground hits (mounted at bumper height the sensor only sees the ground at
grazing angles, whose echoes the real device rejects), takes the nearest remaining hit, and
adds Gaussian range noise. REP-117: nothing within ``max_range_m`` -> not detected
(``range_m = inf``); an object closer than ``min_range_m`` is reported at ``min_range_m``.

Sensor frame: the beam points along +x (REP-103 body axes of the sensor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration import Sensor
from perception.samples import RangeReading
from simulation.errors import SimConfigError
from simulation.ground import IS_GROUND
from simulation.raycast import SceneCaster
from simulation.scenario import Scenario
from simulation.sensors.common import sensor_poses


@dataclass(frozen=True)
class UltrasonicParams:
    """Ray pattern and noise of the ultrasonic model.

    Attributes:
        azimuth_rays: rays across the cone horizontally (>= 1).
        elevation_rays: rays across the cone vertically (>= 1).
        elevation_fraction: vertical extent of the fan as a fraction of the horizontal
            one (bumper transducers are wider than tall), in (0, 1].
        range_noise_m: standard deviation of the Gaussian range noise, metres (>= 0).
    """

    azimuth_rays: int = 7
    elevation_rays: int = 3
    elevation_fraction: float = 0.5
    range_noise_m: float = 0.015

    def __post_init__(self) -> None:
        for name in ("azimuth_rays", "elevation_rays"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SimConfigError(f"ultrasonic {name} must be an integer >= 1, got {value!r}")
        if not (math.isfinite(self.elevation_fraction) and 0 < self.elevation_fraction <= 1):
            raise SimConfigError(f"ultrasonic elevation_fraction must be in (0, 1], got {self.elevation_fraction!r}")
        if not (math.isfinite(self.range_noise_m) and self.range_noise_m >= 0):
            raise SimConfigError(f"ultrasonic range_noise_m must be finite and >= 0, got {self.range_noise_m!r}")


def cone_rays(field_of_view_rad: float, params: UltrasonicParams) -> NDArray[np.float64]:
    """(azimuth_rays * elevation_rays, 3) float64 unit rays, sensor frame (+x = beam axis),
    on a grid in the tangent plane that spans the cone horizontally and
    ``elevation_fraction`` of it vertically; grid points outside the cone are pulled onto
    its boundary, so every ray is within ``field_of_view_rad / 2`` of the axis."""
    extent = math.tan(field_of_view_rad / 2)
    gy = np.linspace(-1.0, 1.0, params.azimuth_rays) if params.azimuth_rays > 1 else np.zeros(1)
    gz = params.elevation_fraction * (
        np.linspace(-1.0, 1.0, params.elevation_rays) if params.elevation_rays > 1 else np.zeros(1)
    )
    y, z = (a.ravel() for a in np.meshgrid(gy, gz))
    radius = np.hypot(y, z)
    shrink = extent / np.maximum(radius, 1.0)
    rays = np.stack([np.ones_like(y), y * shrink, z * shrink], axis=1)
    result: NDArray[np.float64] = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    return result


class UltrasonicModel:
    """One rig ultrasonic sensor; build once, call :meth:`read` per capture time."""

    def __init__(self, sensor: Sensor, params: UltrasonicParams | None = None) -> None:
        try:
            spec = sensor.ultrasonic
        except TypeError as exc:
            raise SimConfigError(f"UltrasonicModel needs an ultrasonic sensor: {exc}") from None
        self.sensor = sensor
        self.spec = spec
        self.params = params or UltrasonicParams()
        #: (R, 3) float64 unit rays in the sensor frame.
        self.rays = cone_rays(spec.field_of_view_rad, self.params)

    def nearest(self, scenario: Scenario, caster: SceneCaster, t: float) -> float:
        """Noise-free distance (metres) from the sensor to the nearest non-ground hit of the
        fan at time ``t`` seconds; ``inf`` when no ray hits anything but the ground."""
        pose = sensor_poses(scenario, self.sensor, t)[0]
        directions = self.rays @ pose[:3, :3].T
        origins = np.broadcast_to(pose[:3, 3], directions.shape)
        hits = caster.cast(origins, directions, t)
        distance = np.where(IS_GROUND[hits.material], np.inf, hits.distance)
        return float(distance.min())

    def read(
        self, scenario: Scenario, caster: SceneCaster, t: float, rng: np.random.Generator, stamp_ns: int | None = None
    ) -> RangeReading:
        """The reading at capture time ``t`` seconds (stamp ``stamp_ns``, default ``t`` in
        nanoseconds): range in metres with Gaussian noise, REP-117 limits applied."""
        spec = self.spec
        true_range = self.nearest(scenario, caster, t)
        noise = float(rng.normal(0.0, self.params.range_noise_m))  # drawn always: a fixed rng stream
        measured = true_range + noise if math.isfinite(true_range) else math.inf
        detected = measured <= spec.max_range_m
        return RangeReading(
            stamp_ns=round(t * 1e9) if stamp_ns is None else stamp_ns,
            frame_id=self.sensor.frame_id,
            range_m=max(measured, spec.min_range_m) if detected else math.inf,
            min_range_m=spec.min_range_m,
            max_range_m=spec.max_range_m,
            field_of_view_rad=spec.field_of_view_rad,
            detected=detected,
        )

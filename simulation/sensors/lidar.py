"""Spinning multi-beam lidar: one sweep per call, with per-point firing time.

The head spins once per period, starting behind the car. Column k of ``n_azimuth`` fires at
``stamp - (n_azimuth - 1 - k) / n_azimuth * period`` from the sensor pose at that instant: the
header stamp is the sweep's last firing, like most lidar drivers stamp (a message cannot exist
before its sweep is complete), so the ego motion
during the sweep distorts the cloud exactly as on a real vehicle (points are expressed in the
sensor frame at their own firing time, not de-skewed). Actors are placed at the time of one
of ``n_slices`` slices of the sweep (the caster places them once per 5 ms slot).

Returns: range noise (Gaussian), dropouts (random, and returns too weak for their range and
reflectivity: dark asphalt at grazing angles far away fades first, as on real sensors),
intensity 0..255 from material reflectivity and incidence angle (nuScenes-like scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from calibration import Sensor
from perception.samples import PointScan
from simulation import kernels
from simulation.errors import SimConfigError
from simulation.materials import REFLECTIVITY
from simulation.raycast import SceneCaster
from simulation.scenario import Scenario
from simulation.sensors.common import sensor_poses

MIN_RANGE_M = 1.0
RANGE_NOISE_M = 0.02
RANDOM_DROPOUT = 0.01
#: A return is lost when reflectivity * cos(incidence) * (REFERENCE_RANGE / range)^2 falls below this.
WEAK_RETURN = 0.0012
REFERENCE_RANGE_M = 10.0
#: The ego's own body in base_link as (min, max) boxes, metres (a Renault Zoe-sized cabin and
#: body): rays into it return nothing, as on a real car whose driver filters self-returns.
EGO_BODY = (
    (np.array([-0.6, -0.85, 0.0]), np.array([1.4, 0.8, 1.42])),
    (np.array([-0.9, -0.9, 0.0]), np.array([3.4, 0.9, 1.0])),
)


@dataclass(frozen=True)
class LidarSweep:
    """One simulated sweep: the message payload and which actor each point hit.

    Attributes:
        scan: PointScan with the rig's lidar fields (x, y, z, intensity, ring, time; sensor
            frame at each point's firing time, metres; time = seconds after the stamp).
        actor: (N,) int32 actor index per point, -1 for the static world.
    """

    scan: PointScan
    actor: NDArray[np.int32]


class LidarModel:
    """Renders sweeps of one rig lidar (its LidarSpec: beams, vertical FOV, resolution, range)."""

    def __init__(self, sensor: Sensor, n_slices: int = 10) -> None:
        spec = sensor.lidar
        missing = {"x", "y", "z"} - set(spec.fields)
        if missing:
            raise SimConfigError(f"lidar {sensor.id}: fields {spec.fields} lack {sorted(missing)}")
        self.sensor = sensor
        self.fields = tuple(spec.fields)
        self.period = 1.0 / sensor.rate_hz
        self.max_range = spec.max_range_m
        self.n_azimuth = round(360.0 / spec.horizontal_resolution_deg)
        self.n_slices = max(1, min(n_slices, self.n_azimuth))
        elevation = np.radians(np.linspace(spec.vertical_fov_deg[0], spec.vertical_fov_deg[1], spec.beams))
        # Start behind the car: the direction of base_link -x, seen in the sensor frame.
        rotation = np.asarray(sensor.extrinsic)[:3, :3]
        back = rotation.T @ np.array([-1.0, 0.0, 0.0])
        start = np.arctan2(back[1], back[0])
        azimuth = start - 2 * np.pi * np.arange(self.n_azimuth) / self.n_azimuth  # clockwise from above
        ce, se = np.cos(elevation), np.sin(elevation)
        # (n_azimuth, beams, 3) unit directions in the sensor frame.
        self._directions = np.stack(
            [
                np.cos(azimuth)[:, None] * ce,
                np.sin(azimuth)[:, None] * ce,
                np.broadcast_to(se, (self.n_azimuth, spec.beams)),
            ],
            axis=-1,
        )
        base_dirs = self._directions @ rotation.T
        origin = np.asarray(sensor.extrinsic)[:3, 3]
        ego_body = np.zeros(base_dirs.shape[:2], dtype=bool)
        for low, high in EGO_BODY:
            ego_body |= _hits_box(origin, base_dirs, low, high)
        self._ego_body = ego_body.ravel()  # per ray: blocked by the ego's own body
        # Per column: its firing time, seconds after the stamp (-period < time <= 0).
        self._column_time = (np.arange(self.n_azimuth) + 1 - self.n_azimuth) / self.n_azimuth * self.period
        # Per ray: the centre of its slice of the sweep, seconds after the stamp.
        slice_index = np.minimum(np.arange(self.n_azimuth) * self.n_slices // self.n_azimuth, self.n_slices - 1)
        self._slice_time = np.repeat((slice_index + 0.5) * self.period / self.n_slices - self.period, spec.beams)

    @property
    def rays_per_sweep(self) -> int:
        return int(self._directions.shape[0] * self._directions.shape[1])

    def sweep(self, scenario: Scenario, caster: SceneCaster, t: float, rng: np.random.Generator) -> LidarSweep:
        """The sweep that ends at time ``t`` seconds, the message stamp: like most lidar
        drivers (and so that a message can exist at its stamp), the header stamp is the last
        firing and the points' ``time`` (seconds after it) is in (-period, 0]."""
        n_azimuth, beams = self._directions.shape[:2]
        poses = sensor_poses(scenario, self.sensor, t + self._column_time)  # (n_azimuth, 4, 4)
        world_dirs = self._directions @ poses[:, :3, :3].transpose(0, 2, 1)
        rays = np.empty((n_azimuth, beams, 6), dtype=np.float32)
        rays[..., :3] = poses[:, None, :3, 3]
        rays[..., 3:] = world_dirs
        # Actors move once per slice of the sweep: per-ray slice-centre times.
        hits = caster.cast_rays(rays.reshape(-1, 6), t + self._slice_time)
        n = hits.distance.size
        cosine = np.empty(n)
        keep = kernels.lidar_returns(
            hits.distance,
            hits.normal,
            world_dirs.reshape(-1, 3),
            hits.material,
            self._ego_body,
            REFLECTIVITY,
            rng.random(n),
            rng.uniform(0.5, 1.5, n),
            MIN_RANGE_M,
            self.max_range,
            RANDOM_DROPOUT,
            REFERENCE_RANGE_M,
            WEAK_RETURN,
            cosine,
        )
        measured = hits.distance[keep] + rng.normal(0.0, RANGE_NOISE_M, keep.size)
        xyz = self._directions.reshape(-1, 3)[keep] * measured[:, None]
        intensity = np.clip(
            255.0 * REFLECTIVITY[hits.material[keep]] * np.sqrt(cosine[keep]) * rng.uniform(0.8, 1.2, keep.size), 0, 255
        )
        columns = {
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "intensity": np.round(intensity),
            "ring": keep % beams,
            "time": self._column_time[keep // beams],
        }
        unknown = set(self.fields) - set(columns)
        if unknown:
            raise SimConfigError(f"lidar {self.sensor.id}: cannot simulate fields {sorted(unknown)}")
        points = np.empty((keep.size, len(self.fields)), dtype=np.float32)
        for k, name in enumerate(self.fields):
            points[:, k] = columns[name]
        return LidarSweep(PointScan(self.fields, points), hits.actor[keep])


def _hits_box(
    origin: NDArray[np.float64], directions: NDArray[np.float64], low: NDArray[np.float64], high: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """(...,) bool: rays from ``origin`` (3,) along ``directions`` (..., 3) hit the axis-aligned
    box [low, high] at a positive distance (slab test)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (low - origin) / directions
        t2 = (high - origin) / directions
    near = np.nanmax(np.minimum(t1, t2), axis=-1)
    far = np.nanmin(np.maximum(t1, t2), axis=-1)
    return far >= np.maximum(near, 0.0)

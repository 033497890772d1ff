"""Radar model: sparse returns with Doppler velocity, RCS, noise, clutter and false positives.

One scan casts a coarse fan of rays over the field of view (``azimuth_step_deg`` apart, at a
few elevations) from the radar at the capture time. Returns are then thinned the way an
automotive radar's detection list looks:

- actors: the rays that hit one actor are its candidate scattering points; a few are kept
  (about one per ``degrees_per_point`` of the actor's angular width, at most
  ``max_points_per_actor``), each detected with a probability that rises with its RCS and
  falls with range (a radar-equation SNR, ``rcs - 40 log10(r / reference_range_m)``, through
  a logistic curve), so big and close objects get more points;
- static structures (buildings, poles, tree trunks, foliage): a random ``clutter_fraction``
  of their rays are candidates, with a low per-material RCS, through the same detection
  curve; ground hits are not returned;
- false positives: Poisson(``false_positive_rate``) points uniform in the field of view with
  a small RCS and a random velocity.

Measurement noise: Gaussian on range, azimuth and elevation (polar, in the radar frame), on
the radial velocity and on the RCS. ``vr`` is the radial velocity of the target relative to
the moving radar, ``(v_target - v_radar) . los`` (positive: moving away); ``vr_compensated``
is ``v_target . los`` (ego motion removed: 0 for static objects, up to noise); both carry
the same velocity noise (the compensation adds the exactly known ego motion). At most
``max_points`` returns are reported, the strongest (highest SNR) first.

Frame: the radar frame of the rig (x along the boresight, y left, z up), metres, m/s, dBsm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
from numpy.typing import NDArray

from calibration import Sensor
from perception.classes import CLASSES
from perception.samples import PointScan
from simulation.errors import SimConfigError
from simulation.materials import Material
from simulation.raycast import SceneCaster
from simulation.scenario import Scenario
from simulation.sensors.common import sensor_poses, sensor_velocity

FIELDS: Final = ("x", "y", "z", "vr", "vr_compensated", "rcs")
#: Mean radar cross-section per class, dBsm (order of CLASSES).
CLASS_RCS_DBSM: Final = {
    "car": 10.0,
    "truck": 17.0,
    "construction_vehicle": 16.0,
    "bus": 18.0,
    "trailer": 17.0,
    "barrier": -2.0,
    "motorcycle": 4.0,
    "bicycle": 2.0,
    "pedestrian": -3.0,
    "traffic_cone": -8.0,
}
_CLASS_RCS = np.array([CLASS_RCS_DBSM[name] for name in CLASSES], dtype=np.float64)
#: RCS per ray of static structures, dBsm (NaN: never returned).
_STATIC_RCS = np.full(len(Material), np.nan)
_STATIC_RCS[[Material.BUILDING, Material.POLE, Material.TRUNK, Material.FOLIAGE]] = (0.0, 5.0, -5.0, -10.0)


@dataclass(frozen=True)
class RadarParams:
    """Ray pattern, detection model and noise of the radar model (degrees, metres, m/s, dB).

    Attributes:
        azimuth_step_deg: spacing of the ray fan in azimuth, (0, 10].
        elevations_deg: elevations of the fan's rows, each in [-45, 45].
        reference_range_m: range at which a target of ``detection_threshold_db`` dBsm is
            detected half of the time (> 0).
        detection_threshold_db: SNR (dB relative to that target) of 50 % detection.
        detection_slope_db: width of the logistic detection curve, dB (> 0).
        degrees_per_point: angular width of an actor per reported point (> 0).
        max_points_per_actor: most points one actor yields (>= 1).
        clutter_fraction: share of static-structure rays that are candidates, [0, 1].
        false_positive_rate: mean number of false positives per scan (>= 0).
        range_noise_m, azimuth_noise_deg, elevation_noise_deg, velocity_noise_mps,
        rcs_noise_db: standard deviations of the measurement noise (>= 0).
    """

    azimuth_step_deg: float = 0.5
    elevations_deg: tuple[float, ...] = (-3.0, -1.0, 1.0, 3.0, 5.0)
    reference_range_m: float = 200.0
    detection_threshold_db: float = 10.0
    detection_slope_db: float = 2.0
    degrees_per_point: float = 3.0
    max_points_per_actor: int = 8
    clutter_fraction: float = 0.08
    false_positive_rate: float = 3.0
    range_noise_m: float = 0.15
    azimuth_noise_deg: float = 0.5
    elevation_noise_deg: float = 0.5
    velocity_noise_mps: float = 0.1
    rcs_noise_db: float = 2.5

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "elevations_deg":
                if not value or not all(_is_number(v) and -45 <= v <= 45 for v in value):
                    raise SimConfigError(
                        f"radar elevations_deg must be a non-empty tuple of degrees in [-45, 45], got {value!r}"
                    )
            elif item.name == "max_points_per_actor":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise SimConfigError(f"radar max_points_per_actor must be an integer >= 1, got {value!r}")
            elif not _is_number(value):
                raise SimConfigError(f"radar {item.name} must be a finite number, got {value!r}")
        positive = ("azimuth_step_deg", "reference_range_m", "detection_slope_db", "degrees_per_point")
        for name in positive:
            if not getattr(self, name) > 0:
                raise SimConfigError(f"radar {name} must be > 0, got {getattr(self, name)!r}")
        if self.azimuth_step_deg > 10:
            raise SimConfigError(f"radar azimuth_step_deg must be <= 10, got {self.azimuth_step_deg!r}")
        if not 0 <= self.clutter_fraction <= 1:
            raise SimConfigError(f"radar clutter_fraction must be in [0, 1], got {self.clutter_fraction!r}")
        noise = (
            "false_positive_rate",
            "range_noise_m",
            "azimuth_noise_deg",
            "elevation_noise_deg",
            "velocity_noise_mps",
            "rcs_noise_db",
        )
        for name in noise:
            if getattr(self, name) < 0:
                raise SimConfigError(f"radar {name} must be >= 0, got {getattr(self, name)!r}")


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


class RadarModel:
    """One rig radar; build once, call :meth:`scan` per capture time."""

    def __init__(self, sensor: Sensor, params: RadarParams | None = None) -> None:
        try:
            spec = sensor.radar
        except TypeError as exc:
            raise SimConfigError(f"RadarModel needs a radar sensor: {exc}") from None
        if sorted(spec.fields) != sorted(FIELDS):
            raise SimConfigError(f"radar '{sensor.id}': fields must be a permutation of {FIELDS}, got {spec.fields}")
        self.sensor = sensor
        self.spec = spec
        self.params = params or RadarParams()
        self.fields = tuple(spec.fields)
        half = spec.horizontal_fov_deg / 2
        step = self.params.azimuth_step_deg
        azimuth = np.radians(np.arange(-half, half + 1e-9, step))
        elevation = np.radians(np.asarray(self.params.elevations_deg, dtype=np.float64))
        az, el = (a.ravel() for a in np.meshgrid(azimuth, elevation))
        #: (R, 3) float64 unit rays in the radar frame; (R,) azimuth index of each.
        self.rays = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)
        self._azimuth_index = np.tile(np.arange(azimuth.size), elevation.size)
        self._half_fov = math.radians(half)
        self._elevation_span = (float(elevation.min()), float(elevation.max()))

    def scan(self, scenario: Scenario, caster: SceneCaster, t: float, rng: np.random.Generator) -> PointScan:
        """The detections at capture time ``t`` seconds: PointScan with the rig's radar
        fields, (N <= max_points, 6) float32, radar frame."""
        params, spec = self.params, self.spec
        pose = sensor_poses(scenario, self.sensor, t)[0]
        rotation = pose[:3, :3]
        world_rays = self.rays @ rotation.T
        hits = caster.cast(np.broadcast_to(pose[:3, 3], world_rays.shape), world_rays, t)
        in_range = hits.hit & (hits.distance <= spec.max_range_m)

        # Candidates: (ray index, rcs dBsm, target world velocity (2,)).
        actor_rays = np.flatnonzero(in_range & (hits.actor >= 0))
        actor_rays = actor_rays[self._pick_actor_points(hits.actor[actor_rays], self._azimuth_index[actor_rays], rng)]
        actor_ids = hits.actor[actor_rays]
        states = caster.actor_states(t)
        static_rcs = _STATIC_RCS[hits.material]
        static_rays = np.flatnonzero(in_range & (hits.actor < 0) & np.isfinite(static_rcs))
        static_rays = static_rays[rng.random(static_rays.size) < params.clutter_fraction]
        rays = np.concatenate([actor_rays, static_rays])
        rcs = np.concatenate([_CLASS_RCS[scenario.actors.labels[actor_ids]], static_rcs[static_rays]])
        velocity = np.zeros((rays.size, 3))
        velocity[: actor_rays.size, :2] = states.velocities[actor_ids]
        distance = hits.distance[rays].astype(np.float64)
        direction = self.rays[rays]

        # Detection: SNR through a logistic curve; RCS fluctuates from scan to scan.
        rcs = rcs + rng.normal(0.0, params.rcs_noise_db, rcs.size)
        snr = self._snr(rcs, distance)
        detected = rng.random(rays.size) < 1.0 / (
            1.0 + np.exp(-(snr - params.detection_threshold_db) / params.detection_slope_db)
        )
        distance, direction, velocity, rcs, snr = (a[detected] for a in (distance, direction, velocity, rcs, snr))

        # False positives: uniform in the field of view, weak, with a random velocity.
        n_false = int(rng.poisson(params.false_positive_rate))
        fp_az = rng.uniform(-self._half_fov, self._half_fov, n_false)
        fp_el = rng.uniform(*self._elevation_span, n_false)
        fp_direction = np.stack([np.cos(fp_el) * np.cos(fp_az), np.cos(fp_el) * np.sin(fp_az), np.sin(fp_el)], axis=1)
        fp_distance = rng.uniform(1.0, spec.max_range_m, n_false)
        fp_rcs = rng.uniform(-15.0, -5.0, n_false)
        fp_velocity = np.zeros((n_false, 3))
        fp_velocity[:, :2] = rng.normal(0.0, 2.0, (n_false, 2))
        distance = np.concatenate([distance, fp_distance])
        direction = np.concatenate([direction, fp_direction])
        velocity = np.concatenate([velocity, fp_velocity])
        rcs = np.concatenate([rcs, fp_rcs])
        snr = np.concatenate([snr, self._snr(fp_rcs, fp_distance)])

        # Radial velocities from the true line of sight; measurement noise on top.
        los_world = direction @ rotation.T
        v_radar = sensor_velocity(scenario, self.sensor, t)
        v_noise = rng.normal(0.0, params.velocity_noise_mps, distance.size)
        vr_compensated = np.einsum("ij,ij->i", velocity, los_world) + v_noise
        vr = vr_compensated - los_world @ v_radar
        points = self._noisy_points(distance, direction, rng)

        keep = np.argsort(-snr, kind="stable")[: spec.max_points]
        columns = {
            "x": points[:, 0],
            "y": points[:, 1],
            "z": points[:, 2],
            "vr": vr,
            "vr_compensated": vr_compensated,
            "rcs": rcs,
        }
        table = np.stack([columns[name] for name in self.fields], axis=1)[keep]
        return PointScan(fields=self.fields, points=table.astype(np.float32))

    def _snr(self, rcs: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
        result: NDArray[np.float64] = rcs - 40.0 * np.log10(np.maximum(distance, 0.1) / self.params.reference_range_m)
        return result

    def _pick_actor_points(
        self, actor: NDArray[np.int32], azimuth_index: NDArray[np.int64], rng: np.random.Generator
    ) -> NDArray[np.int64]:
        """Indices into the actor-hit rays to keep: a random subset of each actor's rays, one
        per ``degrees_per_point`` of its angular width (distinct azimuths hit), at least one."""
        if actor.size == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.lexsort((rng.random(actor.size), actor))
        sorted_actor = actor[order]
        starts = np.flatnonzero(np.concatenate([[True], sorted_actor[1:] != sorted_actor[:-1]]))
        rank = np.arange(actor.size) - np.repeat(starts, np.diff(np.append(starts, actor.size)))
        columns = self._azimuth_index.max() + 1
        pairs = np.unique(actor.astype(np.int64) * columns + azimuth_index)
        ids, distinct_azimuths = np.unique(pairs // columns, return_counts=True)
        width = distinct_azimuths * self.params.azimuth_step_deg
        quota = np.clip(np.round(width / self.params.degrees_per_point), 1, self.params.max_points_per_actor)
        quota_per_ray = quota[np.searchsorted(ids, sorted_actor)]
        return np.sort(order[rank < quota_per_ray])

    def _noisy_points(
        self, distance: NDArray[np.float64], direction: NDArray[np.float64], rng: np.random.Generator
    ) -> NDArray[np.float64]:
        """(N, 3) positions in the radar frame after polar (range, azimuth, elevation) noise."""
        params = self.params
        n = distance.size
        r = distance + rng.normal(0.0, params.range_noise_m, n)
        az = np.arctan2(direction[:, 1], direction[:, 0]) + rng.normal(0.0, math.radians(params.azimuth_noise_deg), n)
        el = np.arcsin(np.clip(direction[:, 2], -1.0, 1.0)) + rng.normal(
            0.0, math.radians(params.elevation_noise_deg), n
        )
        points: NDArray[np.float64] = r[:, None] * np.stack(
            [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1
        )
        return points

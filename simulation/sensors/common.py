"""Geometry shared by the sensor models: where a sensor is, and how fast it moves."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from calibration import Sensor
from simulation.scenario import Scenario


def sensor_poses(scenario: Scenario, sensor: Sensor, t: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """(K, 4, 4) float64 sensor -> world at times t (K,) seconds."""
    return scenario.ego.poses(np.atleast_1d(np.asarray(t, dtype=np.float64))) @ np.asarray(sensor.extrinsic)


def sensor_velocity(scenario: Scenario, sensor: Sensor, t: float) -> NDArray[np.float64]:
    """(3,) float64 world-frame velocity of the sensor's origin at time t, m/s (rigid body:
    base_link's forward speed plus yaw rate x lever arm)."""
    pose = scenario.ego.poses(np.array([t]))[0]
    forward, yaw_rate = (float(v[0]) for v in scenario.ego.twist(np.array([t])))
    lever = pose[:3, :3] @ np.asarray(sensor.extrinsic)[:3, 3]
    heading = pose[:3, 0]
    return forward * heading + np.cross(np.array([0.0, 0.0, yaw_rate]), lever)

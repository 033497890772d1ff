"""The ego vehicle's motion: it follows a lane of the main road with a smoothly varying speed.

base_link is the rear-axle centre on the ground (z = 0), x forward, y left. Everything is in
closed form so any sensor can ask for the pose at its own capture time, and a lidar for the
pose at every point's firing time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulation.road import Centerline


@dataclass(frozen=True)
class EgoMotion:
    """Arc-length speed v(t) = mean + amplitude * sin(2 pi t / period + phase) along lane
    offset ``d`` of ``centerline``, starting at arc length ``s0`` at t = 0.

    Attributes are in metres, seconds and m/s; ``amplitude < mean`` keeps it moving forward.
    """

    centerline: Centerline
    s0: float
    d: float
    mean_speed: float
    amplitude: float
    period: float
    phase: float

    def arc_length(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        w = 2 * np.pi / self.period
        return self.s0 + self.mean_speed * t - self.amplitude / w * (np.cos(w * t + self.phase) - np.cos(self.phase))

    def speed(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """(K,) d(arc length)/dt, m/s."""
        return self.mean_speed + self.amplitude * np.sin(2 * np.pi / self.period * t + self.phase)

    def acceleration(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        w = 2 * np.pi / self.period
        return self.amplitude * w * np.cos(w * t + self.phase)

    def time_at(self, s: float) -> float:
        """First time the ego reaches arc length ``s`` (inf if it never does within an hour)."""
        grid = np.arange(0.0, 3600.0, 0.05)
        reached = np.flatnonzero(self.arc_length(grid) >= s)
        return float(grid[reached[0]]) if reached.size else float("inf")

    def poses(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """(K, 4, 4) float64 base_link -> world (odom) at times t (K,) seconds."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        xy = self.centerline.offset(self.arc_length(t), self.d)
        _, heading, _ = self.centerline.at(self.arc_length(t))
        c, s = np.cos(heading), np.sin(heading)
        poses = np.zeros((t.size, 4, 4))
        poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = c, -s, s, c
        poses[:, 2, 2] = poses[:, 3, 3] = 1.0
        poses[:, :2, 3] = xy
        return poses

    def twist(self, t: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Forward speed of base_link (K,) m/s and yaw rate (K,) rad/s at times t (K,)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        _, _, curvature = self.centerline.at(self.arc_length(t))
        ds = self.speed(t)
        return ds * (1.0 - curvature * self.d), ds * curvature

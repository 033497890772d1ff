"""The road network: a main road built from straight, curved and intersection pieces, and the
crossing roads at its intersections.

Frame: the world ("odom") frame, x/y metres on a flat ground plane z = 0. The main road is a
centreline parametrized by arc length ``s``; a lateral offset ``d`` is measured along the
left normal (positive to the left of the direction of travel). Traffic drives on the right:
lanes with ``d < 0`` run along +s, lanes with ``d > 0`` against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulation.errors import SimConfigError

LAYOUTS = ("mixed", "straight", "curved", "intersection")
SAMPLE_STEP_M = 0.5


@dataclass(frozen=True)
class RoadProfile:
    """Cross-section of the main road (metres)."""

    lanes_per_direction: int = 2
    lane_width: float = 3.5
    parking_width: float = 2.5
    sidewalk_width: float = 3.0
    crossing_lane_width: float = 3.5  # crossing roads: one lane each way

    @property
    def driving_half_width(self) -> float:
        return self.lanes_per_direction * self.lane_width

    @property
    def half_width(self) -> float:
        """Kerb to centreline: driving lanes + parking lane."""
        return self.driving_half_width + self.parking_width

    @property
    def crossing_half_width(self) -> float:
        return self.crossing_lane_width

    def lane_offset(self, index: int, direction: int) -> float:
        """Offset d of the centre of driving lane ``index`` (0 = next to the centreline) for
        traffic along +s (``direction`` +1: right-hand side, d < 0) or against it (-1, d > 0)."""
        return -direction * (index + 0.5) * self.lane_width

    @property
    def parking_center(self) -> float:
        """|d| of the parking lanes' centres."""
        return self.driving_half_width + 0.5 * self.parking_width


@dataclass(frozen=True)
class Centerline:
    """The main road's centreline sampled every ``SAMPLE_STEP_M`` of arc length.

    Attributes:
        s: (M,) float64 arc length, metres, from 0.
        xy: (M, 2) float64 world position, metres.
        heading: (M,) float64 unwrapped direction of travel, radians from +x.
        curvature: (M,) float64 1/m, positive turning left.
    """

    s: NDArray[np.float64]
    xy: NDArray[np.float64]
    heading: NDArray[np.float64]
    curvature: NDArray[np.float64]

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def at(self, s: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Pose of the centreline at arc lengths s (K,): xy (K, 2), heading (K,), curvature (K,).
        Beyond either end the road continues straight."""
        s = np.asarray(s, dtype=np.float64)
        clamped = np.clip(s, 0.0, self.length)
        heading = np.interp(clamped, self.s, self.heading)
        curvature = np.interp(clamped, self.s, self.curvature)
        xy = np.stack([np.interp(clamped, self.s, self.xy[:, 0]), np.interp(clamped, self.s, self.xy[:, 1])], axis=-1)
        beyond = s - clamped
        xy = xy + beyond[..., None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        curvature = np.where(beyond != 0.0, 0.0, curvature)
        return xy, heading, curvature

    def offset(self, s: NDArray[np.float64], d: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """World xy (K, 2) of the points at arc length s (K,) and lateral offset d (left +)."""
        xy, heading, _ = self.at(s)
        d = np.asarray(d, dtype=np.float64)
        return xy + d[..., None] * np.stack([-np.sin(heading), np.cos(heading)], axis=-1)


@dataclass(frozen=True)
class Crossing:
    """A straight road crossing the main road at a right angle.

    Attributes:
        s: arc length of the intersection on the main road, metres.
        center: (2,) float64 world xy of the intersection.
        heading: direction of the crossing road (main heading + 90 degrees), radians.
        half_length: how far it extends on each side, metres.
    """

    s: float
    center: NDArray[np.float64]
    heading: float
    half_length: float

    @property
    def direction(self) -> NDArray[np.float64]:
        return np.array([np.cos(self.heading), np.sin(self.heading)])


def _pieces(layout: str, length: float, rng: np.random.Generator) -> list[tuple[str, float, float]]:
    """(kind, length m, curvature 1/m) pieces summing to at least ``length``."""
    pieces: list[tuple[str, float, float]] = [("straight", 50.0, 0.0)]  # a straight run-up
    total = 50.0
    while total < length:
        if layout == "straight":
            kind = "straight"
        elif layout == "curved":
            kind = "straight" if pieces[-1][0] == "curve" else "curve"
        elif layout == "intersection":
            kind = "intersection" if pieces[-1][0] != "intersection" else "straight"
        else:
            kind = str(rng.choice(["straight", "curve", "intersection"], p=[0.3, 0.4, 0.3]))
            if kind == pieces[-1][0] == "intersection":
                kind = "straight"
        if kind == "curve":
            radius = rng.uniform(60.0, 160.0)
            angle = np.radians(rng.uniform(20.0, 60.0))
            piece = ("curve", radius * angle, float(rng.choice([-1.0, 1.0]) / radius))
        elif kind == "intersection":
            piece = ("intersection", 40.0, 0.0)
        else:
            piece = ("straight", rng.uniform(30.0, 80.0), 0.0)
        pieces.append(piece)
        total += piece[1]
    return pieces


def build_road(
    layout: str, length: float, rng: np.random.Generator, crossing_half_length: float = 70.0
) -> tuple[Centerline, tuple[Crossing, ...]]:
    """A main road of at least ``length`` metres with its crossings, starting at the origin along +x."""
    if layout not in LAYOUTS:
        raise SimConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not np.isfinite(length) or length <= 0:
        raise SimConfigError(f"road length must be > 0 m, got {length!r}")
    pieces = _pieces(layout, length, rng)
    curvature_parts, crossing_s = [], []
    start = 0.0
    for kind, piece_length, curvature in pieces:
        n = max(1, round(piece_length / SAMPLE_STEP_M))
        curvature_parts.append(np.full(n, curvature))
        if kind == "intersection":
            crossing_s.append(start + n * SAMPLE_STEP_M / 2)
        start += n * SAMPLE_STEP_M
    curvature = np.concatenate([curvature_parts[0][:1], *curvature_parts])
    s = np.arange(curvature.size) * SAMPLE_STEP_M
    heading = np.concatenate([[0.0], np.cumsum(curvature[1:] * SAMPLE_STEP_M)])
    # Exact integration of a piecewise-constant curvature step (straight chord at mid heading).
    mid = heading[:-1] + 0.5 * curvature[1:] * SAMPLE_STEP_M
    steps = SAMPLE_STEP_M * np.stack([np.cos(mid), np.sin(mid)], axis=1)
    xy = np.concatenate([[[0.0, 0.0]], np.cumsum(steps, axis=0)])
    centerline = Centerline(s=s, xy=xy, heading=heading, curvature=curvature)
    crossings = []
    for value in crossing_s:
        center, main_heading, _ = centerline.at(np.array([value]))
        crossings.append(
            Crossing(
                s=value,
                center=center[0],
                heading=float(main_heading[0] + np.pi / 2),
                half_length=crossing_half_length,
            )
        )
    return centerline, tuple(crossings)

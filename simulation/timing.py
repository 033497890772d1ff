"""When each sensor captures, what its header stamp says, when it is written, and which
messages are lost: timing like a real vehicle.

Every sensor runs at its rig rate with its own random phase. A capture happens at
``phase + k * period`` plus trigger jitter (Gaussian); the header stamp is the capture time.
The message is written (received) ``latency + exponential jitter`` later (rig ``latency_ms``),
and a small fraction of messages is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration import Modality, Rig
from simulation.errors import SimConfigError


@dataclass(frozen=True)
class TimingConfig:
    """Timing imperfections (milliseconds, probability per message)."""

    jitter_ms: float = 0.5
    latency_jitter_ms: float = 3.0
    drop_probability: float = 0.003

    def __post_init__(self) -> None:
        for name in ("jitter_ms", "latency_jitter_ms"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value <= 100):
                raise SimConfigError(f"{name} must be in [0, 100] ms, got {value!r}")
        if not (0 <= self.drop_probability < 1):
            raise SimConfigError(f"drop_probability must be in [0, 1), got {self.drop_probability!r}")


@dataclass(frozen=True)
class Capture:
    """One scheduled message of one sensor.

    Attributes:
        sensor_id: rig sensor id.
        index: sequence number of the capture for this sensor (0, 1, ...).
        t: capture time, seconds after the start of the simulation.
        receive_t: when it is written to the bag, seconds (>= t).
        dropped: lost in transport (never written).
    """

    sensor_id: str
    index: int
    t: float
    receive_t: float
    dropped: bool


def schedule(rig: Rig, duration_s: float, timing: TimingConfig, rng: np.random.Generator) -> list[Capture]:
    """Every capture of every rig sensor in [0, duration_s), sorted by capture time.

    The reference sensor (the lidar) starts at a small phase so the first frame is complete; a
    lidar's capture time is its sweep's end (its header stamp), one period after the sweep began.
    """
    captures: list[Capture] = []
    for sensor in rig.sensors:
        period = 1.0 / sensor.rate_hz
        phase = rng.uniform(0.0, 0.01) if sensor.id == rig.reference_sensor else rng.uniform(0.0, period)
        if sensor.modality is Modality.LIDAR:  # stamped at its last firing: the first sweep starts >= 0
            phase += period
        nominal = phase + period * np.arange(int(np.ceil((duration_s - phase) / period)))
        nominal = nominal[nominal < duration_s]
        jitter = rng.normal(0.0, timing.jitter_ms / 1e3, nominal.size)
        t = np.clip(nominal + np.clip(jitter, -0.25 * period, 0.25 * period), 0.0, None)
        latency = sensor.latency_ns / 1e9 + rng.exponential(timing.latency_jitter_ms / 1e3 + 1e-12, nominal.size)
        dropped = rng.random(nominal.size) < timing.drop_probability
        captures += [
            Capture(sensor.id, k, float(t[k]), float(t[k] + latency[k]), bool(dropped[k])) for k in range(nominal.size)
        ]
    captures.sort(key=lambda c: (c.t, c.sensor_id))
    return captures

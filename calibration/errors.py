"""Exceptions raised by the calibration package.

Every message names the bad value and where it came from (file, sensor id, field).
"""

from __future__ import annotations


class CalibrationError(ValueError):
    """Base class for every calibration error."""


class RigConfigError(CalibrationError):
    """A rig YAML file (or dict) is malformed: names the file, sensor id and field."""

    def __init__(self, message: str, *, source: str = "", sensor: str = "", field: str = ""):
        self.source = source
        self.sensor = sensor
        self.field = field
        where = ", ".join(
            part
            for part in (
                source and f"file {source}",
                sensor and f"sensor '{sensor}'",
                field and f"field '{field}'",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class TransformError(CalibrationError):
    """A rigid transform is invalid (not 4x4, non-orthonormal rotation, bad quaternion)."""


class IntrinsicsError(CalibrationError):
    """Camera intrinsics are invalid (negative focal length, wrong D length, bad size)."""

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


class ProjectionError(CalibrationError):
    """Points cannot be projected: bad array shape, unknown sensor id, non-camera target."""


class TrajectoryError(CalibrationError):
    """A pose trajectory is invalid or queried outside the time range it covers."""


class CalibrationFileError(CalibrationError):
    """A calibration file (KITTI, nuScenes tables, CameraInfo YAML) is malformed.

    The message names the file, the line (when known) and the field.
    """

    def __init__(self, message: str, *, source: str = "", field: str = "", line: int = 0):
        self.source = source
        self.field = field
        self.line = line
        where = ", ".join(
            part
            for part in (
                source and f"file {source}",
                line and f"line {line}",
                field and f"field '{field}'",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)

"""Errors raised by ego-motion compensation. Messages name the bad value and where it came from."""

from __future__ import annotations

from perception.errors import PerceptionError


class EgoMotionError(PerceptionError, ValueError):
    """Bad input to ego-motion compensation: a malformed scan, transform or setting."""


class OdometryCoverageError(EgoMotionError):
    """The odometry history does not cover the stamps a compensation needs."""

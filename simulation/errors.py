"""Errors raised by the simulator. Messages name the bad value and where it came from."""

from __future__ import annotations


class SimulationError(Exception):
    """Base class of every simulation error."""


class SimConfigError(SimulationError, ValueError):
    """A simulation option is invalid (names the option and the value)."""

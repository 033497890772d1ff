"""Errors raised by the perception core. Messages name the bad value and where it came from."""

from __future__ import annotations


class PerceptionError(Exception):
    """Base class of every perception error."""


class GridError(PerceptionError, ValueError):
    """A BEV grid specification is invalid."""


class GroundTruthError(PerceptionError, ValueError):
    """Ground-truth boxes or rasters are malformed, or a ground-truth file cannot be read."""


class BevError(PerceptionError, ValueError):
    """BEV feature inputs, lookup tables or their files are malformed."""


class SyncError(PerceptionError, ValueError):
    """A synchronizer configuration is invalid, or a record of an unknown sensor was pushed."""

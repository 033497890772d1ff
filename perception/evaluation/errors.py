"""Errors raised by the evaluation metrics. Messages name the bad value and where it came from
(the configuration field, or the frame index and the input field)."""

from __future__ import annotations

from perception.errors import PerceptionError


class EvaluationError(PerceptionError, ValueError):
    """An evaluation configuration value or an evaluated frame's input is invalid."""

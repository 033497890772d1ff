"""Declarative ROS parameters: one spec per node, declared and validated at start-up.

A node lists its parameters as ``ParameterSpec`` values; ``declare_parameters`` declares them
all with type, default, description and range/choices, reads the values, validates them and
raises ``ParameterError`` naming the parameter and the bad value (the node then refuses to
start: never warn and fall back). ``validate_values`` does the same for a plain dict, so
parameter YAML files in the repository are checked by tests without starting ROS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class ParameterError(ValueError):
    """A node parameter has a bad value; the message names the parameter and the value."""


_TYPES: dict[type, str] = {bool: "bool", int: "integer", float: "double", str: "string"}


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter.

    Attributes:
        name: parameter name.
        type: bool, int, float or str.
        default: default value (must itself be valid).
        description: one line shown by ``ros2 param describe`` and in the README.
        minimum / maximum: inclusive numeric bounds (numbers only).
        choices: allowed values (strings only).
    """

    name: str
    type: type
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f"parameter '{self.name}': unsupported type {self.type!r}")
        self.validate(self.default, origin="default")

    @property
    def constraints(self) -> str:
        """Bounds or choices in words, e.g. "0.1 <= value <= 10" (empty when unconstrained)."""
        if self.choices:
            return f"one of {list(self.choices)}"
        parts = [
            f"{self.minimum} <=" if self.minimum is not None else "",
            "value" if self.minimum is not None or self.maximum is not None else "",
            f"<= {self.maximum}" if self.maximum is not None else "",
        ]
        return " ".join(p for p in parts if p)

    def validate(self, value: Any, origin: str = "") -> Any:
        """Return ``value`` converted to the spec's type, or raise ParameterError."""
        where = f" (from {origin})" if origin else ""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            raise ParameterError(f"parameter '{self.name}'{where}: expected {_TYPES[self.type]}, got {value!r}")
        if self.type is float and not math.isfinite(value):
            raise ParameterError(f"parameter '{self.name}'{where}: must be finite, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(f"parameter '{self.name}'{where}: {value!r} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(f"parameter '{self.name}'{where}: {value!r} is above the maximum {self.maximum}")
        if self.choices and value not in self.choices:
            raise ParameterError(f"parameter '{self.name}'{where}: {value!r} is not one of {list(self.choices)}")
        return value


def validate_values(specs: Iterable[ParameterSpec], values: Mapping[str, Any], origin: str = "") -> dict[str, Any]:
    """Validate a dict of parameter values (unknown names are errors); fill in defaults."""
    by_name = {spec.name: spec for spec in specs}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {unknown}{f' in {origin}' if origin else ''}; known: {sorted(by_name)}"
        )
    return {name: spec.validate(values.get(name, spec.default), origin) for name, spec in by_name.items()}


def declare_parameters(node: Any, specs: Iterable[ParameterSpec]) -> dict[str, Any]:
    """Declare every spec on an rclpy node, then read and validate the values.

    Returns:
        name -> validated value.
    """
    from rcl_interfaces.msg import ParameterDescriptor

    values: dict[str, Any] = {}
    for spec in specs:
        # Bounds and choices go in the text, not in rclpy ranges: an out-of-range override then
        # reaches ``validate``, whose error names the parameter and value.
        descriptor = ParameterDescriptor(description=spec.description, additional_constraints=spec.constraints)
        node.declare_parameter(spec.name, spec.default, descriptor)
        values[spec.name] = spec.validate(node.get_parameter(spec.name).value, origin=f"node {node.get_name()}")
    return values

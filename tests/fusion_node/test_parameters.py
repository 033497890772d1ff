"""Declarative parameters: specs, validation errors, and the shipped parameter files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fusion_node import fusion_node as fusion
from fusion_node.parameters import ParameterError, ParameterSpec, validate_values
from fusion_node.sensor_monitor_node import NODE_NAME, PARAMETERS

CONFIG = Path(__file__).resolve().parents[2] / "config"
NODE_SPECS = {NODE_NAME: PARAMETERS, fusion.NODE_NAME: fusion.PARAMETERS}


def test_defaults_are_valid_and_filled_in() -> None:
    values = validate_values(PARAMETERS, {})
    assert values["qos"] == "sensor_data"
    assert values["diagnostics_period_s"] == 1.0


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"qos": "fast"}, "parameter 'qos'"),
        ({"diagnostics_period_s": 100.0}, "above the maximum"),
        ({"diagnostics_period_s": 0.0}, "below the minimum"),
        ({"diagnostics_period_s": "1"}, "expected double"),
        ({"decode_images": 1}, "expected bool"),
        ({"stale_after_periods": float("nan")}, "finite"),
        ({"rig": "x"}, "unknown parameter"),
    ],
)
def test_bad_values_name_parameter_and_value(values: dict, words: str) -> None:
    with pytest.raises(ParameterError, match=words) as info:
        validate_values(PARAMETERS, values, origin="test.yaml")
    name, bad = next(iter(values.items()))
    assert name in str(info.value)
    if "unknown" not in words:
        assert repr(bad) in str(info.value) or str(bad) in str(info.value)


def test_int_is_accepted_for_double() -> None:
    assert validate_values(PARAMETERS, {"diagnostics_period_s": 2})["diagnostics_period_s"] == 2.0


def test_invalid_default_is_rejected_at_definition() -> None:
    with pytest.raises(ParameterError, match="'x'"):
        ParameterSpec("x", int, 0, "must be positive", minimum=1)


def test_constraints_text() -> None:
    spec = ParameterSpec("p", float, 1.0, "d", minimum=0.5, maximum=2.0)
    assert spec.constraints == "0.5 <= value <= 2.0"
    assert ParameterSpec("q", str, "a", "d", choices=("a", "b")).constraints == "one of ['a', 'b']"


@pytest.mark.parametrize("path", sorted(CONFIG.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_parameter_files_are_valid(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    for node_name, section in document.items():
        assert node_name in NODE_SPECS, f"{path.name}: no spec for node '{node_name}'"
        validate_values(NODE_SPECS[node_name], section["ros__parameters"], origin=str(path))

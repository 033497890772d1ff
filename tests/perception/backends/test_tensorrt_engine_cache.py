"""The TensorRT engine cache with fake keys and engine bytes: names that encode what an engine
was built for, sidecars, and a rebuild (with the reason) on any mismatch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from perception.backends.engine_cache import (
    EngineCacheError,
    EngineKey,
    capability_string,
    engine_name,
    find_or_none,
    gpu_slug,
    lookup,
    sidecar_path,
    store,
)

SHA = "3f2a9c0d41b7e6a8" + "0" * 48
KEY = EngineKey(SHA, "fp16", "10.3.0", "Orin", "8.7")


def test_engine_name_encodes_every_field() -> None:
    assert (
        engine_name(SHA, "fp16", "10.3.0", "Orin", (8, 7)) == "fusion_3f2a9c0d41b7e6a8_fp16_trt10.3.0_orin-sm87.engine"
    )
    assert (
        engine_name(SHA, "int8", "10.7.0", "NVIDIA GeForce RTX 4090", "8.9")
        == "fusion_3f2a9c0d41b7e6a8_int8_trt10.7.0_nvidia-geforce-rtx-4090-sm89.engine"
    )
    assert engine_name(SHA, "fp32", "10.13.0.post1", "NVIDIA H100 80GB HBM3", "sm_90").endswith(
        "_fp32_trt10.13.0.post1_nvidia-h100-80gb-hbm3-sm90.engine"
    )
    assert KEY.file_name() == "fusion_3f2a9c0d41b7e6a8_fp16_trt10.3.0_orin-sm87.engine"
    assert gpu_slug("  Jetson AGX Orin (64GB) ") == "jetson-agx-orin-64gb"
    assert capability_string("sm100") == "10.0"
    assert capability_string((12, 0)) == "12.0"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("XYZ", "fp16", "10.3.0", "Orin", "8.7"), r"bundle_checksum 'XYZ' must be 16 to 64 lower-case hex"),
        ((SHA, "fp8", "10.3.0", "Orin", "8.7"), r"precision 'fp8' is not one of \['fp32', 'fp16', 'int8'\]"),
        ((SHA, "fp16", "ten", "Orin", "8.7"), r"trt_version 'ten' is not a version"),
        ((SHA, "fp16", "10.3.0", "***", "8.7"), r"gpu_name '\*\*\*' has no letters or digits"),
        ((SHA, "fp16", "10.3.0", "Orin", "eight"), r"compute_capability 'eight' is not like"),
    ],
)
def test_bad_key_fields_name_the_field_and_value(arguments: tuple, message: str) -> None:
    with pytest.raises(EngineCacheError, match=message):
        engine_name(*arguments)
    with pytest.raises(EngineCacheError, match=message):
        EngineKey(*arguments)


def test_int8_key_needs_a_calibration_identity() -> None:
    with pytest.raises(EngineCacheError, match=r"an int8 key needs calibration"):
        replace(KEY, precision="int8")
    with pytest.raises(EngineCacheError, match=r"compute_capability 'sm87' must be written 'major.minor', e.g. '8.7'"):
        replace(KEY, compute_capability="sm87")


def test_store_then_find_with_a_sidecar(tmp_path: Path) -> None:
    assert find_or_none(tmp_path, KEY) is None
    path = store(tmp_path / "engines", KEY, b"serialized engine", workspace_mb=1024, build_seconds=12.345)
    assert path == tmp_path / "engines" / KEY.file_name()
    assert path.read_bytes() == b"serialized engine"
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["key"] == KEY.fields()
    assert sidecar["workspace_mb"] == 1024
    assert sidecar["build_seconds"] == 12.345
    assert sidecar["built_at"].endswith("Z")
    assert find_or_none(tmp_path / "engines", KEY) == path
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, sidecar_path(path).name])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bundle_checksum", "3f2a9c0d41b7e6a8" + "1" * 48),  # same name prefix, other graph
        ("precision", "fp32"),
        ("trt_version", "10.4.0"),
        ("gpu_name", "ORIN"),  # same slug, other device name
        ("compute_capability", "8.6"),
        ("calibration", "set:entropy:" + "ab" * 32),
    ],
)
def test_any_field_mismatch_means_rebuild_and_says_which(field: str, value: str, tmp_path: Path) -> None:
    built = replace(KEY, precision="int8", calibration="set:entropy:" + "cd" * 32)
    store(tmp_path, built, b"engine", workspace_mb=2048, build_seconds=1.0)
    wanted = replace(built, **{field: value})
    found = lookup(tmp_path, wanted)
    assert found.path is None
    assert field in found.reason
    assert repr(getattr(built, field)) in found.reason


def test_workspace_is_recorded_but_not_part_of_the_identity(tmp_path: Path) -> None:
    store(tmp_path, KEY, b"engine", workspace_mb=512, build_seconds=1.0)
    assert find_or_none(tmp_path, KEY) is not None


def test_changed_engine_missing_or_broken_sidecar_mean_rebuild(tmp_path: Path) -> None:
    path = store(tmp_path, KEY, b"engine", workspace_mb=2048, build_seconds=1.0)
    path.write_bytes(b"truncat")
    assert "changed after it was built" in lookup(tmp_path, KEY).reason
    assert find_or_none(tmp_path, KEY) is None
    path = store(tmp_path, KEY, b"engine", workspace_mb=2048, build_seconds=1.0)
    sidecar_path(path).write_text("{not json")
    assert "not a readable engine sidecar" in lookup(tmp_path, KEY).reason
    sidecar_path(path).write_text(json.dumps({"format": 99}))
    assert "field 'format' is 99" in lookup(tmp_path, KEY).reason
    sidecar_path(path).unlink()
    found = lookup(tmp_path, KEY)
    assert found.path is None
    assert "has no sidecar" in found.reason


def test_reason_lists_what_cached_engines_of_the_bundle_were_built_for(tmp_path: Path) -> None:
    store(tmp_path, replace(KEY, trt_version="10.2.0"), b"old", workspace_mb=2048, build_seconds=1.0)
    found = lookup(tmp_path, KEY)
    assert found.path is None
    assert f"no engine {KEY.file_name()}" in found.reason
    assert "fusion_3f2a9c0d41b7e6a8_fp16_trt10.2.0_orin-sm87.engine (trt_version '10.2.0' != '10.3.0')" in found.reason
    path = store(tmp_path, KEY, b"new", workspace_mb=2048, build_seconds=1.0)
    path.unlink()
    assert "has no engine file" in lookup(tmp_path, KEY).reason

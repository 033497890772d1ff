"""The TensorRT engine cache: file names that say what an engine was built for, and sidecars.

A serialized TensorRT engine only runs on the TensorRT version and GPU model it was built
with, and is only valid for the graph and precision it was built from. Each cached engine is
named after all of these::

    fusion_<sha16>_<precision>_trt<version>_<gpu>-sm<major><minor>.engine
    e.g. fusion_3f2a9c0d41b7e6a8_fp16_trt10.3.0_orin-sm87.engine

(``sha16``: the first 16 hex digits of the bundle's model.onnx sha256; ``gpu``: the device
name lower-cased, runs of other characters replaced by ``-``), with a JSON sidecar beside it
(``<same name>.json``) holding the full key (bundle checksum, precision, TensorRT version,
exact GPU name, compute capability, INT8 calibration identity), the engine file's sha256, the
build time and the workspace limit it was built with.

:func:`lookup` returns a cached engine only when the engine file, its sidecar and every key
field match; otherwise it says why (a missing file, a field that differs, an engine file
changed after it was built), so the caller logs the reason and rebuilds. The workspace limit
is recorded but is not part of the identity (a different limit does not invalidate an engine).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from perception.backends.base import BackendError

PRECISIONS: Final = ("fp32", "fp16", "int8")
SIDECAR_FORMAT: Final = 1
ENGINE_SUFFIX: Final = ".engine"
_CHECKSUM = re.compile(r"^[0-9a-f]{16,64}$")
_VERSION = re.compile(r"^\d+(\.[0-9A-Za-z]+){0,5}$")
_CAPABILITY = re.compile(r"^(?:sm_?)?(\d+)[._]?(\d)$")


class EngineCacheError(BackendError, ValueError):
    """An engine cache key field is malformed; the message names the field and the value."""


def gpu_slug(gpu_name: str) -> str:
    """'NVIDIA GeForce RTX 4090' -> 'nvidia-geforce-rtx-4090'; 'Orin' -> 'orin'."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-")
    if not slug:
        raise EngineCacheError(f"engine cache key: gpu_name {gpu_name!r} has no letters or digits")
    return slug


def capability_string(compute_capability: tuple[int, int] | str) -> str:
    """(8, 7), '8.7', 'sm87' or 'sm_87' -> '8.7'."""
    if isinstance(compute_capability, tuple):
        if len(compute_capability) != 2 or not all(isinstance(v, int) and v >= 0 for v in compute_capability):
            raise EngineCacheError(
                f"engine cache key: compute_capability {compute_capability!r} must be (major, minor) integers"
            )
        return f"{compute_capability[0]}.{compute_capability[1]}"
    match = _CAPABILITY.match(str(compute_capability).strip().lower())
    if match is None:
        raise EngineCacheError(
            f"engine cache key: compute_capability {compute_capability!r} is not like '8.7', 'sm87' or (8, 7)"
        )
    return f"{int(match.group(1))}.{match.group(2)}"


def engine_name(
    bundle_checksum: str,
    precision: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int] | str,
) -> str:
    """File name of the engine built from a bundle (its model.onnx sha256) for a precision,
    a TensorRT version and a GPU, e.g. ``fusion_3f2a9c0d41b7e6a8_fp16_trt10.3.0_orin-sm87.engine``."""
    if not isinstance(bundle_checksum, str) or not _CHECKSUM.match(bundle_checksum):
        raise EngineCacheError(
            f"engine cache key: bundle_checksum {bundle_checksum!r} must be 16 to 64 lower-case hex digits "
            "(the manifest's sha256 of model.onnx)"
        )
    if precision not in PRECISIONS:
        raise EngineCacheError(f"engine cache key: precision {precision!r} is not one of {list(PRECISIONS)}")
    if not isinstance(trt_version, str) or not _VERSION.match(trt_version):
        raise EngineCacheError(f"engine cache key: trt_version {trt_version!r} is not a version like '10.3.0'")
    major, minor = capability_string(compute_capability).split(".")
    gpu = f"{gpu_slug(gpu_name)}-sm{major}{minor}"
    return f"fusion_{bundle_checksum[:16]}_{precision}_trt{trt_version}_{gpu}{ENGINE_SUFFIX}"


@dataclass(frozen=True)
class EngineKey:
    """Everything a cached engine must match to be reused.

    Attributes:
        bundle_checksum: sha256 of the bundle's model.onnx (``Bundle.checksum``).
        precision: 'fp32', 'fp16' or 'int8'.
        trt_version: ``tensorrt.__version__`` of the builder, e.g. '10.3.0'.
        gpu_name: the CUDA device name, e.g. 'Orin' or 'NVIDIA GeForce RTX 4090'.
        compute_capability: 'major.minor', e.g. '8.7' (Orin), '8.9' (Ada).
        calibration: INT8 only: identity of the calibration data or cache it was built with.
    """

    bundle_checksum: str
    precision: str
    trt_version: str
    gpu_name: str
    compute_capability: str
    calibration: str = ""

    def __post_init__(self) -> None:
        if capability_string(self.compute_capability) != self.compute_capability:
            raise EngineCacheError(
                f"engine cache key: compute_capability {self.compute_capability!r} must be written 'major.minor', "
                f"e.g. {capability_string(self.compute_capability)!r}"
            )
        if self.precision == "int8" and not self.calibration:
            raise EngineCacheError("engine cache key: an int8 key needs calibration (the calibration data identity)")
        self.file_name()  # validates the remaining fields

    def file_name(self) -> str:
        return engine_name(
            self.bundle_checksum, self.precision, self.trt_version, self.gpu_name, self.compute_capability
        )

    def fields(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class CacheLookup:
    """``path``: the engine to load, or None (build one); ``reason``: why, for the log."""

    path: Path | None
    reason: str


def sidecar_path(engine: Path) -> Path:
    """``fusion_..._orin-sm87.engine`` -> ``fusion_..._orin-sm87.json``."""
    return engine.with_suffix(".json")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's JSON, checked for the fields :func:`lookup` needs."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EngineCacheError(f"{path}: not a readable engine sidecar ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise EngineCacheError(f"{path}: field 'format' is {found!r}, this runtime reads {SIDECAR_FORMAT}")
    for field, kind in (("key", dict), ("engine_sha256", str)):
        if not isinstance(data.get(field), kind):
            raise EngineCacheError(f"{path}: field {field!r} is missing or not a {kind.__name__}")
    return data


def _differences(recorded: dict[str, Any], key: EngineKey) -> list[str]:
    return [
        f"{field} {recorded.get(field)!r} != {wanted!r}"
        for field, wanted in key.fields().items()
        if recorded.get(field) != wanted
    ]


def lookup(cache_dir: str | Path, key: EngineKey) -> CacheLookup:
    """The cached engine for ``key`` if its file, sidecar and every key field match."""
    cache_dir = Path(cache_dir).expanduser()
    engine = cache_dir / key.file_name()
    sidecar = sidecar_path(engine)
    if engine.is_file():
        if not sidecar.is_file():
            return CacheLookup(None, f"{engine} has no sidecar {sidecar.name} (unknown origin)")
        try:
            data = read_sidecar(sidecar)
        except EngineCacheError as exc:
            return CacheLookup(None, str(exc))
        differences = _differences(data["key"], key)
        if differences:
            return CacheLookup(None, f"{sidecar} was built for different inputs: {'; '.join(differences)}")
        if _file_sha256(engine) != data["engine_sha256"]:
            return CacheLookup(None, f"{engine} changed after it was built (sha256 differs from {sidecar.name})")
        return CacheLookup(engine, f"cached engine {engine} matches")
    if sidecar.is_file():
        return CacheLookup(None, f"{sidecar} has no engine file {engine.name} (deleted or never finished)")
    others = []
    for other in sorted(cache_dir.glob(f"fusion_{key.bundle_checksum[:16]}_*.json")):
        try:
            recorded = read_sidecar(other)["key"]
        except EngineCacheError:
            continue
        others.append(f"{other.with_suffix(ENGINE_SUFFIX).name} ({'; '.join(_differences(recorded, key))})")
    reason = f"no engine {engine.name} in {cache_dir}"
    if others:
        reason += "; cached engines of this bundle were built for: " + ", ".join(others)
    return CacheLookup(None, reason)


def find_or_none(cache_dir: str | Path, key: EngineKey) -> Path | None:
    """The cached engine for ``key``, or None when it must be (re)built (see :func:`lookup`)."""
    return lookup(cache_dir, key).path


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def store(cache_dir: str | Path, key: EngineKey, engine: bytes, *, workspace_mb: int, build_seconds: float) -> Path:
    """Write a serialized engine and its sidecar into the cache (atomically); returns its path."""
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / key.file_name()
    sidecar = sidecar_path(path)
    sidecar.unlink(missing_ok=True)  # an engine never sits beside a stale sidecar
    _write_atomically(path, engine)
    record = {
        "format": SIDECAR_FORMAT,
        "engine": path.name,
        "key": key.fields(),
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
        "engine_bytes": len(engine),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(float(build_seconds), 3),
        "workspace_mb": int(workspace_mb),
    }
    _write_atomically(sidecar, (json.dumps(record, indent=2) + "\n").encode())
    return path

"""INT8 calibration data for TensorRT: network input batches from simulated frames, and the
calibrators that feed them to the builder.

:func:`write_calibration_set` picks ``frames`` frames of simulated shards (reproducibly, from
``seed``), runs each through the runtime's own input path (perception.training.dataset
ShardReader -> perception.model.inputs.InputEncoder, no augmentation, no modality dropout)
and writes the exact arrays the network receives, one frame per file::

    out_dir/
      batch_0000.npz ...   one array per graph input, named as the input, with the batch axis
                           (shapes and dtypes of perception.backends.bundle.input_shapes)
      calibration.json     format, frames, seed, model_config, inputs (name, shape, dtype),
                           batches [{file, shard, frame, stamp_ns, sha256}], sha256

``sha256`` identifies the content: it hashes the input specs and every array (name, dtype,
shape, bytes), not file bytes or paths, so the same shards, rig, config, frames and seed give
the same hash wherever and whenever the set is written. TensorRT engines built with a set
record this hash (perception.backends.engine_cache), so new calibration data means a rebuild.

Calibrators (TensorRT 10's implicit-quantization API, deprecated since 10.1 but supported
through 10.x): ``EntropyCalibrator`` (IInt8EntropyCalibrator2, the default for CNNs) and
``MinMaxCalibrator`` (IInt8MinMaxCalibrator). They exist only where ``tensorrt`` imports:
accessing them elsewhere raises BackendError pointing at docs/TENSORRT.md. Each copies one
batch at a time into device buffers (torch CUDA tensors) and hands TensorRT their addresses,
and reads / writes the calibration cache file so a rebuild skips calibration.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from calibration import Rig
from perception.backends.base import BackendError
from perception.backends.bundle import input_shapes
from perception.model.config import ModelConfig

MANIFEST: Final = "calibration.json"
FORMAT: Final = 1
ALGORITHMS: Final = ("entropy", "minmax")
TENSORRT_MISSING: Final = "TensorRT is not installed: see docs/TENSORRT.md"


class CalibrationSetError(BackendError, ValueError):
    """A calibration set cannot be written or read, or does not match its manifest; the
    message names the file and the field."""


@dataclass(frozen=True)
class CalibrationSet:
    """A written calibration set: its directory, content hash and batch files, in order."""

    path: Path
    sha256: str
    files: tuple[str, ...] = ()

    def batches(self) -> Iterator[dict[str, NDArray[Any]]]:
        """Each batch: input name -> array with the batch axis (as the engine takes it)."""
        for name in self.files:
            with np.load(self.path / name, allow_pickle=False) as data:
                yield {key: data[key] for key in data.files}


def arrays_sha256(arrays: Mapping[str, NDArray[Any]]) -> str:
    """sha256 of named arrays (name, dtype, shape and bytes, in name order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _set_sha256(specs: list[dict[str, Any]], batch_hashes: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps(specs, sort_keys=True).encode())
    for value in batch_hashes:
        digest.update(bytes.fromhex(value))
    return digest.hexdigest()


def _frame_counts(files: Sequence[Path]) -> list[int]:
    counts = []
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as data:
                counts.append(int(data["stamp_ns"].shape[0]))
        except (OSError, KeyError, ValueError) as exc:
            raise CalibrationSetError(f"{path}: not a readable simulation shard ({exc})") from exc
    return counts


def write_calibration_set(
    shard_dirs: Sequence[str | Path],
    rig: Rig,
    config: ModelConfig,
    out_dir: str | Path,
    *,
    frames: int = 64,
    seed: int = 0,
) -> CalibrationSet:
    """Write ``frames`` network input batches chosen from the shards under ``shard_dirs``
    (all frames when there are fewer), encoded for ``rig`` and ``config``. ``out_dir`` must
    not exist (a set is never changed in place)."""
    from perception.model.inputs import InputEncoder
    from perception.training.dataset import ShardReader, shard_files

    out_dir = Path(out_dir)
    if frames < 1:
        raise CalibrationSetError(f"write_calibration_set: frames must be >= 1, got {frames!r}")
    if out_dir.exists():
        raise CalibrationSetError(f"{out_dir}: already exists; choose a new calibration set directory")
    try:
        files = shard_files(shard_dirs)
    except FileNotFoundError as exc:
        raise CalibrationSetError(str(exc)) from exc
    counts = _frame_counts(files)
    total = sum(counts)
    rng = np.random.default_rng(seed)
    chosen = range(total) if total <= frames else sorted(int(i) for i in rng.choice(total, size=frames, replace=False))
    wanted = set(chosen)
    shapes = input_shapes(config)
    specs = [{"name": name, "shape": list(shape), "dtype": dtype} for name, (shape, dtype) in shapes.items()]
    reader = ShardReader(InputEncoder(rig, config))
    temporary = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    batches: list[dict[str, Any]] = []
    offset = 0
    for path, count in zip(files, counts, strict=True):
        last = max((i - offset for i in wanted if offset <= i < offset + count), default=-1)
        for index, (inputs, truth) in enumerate(reader.frames(path)):
            if index > last:
                break
            if offset + index not in wanted:
                continue
            arrays = {}
            for name, (shape, dtype) in shapes.items():
                array = np.asarray(inputs[name], dtype=dtype)[None]
                if array.shape != shape:
                    raise CalibrationSetError(
                        f"{path}: frame {index} input {name!r} has shape {array.shape}, the network takes {shape}"
                    )
                arrays[name] = np.ascontiguousarray(array)
            file = f"batch_{len(batches):04d}.npz"
            np.savez(temporary / file, **arrays)  # type: ignore[arg-type]
            batches.append(
                {
                    "file": file,
                    "shard": str(path),
                    "frame": index,
                    "stamp_ns": int(truth["stamp_ns"]),
                    "sha256": arrays_sha256(arrays),
                }
            )
        offset += count
    sha256 = _set_sha256(specs, [b["sha256"] for b in batches])
    manifest = {
        "format": FORMAT,
        "frames": len(batches),
        "seed": seed,
        "model_config": json.loads(config.to_json()),
        "inputs": specs,
        "batches": batches,
        "sha256": sha256,
    }
    (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    temporary.rename(out_dir)
    return CalibrationSet(out_dir, sha256, tuple(b["file"] for b in batches))


def load_calibration_set(path: str | Path, *, verify: bool = True) -> CalibrationSet:
    """A calibration set directory, its manifest checked (and every batch re-hashed unless
    ``verify`` is False)."""
    path = Path(path)
    where = path / MANIFEST
    try:
        manifest = json.loads(where.read_text())
    except (OSError, ValueError) as exc:
        raise CalibrationSetError(
            f"{where}: not a calibration set manifest ({exc}); write one with write_calibration_set"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise CalibrationSetError(f"{where}: field 'format' is {found!r}, this runtime reads {FORMAT}")
    batches = manifest.get("batches")
    specs = manifest.get("inputs")
    if not isinstance(batches, list) or not batches or not isinstance(specs, list):
        raise CalibrationSetError(f"{where}: fields 'batches' (non-empty) and 'inputs' must be lists")
    if not all(
        isinstance(b, dict) and isinstance(b.get("file"), str) and isinstance(b.get("sha256"), str) for b in batches
    ):
        raise CalibrationSetError(f"{where}: every entry of 'batches' needs 'file' and 'sha256'")
    if _set_sha256(specs, [b["sha256"] for b in batches]) != manifest.get("sha256"):
        raise CalibrationSetError(f"{where}: field 'sha256' does not match its batches (the manifest was edited)")
    calibration = CalibrationSet(path, str(manifest["sha256"]), tuple(b["file"] for b in batches))
    if verify:
        for entry, arrays in zip(batches, calibration.batches(), strict=True):
            if arrays_sha256(arrays) != entry["sha256"]:
                raise CalibrationSetError(
                    f"{path / entry['file']}: content does not match its sha256 in {MANIFEST} (changed after writing)"
                )
    return calibration


def calibration_cache_name(bundle_checksum: str, calibration_sha256: str, algorithm: str, trt_version: str) -> str:
    """File name of a TensorRT calibration cache: valid for one graph, calibration set,
    algorithm and TensorRT version (and portable across GPUs of that version)."""
    if algorithm not in ALGORITHMS:
        raise CalibrationSetError(f"calibration algorithm {algorithm!r} is not one of {list(ALGORITHMS)}")
    return f"fusion_{bundle_checksum[:16]}_int8-{algorithm}_cal{calibration_sha256[:16]}_trt{trt_version}.calib"


def _calibrator_class(algorithm: str) -> type:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(TENSORRT_MISSING) from exc
    return _define_calibrator(algorithm, trt)


@functools.cache
def _define_calibrator(algorithm: str, trt: Any) -> type:
    import torch

    base = trt.IInt8EntropyCalibrator2 if algorithm == "entropy" else trt.IInt8MinMaxCalibrator

    class Calibrator(base):  # type: ignore[misc,valid-type]
        """Feeds a :class:`CalibrationSet` to the TensorRT builder, one batch per call, through
        torch CUDA buffers; reads and writes the calibration cache at ``cache_file``.

        calibration: None when only a cache is used (a build then fails if the cache is
        missing or does not fit the network, as TensorRT asks for batches).
        """

        def __init__(self, calibration: CalibrationSet | None, cache_file: str | Path, *, device: int = 0) -> None:
            base.__init__(self)
            self.calibration = calibration
            self.cache_file = Path(cache_file)
            self.device = torch.device("cuda", device)
            self._batches = calibration.batches() if calibration is not None else iter(())
            self._buffers: dict[str, torch.Tensor] = {}
            self.batches_fed = 0

        def get_batch_size(self) -> int:
            return 1  # the arrays carry their batch axis of 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            pointers = []
            for name in names:
                if name not in batch:
                    raise BackendError(f"calibration set {self.calibration}: no array for engine input {name!r}")
                host = torch.from_numpy(np.ascontiguousarray(batch[name]))
                buffer = self._buffers.get(name)
                if buffer is None or buffer.shape != host.shape or buffer.dtype != host.dtype:
                    buffer = self._buffers[name] = torch.empty(host.shape, dtype=host.dtype, device=self.device)
                buffer.copy_(host)
                pointers.append(int(buffer.data_ptr()))
            torch.cuda.synchronize(self.device)  # the copies are done before TensorRT reads them
            self.batches_fed += 1
            return pointers

        def read_calibration_cache(self) -> bytes | None:
            return self.cache_file.read_bytes() if self.cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_file.with_name(self.cache_file.name + ".tmp")
            temporary.write_bytes(bytes(cache))
            temporary.replace(self.cache_file)

    Calibrator.__name__ = Calibrator.__qualname__ = (
        "EntropyCalibrator" if algorithm == "entropy" else "MinMaxCalibrator"
    )
    return Calibrator


def make_calibrator(
    algorithm: str, calibration: CalibrationSet | None, cache_file: str | Path, *, device: int = 0
) -> Any:
    """An ``EntropyCalibrator`` ('entropy') or ``MinMaxCalibrator`` ('minmax') instance."""
    if algorithm not in ALGORITHMS:
        raise CalibrationSetError(f"calibration algorithm {algorithm!r} is not one of {list(ALGORITHMS)}")
    return _calibrator_class(algorithm)(calibration, cache_file, device=device)


def __getattr__(name: str) -> type:
    """``EntropyCalibrator`` / ``MinMaxCalibrator``: defined on first use, where TensorRT imports."""
    if name == "EntropyCalibrator":
        return _calibrator_class("entropy")
    if name == "MinMaxCalibrator":
        return _calibrator_class("minmax")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

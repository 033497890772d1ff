"""Versioned model bundles: the ONNX graph, the weights and a manifest that ties them together.

A bundle is a directory written by ``fusion export`` (:func:`export_bundle`)::

    model.onnx       opset >= 17, static shapes, batch 1; inputs / outputs as in the manifest
    weights.pt       the same network's weights (weights-only torch file) for the torch backend
    model_fp16.onnx  optional (``fusion export --fp16``): an FP16 copy of model.onnx with the
                     same float32 interface (perception.backends.fp16), for ONNX Runtime
    model_int8.onnx  optional (``fusion export --int8 SHARDS``): an INT8 (QDQ) copy calibrated
                     on simulated frames (perception.backends.int8_onnx), for ONNX Runtime CPUs
    manifest.json    bundle_version, created, model_config, inputs / outputs (name, shape,
                     dtype), grid and output_grid, classes, camera_ids, camera_lookup, training
                     (checkpoint step, data hash, and the run's options.json when it sits next
                     to the checkpoint: the recipe of the last training step), files (sha256 of
                     model.onnx, weights.pt and of the copies present), fp16 (the converter),
                     int8 (quantizer, method, calibration set sha256, and the copy's drift
                     from model.onnx on check frames), each when its copy is present

The camera lookup tables are **runtime inputs** (``lut_index``, ``lut_camera``), not weights
or constants: a calibration update changes the tables the node builds from the rig, never the
bundle or a compiled engine. The manifest records the table shape the graph expects and the
geometry hash of the rig used at export (for information; the node rebuilds the tables from
its own rig and checks only the shape).

:func:`load_bundle` refuses a bundle whose manifest is missing or malformed, whose version is
unknown, or whose files do not match their checksums, naming the file and the field. A
copy (``model_fp16.onnx``, ``model_int8.onnx``) is verified like ``model.onnx`` when the
manifest lists it; one that is in the directory but not in the manifest is refused. Bundles
without copies stay valid. Nothing is unpickled: the manifest is JSON and weights load with
``weights_only=True``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from perception.classes import CLASSES
from perception.errors import PerceptionError
from perception.model.config import ModelConfig
from perception.training.checkpoint import file_sha256

if TYPE_CHECKING:
    from perception.backends.int8_calibration import CalibrationSet

#: Layout version of a bundle directory; readers refuse other versions.
BUNDLE_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
ONNX_FILE: Final = "model.onnx"
WEIGHTS_FILE: Final = "weights.pt"
#: Optional FP16 copy of ONNX_FILE (perception.backends.fp16).
FP16_FILE: Final = "model_fp16.onnx"
#: Optional INT8 copy of ONNX_FILE (perception.backends.int8_onnx).
INT8_FILE: Final = "model_int8.onnx"
#: Copies of ONNX_FILE a bundle may carry -> the export flag that writes each.
COPIES: Final = {FP16_FILE: "--fp16", INT8_FILE: "--int8"}
#: ONNX opset of the exported graph (TensorRT 10 parses 9..20; 17 has every operator used).
OPSET: Final = 17


class BundleError(PerceptionError):
    """A bundle is missing, malformed or does not match its checksums; the message names the
    file and the field."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]
    config: ModelConfig

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def fp16_path(self) -> Path | None:
        """The FP16 copy of the graph, or None when the bundle was exported without one."""
        return self.path / FP16_FILE if FP16_FILE in self.manifest["files"] else None

    @property
    def int8_path(self) -> Path | None:
        """The INT8 copy of the graph, or None when the bundle was exported without one."""
        return self.path / INT8_FILE if INT8_FILE in self.manifest["files"] else None

    @property
    def checksum(self) -> str:
        """sha256 of model.onnx: the identity of the graph (engine cache keys use it)."""
        return str(self.manifest["files"][ONNX_FILE])

    def input_specs(self) -> list[dict[str, Any]]:
        """[{name, shape, dtype}] of the graph inputs, in order."""
        return list(self.manifest["inputs"])


def _require(manifest: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in manifest:
        raise BundleError(f"{where}: field {key!r} is missing")
    value = manifest[key]
    if not isinstance(value, kind):
        raise BundleError(f"{where}: field {key!r} must be {kind.__name__}, got {type(value).__name__}: {value!r}")
    return value


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Read and check a bundle directory (checksums verified unless ``verify`` is False)."""
    path = Path(path)
    where = str(path / MANIFEST)
    if not (path / MANIFEST).is_file():
        raise BundleError(f"{path}: not a model bundle (no {MANIFEST}); write one with `fusion export`")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: expected a JSON object, got {type(manifest).__name__}")
    version = _require(manifest, "bundle_version", int, where)
    if version != BUNDLE_VERSION:
        raise BundleError(f"{where}: field 'bundle_version' is {version}, this runtime reads {BUNDLE_VERSION}")
    config = ModelConfig.from_json(json.dumps(_require(manifest, "model_config", dict, where)), source=where)
    for key in ("inputs", "outputs"):
        specs = _require(manifest, key, list, where)
        for spec in specs:
            if not isinstance(spec, dict) or {"name", "shape", "dtype"} - set(spec):
                raise BundleError(f"{where}: every entry of {key!r} needs name, shape and dtype, got {spec!r}")
    classes = _require(manifest, "classes", list, where)
    if tuple(classes) != CLASSES:
        raise BundleError(f"{where}: field 'classes' {classes} differs from this runtime's {list(CLASSES)}")
    files = _require(manifest, "files", dict, where)
    for copy, flag in COPIES.items():
        if (path / copy).is_file() and copy not in files:
            raise BundleError(
                f"{path / copy}: in the bundle, but field 'files' of {where} has no checksum for it "
                f"(added after export?); re-export the bundle with `fusion export {flag}`"
            )
    for name in (ONNX_FILE, WEIGHTS_FILE, *(copy for copy in COPIES if copy in files)):
        if name not in files:
            raise BundleError(f"{where}: field 'files' has no checksum for {name}")
        if not (path / name).is_file():
            raise BundleError(f"{path / name}: missing from the bundle")
        if verify:
            actual = file_sha256(path / name)
            if actual != files[name]:
                raise BundleError(
                    f"{path / name}: sha256 {actual} does not match the manifest's {files[name]} "
                    "(the file was changed after export; re-export the bundle)"
                )
    return Bundle(path, manifest, config)


def input_shapes(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape with batch 1, dtype) of every graph input."""
    ny, nx = config.input_grid.shape
    oy, ox = config.output_grid.shape
    cameras = len(config.camera_ids)
    lut = config.lut_samples * oy * ox
    return {
        "lidar": ((1, 6, ny, nx), "float32"),
        "radar": ((1, 5, ny, nx), "float32"),
        "ultrasonic": ((1, 2, ny, nx), "float32"),
        "images": ((1, cameras, 3, *config.image_size), "float32"),
        "camera_present": ((1, cameras), "float32"),
        "modality_present": ((1, 4), "float32"),
        "lut_index": ((1, lut), "int64"),
        "lut_camera": ((1, lut), "int64"),
    }


def output_shapes(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    oy, ox = config.output_grid.shape
    ny, nx = config.input_grid.shape
    return {
        "heatmap": ((1, config.num_classes, oy, ox), "float32"),
        "regression": ((1, 10, oy, ox), "float32"),
        "segmentation": ((1, 2, ny, nx), "float32"),
    }


def example_inputs(config: ModelConfig, seed: int = 0) -> dict[str, NDArray[Any]]:
    """Inputs of the real shapes and dtypes, in graph order (batch 1): uniform random rasters
    and images, every camera present, and a lookup table whose samples all hold the zero slot
    (valid for any rig; give a real table for timing the camera branch)."""
    rng = np.random.default_rng(seed)
    sentinel = len(config.camera_ids) * config.feature_size[0] * config.feature_size[1]
    arrays: dict[str, NDArray[Any]] = {}
    for name, (shape, _) in input_shapes(config).items():
        if name == "lut_index":
            arrays[name] = np.full(shape, sentinel, dtype=np.int64)
        elif name == "lut_camera":
            arrays[name] = np.full(shape, len(config.camera_ids), dtype=np.int64)
        elif name.endswith("_present"):
            arrays[name] = np.ones(shape, dtype=np.float32)
        else:
            arrays[name] = rng.random(shape, dtype=np.float32)
    return arrays


def graph_interface(model: Any) -> list[tuple[str, str, int, tuple[int, ...]]]:
    """(input|output, name, ONNX element type, static shape) of every input and output of the
    ``onnx.ModelProto`` ``model``: what a converted copy of a graph must keep."""
    rows = []
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            tensor = value.type.tensor_type
            rows.append((kind, value.name, tensor.elem_type, tuple(d.dim_value for d in tensor.shape.dim)))
    return rows


def _run_options(checkpoint: Path) -> dict[str, Any] | None:
    """The options.json ``fusion train`` wrote beside ``checkpoint`` (learning rate, epochs,
    init, dropout, ...), or None for a checkpoint without one (a shipped weights file)."""
    path = checkpoint.parent / "options.json"
    if not path.is_file():
        return None
    try:
        options = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable training options: {exc}") from exc
    if not isinstance(options, dict):
        raise BundleError(f"{path}: training options must be a JSON object, got {type(options).__name__}")
    return options


def export_bundle(
    checkpoint: str | Path,
    out: str | Path,
    *,
    geometry_hash: str = "",
    data_hash: str = "",
    fp16: bool = False,
    int8: CalibrationSet | None = None,
    int8_method: str = "percentile",
    int8_check: CalibrationSet | None = None,
) -> Bundle:
    """Write a bundle from a checkpoint: ONNX (opset :data:`OPSET`, static shapes), weights,
    manifest, with ``fp16`` an FP16 copy of the graph (:data:`FP16_FILE`), and with a
    calibration set ``int8`` an INT8 copy calibrated on it by ``int8_method``
    (:data:`INT8_FILE`), whose drift from the FP32 graph on the frames of ``int8_check``
    (perception.backends.int8_onnx.measure_drift) is recorded as ``int8.drift`` when given.
    ``out`` must not exist (a bundle is never overwritten in place)."""
    import torch

    from perception.model.network import INPUT_NAMES, OUTPUT_NAMES
    from perception.training.checkpoint import load_checkpoint, save_checkpoint
    from perception.training.trainer import load_trained

    out = Path(out)
    if out.exists():
        raise BundleError(f"{out}: already exists; choose a new bundle directory")
    model, _ = load_trained(checkpoint)
    config = model.config
    shapes = input_shapes(config)
    example = [torch.from_numpy(value) for value in example_inputs(config).values()]
    temporary = out.with_name(out.name + ".partial")
    temporary.mkdir(parents=True, exist_ok=False)
    with torch.no_grad():
        torch.onnx.export(
            model,
            tuple(example),
            str(temporary / ONNX_FILE),
            opset_version=OPSET,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamo=False,
            do_constant_folding=True,
        )
    files = [ONNX_FILE, WEIGHTS_FILE]
    extra: dict[str, Any] = {}
    if fp16:
        import onnxruntime

        from perception.backends.fp16 import CONVERTER, to_fp16

        try:
            to_fp16(temporary / ONNX_FILE, temporary / FP16_FILE)
        except BundleError:
            shutil.rmtree(temporary)  # no half-written bundle left to block the next export
            raise
        files.append(FP16_FILE)
        extra["fp16"] = {"file": FP16_FILE, "from": ONNX_FILE, "converter": f"{CONVERTER} {onnxruntime.__version__}"}
    if int8 is not None:
        import onnxruntime

        from perception.backends.int8_onnx import (
            MAX_CENTRE_DRIFT,
            MAX_SEGMENTATION_DRIFT,
            QUANTIZER,
            measure_drift,
            to_int8,
        )

        try:
            to_int8(temporary / ONNX_FILE, temporary / INT8_FILE, int8, int8_method)
            drift = (
                None
                if int8_check is None
                else measure_drift(temporary / ONNX_FILE, temporary / INT8_FILE, int8_check.batches())
            )
        except BundleError:
            shutil.rmtree(temporary)
            raise
        files.append(INT8_FILE)
        extra["int8"] = {
            "file": INT8_FILE,
            "from": ONNX_FILE,
            "quantizer": f"{QUANTIZER}, onnxruntime {onnxruntime.__version__}",
            "method": int8_method,
            "calibration_sha256": int8.sha256,
            "calibration_frames": len(int8.files),
        }
        if drift is not None and int8_check is not None:
            extra["int8"]["drift"] = {
                **asdict(drift),
                "check_sha256": int8_check.sha256,
                "bounds": {"centre": MAX_CENTRE_DRIFT, "segmentation": MAX_SEGMENTATION_DRIFT},
                "problems": drift.problems(),
            }
    source = load_checkpoint(checkpoint)
    save_checkpoint(
        temporary / WEIGHTS_FILE,
        {"model": model.state_dict(), "config": config.to_json(), "step": int(source.get("step", 0))},
    )
    manifest = {
        "bundle_version": BUNDLE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "opset": OPSET,
        "model_config": json.loads(config.to_json()),
        "inputs": [{"name": n, "shape": list(shapes[n][0]), "dtype": shapes[n][1]} for n in INPUT_NAMES],
        "outputs": [{"name": n, "shape": list(s), "dtype": d} for n, (s, d) in output_shapes(config).items()],
        "grid": json.loads(config.input_grid.to_json()),
        "output_grid": json.loads(config.output_grid.to_json()),
        "classes": list(CLASSES),
        "camera_ids": list(config.camera_ids),
        "camera_lookup": {
            "as_inputs": True,
            "samples_per_cell": config.lut_samples,
            "heights_m": list(config.camera_heights_m),
            "geometry_hash_at_export": geometry_hash,
        },
        "training": {
            "checkpoint": str(checkpoint),
            "step": int(source.get("step", 0)),
            "data_hash": data_hash,
            "options": _run_options(Path(checkpoint)),
        },
        "files": {name: file_sha256(temporary / name) for name in files},
        **extra,
    }
    (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2))
    temporary.rename(out)
    return load_bundle(out)

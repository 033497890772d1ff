"""``fusion export``: a trained checkpoint -> a versioned model bundle (ONNX + weights + manifest).

The bundle (perception.backends.bundle) is what the node and ``fusion eval --backend
onnxruntime|tensorrt`` load. The camera lookup tables are runtime inputs, so one bundle serves
any calibration of the same camera set; the manifest records the geometry hash of the rig
given here for reference.

``--fp16`` adds ``model_fp16.onnx``, an FP16 copy of the graph with the same float32 interface
(perception.backends.fp16), listed with its checksum in the manifest: ``fusion eval --backend
onnxruntime --precision fp16`` runs it to measure FP16 accuracy. TensorRT does not need it (it
builds FP16 engines from model.onnx; ``--precision`` with ``--build-only``).

``--int8 SHARD_DIR ...`` adds ``model_int8.onnx``, an INT8 (QDQ) copy for ONNX Runtime on CPUs
(perception.backends.int8_onnx), calibrated with ``--int8-method`` on a reproducible set of
``--int8-frames`` frames of those shards (the set TensorRT's INT8 build uses; written to a
temporary folder, its sha256 recorded in the manifest): ``--precision int8`` of ``fusion eval``
and of the node runs it. The copy is then compared with model.onnx on :data:`INT8_CHECK_FRAMES`
frames of the shards drawn with another seed (other frames than the calibration set's, unless the
shards hold few frames): the drift is recorded in the manifest, printed, and a warning names
what is over its bound (the rule for which convolutions stay float was set on one set of
weights; another set may quantize worse, as recipe v5's radar encoder did).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Final

#: Frames, other than the calibration frames, on which the INT8 copy is compared with model.onnx.
INT8_CHECK_FRAMES: Final = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint or shipped weights (.pt); with --build-only: a bundle directory")
    parser.add_argument("--out", default=None, help="new bundle directory (required unless --build-only)")
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build (or reuse) the TensorRT engine of an existing bundle and exit (see docs/TENSORRT.md)",
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="also write model_fp16.onnx, an FP16 copy of the graph for ONNX Runtime (fusion eval --precision fp16)",
    )
    parser.add_argument(
        "--int8",
        nargs="+",
        default=None,
        metavar="SHARD_DIR",
        help="also write model_int8.onnx, an INT8 copy for ONNX Runtime calibrated on frames of these shards",
    )
    parser.add_argument("--int8-frames", type=int, default=64, help="calibration frames for --int8 (default 64)")
    parser.add_argument(
        "--int8-method",
        default="percentile",
        choices=["percentile", "minmax", "entropy"],
        help="activation ranges of the --int8 copy (default percentile)",
    )
    parser.add_argument(
        "--precision", default="fp16", choices=["fp32", "fp16", "int8"], help="engine precision (with --build-only)"
    )
    parser.add_argument("--workspace-mb", type=int, default=2048, help="TensorRT workspace limit, MiB")
    parser.add_argument("--cache-dir", default="~/.cache/fusion_runtime/engines", help="engine cache folder")
    parser.add_argument("--calibration", default=None, help="INT8 calibration set (folder or manifest)")
    parser.add_argument(
        "--calibrator", default="entropy", choices=["entropy", "minmax"], help="TensorRT INT8 calibrator (--build-only)"
    )
    parser.add_argument("--rig", default=None, help="rig YAML whose camera geometry hash is recorded (default rig)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", nargs="+", default=None, help="training shard directories: their sha256 is recorded")
    data.add_argument("--data-hash", default="", help="hash of the training data, recorded in the manifest")


def run(args: argparse.Namespace) -> int:
    from calibration import CalibrationError, default_rig_path, load_rig
    from perception.backends.bundle import BundleError, export_bundle
    from perception.backends.int8_calibration import write_calibration_set
    from perception.errors import PerceptionError
    from perception.model.inputs import InputEncoder
    from perception.training.dataset import shards_sha256
    from perception.training.trainer import load_trained

    if args.build_only:
        if args.fp16 or args.int8:
            flag = "--fp16" if args.fp16 else "--int8"
            print(f"error: {flag} writes a new bundle; with --build-only use --precision", file=sys.stderr)
            return 2
        return _build_only(args)
    if args.out is None:
        print("error: --out is required to export a bundle", file=sys.stderr)
        return 2
    if Path(args.out).exists():  # before the calibration frames are written, not after
        print(f"error: {args.out}: already exists; choose a new bundle directory", file=sys.stderr)
        return 2
    if args.int8 and args.int8_frames < 1:
        print(f"error: --int8-frames must be >= 1, got {args.int8_frames}", file=sys.stderr)
        return 2
    try:
        model, _ = load_trained(args.checkpoint)
        rig = load_rig(Path(args.rig) if args.rig else default_rig_path())
        geometry = InputEncoder(rig, model.config).table.geometry_hash()
        data_hash = f"sha256:{shards_sha256(args.data)}" if args.data else args.data_hash
        with tempfile.TemporaryDirectory(prefix="int8_calibration_") as work:
            calibration = check = None
            if args.int8:
                print(f"writing {args.int8_frames} INT8 calibration frames from {args.int8}", flush=True)
                calibration = write_calibration_set(
                    args.int8, rig, model.config, Path(work) / "set", frames=args.int8_frames, seed=0
                )
                check = write_calibration_set(
                    args.int8, rig, model.config, Path(work) / "check", frames=INT8_CHECK_FRAMES, seed=1
                )
            bundle = export_bundle(
                args.checkpoint,
                args.out,
                geometry_hash=geometry,
                data_hash=data_hash,
                fp16=args.fp16,
                int8=calibration,
                int8_method=args.int8_method,
                int8_check=check,
            )
    except FileNotFoundError as exc:
        print(f"error: --data: {exc}", file=sys.stderr)
        return 2
    except (BundleError, PerceptionError, CalibrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = bundle.manifest
    print(f"bundle written to {bundle.path}")
    print(json.dumps({"files": manifest["files"], "opset": manifest["opset"], "inputs": manifest["inputs"]}, indent=2))
    drift = manifest.get("int8", {}).get("drift")
    if drift is not None:
        print(
            f"INT8 copy against model.onnx on {drift['frames']} check frames: centre probabilities "
            f"{drift['centre']:.4f}, segmentation {drift['segmentation']:.4f}, "
            f"strongest peaks kept {drift['peaks_kept']:.0%}"
        )
        for problem in drift["problems"]:
            print(
                f"warning: {bundle.int8_path}: {problem}; measure it with `fusion eval --precision int8`",
                file=sys.stderr,
            )
    return 0


def _build_only(args: argparse.Namespace) -> int:
    from perception.backends.base import BackendError
    from perception.backends.bundle import BundleError, load_bundle
    from perception.backends.tensorrt_backend import build_engine

    try:
        bundle = load_bundle(args.checkpoint)
        result = build_engine(
            bundle,
            args.precision,
            workspace_mb=args.workspace_mb,
            cache_dir=args.cache_dir,
            calibration=args.calibration,
            calibrator=args.calibrator,
        )
    except (BackendError, BundleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'built' if result.built else 'reused'} {result.path}: {result.reason}")
    return 0

"""``fusion export``: a trained checkpoint -> a versioned model bundle (ONNX + weights + manifest).

The bundle (perception.backends.bundle) is what the node and ``fusion eval --backend
onnxruntime|tensorrt`` load. The camera lookup tables are runtime inputs, so one bundle serves
any calibration of the same camera set; the manifest records the geometry hash of the rig
given here for reference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint or shipped weights (.pt)")
    parser.add_argument("--out", required=True, help="new bundle directory")
    parser.add_argument("--rig", default=None, help="rig YAML whose camera geometry hash is recorded (default rig)")
    parser.add_argument("--data-hash", default="", help="hash of the training data, recorded in the manifest")


def run(args: argparse.Namespace) -> int:
    from calibration import CalibrationError, default_rig_path, load_rig
    from perception.backends.bundle import BundleError, export_bundle
    from perception.errors import PerceptionError
    from perception.model.inputs import InputEncoder
    from perception.training.trainer import load_trained

    try:
        model, _ = load_trained(args.checkpoint)
        rig = load_rig(Path(args.rig) if args.rig else default_rig_path())
        geometry = InputEncoder(rig, model.config).table.geometry_hash()
        bundle = export_bundle(args.checkpoint, args.out, geometry_hash=geometry, data_hash=args.data_hash)
    except (BundleError, PerceptionError, CalibrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = bundle.manifest
    print(f"bundle written to {bundle.path}")
    print(json.dumps({"files": manifest["files"], "opset": manifest["opset"], "inputs": manifest["inputs"]}, indent=2))
    return 0

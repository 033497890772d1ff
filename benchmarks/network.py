"""Fusion network latency per frame (``fusion bench network``): ONNX Runtime vs torch eager,
or (``--precision fp16|int8``) ONNX Runtime on the bundle's FP16 / INT8 copy vs FP32.

Both run a model bundle through the runtime's own backends (``load_backend``: what the node
runs), batch 1, on inputs of the real shapes with the default rig's camera lookup table, with
``--threads`` intra-op threads. The bundle is ``--bundle`` (e.g. the shipped
``models/fusion_sim``) or, by default, one exported from random weights of the default
:class:`perception.model.config.ModelConfig` with ``--fuser`` (latency does not depend on the
weights).

Each backend is timed in its own process, and the processes take turns in ``--blocks`` blocks
(ONNX Runtime, torch, ONNX Runtime, ...), so load drift hits both alike. Separate processes,
because two thread pools in one process disturb each other: torch's OpenMP workers keep
spinning after a call and steal the cores ONNX Runtime needs next (measured interleaved in one
process: ONNX Runtime 47.9 ms against 29 ms on its own). Outputs are compared before timing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import median_ms, speedup

HELP = "fusion network per frame: ONNX Runtime (CPU) vs torch eager (or vs FP32), same threads, separate processes"


def variants(precision: str) -> tuple[str, str]:
    """(candidate, baseline) as "backend[:precision]": ONNX Runtime FP32 against torch eager,
    or ONNX Runtime at ``precision`` against ONNX Runtime FP32."""
    return ("onnxruntime", "torch") if precision == "fp32" else (f"onnxruntime:{precision}", "onnxruntime")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both (default 2)")
    parser.add_argument("--fuser", default="conv", help="conv | attention: random-weights bundle (default conv)")
    parser.add_argument("--bundle", default="", help="model bundle to time (default: random weights, --fuser)")
    parser.add_argument("--blocks", type=int, default=4, help="alternating blocks per backend (default 4)")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "fp16", "int8"],
        help="fp16 / int8: time the bundle's ONNX Runtime copy against FP32 (default fp32: against torch eager)",
    )


def _inputs(config: Any) -> dict[str, Any]:
    """One frame of network inputs without the batch axis: random rasters and images, every
    sensor present, the default rig's camera lookup table."""
    from calibration import default_rig_path, load_rig
    from perception.backends.bundle import example_inputs
    from perception.model.inputs import InputEncoder

    encoder = InputEncoder(load_rig(default_rig_path()), config)
    index, camera = encoder.table.lift_inputs()
    arrays = example_inputs(config) | {"lut_index": index[None], "lut_camera": camera[None]}
    return {name: value[0] for name, value in arrays.items()}


def time_backend(variant: str, bundle: str, threads: int, runs: int, warmup: int, outputs: str = "") -> list[int]:
    """Run times (ns) of one ``backend[:precision]`` on one frame; with ``outputs``, also save
    its outputs (.npz) for the cross-check."""
    import time

    from perception.backends import load_backend

    backend, _, precision = variant.partition(":")
    loaded = load_backend(backend, bundle, threads=threads, **({"precision": precision} if precision else {}))
    inputs = _inputs(loaded.config)
    result = loaded.infer(inputs)
    if outputs:
        np.savez(outputs, *result)
    for _ in range(warmup):
        loaded.infer(inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        loaded.infer(inputs)
        times.append(time.perf_counter_ns() - start)
    return times


def _child(variant: str, bundle: str, threads: int, runs: int, warmup: int, outputs: str = "") -> list[int]:
    code = (
        "import json, sys; from benchmarks.network import time_backend; "
        "print(json.dumps(time_backend(*json.loads(sys.argv[1]))))"
    )
    arguments = json.dumps([variant, bundle, threads, runs, warmup, outputs])
    done = subprocess.run(
        [sys.executable, "-c", code, arguments], capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"timing {variant} on {bundle} failed:\n{done.stderr[-3000:]}")
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def _random_bundle(fuser: str, folder: Path) -> Path:
    from perception.backends.bundle import export_bundle
    from perception.model.config import ModelConfig
    from perception.model.network import FusionNet
    from perception.training.checkpoint import save_checkpoint

    config = ModelConfig(fuser=fuser)
    checkpoint = folder / "random.pt"
    save_checkpoint(checkpoint, {"model": FusionNet(config).state_dict(), "config": config.to_json(), "step": 0})
    return export_bundle(checkpoint, folder / "bundle").path


def run(args: argparse.Namespace) -> dict[str, Any]:
    from perception.backends.bundle import load_bundle

    if args.blocks < 1:
        raise ValueError(f"--blocks must be >= 1, got {args.blocks}")
    with tempfile.TemporaryDirectory(prefix="bench_network_") as folder:
        bundle = args.bundle or str(_random_bundle(args.fuser, Path(folder)))
        config = load_bundle(bundle).config
        pair = variants(args.precision)
        outputs = {name: str(Path(folder) / f"{name.replace(':', '_')}.npz") for name in pair}
        for name in pair:
            _child(name, bundle, args.threads, 1, 0, outputs[name])
        arrays = zip(*(np.load(outputs[name]).values() for name in pair), strict=True)
        difference = max(float(np.max(np.abs(a - b))) for a, b in arrays)
        per_block = max(1, -(-args.runs // args.blocks))
        times: dict[str, list[int]] = {name: [] for name in pair}
        for _ in range(args.blocks):
            for name in pair:
                times[name] += _child(name, bundle, args.threads, per_block, args.warmup)
    candidate, baseline = median_ms(times[pair[0]]), median_ms(times[pair[1]])
    ny, nx = config.input_grid.shape
    key, against = (
        ("network_onnxruntime", "torch eager")
        if args.precision == "fp32"
        else (
            f"network_onnxruntime_{args.precision}",
            "ONNX Runtime FP32 (model.onnx)",
        )
    )
    return {
        key: {
            "median_ms": candidate,
            "runs": len(times[pair[0]]),
            "bundle": args.bundle or f"random weights, fuser {config.fuser}",
            "input": {
                "grid": [ny, nx],
                "cameras": len(config.camera_ids),
                "image": list(config.image_size),
                "fuser": config.fuser,
            },
            "threads": args.threads,
            "processes": f"each backend in its own process, {args.blocks} alternating blocks of {per_block} runs",
            "max_abs_difference_vs_baseline": difference,
            "baseline": f"{against}, same threads, same bundle",
            "baseline_median_ms": baseline,
            "speedup": speedup(baseline, candidate),
        }
    }

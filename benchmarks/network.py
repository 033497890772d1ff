"""Fusion network latency per frame (``fusion bench network``): ONNX Runtime vs torch eager.

The network (random weights: latency does not depend on them) with the default
:class:`perception.model.config.ModelConfig` or ``--fuser``, batch 1, inputs of the real
shapes (camera lookup table of the default rig), exported to ONNX (opset 17, static shapes)
and run on ONNX Runtime's CPU provider with ``--threads`` intra-op threads, against torch eager
with the same thread count, interleaved. Outputs are compared before timing.
"""

from __future__ import annotations

import argparse
import io
from typing import Any

import numpy as np

from benchmarks.timing import median_ms, speedup, time_interleaved

HELP = "fusion network per frame: ONNX Runtime (CPU) vs torch eager, same threads"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both (default 2)")
    parser.add_argument("--fuser", default="conv", help="conv | attention (default conv)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    from calibration import default_rig_path, load_rig
    from perception.backends.bundle import example_inputs
    from perception.model.config import ModelConfig
    from perception.model.inputs import InputEncoder
    from perception.model.network import INPUT_NAMES, OUTPUT_NAMES, FusionNet

    torch.set_num_threads(args.threads)
    config = ModelConfig(fuser=args.fuser)
    encoder = InputEncoder(load_rig(default_rig_path()), config)
    index, camera = encoder.table.lift_inputs()
    arrays = example_inputs(config) | {"lut_index": index[None], "lut_camera": camera[None]}
    ny, nx = config.input_grid.shape
    cameras = len(config.camera_ids)
    tensors = tuple(torch.from_numpy(arrays[name]) for name in INPUT_NAMES)
    net = FusionNet(config).eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        expected = [t.numpy() for t in net(*tensors)]
        torch.onnx.export(
            net,
            tensors,
            buffer,
            opset_version=17,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    feed = {name: value for name, value in arrays.items() if name in names}
    got = session.run(list(OUTPUT_NAMES), feed)
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(got, expected, strict=True))

    def onnxruntime() -> None:
        session.run(list(OUTPUT_NAMES), feed)

    def eager() -> None:
        with torch.no_grad():
            net(*tensors)

    times = time_interleaved([onnxruntime, eager], args.runs, args.warmup)
    candidate, baseline = median_ms(times[0]), median_ms(times[1])
    return {
        "network_onnxruntime": {
            "median_ms": candidate,
            "runs": len(times[0]),
            "input": {"grid": [ny, nx], "cameras": cameras, "image": list(config.image_size), "fuser": args.fuser},
            "threads": args.threads,
            "parameters": sum(p.numel() for p in net.parameters()),
            "max_abs_difference_vs_torch": difference,
            "baseline": "torch eager, same threads",
            "baseline_median_ms": baseline,
            "speedup": speedup(baseline, candidate),
        }
    }

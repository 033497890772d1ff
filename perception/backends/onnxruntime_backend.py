"""ONNX Runtime backend: a bundle's ``model.onnx`` on the best available execution provider.

``precision="fp16"`` runs the bundle's FP16 copy ``model_fp16.onnx`` instead (written by
``fusion export --fp16``; same float32 inputs and outputs, float16 inside): the accuracy check
of FP16 engines. On a CPU it is not faster than FP32 (the CPU provider has few float16 kernels
and ONNX Runtime adds casts around the rest); on GPUs the CUDA provider runs it natively.
``precision="int8"`` runs the INT8 copy ``model_int8.onnx`` (``fusion export --int8 SHARDS``;
integer convolutions, the fast path on CPUs with VNNI or AVX2; docs/BENCHMARKS.md has its speed
and accuracy).

Providers in order of preference, taken when this onnxruntime build has them: TensorRT,
CUDA, CPU (``providers=`` overrides). The session is built once; each call feeds the graph's
inputs by name (an input the graph folded away, e.g. a presence flag of a branch that does not
read it, is skipped) and returns the three outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from perception.backends.base import BackendError, Outputs
from perception.backends.bundle import FP16_FILE, INT8_FILE, Bundle, load_bundle
from perception.model.inputs import Arrays
from perception.model.network import OUTPUT_NAMES

LOG = logging.getLogger(__name__)
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
#: precision -> which graph of the bundle runs.
PRECISIONS = ("fp32", "fp16", "int8")


def graph_path(bundle: Bundle, precision: str) -> Path:
    """The ONNX file of ``bundle`` that runs at ``precision`` (``fp32``: model.onnx, ``fp16``:
    model_fp16.onnx, ``int8``: model_int8.onnx); a clear error when the precision is unknown or
    the bundle has no such copy."""
    if precision not in PRECISIONS:
        raise BackendError(f"onnxruntime: precision {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "fp32":
        return bundle.onnx_path
    fp16 = precision == "fp16"
    copy, file, flag = (bundle.fp16_path, FP16_FILE, "--fp16") if fp16 else (bundle.int8_path, INT8_FILE, "--int8 DIRS")
    if copy is None:
        raise BackendError(
            f"onnxruntime: precision {precision!r} needs {file} in the bundle {bundle.path}, which was exported "
            f"without one; write a bundle that has it with `fusion export <checkpoint> --out <new bundle> {flag}`"
        )
    return copy


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(
        self, path: str | Path, *, threads: int = 2, providers: list[str] | None = None, precision: str = "fp32"
    ) -> None:
        import onnxruntime as ort

        bundle = load_bundle(path)
        graph = graph_path(bundle, precision)
        available = ort.get_available_providers()
        chosen = providers or [p for p in PREFERRED_PROVIDERS if p in available]
        missing = [p for p in chosen if p not in available]
        if missing:
            raise BackendError(f"onnxruntime: providers {missing} are not in this build; available: {available}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Idle worker threads sleep instead of spinning: on a vehicle computer the node shares
        # its cores with drivers and DDS, and spinning threads fight them (measured: 2-thread
        # inference next to a busy process, median 108 ms spinning vs 60 ms sleeping).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"onnxruntime could not load {graph}: {exc}") from exc
        for problem in (
            bundle.manifest.get("int8", {}).get("drift", {}).get("problems", []) if precision == "int8" else []
        ):
            LOG.warning("%s: the INT8 copy was over its drift bound at export: %s", graph, problem)
        self.bundle = bundle
        self.precision = precision
        self.config = bundle.config
        self.providers = self.session.get_providers()
        self._inputs = [i.name for i in self.session.get_inputs()]

    def infer(self, inputs: Arrays) -> Outputs:
        feed: dict[str, Any] = {name: np.ascontiguousarray(inputs[name])[None] for name in self._inputs}
        heatmap, regression, segmentation = self.session.run(list(OUTPUT_NAMES), feed)
        return heatmap, regression, segmentation

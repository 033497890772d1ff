"""ONNX Runtime backend: a bundle's ``model.onnx`` on the best available execution provider.

Providers in order of preference, taken when this onnxruntime build has them: TensorRT,
CUDA, CPU (``providers=`` overrides). The session is built once; each call feeds the graph's
inputs by name (an input the graph folded away, e.g. a presence flag of a branch that does not
read it, is skipped) and returns the three outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perception.backends.base import BackendError, Outputs
from perception.backends.bundle import load_bundle
from perception.model.inputs import Arrays
from perception.model.network import OUTPUT_NAMES

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int = 2, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        bundle = load_bundle(path)
        available = ort.get_available_providers()
        chosen = providers or [p for p in PREFERRED_PROVIDERS if p in available]
        missing = [p for p in chosen if p not in available]
        if missing:
            raise BackendError(f"onnxruntime: providers {missing} are not in this build; available: {available}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(bundle.onnx_path), options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"onnxruntime could not load {bundle.onnx_path}: {exc}") from exc
        self.bundle = bundle
        self.config = bundle.config
        self.providers = self.session.get_providers()
        self._inputs = [i.name for i in self.session.get_inputs()]

    def infer(self, inputs: Arrays) -> Outputs:
        feed: dict[str, Any] = {name: np.ascontiguousarray(inputs[name])[None] for name in self._inputs}
        heatmap, regression, segmentation = self.session.run(list(OUTPUT_NAMES), feed)
        return heatmap, regression, segmentation

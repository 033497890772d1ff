"""The backend interface, the registry, and the predictor (backend + decoding + timings)."""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from perception.errors import PerceptionError
from perception.model.config import ModelConfig
from perception.model.decode import DecodeConfig
from perception.model.inputs import Arrays
from perception.model.predictor import Prediction, decode_outputs

Outputs = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]

#: Backend name -> "module:factory"; factory(path, **options) -> Backend.
BACKENDS: Final[dict[str, str]] = {
    "torch": "perception.backends.torch_backend:TorchBackend",
    "onnxruntime": "perception.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "tensorrt": "perception.backends.tensorrt_backend:TensorRTBackend",
}


class BackendError(PerceptionError):
    """A backend cannot be loaded or run (missing package, bad bundle, no GPU); the message
    says which and why."""


class Backend(Protocol):
    name: str
    config: ModelConfig

    def infer(self, inputs: Arrays) -> Outputs:
        """Raw network outputs for one frame (batch axis of 1)."""
        ...


def backend_options(factory: Any) -> list[str]:
    """The keyword options a backend factory takes (``threads``, ``precision``, ...)."""
    parameters = inspect.signature(factory).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def load_backend(name: str, path: str | Path, **options: Any) -> Backend:
    """The backend registered as ``name``, loaded from ``path`` (checkpoint or bundle).

    ``options`` go to the backend's factory; one it does not take is refused by name (e.g.
    ``precision`` is an option of ``onnxruntime`` ("fp32", or "fp16" / "int8": the bundle's
    copies) and ``tensorrt``, not of ``torch``)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; known: {sorted(BACKENDS)}")
    module, factory_name = BACKENDS[name].split(":")
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(f"backend {name!r} is not available here: {exc}") from exc
    factory = getattr(loaded, factory_name)
    known = backend_options(factory)
    for key, value in options.items():
        if key not in known:
            raise BackendError(f"backend {name!r} takes no option {key}={value!r}; its options: {known}")
    backend: Backend = factory(path, **options)
    return backend


class Predictor:
    """Backend + decoding: one frame's inputs -> :class:`Prediction` with stage timings."""

    def __init__(self, backend: Backend, decode: DecodeConfig | None = None) -> None:
        self.backend = backend
        self.config = backend.config
        self.decode = decode or DecodeConfig()

    def __call__(self, inputs: Arrays) -> Prediction:
        began = time.perf_counter()
        outputs = self.backend.infer(inputs)
        inferred = time.perf_counter()
        boxes, grids = decode_outputs(outputs, self.config, self.decode)
        done = time.perf_counter()
        timings = {"inference": (inferred - began) * 1e3, "decode": (done - inferred) * 1e3}
        return Prediction(boxes, grids, timings, np.asarray(outputs[2][0], dtype=np.float32))

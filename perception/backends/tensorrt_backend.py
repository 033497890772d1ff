"""TensorRT backend: an engine built from a bundle with TensorRT 10's Python API, cached, run
on an explicit CUDA stream with device buffers.

Start-up (:class:`TensorRTBackend`, or :func:`build_engine` alone for ``--build-only``):

1. the bundle is loaded and its checksums verified (perception.backends.bundle);
2. the cache key is formed: bundle checksum, precision, ``tensorrt.__version__``, the CUDA
   device's name and compute capability, and for INT8 the calibration identity
   (perception.backends.engine_cache); a cached engine whose sidecar matches is loaded;
   otherwise a log line says why (no engine, which field differs, a changed file) and
3. the engine is built: ``OnnxParser`` on model.onnx (every parser error listed with its
   node), ``BuilderConfig`` with the workspace pool limit, FP16 for 'fp16', FP16 + INT8 with
   the entropy or min-max calibrator (perception.backends.int8_calibration) and its cache
   for 'int8', TF32 off for 'fp32'; serialized into the cache with its sidecar.

Inference (:meth:`TensorRTBackend.infer`): a frame's inputs are staged into pinned host
buffers, copied to device buffers (torch CUDA tensors whose addresses are bound once with
``set_tensor_address``), run with ``execute_async_v3`` on a ``torch.cuda.Stream`` and copied
back, all on that stream; CUDA events time the stages. ``last_timings_ms`` holds the last
call's ``stage`` (host copy into pinned memory, CPU clock), ``h2d``, ``inference`` and ``d2h``
(GPU clock) in milliseconds.

Without TensorRT or CUDA every entry point raises BackendError naming what is missing and
pointing at docs/TENSORRT.md.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from perception.backends import engine_cache
from perception.backends.base import BackendError, Outputs
from perception.backends.bundle import Bundle, load_bundle
from perception.backends.engine_cache import PRECISIONS, EngineKey
from perception.backends.int8_calibration import (
    ALGORITHMS,
    TENSORRT_MISSING,
    CalibrationSet,
    calibration_cache_name,
    load_calibration_set,
    make_calibrator,
)
from perception.model.inputs import Arrays
from perception.model.network import OUTPUT_NAMES

if TYPE_CHECKING:
    import torch

LOG = logging.getLogger(__name__)
DEFAULT_CACHE_DIR: Final = Path("~/.cache/fusion_runtime/engines")
DEFAULT_WORKSPACE_MB: Final = 2048
DOCS: Final = "see docs/TENSORRT.md"


def _tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(f"{TENSORRT_MISSING} (import tensorrt: {exc})") from exc
    return trt


def _cuda_device(device: int) -> tuple[str, str]:
    """(name, 'major.minor' compute capability) of CUDA device ``device``."""
    import torch

    if not torch.cuda.is_available():
        raise BackendError(
            "CUDA is not available (torch.cuda.is_available() is False): the tensorrt backend needs an NVIDIA "
            f"GPU and a CUDA build of torch; {DOCS}"
        )
    if not 0 <= device < torch.cuda.device_count():
        raise BackendError(f"tensorrt: device {device} does not exist (this machine has {torch.cuda.device_count()})")
    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"


@functools.cache
def _logger(trt: Any) -> Any:
    """One ILogger for every builder and runtime (TensorRT treats the logger as a singleton),
    forwarding TensorRT's messages to Python logging."""
    severity = trt.ILogger.Severity
    levels = {
        severity.INTERNAL_ERROR: logging.CRITICAL,
        severity.ERROR: logging.ERROR,
        severity.WARNING: logging.WARNING,
        severity.INFO: logging.DEBUG,
        severity.VERBOSE: logging.DEBUG,
    }

    class Logger(trt.ILogger):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, level: Any, message: str) -> None:
            LOG.log(levels.get(level, logging.INFO), "TensorRT: %s", message)

    return Logger()


def _check_options(precision: str, workspace_mb: int, calibrator: str, calibration: object) -> None:
    if precision not in PRECISIONS:
        raise BackendError(f"tensorrt: precision {precision!r} is not one of {list(PRECISIONS)}")
    if not isinstance(workspace_mb, int) or isinstance(workspace_mb, bool) or workspace_mb < 1:
        raise BackendError(f"tensorrt: workspace_mb must be an integer >= 1 (MiB), got {workspace_mb!r}")
    if calibrator not in ALGORITHMS:
        raise BackendError(f"tensorrt: calibrator {calibrator!r} is not one of {list(ALGORITHMS)}")
    if precision == "int8" and calibration is None:
        raise BackendError(
            "tensorrt: precision 'int8' needs calibration= (a calibration set directory written by "
            f"write_calibration_set, or a calibration cache file); {DOCS}"
        )
    if precision != "int8" and calibration is not None:
        raise BackendError(
            f"tensorrt: calibration={calibration!r} is only used with precision 'int8', not {precision!r}"
        )


@dataclass(frozen=True)
class _Calibration:
    identity: str  # the engine key's calibration field
    data: CalibrationSet | None
    cache_file: Path


def _calibration(
    calibration: CalibrationSet | str | Path, algorithm: str, bundle: Bundle, trt_version: str, cache_dir: Path
) -> _Calibration:
    if isinstance(calibration, CalibrationSet):
        data = calibration
    else:
        path = Path(calibration).expanduser()
        if path.is_file():  # a TensorRT calibration cache, used as is
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            return _Calibration(f"cache:{algorithm}:{digest}", None, path)
        if not path.is_dir():
            raise BackendError(
                f"tensorrt: calibration {str(path)!r} is neither a calibration set directory nor a cache file"
            )
        data = load_calibration_set(path)
    cache_file = cache_dir / calibration_cache_name(bundle.checksum, data.sha256, algorithm, trt_version)
    return _Calibration(f"set:{algorithm}:{data.sha256}", data, cache_file)


def _parser_error(error: Any) -> str:
    def call(name: str) -> Any:
        method = getattr(error, name, None)
        return method() if callable(method) else None

    node, name, operator = call("node"), call("node_name"), call("node_operator")
    where = f"node {node}" if node is not None and node >= 0 else "graph"
    if name:
        where += f" {name!r}"
    if operator:
        where += f" ({operator})"
    return f"{where}: {call('desc')} [{call('code')}]"


def _serialize(bundle: Bundle, precision: str, workspace_mb: int, calibrator: Any, trt: Any) -> bytes:
    """Parse model.onnx and build a serialized engine (TensorRT 10 API)."""
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(bundle.onnx_path)):
        errors = "\n  ".join(_parser_error(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(
            f"{bundle.onnx_path}: TensorRT {trt.__version__} cannot parse the graph:\n  {errors}\n"
            f"(check it here with perception.backends.tensorrt_support.check_onnx_for_tensorrt; {DOCS})"
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32, also on Ampere and newer
    else:
        if not getattr(builder, "platform_has_fast_fp16", True):
            LOG.warning("tensorrt: this GPU has no fast FP16; the %s engine may be slow", precision)
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(
            f"{bundle.onnx_path}: TensorRT {trt.__version__} could not build a {precision} engine (see the "
            f"TensorRT errors logged above; workspace_mb={workspace_mb} may be too small); {DOCS}"
        )
    return bytes(serialized)


@dataclass(frozen=True)
class EngineBuild:
    """A cached engine for a bundle on this GPU: ``built`` False when an existing one matched;
    ``reason`` says why it was (re)built or reused."""

    path: Path
    key: EngineKey
    built: bool
    reason: str
    build_seconds: float = 0.0


def build_engine(
    bundle: Bundle | str | Path,
    precision: str = "fp16",
    *,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    calibration: CalibrationSet | str | Path | None = None,
    calibrator: str = "entropy",
    device: int = 0,
    force: bool = False,
) -> EngineBuild:
    """Make sure ``cache_dir`` holds an engine of ``bundle`` for ``precision``, this TensorRT
    and this GPU: reuse a matching one, else build and store it (``force``: always build).
    This is the ``fusion export --build-only`` step."""
    _check_options(precision, workspace_mb, calibrator, calibration)
    trt = _tensorrt()
    gpu_name, capability = _cuda_device(device)
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    cache_dir = Path(cache_dir).expanduser()
    resolved = (
        _calibration(calibration, calibrator, bundle, trt.__version__, cache_dir) if calibration is not None else None
    )
    key = EngineKey(
        bundle.checksum, precision, trt.__version__, gpu_name, capability, resolved.identity if resolved else ""
    )
    found = engine_cache.lookup(cache_dir, key)
    if found.path is not None and not force:
        LOG.info("tensorrt: %s", found.reason)
        return EngineBuild(found.path, key, False, found.reason)
    reason = "rebuild forced" if force else found.reason
    LOG.warning(
        "tensorrt: building a %s engine of %s for %s (sm %s) with TensorRT %s, because %s",
        precision,
        bundle.path,
        gpu_name,
        capability,
        trt.__version__,
        reason,
    )
    _log_support_problems(bundle)
    import torch

    with torch.cuda.device(device):
        feeder = make_calibrator(calibrator, resolved.data, resolved.cache_file, device=device) if resolved else None
        started = time.perf_counter()
        serialized = _serialize(bundle, precision, workspace_mb, feeder, trt)
        seconds = time.perf_counter() - started
    path = engine_cache.store(cache_dir, key, serialized, workspace_mb=workspace_mb, build_seconds=seconds)
    LOG.warning("tensorrt: engine built in %.1f s: %s", seconds, path)
    return EngineBuild(path, key, True, reason, seconds)


def _log_support_problems(bundle: Bundle) -> None:
    """The operator-table check before a build: advice in the log, never a reason to stop
    (TensorRT's parser decides)."""
    from perception.backends.tensorrt_support import SupportCheckError, check_onnx_for_tensorrt

    try:
        problems = check_onnx_for_tensorrt(bundle.onnx_path)
    except (SupportCheckError, ImportError) as exc:
        LOG.warning("tensorrt: operator table check skipped: %s", exc)
        return
    for problem in problems:
        LOG.warning("tensorrt: support table: %s", problem)


@dataclass(frozen=True)
class _Binding:
    name: str
    shape: tuple[int, ...]
    host: torch.Tensor  # pinned
    device: torch.Tensor

    @property
    def host_array(self) -> NDArray[Any]:
        return self.host.numpy()


class TensorRTBackend:
    """The network as a TensorRT engine (see the module docstring).

    Args:
        path: bundle directory (``fusion export``).
        precision: 'fp32', 'fp16' or 'int8'.
        workspace_mb: builder workspace memory pool limit, MiB.
        cache_dir: engine cache directory (created when missing).
        calibration: INT8 only: a CalibrationSet, its directory, or a calibration cache file.
        calibrator: 'entropy' (IInt8EntropyCalibrator2) or 'minmax' (IInt8MinMaxCalibrator).
        build_only: build / check the cached engine and stop (no execution context).
        threads: CPU threads for torch (host-side staging).
        device: CUDA device index.
    """

    name = "tensorrt"

    def __init__(
        self,
        path: str | Path,
        *,
        precision: str = "fp16",
        workspace_mb: int = DEFAULT_WORKSPACE_MB,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        calibration: CalibrationSet | str | Path | None = None,
        calibrator: str = "entropy",
        build_only: bool = False,
        threads: int = 2,
        device: int = 0,
    ) -> None:
        _check_options(precision, workspace_mb, calibrator, calibration)
        trt = _tensorrt()
        _cuda_device(device)
        import torch

        torch.set_num_threads(threads)
        self.bundle = load_bundle(path)
        self.config = self.bundle.config
        self.precision = precision
        options: dict[str, Any] = {
            "workspace_mb": workspace_mb,
            "cache_dir": cache_dir,
            "calibration": calibration,
            "calibrator": calibrator,
            "device": device,
        }
        self.build = build_engine(self.bundle, precision, **options)
        self.last_timings_ms: dict[str, float] = {}
        self.engine: Any = None
        self.context: Any = None
        self._inputs: list[_Binding] = []
        self._outputs: list[_Binding] = []
        if build_only:
            return
        self.device = torch.device("cuda", device)
        with torch.cuda.device(self.device):  # engine, context and buffers on the chosen GPU
            self.engine = self._deserialize(trt)
            if self.engine is None:  # e.g. an engine of a TensorRT build with the same version string
                LOG.warning("tensorrt: %s could not be deserialized; rebuilding it", self.build.path)
                self.build = build_engine(self.bundle, precision, force=True, **options)
                self.engine = self._deserialize(trt)
                if self.engine is None:
                    raise BackendError(
                        f"{self.build.path}: TensorRT {trt.__version__} cannot deserialize the engine it built"
                    )
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise BackendError(f"{self.build.path}: no execution context (GPU memory exhausted?)")
            self.stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
            self._bind(trt)

    @property
    def engine_path(self) -> Path:
        return self.build.path

    def _deserialize(self, trt: Any) -> Any:
        runtime = trt.Runtime(_logger(trt))
        self._runtime = runtime  # the engine must not outlive its runtime
        return runtime.deserialize_cuda_engine(self.build.path.read_bytes())

    def _bind(self, trt: Any) -> None:
        import torch

        dtypes = {
            getattr(trt.DataType, name): dtype
            for name, dtype in (
                ("FLOAT", torch.float32),
                ("HALF", torch.float16),
                ("BF16", torch.bfloat16),
                ("INT32", torch.int32),
                ("INT64", torch.int64),
                ("INT8", torch.int8),
                ("UINT8", torch.uint8),
                ("BOOL", torch.bool),
            )
            if hasattr(trt.DataType, name)
        }
        manifest = {spec["name"]: spec for spec in (*self.bundle.manifest["inputs"], *self.bundle.manifest["outputs"])}
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            shape = tuple(int(d) for d in self.engine.get_tensor_shape(name))
            spec = manifest.get(name)
            if spec is None or tuple(spec["shape"]) != shape:
                raise BackendError(
                    f"{self.build.path}: engine tensor {name!r} has shape {shape}, the bundle manifest "
                    f"{self.bundle.path / 'manifest.json'} says {spec and spec['shape']}"
                )
            dtype = dtypes.get(self.engine.get_tensor_dtype(name))
            if dtype is None:
                found = self.engine.get_tensor_dtype(name)
                raise BackendError(f"{self.build.path}: engine tensor {name!r} has unsupported type {found}")
            binding = _Binding(
                name,
                shape,
                torch.empty(shape, dtype=dtype, pin_memory=True),
                torch.empty(shape, dtype=dtype, device=self.device),
            )
            if not self.context.set_tensor_address(name, binding.device.data_ptr()):
                raise BackendError(f"{self.build.path}: set_tensor_address failed for {name!r}")
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs).append(binding)
        missing = set(OUTPUT_NAMES) - {b.name for b in self._outputs}
        if missing:
            raise BackendError(f"{self.build.path}: engine has no output {sorted(missing)}")

    def infer(self, inputs: Arrays) -> Outputs:
        """Raw outputs for one frame's inputs (no batch axis; the engine's inputs by name)."""
        import torch

        if self.context is None:
            raise BackendError(f"tensorrt: {self.build.path} was opened with build_only=True; it cannot run")
        staged = time.perf_counter()
        for binding in self._inputs:
            if binding.name not in inputs:
                raise BackendError(f"tensorrt: the frame has no input {binding.name!r} (engine {self.build.path.name})")
            array = np.asarray(inputs[binding.name])
            if array.shape != binding.shape[1:]:
                raise BackendError(
                    f"tensorrt: input {binding.name!r} has shape {array.shape}; the engine takes {binding.shape[1:]} "
                    "(without the batch axis)"
                )
            binding.host_array[0] = array
        staged_ms = (time.perf_counter() - staged) * 1e3
        events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]  # type: ignore[no-untyped-call]
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            events[0].record(self.stream)
            for binding in self._inputs:
                binding.device.copy_(binding.host, non_blocking=True)
            events[1].record(self.stream)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise BackendError(f"tensorrt: execute_async_v3 failed on {self.build.path.name}")
            events[2].record(self.stream)
            for binding in self._outputs:
                binding.host.copy_(binding.device, non_blocking=True)
            events[3].record(self.stream)
        events[3].synchronize()
        self.last_timings_ms = {
            "stage": staged_ms,
            "h2d": events[0].elapsed_time(events[1]),
            "inference": events[1].elapsed_time(events[2]),
            "d2h": events[2].elapsed_time(events[3]),
        }
        results = {b.name: b.host_array.astype(np.float32, copy=True) for b in self._outputs}
        return results["heatmap"], results["regression"], results["segmentation"]

"""An INT8 copy of a bundle's ONNX graph for ONNX Runtime on CPUs (static quantization).

TensorRT quantizes at engine build time from ``model.onnx`` and a calibrator
(perception.backends.int8_calibration). ONNX Runtime's CPU provider needs the quantization in
the graph: this copy is ``model.onnx`` with QuantizeLinear / DequantizeLinear pairs around
the convolutions (QDQ format; weights int8 per output channel, activations uint8 per tensor),
which the CPU provider fuses into integer convolutions (VNNI / AVX-512 / AVX2 kernels). Only
convolutions are quantized: they are nearly all of the arithmetic, while the camera lift's
gathers and the presence masks stay float32. The interface is unchanged (float32 and int64
inputs, float32 outputs), so every caller works with either graph.

Two sets of convolutions stay float32:

- the lidar and radar encoders (:data:`KEEP_FLOAT`). Their inputs mix channels of very
  different ranges (lidar: log point counts, heights in metres, intensity, time lag; radar:
  Doppler velocities, RCS, counts) in one tensor, which per-tensor activation quantization
  cannot hold. Quantizing only the lidar encoder's two convolutions moved the heatmap logits
  by 1.6 on average, and quantizing everything cost 5.6 mAP points on held-out seed 900. The
  radar encoder quantized well in the recipe-v3 weights but not after recipe v5's radar-dropout
  fine-tunes: alone it moved the logits by 1.14 on average (every other stage alone:
  0.01-0.14), and the copy with it quantized lost 0.8 mAP points on the held-out drives;
- the last convolution before each graph output (the heads' logits and box regressions: few
  channels, little arithmetic, and their rounding goes straight into scores and boxes; keeping
  them float gained 2 mAP points on seed 900).

Both cost part of the speed-up (docs/BENCHMARKS.md has the figures).

The figures were measured on an x86 CPU with AVX-512 VNNI. On x86 CPUs without VNNI, ONNX
Runtime's uint8 x int8 kernels can saturate their 16-bit intermediate sums (its documentation
suggests ``reduce_range`` there); check such a machine with ``fusion eval --precision int8``
before relying on the copy.

Whether a rule that served one set of weights serves the next is measured, not assumed: the
radar encoder quantized well before recipe v5 and badly after it. :func:`measure_drift` runs
both graphs on check frames (the export draws them with another seed than the calibration
frames) and reports how far the INT8 outputs
move (:class:`Int8Drift`); ``fusion export --int8`` records that in the manifest and warns
when it is over :data:`MAX_CENTRE_DRIFT` or :data:`MAX_SEGMENTATION_DRIFT`.

Activation ranges come from the same reproducible calibration set TensorRT uses (frames of
simulated shards through the runtime's own input path); its sha256 is recorded in the bundle
manifest. ``method`` is ``percentile`` (the default: each range clipped at the 99.999th
percentile of the calibration activations), ``minmax`` or ``entropy``. Measured on held-out
seed 900 with 64 frames: percentile kept mAP within 0.07 points and the drivable IoU equal;
minmax let one outlying frame widen a range so far that the drivable IoU fell from 0.886 to
0.557 (with 32 other frames: 0.877); entropy gave exactly the minmax graph with onnxruntime
1.32. Quantization is ``onnxruntime.quantization`` of the pinned onnxruntime: no new
dependency, and the kernels that run the result come from the same build.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from perception.backends.bundle import BundleError, graph_interface
from perception.backends.int8_calibration import CalibrationSet

#: Calibration methods, the default first.
METHODS: Final = ("percentile", "minmax", "entropy")
#: Convolutions whose ONNX node name starts with one of these stay float32 (module paths of
#: perception.model.network as torch.onnx names the nodes).
KEEP_FLOAT: Final = ("/lidar/", "/radar/")
#: What the copy is made with (recorded in the manifest).
QUANTIZER: Final = (
    f"onnxruntime.quantization (QDQ, Conv but {list(KEEP_FLOAT)} and the last before each output, "
    "per-channel int8 weights, uint8 activations)"
)
#: Largest mean change of the centre-heatmap probabilities (where either graph is above
#: :data:`OBJECT_PROBABILITY`) that an INT8 copy may show: the copies that kept held-out mAP
#: within 0.4 points moved them by about 0.01, the recipe-v5 copy with the radar encoder
#: quantized (0.8 points lost) by 0.084.
MAX_CENTRE_DRIFT: Final = 0.02
#: Largest mean change of the segmentation probabilities (measured copies: 0.002-0.007).
MAX_SEGMENTATION_DRIFT: Final = 0.015
#: Heatmap cells above this probability in either graph are "near an object" for the drift.
OBJECT_PROBABILITY: Final = 0.1


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over a calibration set: one feed per call,
    limited to the inputs the graph still has (constant folding can drop unused ones)."""

    def __init__(self, calibration: CalibrationSet, names: set[str]) -> None:
        self._batches = calibration.batches()
        self._names = names

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self._batches, None)
        return None if batch is None else {k: v for k, v in batch.items() if k in self._names}


def _last_convolutions(model: onnx.ModelProto) -> set[str]:
    """Names of the convolutions that reach a graph output through no other convolution."""
    producer = {output: node for node in model.graph.node for output in node.output}
    found: set[str] = set()
    pending = [value.name for value in model.graph.output]
    seen: set[str] = set()
    while pending:
        tensor = pending.pop()
        node = producer.get(tensor)
        if node is None or tensor in seen:
            continue
        seen.add(tensor)
        if node.op_type == "Conv":
            found.add(node.name)
        else:
            pending.extend(node.input)
    return found


def to_int8(
    source: str | Path,
    out: str | Path,
    calibration: CalibrationSet,
    method: str = METHODS[0],
    *,
    keep_float: tuple[str, ...] = KEEP_FLOAT,
) -> Path:
    """Write the INT8 (QDQ) copy of the ONNX graph ``source`` to ``out``, calibrated on
    ``calibration``, and return ``out``. Convolutions whose node name starts with one of
    ``keep_float`` stay float32 (default :data:`KEEP_FLOAT`; other rules are for measuring
    which stages quantize well).

    Raises :class:`BundleError` naming ``source`` when the graph cannot be read, the method is
    unknown, the calibration batches do not fit the graph, or the copy changes the interface."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise BundleError(f"{source}: INT8 calibration method {method!r} is not one of {list(METHODS)}")
    source, out = Path(source), Path(out)
    try:
        model = onnx.load(str(source))
    except (OSError, DecodeError) as exc:
        raise BundleError(f"{source}: not a readable ONNX graph ({exc})") from exc
    before = graph_interface(model)
    names = {value.name for value in model.graph.input}
    last = _last_convolutions(model)
    quantized = [
        node.name
        for node in model.graph.node
        if node.op_type == "Conv" and not node.name.startswith(keep_float) and node.name not in last
    ]
    with tempfile.TemporaryDirectory(prefix="int8_") as work:
        prepared = Path(work) / "prepared.onnx"
        # shape inference and graph clean-up first, as onnxruntime recommends for static quantization
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        try:
            quantize_static(
                str(prepared),
                str(out),
                _Batches(calibration, names),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["Conv"],
                nodes_to_quantize=quantized,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method={
                    "percentile": CalibrationMethod.Percentile,
                    "minmax": CalibrationMethod.MinMax,
                    "entropy": CalibrationMethod.Entropy,
                }[method],
                extra_options={"CalibTensorRangeSymmetric": False},
            )
        except (ValueError, KeyError, RuntimeError) as exc:  # onnxruntime raises its own untyped errors too
            raise BundleError(f"{source}: INT8 quantization with {calibration.path} failed: {exc}") from exc
    after = graph_interface(onnx.load(str(out)))
    if after != before:
        raise BundleError(f"{source}: the INT8 copy changed the graph interface from {before} to {after}")
    return out


@dataclass(frozen=True)
class Int8Drift:
    """How far an INT8 copy's outputs move from the FP32 graph's on the same frames.

    ``centre``: mean absolute change of the class-heatmap probabilities over the cells where
    either graph exceeds :data:`OBJECT_PROBABILITY` (``centre_cells`` of them, over all
    frames); ``segmentation``: mean absolute change of the segmentation probabilities over every
    cell; ``peaks_kept``: share of (frame, class) pairs whose strongest heatmap cell is the same
    cell in both graphs; ``frames``: frames compared."""

    frames: int
    centre_cells: int
    centre: float
    segmentation: float
    peaks_kept: float

    def problems(self) -> list[str]:
        """What is over its bound, one sentence each (empty: the copy is within both)."""
        found = []
        if not self.centre <= MAX_CENTRE_DRIFT:  # NaN is a problem too
            found.append(f"centre probabilities move by {self.centre:.3f} on average (bound {MAX_CENTRE_DRIFT})")
        if not self.segmentation <= MAX_SEGMENTATION_DRIFT:
            found.append(
                f"segmentation probabilities move by {self.segmentation:.3f} on average "
                f"(bound {MAX_SEGMENTATION_DRIFT})"
            )
        return found


def measure_drift(fp32: str | Path, int8: str | Path, batches: Iterable[Mapping[str, np.ndarray]]) -> Int8Drift:
    """Run the ONNX graphs ``fp32`` and ``int8`` (same interface) with ONNX Runtime on each
    batch of network inputs (name -> array with the batch axis, as
    :meth:`CalibrationSet.batches` yields) and return the :class:`Int8Drift` of ``int8``.

    Raises :class:`BundleError` when there is no batch."""
    import onnxruntime

    from perception.model.decode import sigmoid

    sessions = [onnxruntime.InferenceSession(str(g), providers=["CPUExecutionProvider"]) for g in (fp32, int8)]
    names = [value.name for value in sessions[0].get_inputs()]
    centre_sum = segmentation_sum = 0.0
    centre_cells = segmentation_cells = frames = 0
    peaks: list[bool] = []
    for batch in batches:
        feed = {name: batch[name] for name in names}
        (heat_32, _, seg_32), (heat_8, _, seg_8) = (session.run(None, feed) for session in sessions)
        p32, p8 = sigmoid(heat_32).astype(np.float64), sigmoid(heat_8).astype(np.float64)
        objects = (p32 > OBJECT_PROBABILITY) | (p8 > OBJECT_PROBABILITY)
        centre_sum += float(np.abs(p8 - p32)[objects].sum())
        centre_cells += int(objects.sum())
        segmentation_sum += float(np.abs(sigmoid(seg_8).astype(np.float64) - sigmoid(seg_32)).sum())
        segmentation_cells += seg_32.size
        flat_32, flat_8 = (h.reshape(h.shape[0] * h.shape[1], -1) for h in (heat_32, heat_8))
        peaks.extend(np.argmax(flat_32, axis=1) == np.argmax(flat_8, axis=1))
        frames += heat_32.shape[0]
    if frames == 0:
        raise BundleError(f"{int8}: no frames to compare with {fp32}")
    return Int8Drift(
        frames=frames,
        centre_cells=centre_cells,
        centre=centre_sum / centre_cells if centre_cells else 0.0,
        segmentation=segmentation_sum / segmentation_cells,
        peaks_kept=float(np.mean(peaks)),
    )

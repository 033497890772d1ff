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
from pathlib import Path
from typing import Any, Final

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


def to_int8(source: str | Path, out: str | Path, calibration: CalibrationSet, method: str = METHODS[0]) -> Path:
    """Write the INT8 (QDQ) copy of the ONNX graph ``source`` to ``out``, calibrated on
    ``calibration``, and return ``out``.

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
        if node.op_type == "Conv" and not node.name.startswith(KEEP_FLOAT) and node.name not in last
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

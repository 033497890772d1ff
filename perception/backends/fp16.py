"""An FP16 copy of a bundle's ONNX graph, for ONNX Runtime (the accuracy check of FP16 engines).

TensorRT builds its FP16 engine from the FP32 ``model.onnx`` itself (a builder flag); this copy
exists so that the FP16 accuracy can be measured on any machine with ONNX Runtime (``fusion
eval --backend onnxruntime --precision fp16``), and run on GPUs through ONNX Runtime's CUDA
provider. The copy has the same interface as ``model.onnx``: float32 inputs and outputs (a Cast
at each float graph input and output), int64 lookup-table inputs untouched. Inside, weights,
Constant tensors and activations are float16; ops whose inputs ONNX fixes to float32 (Resize
``scales``) get a Cast back to float32.

Why ONNX Runtime's own converter (``onnxruntime.transformers.float16``): it ships with the
pinned ``onnxruntime`` (no new dependency) and is the converter Microsoft's Olive uses. The
stand-alone ``onnxconverter-common`` 1.16.0, which the ONNX Runtime documentation names, fails
on this graph, and the cause is the graph's own ``Cast(to=FLOAT)`` of ``camera_present`` (from
``camera_present.to(features.dtype)`` in perception.bev.camera_lift_torch):

- without ``keep_io_types`` it marks that Cast's output float16 but leaves ``to=FLOAT``, an
  invalid model (onnxconverter-common issues #320 and #331, a 1.15 regression; the fixes, pull
  requests #326 and #328, are unmerged);
- with ``keep_io_types=True`` its cast clean-up takes that Cast for one of its own, meets a
  tensor with two consumers and crashes (``'list' object has no attribute 'input'``).

Blocking that node (``node_block_list``) works around both, but depends on those internals.
ONNX Runtime's fork retargets ``Cast(to=FLOAT)`` to float16, keeps Resize scales float32 and uses
float16's real limits. It appends its Casts at the end of the node list, so this module sorts
the graph topologically afterwards, then checks the result: ``onnx.checker`` with full shape
inference, and the same input and output names, element types and shapes as the source.
Importing the converter appends its folder to ``sys.path`` (the package does that itself); it is
imported only when a copy is written.

What ONNX Runtime's CPU provider measures: on x86 it has no float16 Conv, so it runs the
convolutions in float32 on the float16 weights and drops the float16 round trips between
them; activations are rounded to float16 only where float16 kernels run (concatenations, the
camera lift's gathers, reshapes). A GPU engine rounds every activation. On the preview network
a torch emulation that rounds every module's output to float16 moved outputs about twice as
much (still within the test's bound); mAP on the held-out drive (seed 900, preview bundle)
moved by -0.004 points there and by +0.016 points with this copy on ONNX Runtime.

Values float16 cannot hold are refused, not clamped: a weight or constant whose magnitude is
above 65504 raises :class:`~perception.backends.bundle.BundleError` naming the tensor (the
converter would clamp it silently). Values below float16's smallest subnormal (5.96e-8) become
that subnormal, as in the converter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from numpy.typing import NDArray
from onnx import numpy_helper

from perception.backends.bundle import BundleError, graph_interface

#: Largest finite float16 value; larger weights or constants are refused.
FP16_MAX: Final = float(np.finfo(np.float16).max)
#: Where the converter comes from (recorded in the manifest).
CONVERTER: Final = "onnxruntime.transformers.float16"


def _float_tensors(model: onnx.ModelProto) -> list[tuple[str, NDArray[np.float32]]]:
    """(name, array) of every float32 initializer and Constant value of the main graph."""
    tensors = [
        (t.name, numpy_helper.to_array(t)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT
    ]
    for node in model.graph.node:
        for attribute in node.attribute:
            if (
                node.op_type == "Constant"
                and attribute.name == "value"
                and attribute.t.data_type == onnx.TensorProto.FLOAT
            ):
                tensors.append((f"{node.name} (Constant)", numpy_helper.to_array(attribute.t)))
    return tensors


def _check_range(model: onnx.ModelProto, source: Path) -> None:
    for name, array in _float_tensors(model):
        finite = np.abs(array[np.isfinite(array)])
        if finite.size and float(finite.max()) > FP16_MAX:
            raise BundleError(
                f"{source}: tensor {name!r} holds {float(finite.max()):.6g}, beyond float16's "
                f"largest value {FP16_MAX:g}; no FP16 copy of this graph"
            )


def _sort_topologically(graph: onnx.GraphProto, source: Path) -> None:
    """Reorder ``graph.node`` so that every node comes after the producers of its inputs
    (stable: nodes already in order keep their order)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = [onnx.NodeProto.FromString(n.SerializeToString()) for n in graph.node]
    ordered: list[onnx.NodeProto] = []
    while pending:
        waiting = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            missing = sorted({name for n in waiting for name in n.input if name not in available})
            raise BundleError(f"{source}: the FP16 graph has inputs that no node produces: {missing[:5]}")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(source: str | Path, out: str | Path) -> Path:
    """Write an FP16 copy of the ONNX graph ``source`` to ``out`` and return ``out``.

    The copy has the inputs and outputs of ``source`` (names, element types, static shapes);
    float32 weights, Constant tensors and activations become float16 inside. Raises
    :class:`BundleError` naming ``source`` when the graph cannot be read, holds a value beyond
    float16's range, or its converted form fails the ONNX checker."""
    source, out = Path(source), Path(out)
    try:
        model = onnx.load(str(source))
    except (OSError, DecodeError) as exc:
        raise BundleError(f"{source}: not a readable ONNX graph ({exc})") from exc
    _check_range(model, source)
    before = graph_interface(model)

    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted: onnx.ModelProto = convert_float_to_float16(model, keep_io_types=True)
    _sort_topologically(converted.graph, source)
    try:
        onnx.checker.check_model(converted, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise BundleError(f"{source}: the FP16 copy fails the ONNX checker: {exc}") from exc
    after = graph_interface(converted)
    if after != before:
        raise BundleError(f"{source}: the FP16 copy changed the graph interface from {before} to {after}")
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(out))
    return out

"""Inference backends behind one interface, chosen by name.

A backend runs the network on one frame's inputs (perception.model.inputs, no batch axis)
and returns the raw outputs (heatmap, regression, segmentation), each with a batch axis of 1,
as float32 numpy arrays. :class:`perception.backends.base.Predictor` adds decoding and
per-stage timing on top of any backend:

    torch        perception.backends.torch_backend     eager PyTorch (checkpoint or bundle)
    onnxruntime  perception.backends.onnxruntime_backend  CPU provider; CUDA / TensorRT providers when present
    tensorrt     perception.backends.tensorrt_backend  TensorRT 10 engine built from a bundle, cached

Modules are imported only when their backend is chosen (torch, onnxruntime and tensorrt are
heavy or absent).
"""

from perception.backends.base import BACKENDS, Backend, BackendError, Predictor, load_backend

__all__ = ["BACKENDS", "Backend", "BackendError", "Predictor", "load_backend"]

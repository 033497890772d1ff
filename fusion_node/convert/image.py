"""``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` <-> numpy arrays.

Arrays are row-major (H, W) for single-channel encodings and (H, W, C) otherwise, pixel
(0, 0) top-left, channels in the order the encoding names them (bgr8 -> B, G, R).
Readers duck-type rclpy and rosbags messages; builders return rclpy messages.
"""

from __future__ import annotations

import sys
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray
from sensor_msgs.msg import CompressedImage, Image

from fusion_node.convert._common import (
    as_flag,
    as_int,
    as_str,
    byte_buffer,
    get_attr,
    new_byte_array,
)
from fusion_node.convert.motion import make_header
from fusion_node.errors import (
    ConversionError,
    InvalidArrayError,
    MalformedMessageError,
    UnsupportedEncodingError,
)

#: Image encoding -> (numpy dtype of one channel, channels).
IMAGE_ENCODINGS: Final[dict[str, tuple[np.dtype[Any], int]]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}

#: Compressed codecs: name -> (cv2.imencode extension, leading signature bytes).
_CODECS: Final = {"jpeg": (".jpg", b"\xff\xd8\xff"), "png": (".png", b"\x89PNG\r\n\x1a\n")}
_CODEC_ALIASES: Final = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_NATIVE_BIGENDIAN: Final = sys.byteorder == "big"


def _lookup_encoding(encoding: str, *, msg_type: str, source: str) -> tuple[np.dtype[Any], int]:
    entry = IMAGE_ENCODINGS.get(encoding)
    if entry is None:
        raise UnsupportedEncodingError(
            f"unknown encoding '{encoding}'; supported: {sorted(IMAGE_ENCODINGS)}",
            msg_type=msg_type,
            source=source,
            field="encoding",
        )
    return entry


def image_to_array(msg: Any, *, source: str = "") -> NDArray[Any]:
    """Image -> (H, W) or (H, W, C) array of the encoding's dtype, native byte order.

    Shape/dtype per encoding: mono8 (H, W) uint8; mono16/16UC1 (H, W) uint16 (16UC1 is
    usually depth in millimetres); 32FC1 (H, W) float32 (usually depth in metres);
    rgb8/bgr8 (H, W, 3) uint8; rgba8/bgra8 (H, W, 4) uint8. Row padding (step >
    width*bytes_per_pixel) is stripped and big-endian data byte-swapped (new array);
    otherwise the result is a ZERO-COPY view of ``msg.data`` (read-only when the buffer is).

    Raises:
        UnsupportedEncodingError: encoding not in :data:`IMAGE_ENCODINGS`.
        MalformedMessageError: step < width*bytes_per_pixel, len(data) != height*step,
            non-integer sizes.
    """
    kind = "Image"

    def field(name: str) -> Any:
        return get_attr(msg, name, msg_type=kind, source=source)

    encoding = as_str(field("encoding"), "encoding", msg_type=kind, source=source)
    dtype, channels = _lookup_encoding(encoding, msg_type=kind, source=source)
    height = as_int(field("height"), "height", msg_type=kind, source=source)
    width = as_int(field("width"), "width", msg_type=kind, source=source)
    step = as_int(field("step"), "step", msg_type=kind, source=source)
    bigendian = as_flag(field("is_bigendian"), "is_bigendian", msg_type=kind, source=source)
    pixel_bytes = dtype.itemsize * channels
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise MalformedMessageError(
            f"step {step} < width*bytes_per_pixel = {row_bytes} (width={width}, "
            f"encoding '{encoding}' has {pixel_bytes} bytes per pixel)",
            msg_type=kind,
            source=source,
            field="step",
        )
    buffer = byte_buffer(field("data"), msg_type=kind, source=source)
    if buffer.size != height * step:
        raise MalformedMessageError(
            f"data has {buffer.size} bytes but height*step = {height * step} (height={height}, step={step})",
            msg_type=kind,
            source=source,
            field="data",
        )
    wire = dtype.newbyteorder(">" if bigendian else "<")
    native = dtype.newbyteorder("=")
    shape = (height, width) if channels == 1 else (height, width, channels)
    if height * width == 0:
        return np.zeros(shape, dtype=native)
    if step == row_bytes and wire.isnative:
        return np.frombuffer(buffer, dtype=wire, count=height * width * channels).reshape(shape)
    view = np.ndarray(
        (height, width, channels),
        dtype=wire,
        buffer=buffer,
        strides=(step, pixel_bytes, dtype.itemsize),
    )
    return view.astype(native).reshape(shape)


def array_to_image(array: NDArray[Any], encoding: str, *, frame_id: str, stamp_ns: int) -> Image:
    """(H, W) / (H, W, 1) / (H, W, C) array -> Image with an unpadded step.

    ``array`` must have the encoding's dtype (any byte order) and channel count (see
    :func:`image_to_array`); data is written in native byte order (is_bigendian set
    accordingly). Raises UnsupportedEncodingError for an unknown encoding and
    InvalidArrayError for a dtype/shape mismatch.
    """
    dtype, channels = _lookup_encoding(encoding, msg_type="Image", source="array_to_image")
    if not isinstance(array, np.ndarray):
        raise InvalidArrayError(f"array_to_image: expected a numpy array, got {type(array).__name__}")
    if array.dtype.names is not None or array.dtype.newbyteorder("=") != dtype:
        raise InvalidArrayError(f"array_to_image: encoding '{encoding}' needs dtype {dtype}, got {array.dtype}")
    ok_shape = (
        (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1))
        if channels == 1
        else (array.ndim == 3 and array.shape[2] == channels)
    )
    if not ok_shape:
        expected = "(H, W)" if channels == 1 else f"(H, W, {channels})"
        raise InvalidArrayError(f"array_to_image: encoding '{encoding}' needs shape {expected}, got {array.shape}")
    pixels = np.ascontiguousarray(array, dtype=dtype.newbyteorder("="))
    height, width = pixels.shape[:2]
    msg = Image()
    msg.header = make_header(frame_id, stamp_ns)
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = int(_NATIVE_BIGENDIAN and dtype.itemsize > 1)
    msg.step = width * channels * dtype.itemsize
    msg.data = new_byte_array(pixels)
    return msg


def _parse_format(fmt: str, *, source: str) -> tuple[str, str]:
    """(codec, payload encoding or "") from "jpeg" / "png" / "bgr8; jpeg compressed bgr8"."""

    def unsupported(detail: str) -> UnsupportedEncodingError:
        return UnsupportedEncodingError(
            f"format '{fmt}' {detail}; expected 'jpeg', 'jpg', 'png' or an image_transport "
            "string such as 'bgr8; jpeg compressed bgr8'",
            msg_type="CompressedImage",
            source=source,
            field="format",
        )

    text = fmt.strip().lower()
    tokens = (text.split(";", 1)[1] if ";" in text else text).split()
    if "compresseddepth" in tokens:
        raise unsupported("is compressedDepth, which is not supported")
    codecs = [_CODEC_ALIASES[t] for t in tokens if t in _CODEC_ALIASES]
    if len(codecs) != 1 or tokens[0] not in _CODEC_ALIASES:
        raise unsupported("is not a known compressed image format")
    payload = ""
    if "compressed" in tokens:
        index = tokens.index("compressed")
        payload = tokens[index + 1] if index + 1 < len(tokens) else ""
    return codecs[0], payload


def _checked_payload(msg: Any, source: str) -> tuple[str, str, str, NDArray[np.uint8]]:
    """(format, codec, payload encoding, data) after the format and signature checks."""
    kind = "CompressedImage"
    fmt = as_str(get_attr(msg, "format", msg_type=kind, source=source), "format", msg_type=kind, source=source)
    codec, payload = _parse_format(fmt, source=source)
    buffer = byte_buffer(get_attr(msg, "data", msg_type=kind, source=source), msg_type=kind, source=source)
    signature = _CODECS[codec][1]
    head = bytes(buffer[: len(signature)])
    if head != signature:
        raise MalformedMessageError(
            f"data ({buffer.size} bytes) does not start with the {codec} signature "
            f"{signature.hex()} (got {head.hex() or 'nothing'}) for format '{fmt}'",
            msg_type=kind,
            source=source,
            field="data",
        )
    return fmt, codec, payload, buffer


def check_compressed(msg: Any, *, source: str = "") -> str:
    """Cheap CompressedImage check without decoding: known format (see
    :func:`compressed_to_array`) and data starting with that codec's signature.

    Returns the codec, "jpeg" or "png". Raises UnsupportedEncodingError for an unknown
    format and MalformedMessageError for empty data or a wrong signature.
    """
    return _checked_payload(msg, source)[1]


def compressed_to_array(msg: Any, *, source: str = "") -> NDArray[Any]:
    """CompressedImage (jpeg/png) -> decoded pixels.

    Returns:
        Colour images: (H, W, 3) uint8 BGR (alpha dropped; 16-bit colour PNG scaled to 8
        bit; an image_transport payload declared "rgb8" is swapped to BGR). Grayscale:
        (H, W) uint8, or uint16 for a 16-bit PNG.

    Raises:
        UnsupportedEncodingError: unknown format or compressedDepth.
        MalformedMessageError: empty data, bytes not starting with the declared codec's
            signature, or undecodable bytes.
    """
    kind = "CompressedImage"
    fmt, codec, payload, buffer = _checked_payload(msg, source)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise MalformedMessageError(
            f"cannot decode {buffer.size} bytes as {codec}: {exc}",
            msg_type=kind,
            source=source,
            field="data",
        ) from None
    if image is None or image.size == 0:
        raise MalformedMessageError(
            f"cannot decode {buffer.size} bytes as {codec} (format '{fmt}')",
            msg_type=kind,
            source=source,
            field="data",
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.dtype != np.uint8:
        image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else (np.clip(image, 0, 255).astype(np.uint8))
    image = image[:, :, :3]
    if payload.startswith("rgb"):
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


def array_to_compressed(
    array: NDArray[Any],
    fmt: str = "jpeg",
    *,
    frame_id: str,
    stamp_ns: int,
    quality: int = 90,
) -> CompressedImage:
    """(H, W, 3) uint8 BGR or (H, W) uint8 mono (uint16 mono for png) -> CompressedImage.

    ``fmt`` is "jpeg"/"jpg" (``quality`` 0..100) or "png" (lossless, quality ignored). The
    message format is image_transport style, e.g. "bgr8; jpeg compressed bgr8".
    """
    codec = _CODEC_ALIASES.get(fmt.strip().lower()) if isinstance(fmt, str) else None
    if codec is None:
        raise UnsupportedEncodingError(f"array_to_compressed: unknown format {fmt!r}; expected 'jpeg', 'jpg' or 'png'")
    if not isinstance(array, np.ndarray):
        raise InvalidArrayError(f"array_to_compressed: expected a numpy array, got {type(array).__name__}")
    pixels = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    if pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8:
        encoding = "bgr8"
    elif pixels.ndim == 2 and pixels.dtype == np.uint8:
        encoding = "mono8"
    elif pixels.ndim == 2 and pixels.dtype == np.uint16 and codec == "png":
        encoding = "mono16"
    else:
        raise InvalidArrayError(
            f"array_to_compressed: {codec} needs (H, W, 3) uint8 BGR or (H, W) uint8"
            f"{' / uint16' if codec == 'png' else ''}, got {array.shape} {array.dtype}"
        )
    if min(pixels.shape[:2]) == 0:
        raise InvalidArrayError(f"array_to_compressed: empty image of shape {array.shape}")
    if codec == "jpeg":
        if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
            raise InvalidArrayError(f"array_to_compressed: quality must be an int in [0, 100], got {quality!r}")
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    else:
        params = []
    try:
        ok, encoded = cv2.imencode(_CODECS[codec][0], np.ascontiguousarray(pixels), params)
    except cv2.error as exc:  # pragma: no cover - inputs validated above
        raise ConversionError(f"array_to_compressed: cv2.imencode failed: {exc}") from None
    if not ok:  # pragma: no cover - inputs validated above
        raise ConversionError(f"array_to_compressed: cv2.imencode could not encode {codec}")
    msg = CompressedImage()
    msg.header = make_header(frame_id, stamp_ns)
    msg.format = f"{encoding}; {codec} compressed {encoding}"
    msg.data = new_byte_array(encoded)
    return msg

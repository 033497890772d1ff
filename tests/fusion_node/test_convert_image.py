"""Image / CompressedImage <-> numpy: encodings, padding, byte order, codecs, errors."""

from __future__ import annotations

import array
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image

from fusion_node.convert import (
    IMAGE_ENCODINGS,
    array_to_compressed,
    array_to_image,
    check_compressed,
    compressed_to_array,
    image_to_array,
)
from fusion_node.errors import (
    InvalidArrayError,
    MalformedMessageError,
    UnsupportedEncodingError,
)

TOPIC = "/sensing/camera/front/image_raw"
TYPESTORE = get_typestore(Stores.ROS2_KILTED)


def random_image(encoding: str, height: int = 5, width: int = 7, seed: int = 0) -> np.ndarray:
    dtype, channels = IMAGE_ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        return rng.normal(size=shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def image_msg(
    pixels: np.ndarray, encoding: str, *, step: int | None = None, bigendian: bool = False, pad_byte: int = 0xAB
) -> Image:
    """An Image built by hand (not by the code under test), optionally padded/big-endian."""
    height, width = pixels.shape[:2]
    order = ">" if bigendian else "<"
    rows = pixels.astype(pixels.dtype.newbyteorder(order)).reshape(height, -1)
    row_bytes = rows.shape[1] * rows.dtype.itemsize
    step = row_bytes if step is None else step
    data = b"".join(row.tobytes() + bytes([pad_byte]) * (step - row_bytes) for row in rows)
    msg = Image()
    msg.height, msg.width, msg.encoding, msg.step = height, width, encoding, step
    msg.is_bigendian = int(bigendian)
    msg.data = data
    return msg


def smooth_bgr(height: int = 48, width: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).clip(0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- raw images


@pytest.mark.parametrize("encoding", sorted(IMAGE_ENCODINGS))
def test_round_trip_every_encoding(encoding: str) -> None:
    pixels = random_image(encoding)
    msg = array_to_image(pixels, encoding, frame_id="camera", stamp_ns=5_000_000_001)
    dtype, channels = IMAGE_ENCODINGS[encoding]
    assert msg.step == 7 * channels * dtype.itemsize
    assert msg.encoding == encoding
    assert msg.header.frame_id == "camera"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (5, 1)
    out = image_to_array(msg, source=TOPIC)
    assert out.dtype == dtype
    assert out.shape == pixels.shape
    np.testing.assert_array_equal(out, pixels)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))  # zero-copy


@pytest.mark.parametrize("encoding", sorted(IMAGE_ENCODINGS))
def test_padded_step_is_stripped(encoding: str) -> None:
    pixels = random_image(encoding, seed=1)
    dtype, channels = IMAGE_ENCODINGS[encoding]
    msg = image_msg(pixels, encoding, step=7 * channels * dtype.itemsize + 5)
    out = image_to_array(msg, source=TOPIC)
    np.testing.assert_array_equal(out, pixels)
    assert out.flags.c_contiguous
    assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1"])
@pytest.mark.parametrize("padding", [0, 3])
def test_big_endian_is_swapped_to_native(encoding: str, padding: int) -> None:
    pixels = random_image(encoding, seed=2)
    row_bytes = 7 * IMAGE_ENCODINGS[encoding][0].itemsize
    msg = image_msg(pixels, encoding, step=row_bytes + padding, bigendian=True)
    out = image_to_array(msg)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, pixels)
    little = image_msg(pixels, encoding, step=row_bytes + padding, bigendian=False)
    assert bytes(msg.data) != bytes(little.data)  # the fixture really is byte-swapped


def test_single_channel_accepts_trailing_axis_and_big_endian_input() -> None:
    depth = np.arange(12, dtype=">u2").reshape(3, 4, 1) * 1000
    msg = array_to_image(depth, "16UC1", frame_id="depth", stamp_ns=0)
    assert msg.is_bigendian == 0
    np.testing.assert_array_equal(image_to_array(msg), depth[:, :, 0])


def test_readers_accept_rosbags_and_rclpy_deserialized_messages() -> None:
    for encoding in ("bgr8", "32FC1"):
        pixels = random_image(encoding, seed=4)
        raw = serialize_message(array_to_image(pixels, encoding, frame_id="c", stamp_ns=9))
        from_rclpy = deserialize_message(raw, Image)
        from_rosbags = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/Image")
        a, b = image_to_array(from_rclpy), image_to_array(from_rosbags)
        np.testing.assert_array_equal(a, pixels)
        np.testing.assert_array_equal(b, pixels)
        assert np.shares_memory(b, from_rosbags.data)
        assert not b.flags.writeable  # view on the read-only rosbags buffer


def test_empty_image() -> None:
    msg = SimpleNamespace(height=0, width=4, encoding="rgb8", step=12, is_bigendian=0, data=b"")
    out = image_to_array(msg)
    assert out.shape == (0, 4, 3)
    assert out.dtype == np.uint8


@pytest.mark.parametrize(
    ("changes", "error", "needles"),
    [
        pytest.param(dict(encoding="yuv422"), UnsupportedEncodingError, ["'yuv422'", "bgr8"], id="unknown-encoding"),
        pytest.param(
            dict(data=bytes(83)),
            MalformedMessageError,
            ["83 bytes", "height*step = 84", "height=4", "step=21"],
            id="data-short",
        ),
        pytest.param(dict(data=bytes(90)), MalformedMessageError, ["90 bytes", "84"], id="data-long"),
        pytest.param(
            dict(step=20),
            MalformedMessageError,
            ["step 20", "width*bytes_per_pixel = 21", "3 bytes per pixel"],
            id="step-too-small",
        ),
        pytest.param(dict(is_bigendian=7), MalformedMessageError, ["is_bigendian", "7"], id="bad-bigendian"),
        pytest.param(dict(height=-1), MalformedMessageError, ["height must be >= 0, got -1"], id="negative-height"),
        pytest.param(dict(width=2.5), MalformedMessageError, ["width must be an integer", "2.5"], id="float-width"),
    ],
)
def test_malformed_images(changes: dict[str, Any], error: type[Exception], needles: list[str]) -> None:
    base = dict(height=4, width=7, encoding="bgr8", step=21, is_bigendian=0, data=bytes(84))
    base.update(changes)
    with pytest.raises(error) as info:
        image_to_array(SimpleNamespace(**base), source=TOPIC)
    text = str(info.value)
    assert text.startswith(f"Image on {TOPIC}: ")
    for needle in needles:
        assert needle in text, (needle, text)


@pytest.mark.parametrize(
    ("array", "encoding", "error", "needle"),
    [
        (np.zeros((2, 2, 3), np.uint16), "bgr8", InvalidArrayError, "dtype uint8"),
        (np.zeros((2, 2, 4), np.uint8), "bgr8", InvalidArrayError, "(H, W, 3)"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", InvalidArrayError, "(H, W)"),
        (np.zeros((2, 2), np.float64), "32FC1", InvalidArrayError, "float64"),
        (np.zeros((2, 2), np.uint8), "nv12", UnsupportedEncodingError, "'nv12'"),
    ],
)
def test_array_to_image_validates(array: np.ndarray, encoding: str, error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as info:
        array_to_image(array, encoding, frame_id="c", stamp_ns=0)
    assert needle in str(info.value)


# --------------------------------------------------------------------------- compressed


@pytest.mark.parametrize("pixels", [smooth_bgr(), smooth_bgr()[:, :, 1]], ids=["bgr", "mono"])
def test_png_round_trip_is_exact(pixels: np.ndarray) -> None:
    msg = array_to_compressed(pixels, "png", frame_id="cam", stamp_ns=3)
    assert msg.format == ("bgr8; png compressed bgr8" if pixels.ndim == 3 else "mono8; png compressed mono8")
    out = compressed_to_array(msg, source=TOPIC)
    assert out.dtype == np.uint8
    assert out.shape == pixels.shape
    np.testing.assert_array_equal(out, pixels)


def test_png_mono16_round_trip() -> None:
    depth = (np.arange(48 * 64, dtype=np.uint16) * 17).reshape(48, 64)
    msg = array_to_compressed(depth, "png", frame_id="cam", stamp_ns=0)
    out = compressed_to_array(msg)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, depth)


@pytest.mark.parametrize("fmt", ["jpeg", "jpg"])
def test_jpeg_round_trip_within_tolerance(fmt: str) -> None:
    pixels = smooth_bgr()
    msg = array_to_compressed(pixels, fmt, frame_id="cam", stamp_ns=0, quality=95)
    assert msg.format == "bgr8; jpeg compressed bgr8"
    out = compressed_to_array(msg)
    assert out.shape == pixels.shape
    assert out.dtype == np.uint8
    error = np.abs(out.astype(int) - pixels.astype(int))
    assert error.mean() < 2.0
    assert error.max() < 40
    channel_means = out.reshape(-1, 3).mean(axis=0)  # channel order survives (B, G, R)
    np.testing.assert_allclose(channel_means, pixels.reshape(-1, 3).mean(axis=0), atol=2)
    low = array_to_compressed(pixels, fmt, frame_id="cam", stamp_ns=0, quality=5)
    assert len(low.data) < len(msg.data)


@pytest.mark.parametrize(
    "fmt",
    [
        "jpeg",
        "jpg",
        "JPEG",
        " png ",
        "rgb8; jpeg compressed bgr8",
        "bgr8; png compressed bgr8",
        "bgra8; jpeg compressed bgr8",
    ],
)
def test_format_strings_accepted(fmt: str) -> None:
    pixels = smooth_bgr(8, 8)
    codec = ".png" if "png" in fmt else ".jpg"
    ok, encoded = cv2.imencode(codec, pixels)
    assert ok
    msg = SimpleNamespace(format=fmt, data=encoded.reshape(-1))
    out = compressed_to_array(msg, source=TOPIC)
    assert out.shape == (8, 8, 3)
    if codec == ".png":
        np.testing.assert_array_equal(out, pixels)


def test_rgb_payload_is_returned_as_bgr_and_alpha_dropped() -> None:
    pixels = smooth_bgr(8, 8)
    ok, encoded = cv2.imencode(".png", pixels[:, :, ::-1].copy())  # channels stored as RGB
    assert ok
    rgb = SimpleNamespace(format="rgb8; png compressed rgb8", data=encoded.tobytes())
    np.testing.assert_array_equal(compressed_to_array(rgb), pixels)
    bgra = np.dstack([pixels, np.full((8, 8), 9, np.uint8)])
    ok, encoded = cv2.imencode(".png", bgra)
    assert ok
    out = compressed_to_array(SimpleNamespace(format="png", data=encoded.tobytes()))
    np.testing.assert_array_equal(out, pixels)


def test_compressed_through_cdr_rclpy_and_rosbags() -> None:
    raw = serialize_message(array_to_compressed(smooth_bgr(), "png", frame_id="c", stamp_ns=1))
    from_rclpy = deserialize_message(raw, CompressedImage)
    from_rosbags = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/CompressedImage")
    np.testing.assert_array_equal(compressed_to_array(from_rclpy), compressed_to_array(from_rosbags))


@pytest.mark.parametrize(
    ("fmt", "data", "error", "needles"),
    [
        pytest.param(
            "jpeg",
            b"\xff\xd8\xff" + b"\x00garbage" * 20,
            MalformedMessageError,
            ["cannot decode 163 bytes as jpeg"],
            id="corrupt-jpeg",
        ),
        pytest.param(
            "jpeg", b"not an image at all", MalformedMessageError, ["jpeg signature", "6e6f74"], id="not-jpeg"
        ),
        pytest.param("png", b"", MalformedMessageError, ["0 bytes", "nothing"], id="empty"),
        pytest.param("webp", b"RIFF....WEBP", UnsupportedEncodingError, ["'webp'"], id="unknown-format"),
        pytest.param("", b"\xff\xd8\xff", UnsupportedEncodingError, ["format ''"], id="empty-format"),
        pytest.param(
            "16UC1; compressedDepth png",
            b"\x00" * 20,
            UnsupportedEncodingError,
            ["compressedDepth"],
            id="compressed-depth",
        ),
    ],
)
def test_malformed_compressed(fmt: str, data: bytes, error: type[Exception], needles: list[str]) -> None:
    with pytest.raises(error) as info:
        compressed_to_array(SimpleNamespace(format=fmt, data=data), source=TOPIC)
    text = str(info.value)
    assert text.startswith(f"CompressedImage on {TOPIC}: ")
    for needle in needles:
        assert needle in text, (needle, text)


def test_check_compressed_validates_without_decoding() -> None:
    png = array_to_compressed(smooth_bgr(), "png", frame_id="c", stamp_ns=0)
    assert check_compressed(png, source=TOPIC) == "png"
    jpeg = array_to_compressed(smooth_bgr(), "jpg", frame_id="c", stamp_ns=0)
    assert check_compressed(jpeg, source=TOPIC) == "jpeg"
    # The signature matches but the body is garbage: only a decode notices.
    body = SimpleNamespace(format="png", data=bytes(png.data)[:8] + b"junk")
    assert check_compressed(body, source=TOPIC) == "png"
    with pytest.raises(MalformedMessageError, match="cannot decode 12 bytes"):
        compressed_to_array(body, source=TOPIC)
    swapped = SimpleNamespace(format="jpeg", data=png.data)
    with pytest.raises(MalformedMessageError, match="jpeg signature ffd8ff") as info:
        check_compressed(swapped, source=TOPIC)
    assert TOPIC in str(info.value)
    with pytest.raises(UnsupportedEncodingError, match="'gif'"):
        check_compressed(SimpleNamespace(format="gif", data=b"GIF89a"), source=TOPIC)


def test_truncated_png_is_malformed() -> None:
    msg = array_to_compressed(smooth_bgr(), "png", frame_id="c", stamp_ns=0)
    truncated = SimpleNamespace(format=msg.format, data=bytes(msg.data)[:60])
    with pytest.raises(MalformedMessageError, match="cannot decode 60 bytes as png"):
        compressed_to_array(truncated, source=TOPIC)


@pytest.mark.parametrize(
    ("array", "fmt", "kwargs", "error", "needle"),
    [
        (smooth_bgr(), "bmp", {}, UnsupportedEncodingError, "'bmp'"),
        (np.zeros((4, 4), np.uint16), "jpeg", {}, InvalidArrayError, "uint16"),
        (np.zeros((4, 4, 4), np.uint8), "png", {}, InvalidArrayError, "(4, 4, 4)"),
        (smooth_bgr(), "jpeg", {"quality": 101}, InvalidArrayError, "101"),
        (np.zeros((0, 4), np.uint8), "png", {}, InvalidArrayError, "empty"),
    ],
)
def test_array_to_compressed_validates(
    array: np.ndarray, fmt: str, kwargs: dict[str, Any], error: type[Exception], needle: str
) -> None:
    with pytest.raises(error) as info:
        array_to_compressed(array, fmt, frame_id="c", stamp_ns=0, **kwargs)
    assert needle in str(info.value)


# --------------------------------------------------------------------------- real data


def test_real_camera_jpeg_and_png(realdata: Path) -> None:
    jpeg_path = next((realdata / "nuscenes_scene0061").glob("*__CAM_FRONT__*.jpg"))
    reference = cv2.imread(str(jpeg_path), cv2.IMREAD_COLOR)
    msg = CompressedImage(format="jpeg")
    msg.data = array.array("B", jpeg_path.read_bytes())
    raw = serialize_message(msg)
    for decoded in (msg, TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/CompressedImage")):
        out = compressed_to_array(decoded, source="CAM_FRONT")
        assert out.shape == (900, 1600, 3)
        np.testing.assert_array_equal(out, reference)
    image = array_to_image(reference, "bgr8", frame_id="CAM_FRONT", stamp_ns=1)
    np.testing.assert_array_equal(image_to_array(image), reference)

    png_path = realdata / "kitti_000008" / "000008.png"
    kitti = SimpleNamespace(format="bgr8; png compressed bgr8", data=png_path.read_bytes())
    out = compressed_to_array(kitti, source="kitti/image_2")
    assert out.shape == (375, 1242, 3)
    np.testing.assert_array_equal(out, cv2.imread(str(png_path), cv2.IMREAD_COLOR))

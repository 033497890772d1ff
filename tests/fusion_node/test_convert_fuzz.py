"""Property-based fuzzing of the readers.

Each strategy builds a consistent message and then applies 0-3 random mutations (any
attribute replaced by an arbitrary value: negative or huge sizes, wrong types, random
field layouts, random or truncated bytes in every container type). The readers must
either return the documented shape/dtype or raise a ConversionError subclass naming the
source, never anything else. ``event`` records the outcome so that
``pytest --hypothesis-show-statistics`` shows both paths are exercised.
"""

from __future__ import annotations

import array
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from calibration.intrinsics import CameraIntrinsics
from fusion_node.convert import (
    IMAGE_ENCODINGS,
    POINTFIELD_DTYPES,
    RADAR_FIELDS,
    camera_info_to_intrinsics,
    check_compressed,
    compressed_to_array,
    image_to_array,
    odometry_to_sample,
    pointcloud2_to_array,
    pointcloud2_to_radar,
    pointcloud2_to_structured,
    range_to_reading,
)
from fusion_node.errors import ConversionError

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
SOURCE = "/fuzz/topic"

sizes = st.one_of(st.integers(0, 6), st.integers(-3, 70), st.sampled_from([2**31, 2**32 - 1]))
weird = st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=3), st.booleans(), st.just([1, 2]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1000, 1000), st.just(0.0))


def containers(raw: bytes) -> st.SearchStrategy[Any]:
    """The byte payload as each container a message may carry (rclpy, rosbags, bytes...)."""
    return st.sampled_from(
        [
            raw,
            bytearray(raw),
            array.array("B", raw),
            np.frombuffer(raw, np.uint8),  # read-only, like rosbags
            np.frombuffer(raw, np.uint8).copy(),
            memoryview(raw),
            list(raw),
        ]
    )


random_payloads = st.one_of(
    st.binary(max_size=300).flatmap(containers),
    weird,
    st.just(array.array("i", [1, 2])),
    st.just(np.zeros(4, np.float32)),
    st.just(np.zeros((2, 2), np.uint8)),
)


def mutated(
    base: st.SearchStrategy[SimpleNamespace], wild: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[SimpleNamespace]:
    """``base`` with 0-3 attributes replaced by draws from ``wild``."""

    @st.composite
    def build(draw: st.DrawFn) -> SimpleNamespace:
        msg = draw(base)
        for _ in range(draw(st.integers(0, 3))):
            key = draw(st.sampled_from(sorted(wild)))
            setattr(msg, key, draw(wild[key]))
        return msg

    return build()


def outcome(call: Callable[[], Any]) -> Any:
    """Result of ``call()``, or None after checking a ConversionError names the source."""
    try:
        result = call()
    except ConversionError as exc:
        error: ConversionError | None = exc
    else:
        error = None
    if error is not None:
        assert SOURCE in str(error)
        event(f"{call.__name__}: {type(error).__name__}")
        return None
    event(f"{call.__name__}: converted")
    return result


# --------------------------------------------------------------------------- PointCloud2

NAMES = ["x", "y", "z", "intensity", "ring", "t", *RADAR_FIELDS[3:]]


@st.composite
def valid_clouds(draw: st.DrawFn) -> SimpleNamespace:
    if draw(st.integers(0, 3)) == 0:  # radar layout, so that pointcloud2_to_radar succeeds
        names, datatypes, counts, pads = list(RADAR_FIELDS), [7] * 6, [1] * 6, [0] * 6
    else:
        names = draw(st.permutations(NAMES))[: draw(st.integers(0, 6))]
        datatypes = [draw(st.one_of(st.just(7), st.sampled_from(sorted(POINTFIELD_DTYPES)))) for _ in names]
        counts = [draw(st.sampled_from([1, 1, 1, 2])) for _ in names]
        pads = [draw(st.sampled_from([0, 0, 1, 3])) for _ in names]
    fields, offset = [], 0
    for name, datatype, count, pad in zip(names, datatypes, counts, pads, strict=True):
        offset += pad
        fields.append(SimpleNamespace(name=name, offset=offset, datatype=datatype, count=count))
        offset += POINTFIELD_DTYPES[datatype].itemsize * count
    point_step = offset + draw(st.integers(0, 8))
    height, width = draw(st.integers(0, 4)), draw(st.integers(0, 6))
    row_step = width * point_step + draw(st.sampled_from([0, 0, 0, 3]))
    raw = draw(st.binary(min_size=height * row_step, max_size=height * row_step))
    return SimpleNamespace(
        height=height,
        width=width,
        fields=fields,
        is_bigendian=draw(st.booleans()),
        point_step=point_step,
        row_step=row_step,
        data=draw(containers(raw)),
        is_dense=False,
    )


random_fields = st.lists(
    st.builds(
        SimpleNamespace,
        name=st.one_of(st.sampled_from(["x", "y", "z", "", "x"]), st.integers()),
        offset=st.one_of(st.sampled_from([0, 4, 8, 12]), st.integers(-2, 70), weird),
        datatype=st.one_of(st.integers(0, 10), st.just(7), weird),
        count=st.one_of(st.just(1), st.integers(-1, 4), weird),
    ),
    max_size=6,
)
CLOUD_WILD = {
    "height": st.one_of(sizes, weird),
    "width": st.one_of(sizes, weird),
    "point_step": st.one_of(sizes, weird),
    "row_step": st.one_of(sizes, weird),
    "is_bigendian": st.one_of(st.integers(-1, 3), weird),
    "fields": st.one_of(random_fields, weird),
    "data": random_payloads,
}


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@FUZZ
@given(
    mutated(valid_clouds(), CLOUD_WILD),
    st.sampled_from([("x", "y", "z"), ("x", "y", "z", "intensity"), ("rcs",), ()]),
    st.sampled_from([np.float32, np.float64, np.int32]),
)
def test_pointcloud_readers_never_leak(msg: SimpleNamespace, fields: tuple[str, ...], dtype: Any) -> None:
    def pointcloud2_to_structured_() -> Any:
        return pointcloud2_to_structured(msg, source=SOURCE)

    def pointcloud2_to_array_() -> Any:
        return pointcloud2_to_array(msg, fields, dtype, source=SOURCE)

    def pointcloud2_to_radar_() -> Any:
        return pointcloud2_to_radar(msg, source=SOURCE)

    structured = outcome(pointcloud2_to_structured_)
    if structured is not None:
        n = msg.height * msg.width
        assert structured.shape == ((msg.height, msg.width) if msg.height > 1 else (n,))
        assert structured.dtype.names == tuple(f.name for f in msg.fields)
        if msg.point_step or n:
            assert structured.dtype.itemsize == msg.point_step
    out = outcome(pointcloud2_to_array_)
    if out is not None:
        assert out.shape == (msg.height * msg.width, len(fields))
        assert out.dtype == dtype
        if structured is not None and dtype == np.float64:
            for j, name in enumerate(fields):
                np.testing.assert_array_equal(out[:, j], structured[name].reshape(-1).astype(np.float64))
    radar = outcome(pointcloud2_to_radar_)
    if radar is not None:
        assert radar.shape == (msg.height * msg.width, 6)
        assert radar.dtype == np.float32


# --------------------------------------------------------------------------- Image


@st.composite
def valid_images(draw: st.DrawFn) -> SimpleNamespace:
    encoding = draw(st.sampled_from(sorted(IMAGE_ENCODINGS)))
    dtype, channels = IMAGE_ENCODINGS[encoding]
    height, width = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    step = width * dtype.itemsize * channels + draw(st.sampled_from([0, 0, 1, 4]))
    raw = draw(st.binary(min_size=height * step, max_size=height * step))
    return SimpleNamespace(
        encoding=encoding,
        height=height,
        width=width,
        step=step,
        is_bigendian=draw(st.integers(0, 1)),
        data=draw(containers(raw)),
    )


IMAGE_WILD = {
    "encoding": st.one_of(st.sampled_from(sorted(IMAGE_ENCODINGS)), st.text(max_size=6), weird),
    "height": st.one_of(sizes, weird),
    "width": st.one_of(sizes, weird),
    "step": st.one_of(sizes, weird),
    "is_bigendian": st.one_of(st.integers(-1, 3), weird),
    "data": random_payloads,
}


@FUZZ
@given(mutated(valid_images(), IMAGE_WILD))
def test_image_reader_never_leaks(msg: SimpleNamespace) -> None:
    def image_to_array_() -> Any:
        return image_to_array(msg, source=SOURCE)

    out = outcome(image_to_array_)
    if out is not None:
        dtype, channels = IMAGE_ENCODINGS[msg.encoding]
        shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
        assert out.shape == shape
        assert out.dtype == dtype


# --------------------------------------------------------------------------- CompressedImage


def _encoded(ext: str, pixels: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(ext, pixels)
    assert ok
    return buffer.tobytes()


_RNG = np.random.default_rng(0)
SAMPLES = [
    ("jpeg", _encoded(".jpg", _RNG.integers(0, 255, (6, 5, 3), dtype=np.uint8))),
    ("rgb8; jpeg compressed bgr8", _encoded(".jpg", _RNG.integers(0, 255, (5, 5), np.uint8))),
    ("png", _encoded(".png", _RNG.integers(0, 255, (4, 7, 3), dtype=np.uint8))),
    ("bgr8; png compressed rgb8", _encoded(".png", _RNG.integers(0, 255, (4, 7, 4), np.uint8))),
    ("mono8; png compressed mono8", _encoded(".png", _RNG.integers(0, 255, (4, 7), np.uint8))),
    ("png", _encoded(".png", _RNG.integers(0, 2**16 - 1, (3, 3, 3), dtype=np.uint16))),
    ("png", _encoded(".png", _RNG.integers(0, 2**16 - 1, (3, 3), dtype=np.uint16))),
    ("jpg", _encoded(".bmp", _RNG.integers(0, 255, (5, 5, 3), dtype=np.uint8))),
]


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SAMPLES))[1])
    for _ in range(draw(st.integers(1, 4))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw[: draw(st.one_of(st.just(len(raw)), st.integers(0, len(raw))))])


valid_compressed = st.sampled_from(SAMPLES).flatmap(
    lambda sample: st.builds(SimpleNamespace, format=st.just(sample[0]), data=containers(sample[1]))
)
COMPRESSED_WILD = {
    "format": st.one_of(
        st.sampled_from(
            ["jpeg", "png", "16UC1; compressedDepth png", "", "tiff", "png; jpeg", "bgr8; jpeg compressed"]
        ),
        st.text(max_size=20),
        weird,
    ),
    "data": st.one_of(corrupted(), st.binary(max_size=64), random_payloads),
}


@FUZZ
@given(mutated(valid_compressed, COMPRESSED_WILD))
def test_compressed_reader_never_leaks(msg: SimpleNamespace) -> None:
    def compressed_to_array_() -> Any:
        return compressed_to_array(msg, source=SOURCE)

    def check_compressed_() -> Any:
        return check_compressed(msg, source=SOURCE)

    codec = outcome(check_compressed_)
    assert codec in (None, "jpeg", "png")
    out = outcome(compressed_to_array_)
    if out is not None:
        assert codec is not None  # anything that decodes passes the cheap check
        assert (out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8) or (
            out.ndim == 2 and out.dtype in (np.uint8, np.uint16)
        )
        assert out.flags.c_contiguous
        assert min(out.shape[:2]) > 0


# --------------------------------------------------------------------------- CameraInfo

MODEL_SIZES = {"plumb_bob": [0, 4, 5, 8], "rational_polynomial": [8], "equidistant": [4], "fisheye": [4], "": [0]}


@st.composite
def valid_camera_infos(draw: st.DrawFn) -> SimpleNamespace:
    model = draw(st.sampled_from(sorted(MODEL_SIZES)))
    n = draw(st.sampled_from(MODEL_SIZES[model]))
    d = draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))
    fx, fy = draw(st.floats(1, 2000)), draw(st.floats(1, 2000))
    k = [fx, draw(st.floats(-1, 1)), draw(st.floats(0, 2000)), 0.0, fy, draw(st.floats(0, 2000)), 0.0, 0.0, 1.0]
    return SimpleNamespace(
        height=draw(st.integers(1, 2000)),
        width=draw(st.integers(1, 2000)),
        distortion_model=model,
        d=draw(st.sampled_from([d, np.array(d)])),
        k=draw(st.sampled_from([k, np.array(k)])),
        binning_x=draw(st.integers(0, 1)),
        binning_y=0,
        roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0),
    )


CAMERA_WILD = {
    "height": st.one_of(sizes, weird),
    "width": st.one_of(sizes, weird),
    "distortion_model": st.one_of(st.sampled_from(["none", "kannala_brandt", "Plumb_Bob"]), st.text(max_size=5), weird),
    "d": st.one_of(st.lists(floats, max_size=9), st.lists(st.just(0.0), max_size=8), weird),
    "k": st.one_of(st.lists(floats, min_size=9, max_size=9), st.lists(floats, max_size=12), weird),
    "binning_x": st.one_of(st.integers(-1, 3), weird),
    "roi": st.one_of(
        weird,
        st.builds(SimpleNamespace, x_offset=st.integers(-1, 5), y_offset=st.integers(0, 5), width=sizes, height=sizes),
    ),
}


@FUZZ
@given(mutated(valid_camera_infos(), CAMERA_WILD))
def test_camera_info_reader_never_leaks(msg: SimpleNamespace) -> None:
    def camera_info_to_intrinsics_() -> Any:
        return camera_info_to_intrinsics(msg, source=SOURCE)

    out = outcome(camera_info_to_intrinsics_)
    if out is not None:
        assert isinstance(out, CameraIntrinsics)
        assert (out.width, out.height) == (msg.width, msg.height)
        np.testing.assert_array_equal(out.K.reshape(-1), np.asarray(msg.k, dtype=np.float64))


# --------------------------------------------------------------------------- Odometry, Range

good_floats = st.floats(-1e6, 1e6)


def vectors(values: st.SearchStrategy[float]) -> st.SearchStrategy[SimpleNamespace]:
    return st.builds(SimpleNamespace, x=values, y=values, z=values)


def headers() -> st.SearchStrategy[SimpleNamespace]:
    stamp = st.builds(SimpleNamespace, sec=st.integers(0, 2**31 - 1), nanosec=st.integers(0, 10**9 - 1))
    return st.builds(SimpleNamespace, stamp=stamp, frame_id=st.text(max_size=4))


@st.composite
def valid_odometry(draw: st.DrawFn) -> SimpleNamespace:
    q = np.array(draw(st.lists(st.floats(-1, 1), min_size=4, max_size=4)))
    q = q / np.linalg.norm(q) if np.linalg.norm(q) > 1e-3 else np.array([0.0, 0, 0, 1])
    q = q * draw(st.floats(0.9995, 1.0005))
    orientation = SimpleNamespace(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))
    return SimpleNamespace(
        header=draw(headers()),
        child_frame_id=draw(st.text(max_size=4)),
        pose=SimpleNamespace(pose=SimpleNamespace(position=draw(vectors(good_floats)), orientation=orientation)),
        twist=SimpleNamespace(
            twist=SimpleNamespace(linear=draw(vectors(good_floats)), angular=draw(vectors(good_floats)))
        ),
    )


wild_stamp = st.builds(
    SimpleNamespace, sec=st.one_of(st.integers(-5, 2**32), weird), nanosec=st.one_of(st.integers(-1, 2 * 10**9), weird)
)
wild_header = st.one_of(
    weird,
    st.builds(SimpleNamespace, stamp=st.one_of(wild_stamp, weird), frame_id=st.one_of(st.text(max_size=4), weird)),
)
ODOM_WILD = {
    "header": wild_header,
    "child_frame_id": weird,
    "pose": st.one_of(
        weird,
        st.builds(
            SimpleNamespace,
            pose=st.builds(
                SimpleNamespace,
                position=vectors(floats),
                orientation=st.builds(SimpleNamespace, x=floats, y=floats, z=floats, w=floats),
            ),
        ),
    ),
    "twist": st.one_of(
        weird,
        st.builds(
            SimpleNamespace,
            twist=st.builds(SimpleNamespace, linear=vectors(st.one_of(floats, weird)), angular=vectors(floats)),
        ),
    ),
}


@st.composite
def valid_ranges(draw: st.DrawFn) -> SimpleNamespace:
    lo = draw(st.floats(0, 1))
    hi = lo + draw(st.floats(0, 10))
    return SimpleNamespace(
        header=draw(headers()),
        radiation_type=0,
        field_of_view=draw(st.floats(0, 3)),
        min_range=lo,
        max_range=hi,
        range=draw(st.one_of(st.floats(-1, 12), st.sampled_from([math.inf, -math.inf]))),
    )


RANGE_WILD = {
    "header": wild_header,
    "radiation_type": st.one_of(st.integers(-1, 3), weird),
    "field_of_view": st.one_of(floats, weird),
    "min_range": floats,
    "max_range": floats,
    "range": st.one_of(floats, weird),
}


@FUZZ
@given(mutated(valid_odometry(), ODOM_WILD), mutated(valid_ranges(), RANGE_WILD))
def test_motion_readers_never_leak(odom: SimpleNamespace, rng: SimpleNamespace) -> None:
    def odometry_to_sample_() -> Any:
        return odometry_to_sample(odom, source=SOURCE)

    def range_to_reading_() -> Any:
        return range_to_reading(rng, source=SOURCE)

    sample = outcome(odometry_to_sample_)
    if sample is not None:
        assert abs(np.linalg.norm(sample.orientation_wxyz) - 1.0) < 1e-9
        assert np.isfinite(sample.position).all()
        assert sample.position.shape == (3,)
    reading = outcome(range_to_reading_)
    if reading is not None:
        assert reading.detected or reading.range_m == math.inf
        assert reading.min_range_m <= reading.max_range_m
        if reading.detected:
            assert reading.min_range_m <= reading.range_m <= reading.max_range_m


@FUZZ
@given(st.data())
def test_valid_clouds_match_an_independent_decoder(data: st.DataObject) -> None:
    """Positive control: consistent layouts always convert, to the values np.frombuffer
    reads at each point's offsets."""
    width, height = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 4))
    offsets = data.draw(st.permutations([0, 4, 8]))
    point_step = 12 + data.draw(st.integers(0, 6))
    row_step = width * point_step + data.draw(st.integers(0, 5))
    raw = data.draw(st.binary(min_size=height * row_step, max_size=height * row_step))
    bigendian = data.draw(st.booleans())
    msg = SimpleNamespace(
        height=height,
        width=width,
        point_step=point_step,
        row_step=row_step,
        is_bigendian=bigendian,
        data=data.draw(containers(raw)),
        fields=[SimpleNamespace(name=n, offset=o, datatype=7, count=1) for n, o in zip("xyz", offsets, strict=True)],
    )
    out = pointcloud2_to_array(msg, ("x", "y", "z"), source=SOURCE)
    assert out.shape == (width * height, 3)
    order = ">" if bigendian else "<"
    expected = np.array(
        [
            [np.frombuffer(raw, f"{order}f4", count=1, offset=r * row_step + c * point_step + o)[0] for o in offsets]
            for r in range(height)
            for c in range(width)
        ],
        dtype=np.float32,
    ).reshape(-1, 3)
    assert out.tobytes() == expected.tobytes()  # bitwise: NaN payloads survive

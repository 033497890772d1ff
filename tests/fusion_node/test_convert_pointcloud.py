"""PointCloud2 <-> numpy: layouts, round trips, zero-copy, serialization, malformed input."""

from __future__ import annotations

import array
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import PointCloud2, PointField

from fusion_node.convert import (
    POINTFIELD_DTYPES,
    RADAR_FIELDS,
    cloud_dtype,
    pointcloud2_to_array,
    pointcloud2_to_radar,
    pointcloud2_to_structured,
    radar_to_pointcloud2,
    structured_to_pointcloud2,
    xyzi_to_pointcloud2,
)
from fusion_node.errors import (
    ConversionError,
    FieldLayoutError,
    InvalidArrayError,
    MalformedMessageError,
)

TOPIC = "/sensing/lidar/top/points"
TYPESTORE = get_typestore(Stores.ROS2_KILTED)


def field(name: str, offset: int, datatype: int = PointField.FLOAT32, count: int = 1) -> Any:
    return PointField(name=name, offset=offset, datatype=datatype, count=count)


def make_msg(
    fields: list[Any],
    *,
    point_step: int,
    width: int,
    height: int = 1,
    row_step: int | None = None,
    data: Any = None,
    is_bigendian: bool = False,
) -> PointCloud2:
    msg = PointCloud2()
    msg.height = height
    msg.width = width
    msg.fields = fields
    msg.point_step = point_step
    msg.row_step = width * point_step if row_step is None else row_step
    msg.is_bigendian = is_bigendian
    msg.data = bytes(msg.height * msg.row_step) if data is None else data
    return msg


def xyzi_struct(n: int, point_step: int, seed: int = 0) -> np.ndarray:
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "intensity"],
            "formats": ["<f4"] * 4,
            "offsets": [0, 4, 8, 12],
            "itemsize": point_step,
        }
    )
    rng = np.random.default_rng(seed)
    points = np.zeros(n, dtype=dtype)
    for name in dtype.names or ():
        points[name] = rng.normal(size=n).astype(np.float32)
    return points


def native(array_in: np.ndarray) -> np.ndarray:
    return array_in.astype(array_in.dtype.newbyteorder("="))


# --------------------------------------------------------------------------- dtypes


def test_pointfield_dtypes_cover_the_eight_datatypes() -> None:
    expected = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
    assert {code: dt.str[1:] for code, dt in POINTFIELD_DTYPES.items()} == expected


def test_cloud_dtype_offsets_count_and_byte_order() -> None:
    fields = [field("x", 0), field("ring", 4, PointField.UINT16), field("normal", 8, PointField.FLOAT64, count=3)]
    little = cloud_dtype(fields, 40, False)
    assert little.itemsize == 40
    assert little.fields is not None
    assert little.fields["ring"] == (np.dtype("<u2"), 4)
    assert little.fields["normal"][0] == np.dtype(("<f8", (3,)))
    big = cloud_dtype(fields, 40, True)
    assert big.fields is not None
    assert big.fields["x"][0] == np.dtype(">f4")
    assert big.fields["normal"][0].base == np.dtype(">f8")


# --------------------------------------------------------------------------- round trips

DATATYPES = st.sampled_from(sorted(POINTFIELD_DTYPES))


@st.composite
def structured_arrays(draw: st.DrawFn) -> np.ndarray:
    """Random PointField-compatible layouts with padding, count > 1 and either byte order."""
    n_fields = draw(st.integers(1, 6))
    order = draw(st.sampled_from("<>"))
    names, formats, offsets = [], [], []
    offset = 0
    for index in range(n_fields):
        offset += draw(st.integers(0, 3))  # padding before the field (unaligned on purpose)
        base = POINTFIELD_DTYPES[draw(DATATYPES)].newbyteorder(order)
        count = draw(st.sampled_from([1, 1, 1, 2, 3]))
        names.append(f"f{index}")
        formats.append(base if count == 1 else np.dtype((base, (count,))))
        offsets.append(offset)
        offset += base.itemsize * count
    itemsize = offset + draw(st.integers(0, 8))
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})
    shape = draw(
        st.one_of(
            st.tuples(st.integers(0, 12)),
            st.tuples(st.integers(2, 4), st.integers(0, 5)),
        )
    )
    raw = draw(st.binary(min_size=itemsize * int(np.prod(shape)), max_size=itemsize * int(np.prod(shape))))
    # From a writable buffer, not .copy(): numpy copies structured arrays field by field and
    # leaves padding bytes uninitialized.
    return np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)


@settings(max_examples=150, deadline=None)
@given(structured_arrays())
def test_structured_round_trip_random_layouts(points: np.ndarray) -> None:
    msg = structured_to_pointcloud2(points, frame_id="lidar", stamp_ns=1_500_000_000)
    assert msg.is_bigendian is False
    assert msg.point_step == points.dtype.itemsize
    assert (msg.height, msg.width) == (points.shape if points.ndim == 2 else (1, len(points)))
    assert msg.row_step == msg.point_step * msg.width
    assert len(msg.data) == points.nbytes
    for pf, name in zip(msg.fields, points.dtype.names or (), strict=True):
        fdtype, offset = (points.dtype.fields or {})[name][:2]
        assert (pf.name, pf.offset) == (name, offset)
        assert POINTFIELD_DTYPES[pf.datatype] == fdtype.base.newbyteorder("=")
        assert pf.count == max(1, int(np.prod(fdtype.shape)))
    if points.dtype == points.dtype.newbyteorder("<"):  # (dtype.isnative ignores subarrays)
        assert bytes(msg.data) == points.tobytes()  # padding bytes preserved verbatim
    out = pointcloud2_to_structured(msg, source=TOPIC)
    expected_shape = points.shape if points.ndim == 2 and points.shape[0] > 1 else (points.size,)
    assert out.shape == expected_shape
    assert out.dtype.itemsize == points.dtype.itemsize
    for name in points.dtype.names or ():
        got = native(out[name]).reshape(-1)
        want = native(points[name]).reshape(-1)
        assert got.tobytes() == want.tobytes(), name  # bitwise, NaN payloads included


def test_big_endian_message_is_read_in_its_byte_order() -> None:
    values = np.array([(1.5, 70000, -3), (-2.25, 1, 7)], dtype=[("x", ">f4"), ("t", ">u4"), ("c", ">i2")])
    fields = [field("x", 0), field("t", 4, PointField.UINT32), field("c", 8, PointField.INT16)]
    msg = make_msg(fields, point_step=10, width=2, data=values.tobytes(), is_bigendian=True)
    out = pointcloud2_to_structured(msg)
    assert out.dtype.fields is not None
    assert out.dtype.fields["t"][0] == np.dtype(">u4")
    np.testing.assert_array_equal(out["t"], [70000, 1])
    np.testing.assert_array_equal(
        pointcloud2_to_array(msg, ("x", "t", "c"), np.float64),
        [[1.5, 70000, -3], [-2.25, 1, 7]],
    )
    rebuilt = structured_to_pointcloud2(out, frame_id="f", stamp_ns=0)
    assert rebuilt.is_bigendian is False
    np.testing.assert_array_equal(pointcloud2_to_structured(rebuilt)["c"], [-3, 7])


@pytest.mark.parametrize("point_step", [16, 32, 48])
def test_xyzi_round_trip_and_zero_padding(point_step: int) -> None:
    rng = np.random.default_rng(point_step)
    xyzi = rng.normal(size=(1000, 4)).astype(np.float32)
    msg = xyzi_to_pointcloud2(xyzi, frame_id="lidar", stamp_ns=42, point_step=point_step)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity"]
    assert [f.offset for f in msg.fields] == [0, 4, 8, 12]
    assert msg.point_step == point_step
    assert msg.header.frame_id == "lidar"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (0, 42)
    raw = np.frombuffer(msg.data, np.uint8).reshape(1000, point_step)
    assert not raw[:, 16:].any()
    out = pointcloud2_to_array(msg, source=TOPIC)
    assert out.dtype == np.float32
    assert out.shape == (1000, 4)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, xyzi)


def test_to_array_general_path_matches_fields() -> None:
    dtype = np.dtype(
        {
            "names": ["intensity", "x", "ring", "y", "z"],
            "formats": ["<u2", "<f8", "<u1", "<f4", "<f4"],
            "offsets": [0, 4, 12, 16, 24],
            "itemsize": 32,
        }
    )
    points = np.zeros(5, dtype)
    points["x"] = np.arange(5) * 1.25
    points["y"] = -np.arange(5)
    points["z"] = 0.5
    points["intensity"] = [0, 1, 65535, 300, 7]
    points["ring"] = [3, 2, 1, 0, 255]
    msg = structured_to_pointcloud2(points, frame_id="f", stamp_ns=0)
    out = pointcloud2_to_array(msg, ("x", "y", "z", "intensity", "ring"))
    expected = np.stack([points[n].astype(np.float32) for n in ("x", "y", "z", "intensity", "ring")], axis=1)
    np.testing.assert_array_equal(out, expected)
    assert pointcloud2_to_array(msg, ("ring",), np.uint8).dtype == np.uint8


def test_fast_path_copies_fields_at_any_offset_and_order_matters() -> None:
    dtype = np.dtype(
        {
            "names": ["t", "x", "y", "z"],
            "formats": ["<f8", "<f4", "<f4", "<f4"],
            "offsets": [0, 8, 12, 16],
            "itemsize": 24,
        }
    )
    points = np.zeros(4, dtype)
    for j, name in enumerate("xyz"):
        points[name] = np.arange(4) + 10 * j
    msg = structured_to_pointcloud2(points, frame_id="f", stamp_ns=0)
    np.testing.assert_array_equal(
        pointcloud2_to_array(msg, ("x", "y", "z")),
        np.stack([points["x"], points["y"], points["z"]], axis=1),
    )
    np.testing.assert_array_equal(  # reversed order: general path
        pointcloud2_to_array(msg, ("z", "y", "x")),
        np.stack([points["z"], points["y"], points["x"]], axis=1),
    )


def test_organized_cloud_shapes_and_row_major_flattening() -> None:
    points = xyzi_struct(12, 16).reshape(3, 4)
    msg = structured_to_pointcloud2(points, frame_id="f", stamp_ns=0)
    assert (msg.height, msg.width, msg.row_step) == (3, 4, 64)
    out = pointcloud2_to_structured(msg)
    assert out.shape == (3, 4)
    flat = pointcloud2_to_array(msg, ("x", "y"))
    np.testing.assert_array_equal(flat[:, 0], points["x"].reshape(-1))
    np.testing.assert_array_equal(flat[5], [points["x"][1, 1], points["y"][1, 1]])


@pytest.mark.parametrize("height", [1, 3])
def test_padded_rows_are_stripped(height: int) -> None:
    points = xyzi_struct(4 * height, 16, seed=height).reshape(height, 4)
    row_step = 4 * 16 + 12
    data = bytearray()
    for row in points:
        data += row.tobytes() + b"\xee" * 12
    msg = make_msg(
        [field("x", 0), field("y", 4), field("z", 8), field("intensity", 12)],
        point_step=16,
        width=4,
        height=height,
        row_step=row_step,
        data=bytes(data),
    )
    out = pointcloud2_to_structured(msg, source=TOPIC)
    assert out.shape == ((height, 4) if height > 1 else (4,))
    np.testing.assert_array_equal(out.reshape(-1), points.reshape(-1))
    assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    xyzi = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(xyzi[:, 3], points["intensity"].reshape(-1))
    np.testing.assert_array_equal(pointcloud2_to_array(msg, ("y", "x"))[:, 1], points["x"].reshape(-1))


def test_non_contiguous_input_keeps_padding_bytes() -> None:
    raw = bytearray(range(256)) * 2
    dtype = np.dtype({"names": ["x"], "formats": ["<f4"], "offsets": [4], "itemsize": 16})
    points = np.frombuffer(raw, dtype=dtype)[::2]
    msg = structured_to_pointcloud2(points, frame_id="f", stamp_ns=0)
    assert bytes(msg.data) == b"".join(bytes(raw[i * 32 : i * 32 + 16]) for i in range(16))


def test_empty_cloud() -> None:
    msg = xyzi_to_pointcloud2(np.zeros((0, 4), np.float32), frame_id="f", stamp_ns=0)
    assert pointcloud2_to_structured(msg).shape == (0,)
    assert pointcloud2_to_array(msg).shape == (0, 4)
    empty = make_msg([field("x", 0)], point_step=0, width=0, height=0, row_step=0)
    assert pointcloud2_to_array(empty, ("x",)).shape == (0, 1)


def test_is_dense_reflects_nan_coordinates() -> None:
    points = xyzi_struct(5, 16)
    assert structured_to_pointcloud2(points, frame_id="f", stamp_ns=0).is_dense is True
    points["intensity"][0] = np.nan  # not a coordinate
    assert structured_to_pointcloud2(points, frame_id="f", stamp_ns=0).is_dense is True
    points["y"][2] = np.nan
    assert structured_to_pointcloud2(points, frame_id="f", stamp_ns=0).is_dense is False
    assert structured_to_pointcloud2(points, frame_id="f", stamp_ns=0, is_dense=True).is_dense


def test_radar_round_trip_and_missing_field() -> None:
    rng = np.random.default_rng(3)
    radar = rng.normal(size=(50, 6)).astype(np.float32)
    msg = radar_to_pointcloud2(radar, frame_id="radar_front", stamp_ns=7)
    assert tuple(f.name for f in msg.fields) == RADAR_FIELDS
    assert msg.point_step == 24
    np.testing.assert_array_equal(pointcloud2_to_radar(msg), radar)
    lidar = xyzi_to_pointcloud2(radar[:, :4], frame_id="f", stamp_ns=0)
    with pytest.raises(FieldLayoutError) as info:
        pointcloud2_to_radar(lidar, source="/radar/front")
    text = str(info.value)
    assert "/radar/front" in text
    assert "'vr'" in text
    assert "'intensity'" in text


# --------------------------------------------------------------------------- zero copy


@pytest.mark.parametrize("container", ["array", "bytes", "numpy"])
def test_structured_view_is_zero_copy(container: str) -> None:
    msg = structured_to_pointcloud2(xyzi_struct(100, 32), frame_id="f", stamp_ns=0)
    if container == "bytes":
        data: Any = bytes(msg.data)
    elif container == "numpy":
        data = np.frombuffer(bytes(msg.data), np.uint8)
    else:
        data = msg.data
    duck = SimpleNamespace(
        **{k: getattr(msg, k) for k in ("height", "width", "fields", "is_bigendian", "point_step", "row_step")},
        data=data,
    )
    out = pointcloud2_to_structured(duck)
    assert np.shares_memory(out, np.frombuffer(data, np.uint8))
    if container == "array":  # writable buffer: the view aliases the message
        out["x"][0] = 123.0
        assert np.frombuffer(data, np.float32)[0] == 123.0
    xyzi = pointcloud2_to_array(duck)
    assert not np.shares_memory(xyzi, np.frombuffer(data, np.uint8))


# --------------------------------------------------------------------------- serialization


def test_round_trip_through_cdr_rclpy_and_rosbags() -> None:
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "intensity", "ring", "t"],
            "formats": ["<f4", "<f4", "<f4", "<f4", "<u2", "<f8"],
            "offsets": [0, 4, 8, 12, 16, 24],
            "itemsize": 40,
        }
    )
    rng = np.random.default_rng(11)
    points = np.zeros((4, 25), dtype)
    for name in ("x", "y", "z", "intensity", "t"):
        points[name] = rng.normal(size=(4, 25))
    points["ring"] = np.arange(4)[:, None]
    msg = structured_to_pointcloud2(points, frame_id="lidar_top", stamp_ns=1_700_000_000_123)
    raw = serialize_message(msg)
    from_rclpy = deserialize_message(raw, PointCloud2)
    from_rosbags = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2")
    assert isinstance(from_rclpy.data, array.array)
    assert isinstance(from_rosbags.data, np.ndarray)
    assert from_rosbags.header.stamp.nanosec == 123
    assert from_rosbags.header.stamp.sec == 1700
    outs = [pointcloud2_to_structured(m, source=TOPIC) for m in (msg, from_rclpy, from_rosbags)]
    for out in outs:
        assert out.dtype == dtype
        assert out.shape == (4, 25)
        assert out.tobytes() == points.tobytes()
    assert np.shares_memory(outs[2], from_rosbags.data)
    arrays = [pointcloud2_to_array(m, ("x", "y", "z", "ring")) for m in (from_rclpy, from_rosbags)]
    np.testing.assert_array_equal(arrays[0], arrays[1])
    np.testing.assert_array_equal(arrays[0][:, 3], points["ring"].reshape(-1))


# --------------------------------------------------------------------------- malformed


def xyz_fields() -> list[Any]:
    return [field("x", 0), field("y", 4), field("z", 8)]


@pytest.mark.parametrize(
    ("kwargs", "error", "needles"),
    [
        pytest.param(
            dict(data=bytes(1000), width=64),
            MalformedMessageError,
            ["1000 bytes", "height*row_step = 1024", "row_step=1024"],
            id="data-short",
        ),
        pytest.param(dict(data=bytes(1030), width=64), MalformedMessageError, ["1030 bytes", "1024"], id="data-long"),
        pytest.param(
            dict(row_step=100, width=64),
            MalformedMessageError,
            ["row_step 100", "width*point_step = 1024"],
            id="row-step-small",
        ),
        pytest.param(
            dict(point_step=0, width=3, fields=[]),
            MalformedMessageError,
            ["point_step is 0", "3 points"],
            id="point-step-0",
        ),
        pytest.param(
            dict(fields=[field("x", 0), field("y", 2)]),
            FieldLayoutError,
            ["'x' (bytes 0..4)", "'y' (bytes 2..6)", "overlap"],
            id="overlap",
        ),
        pytest.param(
            dict(fields=[field("x", 0), field("d", 12, PointField.FLOAT64)]),
            FieldLayoutError,
            ["'d'", "bytes 12..20", "point_step 16"],
            id="past-point-step",
        ),
        pytest.param(
            dict(fields=[field("n", 4, PointField.FLOAT32, count=4)]),
            FieldLayoutError,
            ["'n'", "x 4", "point_step 16"],
            id="count-past-end",
        ),
        pytest.param(dict(fields=[field("x", 0, 9)]), FieldLayoutError, ["'x'", "datatype 9"], id="datatype-9"),
        pytest.param(dict(fields=[field("x", 0, 0)]), FieldLayoutError, ["'x'", "datatype 0"], id="datatype-0"),
        pytest.param(
            dict(fields=[field("x", 0), field("x", 4)]), FieldLayoutError, ["duplicate", "'x'"], id="duplicate-name"
        ),
        pytest.param(dict(fields=[field("", 0)]), FieldLayoutError, ["empty", "fields[0]"], id="empty-name"),
        pytest.param(dict(fields=[field("x", 0, count=0)]), FieldLayoutError, ["'x'", "count 0"], id="count-0"),
    ],
)
def test_malformed_clouds(kwargs: dict[str, Any], error: type[ConversionError], needles: list[str]) -> None:
    params: dict[str, Any] = dict(fields=xyz_fields(), point_step=16, width=4)
    params.update(kwargs)
    msg = make_msg(params.pop("fields"), **params)
    for reader in (pointcloud2_to_structured, pointcloud2_to_array):
        with pytest.raises(error) as info:
            reader(msg, source=TOPIC)
        text = str(info.value)
        assert text.startswith(f"PointCloud2 on {TOPIC}: ")
        for needle in needles:
            assert needle in text, (needle, text)


def test_missing_field_names_available_fields() -> None:
    msg = make_msg(xyz_fields(), point_step=16, width=2)
    with pytest.raises(FieldLayoutError) as info:
        pointcloud2_to_array(msg, source=TOPIC)
    text = str(info.value)
    assert TOPIC in text
    assert "'intensity' not found" in text
    assert "['x', 'y', 'z']" in text


def test_count_field_rejected_by_to_array_but_read_by_structured() -> None:
    msg = make_msg([field("normal", 0, count=3)], point_step=12, width=2, data=np.arange(6, dtype="<f4").tobytes())
    np.testing.assert_array_equal(pointcloud2_to_structured(msg)["normal"], [[0, 1, 2], [3, 4, 5]])
    with pytest.raises(FieldLayoutError, match="count 3"):
        pointcloud2_to_array(msg, ("normal",), source=TOPIC)


def test_non_uint8_buffer_and_negative_sizes_are_malformed() -> None:
    msg = make_msg(xyz_fields(), point_step=16, width=1)
    duck = SimpleNamespace(
        **{k: getattr(msg, k) for k in ("height", "width", "fields", "is_bigendian", "point_step", "row_step")},
        data=array.array("i", [0] * 4),
    )
    with pytest.raises(MalformedMessageError, match="itemsize 4"):
        pointcloud2_to_structured(duck, source=TOPIC)
    duck.data = bytes(16)
    duck.width = -1
    with pytest.raises(MalformedMessageError, match="width must be >= 0, got -1"):
        pointcloud2_to_structured(duck, source=TOPIC)


@pytest.mark.parametrize(
    ("points", "needle"),
    [
        (np.zeros(3, np.float32), "structured"),
        (np.zeros(3, [("x", "<i8")]), "'x' has dtype int64"),
        (np.zeros(3, [("x", "?")]), "'x' has dtype bool"),
        (np.zeros((2, 2, 2), [("x", "<f4")]), "(2, 2, 2)"),
    ],
)
def test_structured_builder_rejects_bad_arrays(points: np.ndarray, needle: str) -> None:
    with pytest.raises(ConversionError) as info:
        structured_to_pointcloud2(points, frame_id="f", stamp_ns=0)
    assert isinstance(info.value, InvalidArrayError | FieldLayoutError)
    assert needle in str(info.value)


def test_xyzi_builder_validates_input() -> None:
    with pytest.raises(InvalidArrayError, match=r"\(N, 4\), got \(3, 3\)"):
        xyzi_to_pointcloud2(np.zeros((3, 3), np.float32), frame_id="f", stamp_ns=0)
    with pytest.raises(InvalidArrayError, match="point_step must be an int >= 16, got 12"):
        xyzi_to_pointcloud2(np.zeros((3, 4), np.float32), frame_id="f", stamp_ns=0, point_step=12)


# --------------------------------------------------------------------------- real data


def test_real_nuscenes_sweep_round_trips_through_cdr(realdata: Path) -> None:
    folder = realdata / "nuscenes_scene0061"
    calib = json.loads((folder / "calib.json").read_text())
    sweep = np.fromfile(folder / calib["lidar_file"], dtype="<f4").reshape(-1, 5)
    assert len(sweep) == calib["num_points"] == 34688
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "intensity", "ring"],
            "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
            "offsets": [0, 4, 8, 16, 20],
            "itemsize": 32,
        }
    )
    points = np.zeros(len(sweep), dtype)
    for j, name in enumerate(("x", "y", "z", "intensity")):
        points[name] = sweep[:, j]
    points["ring"] = sweep[:, 4].astype(np.uint16)
    msg = structured_to_pointcloud2(points, frame_id="LIDAR_TOP", stamp_ns=1532402927647951000)
    raw = serialize_message(msg)
    decoded = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2")
    xyzi = pointcloud2_to_array(decoded, source="nuscenes/LIDAR_TOP")
    np.testing.assert_array_equal(xyzi, sweep[:, :4])
    rings = pointcloud2_to_array(deserialize_message(raw, PointCloud2), ("ring",), np.uint16)
    np.testing.assert_array_equal(rings[:, 0], sweep[:, 4])
    assert set(np.unique(rings)) <= set(range(32))
    assert msg.is_dense is True

"""BEV raster <-> nav_msgs/OccupancyGrid: layout (rows +y, columns +x), round trips through
CDR, value mapping, and errors that name the value and where it came from."""

from __future__ import annotations

import array
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nav_msgs.msg import OccupancyGrid
from rclpy.serialization import deserialize_message, serialize_message

from fusion_node.convert import occupancy_grid_to_raster, raster_to_occupancy_grid, time_to_ns
from fusion_node.convert.grids import OCCUPIED
from fusion_node.errors import ConversionError, InvalidArrayError, MalformedMessageError, UnsupportedMessageError
from perception.bev_grid import BevGrid

GRID = BevGrid(x_min=-10.0, x_max=30.0, y_min=-8.0, y_max=8.0, resolution=0.4)  # 100 columns, 40 rows
SOURCE = "/fusion_node/output/occupancy"


def test_default_grid_round_trips_through_cdr() -> None:
    grid = BevGrid()
    rng = np.random.default_rng(0)
    raster = rng.integers(-1, 101, size=grid.shape).astype(np.int8)
    msg = raster_to_occupancy_grid(raster, grid, frame_id="base_link", stamp_ns=1_700_000_000_123_456_789)
    back = deserialize_message(serialize_message(msg), OccupancyGrid)
    assert back.header.frame_id == "base_link"
    assert time_to_ns(back.header.stamp) == 1_700_000_000_123_456_789
    assert time_to_ns(back.info.map_load_time) == 1_700_000_000_123_456_789
    assert (back.info.width, back.info.height) == (grid.nx, grid.ny) == (256, 256)
    assert back.info.resolution == pytest.approx(0.4, rel=1e-7)  # float32 on the wire
    values, read_grid = occupancy_grid_to_raster(back, source=SOURCE)
    np.testing.assert_array_equal(values, raster)
    assert values.dtype == np.int8
    # the float32 resolution comes back as the decimal it was written from
    assert read_grid.resolution == 0.4
    assert read_grid.shape == grid.shape
    assert (read_grid.x_min, read_grid.x_max, read_grid.y_min, read_grid.y_max) == pytest.approx(
        (grid.x_min, grid.x_max, grid.y_min, grid.y_max), abs=1e-9
    )


def test_layout_rows_along_y_columns_along_x() -> None:
    """A cell set where a base_link point falls lands where RViz draws that point."""
    point = np.array([[12.3, -5.1]])
    row, col, inside = GRID.cell_of(point)
    assert inside[0]
    raster = np.zeros(GRID.shape, dtype=bool)
    raster[row[0], col[0]] = True
    msg = raster_to_occupancy_grid(raster, GRID, frame_id="base_link", stamp_ns=5)
    index = int(np.flatnonzero(np.frombuffer(msg.data, dtype=np.int8))[0])
    # OccupancyGrid: cell (i, j) = data[j * width + i], world = origin + (i + 0.5, j + 0.5) * resolution
    i, j = index % msg.info.width, index // msg.info.width
    x = msg.info.origin.position.x + (i + 0.5) * msg.info.resolution
    y = msg.info.origin.position.y + (j + 0.5) * msg.info.resolution
    assert abs(x - point[0, 0]) <= GRID.resolution / 2 + 1e-6
    assert abs(y - point[0, 1]) <= GRID.resolution / 2 + 1e-6
    assert msg.info.origin.orientation.w == 1.0
    assert (msg.info.origin.position.x, msg.info.origin.position.y) == (-10.0, -8.0)


def test_bool_raster_becomes_0_and_100_and_z_is_kept() -> None:
    raster = np.zeros(GRID.shape, dtype=bool)
    raster[3, 7:9] = True
    msg = raster_to_occupancy_grid(raster, GRID, frame_id="map", stamp_ns=0, z_m=-1.5)
    values, _ = occupancy_grid_to_raster(msg)
    assert set(np.unique(values).tolist()) == {0, OCCUPIED}
    np.testing.assert_array_equal(values == OCCUPIED, raster)
    assert msg.info.origin.position.z == -1.5
    uint8 = raster_to_occupancy_grid(raster.astype(np.uint8) * 100, GRID, frame_id="map", stamp_ns=0)
    assert bytes(uint8.data) == bytes(msg.data)


@pytest.mark.parametrize(
    ("raster", "words"),
    [
        (np.zeros((40, 99), dtype=bool), "raster shape (40, 99) does not match the grid's (ny, nx) = (40, 100)"),
        (np.zeros((100, 40), dtype=bool), "raster shape (100, 40)"),
        (np.zeros((40, 100), dtype=np.float32), "dtype float32"),
        ([[0] * 100] * 40, "expected a numpy array, got list"),
    ],
)
def test_builder_rejects_bad_rasters(raster: Any, words: str) -> None:
    with pytest.raises(InvalidArrayError) as info:
        raster_to_occupancy_grid(raster, GRID, frame_id="base_link", stamp_ns=0)
    assert words in str(info.value)
    assert "raster_to_occupancy_grid" in str(info.value)


def test_builder_names_the_first_out_of_range_cell() -> None:
    raster = np.zeros(GRID.shape, dtype=np.int16)
    raster[2, 5] = 101
    with pytest.raises(InvalidArrayError, match=r"raster\[2, 5\] = 101 is outside \[-1, 100\]"):
        raster_to_occupancy_grid(raster, GRID, frame_id="base_link", stamp_ns=0)
    raster[2, 5] = -2
    with pytest.raises(InvalidArrayError, match=r"raster\[2, 5\] = -2"):
        raster_to_occupancy_grid(raster, GRID, frame_id="base_link", stamp_ns=0)


def _msg(**changes: Any) -> OccupancyGrid:
    msg = raster_to_occupancy_grid(np.zeros(GRID.shape, dtype=bool), GRID, frame_id="base_link", stamp_ns=0)
    for dotted, value in changes.items():
        obj = msg
        *path, last = dotted.split("__")
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, last, value)
    return msg


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"info__width": 99}, MalformedMessageError, "data has 4000 cells but info.width * info.height = 3960"),
        ({"info__height": 0}, MalformedMessageError, "info.height must be >= 1, got 0"),
        ({"info__resolution": 0.0}, MalformedMessageError, "info.resolution must be finite and > 0, got 0.0"),
        ({"info__resolution": float("nan")}, MalformedMessageError, "info.resolution must be finite"),
        ({"data": array.array("b", [5] * 3999 + [101])}, MalformedMessageError, "data[3999] = 101 is outside"),
        ({"info__origin__position__x": float("inf")}, MalformedMessageError, "info.origin.position.x must be finite"),
    ],
)
def test_reader_errors_name_field_value_and_topic(changes: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error) as info:
        occupancy_grid_to_raster(_msg(**changes), source=SOURCE)
    assert words in str(info.value)
    assert f"OccupancyGrid on {SOURCE}" in str(info.value)


def test_reader_refuses_a_rotated_origin() -> None:
    msg = _msg(info__origin__orientation__z=0.7071068, info__origin__orientation__w=0.7071068)
    with pytest.raises(UnsupportedMessageError, match=r"rotated; only axis-aligned") as info:
        occupancy_grid_to_raster(msg, source=SOURCE)
    assert SOURCE in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        np.zeros(4000, dtype=np.int8),  # rosbags
        np.zeros(4000, dtype=np.uint8),
        bytes(4000),
        [0] * 4000,
        array.array("b", bytes(4000)),
    ],
    ids=["int8", "uint8", "bytes", "list", "array"],
)
def test_reader_accepts_every_data_container(data: Any) -> None:
    values, _ = occupancy_grid_to_raster(_msg(data=[0] * 4000) if isinstance(data, list) else _fake(data))
    assert values.shape == GRID.shape
    assert not values.any()


def _fake(data: Any, **info: Any) -> SimpleNamespace:
    """A rosbags-like message: plain attributes, numpy data."""
    position = SimpleNamespace(x=GRID.x_min, y=GRID.y_min, z=0.0)
    orientation = SimpleNamespace(x=0.0, y=0.0, z=0.0, w=1.0)
    fields = {"width": GRID.nx, "height": GRID.ny, "resolution": np.float32(GRID.resolution)} | info
    return SimpleNamespace(
        info=SimpleNamespace(origin=SimpleNamespace(position=position, orientation=orientation), **fields), data=data
    )


weird = st.one_of(
    st.none(),
    st.integers(-5, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=2),
    st.booleans(),
    st.binary(max_size=50),
    st.lists(st.integers(-200, 200), max_size=5),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_messages_raise_only_conversion_errors(data: st.DataObject) -> None:
    msg = _fake(np.zeros(GRID.nx * GRID.ny, dtype=np.int8))
    targets = {
        "info.width": msg.info,
        "info.height": msg.info,
        "info.resolution": msg.info,
        "info.origin.position.x": msg.info.origin.position,
        "info.origin.orientation.w": msg.info.origin.orientation,
        "data": msg,
    }
    for name in data.draw(st.lists(st.sampled_from(sorted(targets)), max_size=3)):
        owner, attribute = targets[name], name.rsplit(".", 1)[-1]
        if data.draw(st.booleans()) and hasattr(owner, attribute):
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, data.draw(weird))
    try:
        values, grid = occupancy_grid_to_raster(msg, source=SOURCE)
    except ConversionError as exc:
        error: ConversionError | None = exc
    else:
        error = None
    if error is not None:
        event(type(error).__name__)
        assert SOURCE in str(error)
        return
    event("ok")
    assert values.shape == grid.shape
    assert values.dtype == np.int8

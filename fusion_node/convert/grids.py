"""BEV rasters <-> ``nav_msgs/OccupancyGrid``.

The runtime's BEV layout (:mod:`perception.bev_grid`: rows along +y, columns along +x, cell
``[0, 0]`` with its lower corner at ``(x_min, y_min)``) is the memory layout of an
OccupancyGrid with an unrotated origin at ``(x_min, y_min)``, so a raster is published
without transposing or flipping: ``data[row * width + col] = raster[row, col]``.

Cell values follow the message definition: occupancy probability in percent ``[0, 100]``,
``-1`` unknown. A boolean raster (e.g. a decoded segmentation mask) becomes 0 / 100.

:func:`occupancy_grid_to_raster` reads such a message back (tests, recorders, renderers):
it duck-types rclpy and rosbags messages and raises only ConversionError subclasses naming
the source, the field and the value.
"""

from __future__ import annotations

import array
import math
from typing import Any, Final

import numpy as np
from nav_msgs.msg import OccupancyGrid
from numpy.typing import NDArray

from fusion_node.convert._common import as_float, as_int, get_attr
from fusion_node.convert.motion import make_header, ns_to_time
from fusion_node.errors import InvalidArrayError, MalformedMessageError, UnsupportedMessageError
from perception.bev_grid import BevGrid
from perception.errors import GridError

__all__ = ["FREE", "OCCUPIED", "UNKNOWN", "occupancy_grid_to_raster", "raster_to_occupancy_grid"]

_MSG: Final = "OccupancyGrid"
#: Cell values of nav_msgs/OccupancyGrid: free, occupied (percent), unknown.
FREE: Final = 0
OCCUPIED: Final = 100
UNKNOWN: Final = -1
#: Largest |quaternion - identity| component accepted as an unrotated origin.
_IDENTITY_TOLERANCE: Final = 1e-6


def _cell_values(raster: Any, grid: BevGrid, where: str) -> NDArray[np.int8]:
    if not isinstance(raster, np.ndarray):
        raise InvalidArrayError(f"{where}: expected a numpy array, got {type(raster).__name__}")
    if raster.shape != grid.shape:
        raise InvalidArrayError(
            f"{where}: raster shape {raster.shape} does not match the grid's (ny, nx) = {grid.shape}"
        )
    if raster.dtype == np.bool_:
        return np.where(raster, np.int8(OCCUPIED), np.int8(FREE))
    if raster.dtype.kind not in "iu":
        raise InvalidArrayError(
            f"{where}: expected a bool raster or integer percentages in [{UNKNOWN}, {OCCUPIED}], got dtype "
            f"{raster.dtype}"
        )
    if raster.size:
        low, high = int(raster.min()), int(raster.max())
        if low < UNKNOWN or high > OCCUPIED:
            bad = low if low < UNKNOWN else high
            row, col = np.argwhere(raster == bad)[0]
            raise InvalidArrayError(
                f"{where}: raster[{row}, {col}] = {bad} is outside [{UNKNOWN}, {OCCUPIED}] "
                "(percent occupied, -1 unknown)"
            )
    return raster.astype(np.int8)


def raster_to_occupancy_grid(
    raster: NDArray[Any], grid: BevGrid, *, frame_id: str, stamp_ns: int, z_m: float = 0.0
) -> OccupancyGrid:
    """A BEV raster -> OccupancyGrid.

    Args:
        raster: (ny, nx) = ``grid.shape`` on ``grid`` (row along +y, column along +x), in
            ``frame_id``; bool (True -> 100, False -> 0) or integers in [-1, 100] (percent
            occupied, -1 unknown).
        grid: the raster's grid; ``info.resolution`` = cell size (metres, stored as float32),
            ``info.origin`` = (x_min, y_min, ``z_m``) with identity orientation.
        frame_id: header.frame_id (normally base_link).
        stamp_ns: header.stamp and info.map_load_time, int nanoseconds.
        z_m: height of the grid plane in ``frame_id``, metres.

    Raises:
        InvalidArrayError: not a numpy array, shape differs from ``grid.shape``, float dtype,
            or a value outside [-1, 100] (the message names the first such cell).
    """
    where = "raster_to_occupancy_grid"
    if not isinstance(grid, BevGrid):
        raise InvalidArrayError(f"{where}: grid must be a BevGrid, got {type(grid).__name__}")
    if not math.isfinite(z_m):
        raise InvalidArrayError(f"{where}: z_m must be finite, got {z_m!r}")
    values = _cell_values(raster, grid, where)
    msg = OccupancyGrid()
    msg.header = make_header(frame_id, stamp_ns)
    msg.info.map_load_time = ns_to_time(stamp_ns)
    msg.info.resolution = float(grid.resolution)
    msg.info.width = grid.nx
    msg.info.height = grid.ny
    msg.info.origin.position.x = float(grid.x_min)
    msg.info.origin.position.y = float(grid.y_min)
    msg.info.origin.position.z = float(z_m)
    msg.info.origin.orientation.w = 1.0
    data = array.array("b")
    data.frombytes(np.ascontiguousarray(values).tobytes())
    msg.data = data
    return msg


def _int8_cells(data: Any, *, source: str) -> NDArray[np.int8]:
    """The ``data`` field (int8[]) as a 1-D int8 array: rclpy ``array('b')``, rosbags numpy
    arrays, bytes, or a list of ints."""

    def bad(detail: str) -> MalformedMessageError:
        return MalformedMessageError(f"data {detail}", msg_type=_MSG, source=source, field="data")

    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "iu" or data.dtype.itemsize != 1 or data.ndim != 1:
            raise bad(f"must be a 1-D int8 array, got dtype {data.dtype} and shape {data.shape}")
        return data.view(np.int8)
    if isinstance(data, array.array):
        if data.itemsize != 1:
            raise bad(f"must be an int8 array, got array('{data.typecode}')")
        return np.frombuffer(data, dtype=np.int8) if len(data) else np.zeros(0, np.int8)
    if isinstance(data, bytes | bytearray):
        return np.frombuffer(data, dtype=np.int8)
    if isinstance(data, list | tuple):
        if not all(isinstance(v, int) and not isinstance(v, bool) and -128 <= v <= 127 for v in data):
            raise bad("must contain only integers in [-128, 127]")
        return np.array(data, dtype=np.int8)
    raise bad(f"must be an int8 sequence, got {type(data).__name__}")


def _float32_decimal(value: float) -> float:
    """The shortest decimal that round-trips a float32 (0.4f -> 0.4, not 0.4000000059604645)."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="0"))


def occupancy_grid_to_raster(msg: Any, *, source: str = "") -> tuple[NDArray[np.int8], BevGrid]:
    """OccupancyGrid -> (raster, grid).

    Returns:
        raster: (height, width) int8 (a new array), row along +y and column along +x of
            header.frame_id, values in [-1, 100].
        grid: the BevGrid of the message: x_min / y_min = origin position, resolution =
            info.resolution rounded to the shortest decimal of its float32 value, extent =
            cells x resolution (z range: the BevGrid default).

    Raises:
        MalformedMessageError: missing fields, non-integer or zero sizes, non-finite or
            non-positive resolution, non-finite origin, len(data) != width * height, a
            value outside [-1, 100].
        UnsupportedMessageError: a rotated origin (only axis-aligned grids are read).
    """

    def field(obj: Any, dotted: str) -> Any:
        for part in dotted.split("."):
            obj = get_attr(obj, part, msg_type=_MSG, source=source)
        return obj

    def malformed(detail: str, name: str) -> MalformedMessageError:
        return MalformedMessageError(detail, msg_type=_MSG, source=source, field=name)

    width = as_int(field(msg, "info.width"), "info.width", msg_type=_MSG, source=source, minimum=1)
    height = as_int(field(msg, "info.height"), "info.height", msg_type=_MSG, source=source, minimum=1)
    resolution = as_float(field(msg, "info.resolution"), "info.resolution", msg_type=_MSG, source=source)
    if not (math.isfinite(resolution) and resolution > 0):
        raise malformed(f"info.resolution must be finite and > 0, got {resolution!r}", "info.resolution")
    origin: dict[str, float] = {}
    for name in ("position.x", "position.y", "orientation.x", "orientation.y", "orientation.z", "orientation.w"):
        dotted = f"info.origin.{name}"
        origin[name] = as_float(field(msg, dotted), dotted, msg_type=_MSG, source=source)
        if not math.isfinite(origin[name]):
            raise malformed(f"{dotted} must be finite, got {origin[name]!r}", dotted)
    rotation = [origin[f"orientation.{k}"] for k in "xyzw"]
    if max(abs(a - b) for a, b in zip(rotation, (0.0, 0.0, 0.0, 1.0), strict=True)) > _IDENTITY_TOLERANCE:
        raise UnsupportedMessageError(
            f"info.origin.orientation (x, y, z, w) = {tuple(rotation)} is rotated; only axis-aligned grids are read",
            msg_type=_MSG,
            source=source,
            field="info.origin.orientation",
        )
    cells = _int8_cells(field(msg, "data"), source=source)
    if cells.size != width * height:
        raise malformed(
            f"data has {cells.size} cells but info.width * info.height = {width * height} "
            f"(width={width}, height={height})",
            "data",
        )
    outside = np.flatnonzero((cells < UNKNOWN) | (cells > OCCUPIED))
    if outside.size:
        index = int(outside[0])
        raise malformed(f"data[{index}] = {int(cells[index])} is outside [{UNKNOWN}, {OCCUPIED}]", "data")
    cell = _float32_decimal(resolution)
    x_min, y_min = origin["position.x"], origin["position.y"]
    try:
        grid = BevGrid(
            x_min=x_min,
            x_max=round(x_min + width * cell, 9),
            y_min=y_min,
            y_max=round(y_min + height * cell, 9),
            resolution=cell,
        )
    except GridError as exc:
        raise malformed(f"info does not describe a grid: {exc}", "info") from None
    if grid.shape != (height, width):
        raise malformed(f"info: {width} x {height} cells of {cell} m give a {grid.shape} grid", "info")
    return cells.reshape(height, width).copy(), grid

"""``sensor_msgs/PointCloud2`` <-> numpy (structured and (N, k) arrays), lidar and radar.

Readers duck-type: rclpy messages (``data`` is ``array.array('B')``) and rosbags messages
(``data`` is a numpy uint8 array) are both accepted. Builders return rclpy messages with
little-endian data. Layout validation lives in :mod:`fusion_node.convert.pointfield`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import DTypeLike, NDArray
from sensor_msgs.msg import PointCloud2, PointField

from fusion_node.convert._common import new_byte_array
from fusion_node.convert.motion import make_header
from fusion_node.convert.pointfield import (
    DATATYPE_OF,
    POINTFIELD_DTYPES,
    CloudLayout,
    cloud_dtype,
)
from fusion_node.errors import FieldLayoutError, InvalidArrayError

__all__ = [
    "POINTFIELD_DTYPES",
    "RADAR_FIELDS",
    "XYZI_FIELDS",
    "cloud_dtype",
    "pointcloud2_to_array",
    "pointcloud2_to_radar",
    "pointcloud2_to_structured",
    "radar_to_pointcloud2",
    "structured_to_pointcloud2",
    "xyzi_to_pointcloud2",
]

_MSG: Final = "PointCloud2"

#: Radar point layout: float32 x, y, z (metres, sensor frame), vr (radial velocity, m/s,
#: positive = moving away), vr_compensated (ego-motion-compensated vr, m/s), rcs (dBsm).
RADAR_FIELDS: Final = ("x", "y", "z", "vr", "vr_compensated", "rcs")
XYZI_FIELDS: Final = ("x", "y", "z", "intensity")


def pointcloud2_to_structured(msg: Any, *, source: str = "") -> NDArray[np.void]:
    """PointCloud2 -> structured array with one item per point.

    Returns:
        Structured array of :func:`cloud_dtype` (field names, offsets and byte order of the
        message, itemsize = point_step), shape (height, width) when height > 1, else
        (width,) ((0,) for an empty cloud; an empty cloud may have point_step 0, the
        dtype is then sized to its fields). When rows are not padded this is a ZERO-COPY
        view of ``msg.data`` (read-only if the buffer is, e.g. rosbags/bytes; writing into
        a writable view changes the message); padded rows are stripped into a new array.
        Units and frame are those of the message fields (usually metres, header.frame_id).

    Raises:
        MalformedMessageError: point_step == 0 with points, row_step < width*point_step,
            len(data) != height*row_step, non-integer sizes.
        FieldLayoutError: invalid PointField layout (see :func:`cloud_dtype`).
    """
    layout = CloudLayout(msg, source)
    if layout.count == 0:
        return np.zeros(layout.shape, dtype=layout.dtype)
    if layout.dense:
        return np.frombuffer(layout.buffer, dtype=layout.dtype, count=layout.count).reshape(layout.shape)
    return layout.grid(layout.dtype).copy().reshape(layout.shape)


def pointcloud2_to_array(
    msg: Any,
    fields: Sequence[str] = XYZI_FIELDS,
    dtype: DTypeLike = np.float32,
    *,
    source: str = "",
) -> NDArray[Any]:
    """PointCloud2 -> dense (N, len(fields)) array of the requested fields.

    Args:
        msg: PointCloud2 (rclpy or rosbags).
        fields: names of count-1 fields to extract, in output column order.
        dtype: output dtype; values are cast (NaN/inf kept for float output).
        source: where the message came from, for error messages.

    Returns:
        (N, len(fields)) C-contiguous array of ``dtype``, N = height*width, organized clouds
        flattened row-major; e.g. (N, 4) float32 [x, y, z, intensity] in the sensor frame
        (header.frame_id), metres. Always a new array (never aliases ``msg.data``).

    Raises:
        FieldLayoutError: a requested field is missing (message lists the available fields)
            or has count > 1; invalid layout.
        MalformedMessageError: inconsistent sizes (see :func:`pointcloud2_to_structured`).
    """
    names = (fields,) if isinstance(fields, str) else tuple(fields)
    out_dtype = np.dtype(dtype)
    layout = CloudLayout(msg, source)
    field_map = layout.dtype.fields or {}
    available = list(layout.dtype.names or ())
    columns: list[tuple[np.dtype[Any], int]] = []
    for name in names:
        if name not in field_map:
            raise FieldLayoutError(
                f"field '{name}' not found; available fields: {available}",
                msg_type=_MSG,
                source=source,
                field=name,
            )
        field_dtype, offset = field_map[name][:2]
        if field_dtype.shape:
            raise FieldLayoutError(
                f"field '{name}' has count {field_dtype.shape[0]}; pointcloud2_to_array needs "
                "count == 1 fields (use pointcloud2_to_structured)",
                msg_type=_MSG,
                source=source,
                field=name,
            )
        columns.append((field_dtype, offset))
    n, k = layout.count, len(names)
    if n == 0 or k == 0:
        return np.empty((n, k), dtype=out_dtype)
    first_offset = columns[0][1]
    fast = out_dtype.isnative and all(
        field_dtype == out_dtype and offset == first_offset + j * out_dtype.itemsize
        for j, (field_dtype, offset) in enumerate(columns)
    )
    if fast:
        # The requested fields form one contiguous block of k native values inside each
        # point: copy that block per point as a single opaque item (one vectorized copy).
        block = np.dtype((np.void, k * out_dtype.itemsize))
        out = np.empty(n, dtype=block)
        out.reshape(layout.height, layout.width)[...] = layout.grid(block, first_offset)
        return out.view(out_dtype).reshape(n, k)
    out = np.empty((layout.height, layout.width, k), dtype=out_dtype)
    grid = layout.grid(layout.dtype)
    for j, name in enumerate(names):
        out[..., j] = grid[name]
    return out.reshape(n, k)


def _pointfields(dtype: np.dtype[Any], *, where: str) -> tuple[list[PointField], np.dtype[Any]]:
    """PointFields for a structured dtype, plus the same layout in little-endian order."""
    if dtype.names is None or dtype.fields is None:
        raise InvalidArrayError(f"{where}: expected a structured array, got dtype {dtype}")
    fields: list[PointField] = []
    formats: list[Any] = []
    offsets: list[int] = []
    for name in dtype.names:
        field_dtype, offset = dtype.fields[name][:2]
        base, shape = field_dtype.base, field_dtype.shape
        code = DATATYPE_OF.get((base.kind, base.itemsize))
        if code is None or base.names is not None:
            raise FieldLayoutError(
                f"{where}: field '{name}' has dtype {base}, which is none of the 8 PointField "
                f"datatypes ({', '.join(str(d) for d in POINTFIELD_DTYPES.values())})",
                field=name,
            )
        count = int(np.prod(shape)) if shape else 1
        fields.append(PointField(name=name, offset=int(offset), datatype=code, count=count))
        little = POINTFIELD_DTYPES[code].newbyteorder("<")
        formats.append(np.dtype((little, shape)) if shape else little)
        offsets.append(int(offset))
    # Validates overlaps and bounds exactly as a reader would.
    cloud_dtype(fields, dtype.itemsize, False, source=where)
    little_dtype = np.dtype(
        {"names": list(dtype.names), "formats": formats, "offsets": offsets, "itemsize": dtype.itemsize}
    )
    return fields, little_dtype


def _finite_xyz(points: NDArray[Any]) -> bool:
    field_map = points.dtype.fields or {}
    for name in ("x", "y", "z"):
        entry = field_map.get(name)
        if entry is not None and entry[0].kind == "f" and not np.isfinite(points[name]).all():
            return False
    return True


def _make_cloud(
    data: Any,
    fields: list[PointField],
    *,
    height: int,
    width: int,
    point_step: int,
    frame_id: str,
    stamp_ns: int,
    is_dense: bool,
) -> PointCloud2:
    msg = PointCloud2()
    msg.header = make_header(frame_id, stamp_ns)
    msg.height = height
    msg.width = width
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = point_step * width
    msg.data = data
    msg.is_dense = is_dense
    return msg


def structured_to_pointcloud2(
    points: NDArray[Any], *, frame_id: str, stamp_ns: int, is_dense: bool | None = None
) -> PointCloud2:
    """Structured array -> PointCloud2 (little-endian).

    Args:
        points: structured array, shape (N,) (unorganized, height 1) or (H, W) (organized);
            each field one of the 8 PointField dtypes, any byte order; subarray fields
            become ``count > 1`` (multi-dimensional subarrays are flattened). Offsets,
            padding between fields and trailing padding (itemsize = point_step) are kept;
            padding bytes are copied verbatim from little-endian input and zeroed when the
            input has to be byte-swapped.
        frame_id: header.frame_id.
        stamp_ns: header.stamp, int nanoseconds.
        is_dense: header flag; None computes it (True iff float x/y/z are all finite).
            The scan reads every point (about 1 ms for 300k points of 32 bytes, as much as
            the copy itself): pass the flag when it is known.

    Raises:
        InvalidArrayError: not a structured 1-D/2-D array, or itemsize 0.
        FieldLayoutError: a field dtype has no PointField datatype, or fields overlap.
    """
    where = "structured_to_pointcloud2"
    if not isinstance(points, np.ndarray):
        raise InvalidArrayError(f"{where}: expected a numpy array, got {type(points).__name__}")
    if points.ndim not in (1, 2):
        raise InvalidArrayError(f"{where}: expected shape (N,) or (H, W), got {points.shape}")
    fields, little = _pointfields(points.dtype, where=where)
    if little.itemsize == 0:
        raise InvalidArrayError(f"{where}: dtype {points.dtype} has itemsize 0")
    if points.dtype != little:
        converted = np.zeros(points.shape, dtype=little)  # zeroed padding, not garbage
        for name in little.names or ():
            converted[name] = points[name]
        points = converted
    height, width = points.shape if points.ndim == 2 else (1, points.shape[0])
    dense = _finite_xyz(points) if is_dense is None else bool(is_dense)
    # Copy whole items as opaque bytes: numpy copies of structured arrays move the fields
    # only and would leave the padding bytes uninitialized.
    items = points.view(np.dtype((np.void, little.itemsize)))
    return _make_cloud(
        new_byte_array(items),
        fields,
        height=height,
        width=width,
        point_step=little.itemsize,
        frame_id=frame_id,
        stamp_ns=stamp_ns,
        is_dense=dense,
    )


def _float32_columns_to_cloud(
    points: NDArray[Any],
    names: Sequence[str],
    *,
    point_step: int,
    frame_id: str,
    stamp_ns: int,
    where: str,
) -> PointCloud2:
    k = len(names)
    if not isinstance(points, np.ndarray) or points.dtype.kind not in "fiu":
        raise InvalidArrayError(
            f"{where}: expected a real numeric (N, {k}) array, got {getattr(points, 'dtype', type(points).__name__)}"
        )
    if points.ndim != 2 or points.shape[1] != k:
        raise InvalidArrayError(f"{where}: expected shape (N, {k}), got {points.shape}")
    if isinstance(point_step, bool) or not isinstance(point_step, int) or point_step < 4 * k:
        raise InvalidArrayError(f"{where}: point_step must be an int >= {4 * k}, got {point_step!r}")
    n = points.shape[0]
    values = np.ascontiguousarray(points, dtype=np.float32)
    block = np.dtype((np.void, 4 * k))
    buffer = np.zeros((n, point_step), dtype=np.uint8)
    if n:
        np.ndarray((n,), dtype=block, buffer=buffer, strides=(point_step,))[...] = values.view(block).reshape(n)
    fields = [PointField(name=name, offset=4 * j, datatype=PointField.FLOAT32, count=1) for j, name in enumerate(names)]
    return _make_cloud(
        new_byte_array(buffer),
        fields,
        height=1,
        width=n,
        point_step=point_step,
        frame_id=frame_id,
        stamp_ns=stamp_ns,
        is_dense=bool(np.isfinite(values[:, :3]).all()),
    )


def xyzi_to_pointcloud2(
    points: NDArray[np.float32], *, frame_id: str, stamp_ns: int, point_step: int = 16
) -> PointCloud2:
    """(N, 4) float32 [x, y, z, intensity] (frame_id, metres) -> unorganized PointCloud2.

    Fields x, y, z, intensity are FLOAT32 at offsets 0, 4, 8, 12; bytes 16..point_step of
    each point are zero padding. Other real dtypes are cast to float32.
    """
    return _float32_columns_to_cloud(
        points,
        XYZI_FIELDS,
        point_step=point_step,
        frame_id=frame_id,
        stamp_ns=stamp_ns,
        where="xyzi_to_pointcloud2",
    )


def radar_to_pointcloud2(points: NDArray[np.float32], *, frame_id: str, stamp_ns: int) -> PointCloud2:
    """(N, 6) float32 radar detections [x, y, z, vr, vr_compensated, rcs] -> PointCloud2.

    x, y, z in metres (radar frame = frame_id); vr and vr_compensated radial velocities in
    m/s, positive = moving away; rcs in dBsm. FLOAT32 fields at offsets 0..20, point_step 24.
    """
    return _float32_columns_to_cloud(
        points,
        RADAR_FIELDS,
        point_step=4 * len(RADAR_FIELDS),
        frame_id=frame_id,
        stamp_ns=stamp_ns,
        where="radar_to_pointcloud2",
    )


def pointcloud2_to_radar(msg: Any, *, source: str = "") -> NDArray[np.float32]:
    """PointCloud2 -> (N, 6) float32 [x, y, z, vr, vr_compensated, rcs] (see
    :data:`RADAR_FIELDS` for units). FieldLayoutError when a radar field is missing."""
    return pointcloud2_to_array(msg, RADAR_FIELDS, np.float32, source=source)

"""PointField layouts: numpy dtypes for the 8 datatypes and validated cloud geometry.

Used by :mod:`fusion_node.convert.pointcloud`; every check raises a
:class:`~fusion_node.errors.ConversionError` subclass naming the source and the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from sensor_msgs.msg import PointField

from fusion_node.convert._common import as_flag, as_int, byte_buffer, get_attr
from fusion_node.errors import FieldLayoutError, MalformedMessageError

_MSG: Final = "PointCloud2"

#: PointField datatype constant -> numpy dtype (native order; byte order is set per cloud).
POINTFIELD_DTYPES: Final[dict[int, np.dtype[Any]]] = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}
DATATYPE_NAMES: Final = {
    1: "INT8", 2: "UINT8", 3: "INT16", 4: "UINT16",
    5: "INT32", 6: "UINT32", 7: "FLOAT32", 8: "FLOAT64",
}  # fmt: skip
#: (dtype.kind, dtype.itemsize) -> PointField datatype constant.
DATATYPE_OF: Final = {(dt.kind, dt.itemsize): code for code, dt in POINTFIELD_DTYPES.items()}


def _field_attr(field: Any, index: int, attr: str, *, source: str) -> Any:
    value = getattr(field, attr, None)
    if value is None:
        raise FieldLayoutError(
            f"fields[{index}] has no attribute '{attr}' ({type(field).__name__})",
            msg_type=_MSG,
            source=source,
            field="fields",
        )
    return value


def _field_int(field: Any, index: int, attr: str, name: str, *, source: str) -> int:
    value = _field_attr(field, index, attr, source=source)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise FieldLayoutError(
            f"field '{name}' has non-integer {attr} {value!r}",
            msg_type=_MSG,
            source=source,
            field="fields",
        )
    return int(value)


def cloud_dtype(fields: Sequence[Any], point_step: int, is_bigendian: bool, *, source: str = "") -> np.dtype[np.void]:
    """Structured dtype describing one point of a PointCloud2.

    Args:
        fields: PointField-like objects (``name``, ``offset``, ``datatype``, ``count``).
        point_step: bytes per point; becomes the dtype's itemsize (trailing padding kept).
        is_bigendian: byte order of multi-byte fields.
        source: where the message came from, for error messages.

    Returns:
        Structured dtype with explicit offsets, itemsize = point_step; fields with
        ``count > 1`` are (count,) subarray fields; byte order as given.

    Raises:
        FieldLayoutError: unknown datatype, count < 1, negative offset, field extending past
            point_step, overlapping byte ranges, duplicate or empty names.
    """

    if isinstance(point_step, bool) or not isinstance(point_step, int | np.integer):
        raise FieldLayoutError(
            f"point_step must be an integer, got {point_step!r}", msg_type=_MSG, source=source, field="point_step"
        )
    if point_step < 0:
        raise FieldLayoutError(
            f"point_step must be >= 0, got {point_step}", msg_type=_MSG, source=source, field="point_step"
        )
    return _point_dtype(fields, int(point_step), is_bigendian, source=source)


def _point_dtype(
    fields: Sequence[Any], point_step: int | None, is_bigendian: bool, *, source: str
) -> np.dtype[np.void]:
    """:func:`cloud_dtype`; ``point_step=None`` sizes the dtype to the last field's end."""

    def bad(text: str) -> FieldLayoutError:
        return FieldLayoutError(text, msg_type=_MSG, source=source, field="fields")

    try:
        field_list = list(fields)
    except TypeError:
        raise bad(f"fields must be a sequence, got {type(fields).__name__}") from None
    order = ">" if is_bigendian else "<"
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    spans: list[tuple[int, int, str]] = []
    for index, field in enumerate(field_list):
        name = _field_attr(field, index, "name", source=source)
        if not isinstance(name, str) or not name:
            raise bad(f"fields[{index}] has an empty or non-string name {name!r}")
        if name in names:
            raise bad(f"duplicate field name '{name}' (fields[{names.index(name)}] and fields[{index}])")
        datatype = _field_int(field, index, "datatype", name, source=source)
        if datatype not in POINTFIELD_DTYPES:
            raise bad(
                f"field '{name}' has unknown datatype {datatype} (valid: 1..8 = {', '.join(DATATYPE_NAMES.values())})"
            )
        offset = _field_int(field, index, "offset", name, source=source)
        count = _field_int(field, index, "count", name, source=source)
        if offset < 0:
            raise bad(f"field '{name}' has negative offset {offset}")
        if count < 1:
            raise bad(f"field '{name}' has count {count}; count must be >= 1")
        base = POINTFIELD_DTYPES[datatype].newbyteorder(order)
        end = offset + base.itemsize * count
        if point_step is not None and end > point_step:
            raise bad(
                f"field '{name}' ({DATATYPE_NAMES[datatype]} x {count} at offset {offset}, "
                f"bytes {offset}..{end}) extends past point_step {point_step}"
            )
        names.append(name)
        formats.append(base if count == 1 else np.dtype((base, (count,))))
        offsets.append(offset)
        spans.append((offset, end, name))
    spans.sort()
    for (start_a, end_a, name_a), (start_b, end_b, name_b) in pairwise(spans):
        if start_b < end_a:
            raise bad(f"fields '{name_a}' (bytes {start_a}..{end_a}) and '{name_b}' (bytes {start_b}..{end_b}) overlap")
    itemsize = max((end for _, end, _ in spans), default=0) if point_step is None else point_step
    try:
        return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})
    except (ValueError, TypeError, OverflowError) as exc:
        raise bad(f"cannot build a point dtype with point_step {point_step}: {exc}") from None


class CloudLayout:
    """Validated geometry of a PointCloud2 message and its byte buffer."""

    __slots__ = ("buffer", "dtype", "height", "point_step", "row_step", "width")

    def __init__(self, msg: Any, source: str) -> None:
        def number(name: str) -> int:
            value = get_attr(msg, name, msg_type=_MSG, source=source)
            return as_int(value, name, msg_type=_MSG, source=source)

        self.height = number("height")
        self.width = number("width")
        self.point_step = number("point_step")
        self.row_step = number("row_step")
        bigendian = as_flag(
            get_attr(msg, "is_bigendian", msg_type=_MSG, source=source),
            "is_bigendian",
            msg_type=_MSG,
            source=source,
        )
        points = self.height * self.width
        row_bytes = self.width * self.point_step
        if points > 0 and self.point_step == 0:
            raise MalformedMessageError(
                f"point_step is 0 but the cloud has height*width = {points} points",
                msg_type=_MSG,
                source=source,
                field="point_step",
            )
        if self.row_step < row_bytes:
            raise MalformedMessageError(
                f"row_step {self.row_step} < width*point_step = {row_bytes} "
                f"(width={self.width}, point_step={self.point_step})",
                msg_type=_MSG,
                source=source,
                field="row_step",
            )
        fields = get_attr(msg, "fields", msg_type=_MSG, source=source)
        # An empty cloud may come with point_step 0 (e.g. a default-constructed message);
        # its fields still describe the layout, so size the dtype from them.
        step = None if points == 0 and self.point_step == 0 else self.point_step
        self.dtype = _point_dtype(fields, step, bigendian, source=source)
        self.buffer = byte_buffer(get_attr(msg, "data", msg_type=_MSG, source=source), msg_type=_MSG, source=source)
        expected = self.height * self.row_step
        if self.buffer.size != expected:
            raise MalformedMessageError(
                f"data has {self.buffer.size} bytes but height*row_step = {expected} "
                f"(height={self.height}, row_step={self.row_step})",
                msg_type=_MSG,
                source=source,
                field="data",
            )

    @property
    def count(self) -> int:
        return self.height * self.width

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.height, self.width) if self.height > 1 else (self.count,)

    @property
    def dense(self) -> bool:
        """True when rows are not padded (row_step == width*point_step)."""
        return self.row_step == self.width * self.point_step

    def grid(self, dtype: np.dtype[Any], offset: int = 0) -> NDArray[Any]:
        """(height, width) strided view of ``dtype`` items at ``offset`` in each point."""
        return np.ndarray(
            (self.height, self.width),
            dtype=dtype,
            buffer=self.buffer,
            offset=offset,
            strides=(self.row_step, self.point_step),
        )

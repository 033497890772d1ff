"""Helpers shared by the converters: duck-typed field access and byte buffers.

Readers accept rclpy messages (``data`` is ``array.array('B')``, sometimes ``bytes``) and
rosbags-deserialized messages (``data`` is a 1-D ``numpy.uint8`` array, often read-only);
every access goes through these helpers so that a malformed or foreign object raises a
:class:`~fusion_node.errors.ConversionError` subclass instead of an AttributeError,
TypeError or numpy error.
"""

from __future__ import annotations

import array
import operator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusion_node.errors import MalformedMessageError

_MISSING = object()


def get_attr(msg: Any, name: str, *, msg_type: str, source: str) -> Any:
    """``getattr(msg, name)`` raising MalformedMessageError when the attribute is absent."""
    value = getattr(msg, name, _MISSING)
    if value is _MISSING:
        raise MalformedMessageError(
            f"message of type {type(msg).__name__} has no field '{name}'",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    return value


def as_int(
    value: Any,
    name: str,
    *,
    msg_type: str,
    source: str,
    minimum: int | None = 0,
    maximum: int | None = None,
) -> int:
    """``value`` as a Python int (numpy integers accepted, bool and floats rejected)."""
    if isinstance(value, bool | np.bool_):
        raise MalformedMessageError(
            f"{name} must be an integer, got bool {value!r}",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    try:
        result = operator.index(value)
    except TypeError:
        raise MalformedMessageError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}",
            msg_type=msg_type,
            source=source,
            field=name,
        ) from None
    if minimum is not None and result < minimum:
        raise MalformedMessageError(
            f"{name} must be >= {minimum}, got {result}",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    if maximum is not None and result > maximum:
        raise MalformedMessageError(
            f"{name} must be <= {maximum}, got {result}",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    return result


def as_flag(value: Any, name: str, *, msg_type: str, source: str) -> bool:
    """A boolean message field (``bool`` in PointCloud2, ``uint8`` 0/1 in Image)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    number = as_int(value, name, msg_type=msg_type, source=source, minimum=0, maximum=1)
    return number == 1


def as_float(value: Any, name: str, *, msg_type: str, source: str) -> float:
    """``value`` as a Python float (ints and numpy scalars accepted; NaN/inf pass through)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise MalformedMessageError(
            f"{name} must be a number, got {type(value).__name__} {value!r}",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    try:
        return float(value)
    except OverflowError:
        raise MalformedMessageError(
            f"{name} = {value!r} does not fit in a float",
            msg_type=msg_type,
            source=source,
            field=name,
        ) from None


def as_str(value: Any, name: str, *, msg_type: str, source: str) -> str:
    """A string message field (no conversion of other types)."""
    if not isinstance(value, str):
        raise MalformedMessageError(
            f"{name} must be a string, got {type(value).__name__} {value!r}",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    return value


def as_float_vector(
    value: Any, name: str, *, msg_type: str, source: str, size: int | None = None
) -> NDArray[np.float64]:
    """A float64[] / float64[n] message field as a new 1-D float64 array (not validated finite)."""
    try:
        if isinstance(value, str | bytes):
            raise TypeError(type(value).__name__)
        result = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedMessageError(
            f"{name} must be a sequence of numbers, got {type(value).__name__} ({exc})",
            msg_type=msg_type,
            source=source,
            field=name,
        ) from None
    if result.ndim != 1:
        raise MalformedMessageError(
            f"{name} must be a flat sequence, got shape {result.shape}",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    if size is not None and result.size != size:
        raise MalformedMessageError(
            f"{name} must have {size} values, got {result.size}",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    return result


def byte_buffer(data: Any, *, msg_type: str, source: str, name: str = "data") -> NDArray[np.uint8]:
    """The ``data`` field as a 1-D uint8 array, without copying whenever possible.

    Accepts ``array.array('B')``, ``bytes``, ``bytearray``, ``memoryview`` (zero-copy
    views, writable iff the source is) and 1-D ``numpy.uint8`` arrays (returned as is when
    contiguous). Lists/tuples of ints in [0, 255] are copied.
    """

    def bad(detail: str) -> MalformedMessageError:
        return MalformedMessageError(f"{name} {detail}", msg_type=msg_type, source=source, field=name)

    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise bad(f"must be a uint8 array, got dtype {data.dtype}")
        if data.ndim != 1:
            raise bad(f"must be a 1-D array, got shape {data.shape}")
        return np.ascontiguousarray(data)
    if isinstance(data, bytes | bytearray | memoryview | array.array):
        try:
            view = memoryview(data)
        except TypeError as exc:  # pragma: no cover - every listed type exports a buffer
            raise bad(f"cannot be read as bytes ({exc})") from None
        if view.itemsize != 1 or view.ndim != 1 or not view.c_contiguous:
            raise bad(
                f"must be a contiguous byte buffer, got format '{view.format}' with "
                f"itemsize {view.itemsize} and {view.ndim} dimension(s)"
            )
        return np.frombuffer(view, dtype=np.uint8)
    if isinstance(data, list | tuple):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in data):
            raise bad("must contain only integers")
        if data and (min(data) < 0 or max(data) > 255):
            raise bad(f"values must be in [0, 255], got range [{min(data)}, {max(data)}]")
        return np.array(data, dtype=np.uint8)
    raise bad(f"must be bytes, array.array('B') or a uint8 numpy array, got {type(data).__name__}")


def new_byte_array(source: NDArray[Any]) -> array.array[int]:
    """A new ``array.array('B')`` holding the raw bytes of a C-contiguous array (one copy).

    This is the cheapest container to assign to an rclpy ``uint8[]`` field: the generated
    setter copies ``array.array('B')`` with a memcpy when ROS_PYTHON_CHECK_FIELDS is off
    and stores it without any copy when it is on, whereas ``bytes`` is checked element by
    element in Python in the latter mode.
    """
    flat = np.ascontiguousarray(source).reshape(-1)
    result = array.array("B")
    if flat.size:
        result.frombytes(flat.view(np.uint8))
    return result

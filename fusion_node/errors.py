"""Exceptions raised when converting between ROS 2 messages and numpy arrays.

Every message names the message type, where it came from (``source``, usually the topic
name), the offending field and its value, e.g.::

    PointCloud2 on /sensing/lidar/top/points: data has 1000 bytes but height*row_step = 1024
    (height=1, row_step=1024)

All of them derive from :class:`ConversionError`, itself a :class:`ValueError`, so a caller
can drop a bad message with a single ``except ConversionError``.
"""

from __future__ import annotations


class ConversionError(ValueError):
    """Base class: a message (or an array given to a builder) cannot be converted.

    Attributes:
        msg_type: ROS message type name, e.g. ``"PointCloud2"`` ("" when not applicable).
        source: where the message came from (topic name, bag path), "" when unknown.
        field: the offending message field, "" when not applicable.
    """

    def __init__(self, message: str, *, msg_type: str = "", source: str = "", field: str = ""):
        self.msg_type = msg_type
        self.source = source
        self.field = field
        prefix = msg_type
        if source:
            prefix = f"{prefix} on {source}" if prefix else source
        super().__init__(f"{prefix}: {message}" if prefix else message)


class MalformedMessageError(ConversionError):
    """Sizes or values in the message are inconsistent or invalid.

    Examples: data length != height*row_step, step smaller than a row, NaN in a pose,
    nanosec >= 1e9, undecodable compressed bytes.
    """


class FieldLayoutError(ConversionError):
    """PointField layout problem: unknown datatype, overlapping fields, a field extending
    past point_step, duplicate or empty names, or a required field is missing."""


class UnsupportedMessageError(ConversionError):
    """The message is well formed but uses something this converter does not handle
    (e.g. a Range from an infrared sensor, CameraInfo with binning or a region of interest)."""


class UnsupportedEncodingError(UnsupportedMessageError):
    """Unknown image encoding, compressed image format or camera distortion model."""


class InvalidArrayError(ConversionError):
    """An array passed to a builder function has the wrong shape, dtype or layout."""


class BagError(Exception):
    """Base class of rosbag2 reading/writing errors; the message names the bag path.

    Attributes:
        path: the bag directory or file ("" when not applicable).
    """

    def __init__(self, message: str, *, path: str = ""):
        self.path = str(path)
        super().__init__(f"bag {self.path}: {message}" if self.path else message)


class BagExistsError(BagError, FileExistsError):
    """The output bag path exists already; bags are never overwritten."""


class BagOptionError(BagError, ValueError):
    """Unknown storage or compression name, an unsupported combination, or an unknown
    message type."""


class UnknownTopicError(BagError, ValueError):
    """Writing to a topic that was not added, adding a topic twice, or asking a reader for
    a topic the bag does not have (the message lists the known topics)."""


class BagWriteError(BagError, ValueError):
    """A message cannot be written: wrong message class for the topic, bad log time,
    writer not open."""


class BagReadError(BagError):
    """A bag is missing, not a rosbag2 bag, corrupt, or a message cannot be deserialized."""


class RecordError(BagError, ValueError):
    """A source record cannot become a message: sensor id not in the rig, payload of the
    wrong kind for the sensor's modality, or inconsistent frame ids / stamps."""

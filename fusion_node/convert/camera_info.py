"""``sensor_msgs/CameraInfo`` <-> :class:`calibration.intrinsics.CameraIntrinsics`."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from sensor_msgs.msg import CameraInfo

from calibration.errors import IntrinsicsError
from calibration.intrinsics import CameraIntrinsics
from fusion_node.convert._common import as_float_vector, as_int, as_str, get_attr
from fusion_node.convert.motion import make_header
from fusion_node.errors import (
    MalformedMessageError,
    UnsupportedEncodingError,
    UnsupportedMessageError,
)

_MSG: Final = "CameraInfo"

#: ROS distortion_model -> CameraIntrinsics.distortion_model. "" means "no distortion".
DISTORTION_MODEL_MAP: Final[dict[str, str]] = {
    "": "none",
    "plumb_bob": "plumb_bob",
    "rational_polynomial": "plumb_bob",
    "equidistant": "equidistant",
    "fisheye": "equidistant",
}


def camera_info_to_intrinsics(msg: Any, *, source: str = "") -> CameraIntrinsics:
    """CameraInfo -> CameraIntrinsics (K (3, 3) float64 pixels, width/height pixels, D).

    distortion_model mapping: "plumb_bob" -> plumb_bob (D as is: 4, 5 or 8 values);
    "rational_polynomial" -> plumb_bob with exactly 8 coefficients; "equidistant" and
    "fisheye" -> equidistant (4 values); "" or a plumb_bob/rational_polynomial D that is
    empty or all zeros -> "none". An all-zero equidistant D stays equidistant: that model
    with zero coefficients is the equidistant projection r = f*theta, not a pinhole.
    R and P are not used (intrinsics of the raw, unrectified image).

    Raises:
        UnsupportedEncodingError: unknown distortion model.
        UnsupportedMessageError: binning > 1 or a region of interest smaller than the image
            (K would not describe the delivered image).
        MalformedMessageError: K not 9 numbers, "" with non-zero D, wrong D length, invalid
            intrinsics (e.g. the all-zero K of an uncalibrated camera, width 0).
    """

    def field(name: str) -> Any:
        return get_attr(msg, name, msg_type=_MSG, source=source)

    model = as_str(field("distortion_model"), "distortion_model", msg_type=_MSG, source=source)
    if model not in DISTORTION_MODEL_MAP:
        raise UnsupportedEncodingError(
            f"unknown distortion_model '{model}'; supported: {sorted(DISTORTION_MODEL_MAP)}",
            msg_type=_MSG,
            source=source,
            field="distortion_model",
        )
    height = as_int(field("height"), "height", msg_type=_MSG, source=source)
    width = as_int(field("width"), "width", msg_type=_MSG, source=source)
    K = as_float_vector(field("k"), "k", msg_type=_MSG, source=source, size=9).reshape(3, 3)
    D = as_float_vector(field("d"), "d", msg_type=_MSG, source=source)
    _check_binning_and_roi(msg, width, height, source=source)

    target = DISTORTION_MODEL_MAP[model]
    if model == "rational_polynomial" and D.size != 8:
        raise MalformedMessageError(
            f"distortion_model 'rational_polynomial' needs 8 coefficients in d, got {D.size}: {D.tolist()}",
            msg_type=_MSG,
            source=source,
            field="d",
        )
    if target in ("none", "plumb_bob") and not np.any(D):
        target, D = "none", np.zeros(0)
    elif target == "none":
        raise MalformedMessageError(
            f"distortion_model is empty but d has non-zero coefficients {D.tolist()}",
            msg_type=_MSG,
            source=source,
            field="d",
        )
    try:
        return CameraIntrinsics(K=K, width=width, height=height, distortion_model=target, D=D)
    except IntrinsicsError as exc:
        raise MalformedMessageError(
            f"invalid intrinsics (distortion_model '{model}', width={width}, height={height}): {exc}",
            msg_type=_MSG,
            source=source,
            field="k",
        ) from exc


def _check_binning_and_roi(msg: Any, width: int, height: int, *, source: str) -> None:
    for name in ("binning_x", "binning_y"):
        value = getattr(msg, name, 0)
        binning = as_int(value, name, msg_type=_MSG, source=source)
        if binning > 1:
            raise UnsupportedMessageError(
                f"{name} = {binning}; binned images are not supported (K is for full resolution)",
                msg_type=_MSG,
                source=source,
                field=name,
            )
    roi = getattr(msg, "roi", None)
    if roi is None:
        return
    values = {
        name: as_int(getattr(roi, name, 0), f"roi.{name}", msg_type=_MSG, source=source)
        for name in ("x_offset", "y_offset", "width", "height")
    }
    full = (
        values["x_offset"] == 0
        and values["y_offset"] == 0
        and ((values["width"], values["height"]) in ((0, 0), (width, height)))
    )
    if not full:
        raise UnsupportedMessageError(
            f"roi {values} is a sub-window of the {width}x{height} image; not supported",
            msg_type=_MSG,
            source=source,
            field="roi",
        )


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, *, frame_id: str, stamp_ns: int) -> CameraInfo:
    """CameraIntrinsics -> CameraInfo with K, D, R = identity and P = [K | 0].

    plumb_bob with 8 coefficients is written as "rational_polynomial", other plumb_bob D
    as "plumb_bob" (4 or 5 values, unchanged), equidistant as "equidistant", and "none" as
    "plumb_bob" with five zeros (what ROS camera drivers publish for undistorted images).
    """
    model = intrinsics.distortion_model
    D = np.asarray(intrinsics.D, dtype=np.float64)
    if model == "none":
        ros_model, D = "plumb_bob", np.zeros(5)
    elif model == "plumb_bob" and D.size == 8:
        ros_model = "rational_polynomial"
    else:
        ros_model = model
    K = np.asarray(intrinsics.K, dtype=np.float64)
    msg = CameraInfo()
    msg.header = make_header(frame_id, stamp_ns)
    msg.height = int(intrinsics.height)
    msg.width = int(intrinsics.width)
    msg.distortion_model = ros_model
    msg.d = [float(v) for v in D]
    msg.k = K.reshape(9).copy()
    msg.r = np.eye(3).reshape(9)
    msg.p = np.hstack([K, np.zeros((3, 1))]).reshape(12)
    return msg

"""ROS CameraInfo YAML and OpenCV FileStorage YAML -> CameraIntrinsics (and rigs).

Two formats, told apart by their content:

- ROS ``camera_calibration_parsers``: ``image_width``, ``image_height``, ``camera_name``,
  ``camera_matrix: {rows, cols, data}``, ``distortion_model``, ``distortion_coefficients``,
  ``rectification_matrix``, ``projection_matrix``.
- OpenCV ``FileStorage`` (``%YAML:1.0`` or ``%YAML 1.2`` header, ``!!opencv-matrix`` nodes
  with rows, cols, dt, data, and ``!!opencv-nd-matrix`` nodes with sizes, dt, data):
  ``camera_matrix``/``K``/``cameraMatrix``, ``distortion_coefficients``/``D``/
  ``dist_coeffs``/``distCoeffs``, ``image_width``/``image_height`` (or ``width``/``height``
  or ``image_size: [w, h]``), optional ``distortion_model``.

Distortion model names: ``plumb_bob`` and ``rational_polynomial`` (8 coefficients) ->
"plumb_bob"; ``equidistant``/``fisheye`` -> "equidistant"; ``none`` (or plumb_bob with no
coefficients) -> "none". An OpenCV file without a model name is plumb_bob.

``rectified=True`` returns the intrinsics of the rectified image instead (K = the left 3x3
of ``projection_matrix``, distortion "none"), for ``image_rect`` topics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from calibration.errors import CalibrationError, CalibrationFileError
from calibration.intrinsics import DISTORTION_MODELS, CameraIntrinsics
from calibration.rig import Rig, rig_from_dict
from calibration.sensors import Modality

FloatArray = NDArray[np.float64]

#: Accepted ``distortion_model`` spellings -> our model name.
MODEL_NAMES = {
    "plumb_bob": "plumb_bob",
    "rational_polynomial": "plumb_bob",
    "equidistant": "equidistant",
    "fisheye": "equidistant",
    "none": "none",
}
_ALIASES = {
    "camera_matrix": ("camera_matrix", "cameraMatrix", "K", "intrinsic_matrix"),
    "distortion_coefficients": ("distortion_coefficients", "distCoeffs", "dist_coeffs", "D"),
    "image_width": ("image_width", "width"),
    "image_height": ("image_height", "height"),
}


class _OpenCVLoader(yaml.SafeLoader):
    """SafeLoader that reads ``!!opencv-matrix`` nodes as plain mappings."""


def _opencv_matrix(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, "!!opencv-matrix must be a mapping", node.start_mark)
    return loader.construct_mapping(node, deep=True)


_OpenCVLoader.add_constructor("tag:yaml.org,2002:opencv-matrix", _opencv_matrix)
_OpenCVLoader.add_constructor("tag:yaml.org,2002:opencv-nd-matrix", _opencv_matrix)  # {sizes, dt, data}


class _Document:
    """A parsed YAML mapping with the line of each top-level key (for error messages)."""

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CalibrationFileError(f"cannot read camera calibration: {exc}", source=self.source) from exc
        # OpenCV writes "%YAML:1.0" (OpenCV <= 4) or "%YAML 1.2" (OpenCV 5); PyYAML reads
        # neither: comment the directive out (keeps line numbers).
        text = re.sub(r"^%YAML[: ]\s*1\.\d+[^\n]*", lambda m: "#" + m.group(0), text, count=1)
        self.opencv = "!!opencv-" in text or text.startswith("#%YAML")
        try:
            data = yaml.load(text, Loader=_OpenCVLoader)  # a SafeLoader subclass
            root = yaml.compose(text, Loader=_OpenCVLoader)
        except yaml.YAMLError as exc:
            raise CalibrationFileError(f"invalid YAML: {exc}", source=self.source) from exc
        if not isinstance(data, Mapping):
            raise CalibrationFileError(
                f"expected a mapping of calibration fields, got {type(data).__name__}", source=self.source
            )
        self.data: Mapping[str, Any] = data
        self.lines: dict[str, int] = {}
        if isinstance(root, yaml.MappingNode):
            for key_node, _ in root.value:
                self.lines[str(key_node.value)] = key_node.start_mark.line + 1

    def error(self, field: str, message: str) -> CalibrationFileError:
        top = field.split(".")[0]
        return CalibrationFileError(message, source=self.source, field=field, line=self.lines.get(top, 0))

    def find(self, canonical: str, *, required: bool = True) -> tuple[str, Any]:
        for key in _ALIASES.get(canonical, (canonical,)):
            if key in self.data:
                return key, self.data[key]
        if required:
            raise CalibrationFileError(
                f"is required but missing (also looked for {list(_ALIASES.get(canonical, ()))}); "
                f"keys found: {sorted(map(str, self.data))}",
                source=self.source,
                field=canonical,
            )
        return canonical, None

    def matrix(self, field: str, value: Any, shape: tuple[int, int] | None) -> FloatArray:
        """A ``{rows, cols, data}`` node (or a plain list) as a float array of ``shape``."""
        if isinstance(value, Mapping):
            if "data" not in value:
                raise self.error(f"{field}.data", "is required but missing")
            rows, cols, data = value.get("rows"), value.get("cols"), value["data"]
            sizes = value.get("sizes")  # !!opencv-nd-matrix
            if rows is None and isinstance(sizes, list) and sizes:
                rows, cols = int(np.prod(sizes[:-1])) if len(sizes) > 1 else 1, sizes[-1]
        else:
            rows, cols, data = None, None, value
        try:
            array = np.asarray(data, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise self.error(f"{field}.data", f"expected a list of numbers, got {data!r}") from None
        if rows is not None and cols is not None:
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (rows, cols)):
                raise self.error(field, f"rows and cols must be integers, got rows={rows!r}, cols={cols!r}")
            if rows * cols != array.size:
                raise self.error(f"{field}.data", f"has {array.size} values but rows x cols = {rows} x {cols}")
        if shape is not None:
            if array.size != shape[0] * shape[1]:
                raise self.error(
                    f"{field}.data", f"expected {shape[0]}x{shape[1]} = {shape[0] * shape[1]} values, got {array.size}"
                )
            array = array.reshape(shape)
        if not np.all(np.isfinite(array)):
            raise self.error(f"{field}.data", f"has non-finite values: {array.tolist()}")
        return array

    def integer(self, canonical: str) -> int:
        key, value = self.find(canonical, required=False)
        if value is None and "image_size" in self.data:
            size = self.data["image_size"]
            index = 0 if canonical == "image_width" else 1
            if isinstance(size, list) and len(size) == 2:
                value, key = size[index], f"image_size[{index}]"
        if value is None:
            self.find(canonical)  # raises "missing"
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, f"expected a positive integer, got {value!r}")
        return value


def read_camera_info_yaml(path: str | Path, *, rectified: bool = False) -> CameraIntrinsics:
    """Camera intrinsics from a ROS CameraInfo YAML or an OpenCV FileStorage YAML file.

    Raises:
        CalibrationFileError: naming the file, the field and (for top-level fields) its line:
            missing or malformed matrix, focal length <= 0, unknown distortion model, wrong
            number of coefficients, ...
    """
    document = _Document(Path(path))
    width = document.integer("image_width")
    height = document.integer("image_height")
    if rectified:
        key, value = document.find("projection_matrix")
        P = document.matrix(key, value, (3, 4))
        K, model, D = P[:, :3], "none", np.zeros(0)
    else:
        key, value = document.find("camera_matrix")
        K = document.matrix(key, value, (3, 3))
        model, D = _distortion(document)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise document.error(key, f"focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    try:  # D was checked against the model already: what is left to fail is K
        return CameraIntrinsics(K=K, width=width, height=height, distortion_model=model, D=D)
    except CalibrationError as exc:
        raise document.error(key, str(exc)) from exc


def _distortion(document: _Document) -> tuple[str, FloatArray]:
    key, value = document.find("distortion_coefficients", required=False)
    D = np.zeros(0) if value is None else document.matrix(key, value, None).reshape(-1)
    name = document.data.get("distortion_model")
    if name is None:
        if not document.opencv and value is not None:
            raise document.error(
                "distortion_model", "is required with distortion_coefficients in a ROS CameraInfo file"
            )
        name = "plumb_bob"
    if not isinstance(name, str) or name.lower() not in MODEL_NAMES:
        raise document.error(
            "distortion_model", f"unknown distortion model {name!r}; expected one of {sorted(MODEL_NAMES)}"
        )
    model = MODEL_NAMES[name.lower()]
    if model == "plumb_bob" and D.size == 0:
        model = "none"
    if model == "none" and np.any(D != 0):
        raise document.error("distortion_coefficients", f"model 'none' takes no coefficients, got {D.tolist()}")
    if model == "none":
        D = np.zeros(0)
    counts = (8,) if name.lower() == "rational_polynomial" else DISTORTION_MODELS[model]
    if D.size not in counts:
        raise document.error(
            key, f"distortion model '{name}' takes {' or '.join(map(str, counts))} coefficients, got {D.size}"
        )
    return model, D


def replace_camera_intrinsics(rig: Rig, camera_id: str, intrinsics: CameraIntrinsics, *, source: str = "") -> Rig:
    """Copy of ``rig`` with the intrinsics of camera ``camera_id`` replaced (everything else kept)."""
    if camera_id not in rig.ids:
        raise CalibrationFileError(
            f"rig '{rig.name}' has no sensor '{camera_id}'; ids: {list(rig.ids)}", source=rig.source
        )
    if rig.sensor(camera_id).modality is not Modality.CAMERA:
        cameras = [s.id for s in rig.cameras]
        raise CalibrationFileError(
            f"sensor '{camera_id}' is a {rig.sensor(camera_id).modality.value}, not a camera; cameras: {cameras}",
            source=rig.source,
        )
    document = rig.to_dict()
    for entry in document["sensors"]:
        if entry["id"] == camera_id:
            entry["intrinsics"] = _intrinsics_dict(intrinsics)
    return rig_from_dict(document, source=source or rig.source)


def rig_with_camera(
    camera_id: str, intrinsics: CameraIntrinsics, extrinsic: FloatArray, *, name: str | None = None, source: str = ""
) -> Rig:
    """A one-camera rig: ``extrinsic`` (4, 4) camera optical frame -> base_link.

    Topics follow the default rig's convention: id ``cam_front`` -> ``/sensing/camera/front/
    image/compressed`` and ``.../camera_info``.
    """
    short = camera_id[4:] if camera_id.startswith("cam_") else camera_id
    document = {
        "rig": {"name": name or camera_id, "base_frame": "base_link", "reference_sensor": camera_id},
        "sensors": [
            {
                "id": camera_id,
                "modality": "camera",
                "topic": f"/sensing/camera/{short}/image/compressed",
                "info_topic": f"/sensing/camera/{short}/camera_info",
                "compressed": True,
                "frame_id": camera_id,
                "rate_hz": 10.0,
                "extrinsic": {"matrix": np.asarray(extrinsic, dtype=np.float64).tolist()},
                "intrinsics": _intrinsics_dict(intrinsics),
            }
        ],
    }
    return rig_from_dict(document, source=source)


def _intrinsics_dict(intrinsics: CameraIntrinsics) -> dict[str, Any]:
    return {
        "K": intrinsics.K.tolist(),
        "width": intrinsics.width,
        "height": intrinsics.height,
        "distortion_model": intrinsics.distortion_model,
        "D": intrinsics.D.tolist(),
    }

"""Camera -> BEV lookup tables: which feature-map cell of which camera sees each BEV cell.

For every cell centre of a :class:`~perception.bev_grid.BevGrid` at a few heights above the
ground (``heights_m``, base_link z), the table records the feature-map cells of the cameras
that see that point. :func:`perception.bev.camera_lift.lift_cameras` (numba) and
:class:`perception.bev.camera_lift_torch.CameraLift` (torch, ONNX-exportable) then lift
per-camera feature maps into BEV with one static gather and a mean.

Geometry and conventions:

- Points ``(x, y, h)`` (cell centre, height ``h``; base_link metres) are projected with
  ``Rig.project(points, src="base_link", camera=cam)``, which applies the camera's
  distortion model and its validity (in front of the camera, inside the image, inside the
  valid distortion region). Invalid projections are never used.
- Pixels are OpenCV continuous coordinates: the centre of the top-left pixel is (0, 0), the
  image spans ``[-0.5, W0 - 0.5)`` along u for a camera ``W0`` pixels wide.
- The network input is each camera image resized (no crop) from its intrinsics size
  ``(H0, W0)`` to ``image_size = (H, W)`` with pixel-centre alignment (``cv2.resize``,
  ``torch.nn.functional.interpolate(align_corners=False)``): ``u' = (u + 0.5) W / W0 - 0.5``.
- The feature map ``feature_size = (Hf, Wf)`` covers the resized image with stride
  ``W / Wf = H / Hf`` pixels (whole numbers; both sizes must divide): feature column
  ``floor((u' + 0.5) / stride)``, row likewise. A projection whose feature cell falls
  outside the map (its pixel lies in the last half pixel past the image edge) is dropped.

Layout (static, for the gather): the feature maps of all cameras are flattened and
concatenated, camera ``k``'s cell ``(r, c)`` at ``k * Hf * Wf + r * Wf + c``, followed by one
extra zero slot, the sentinel ``Ncam * Hf * Wf`` used by invalid samples. Each BEV cell has
``S`` sample slots; ``S`` is the largest number of valid (camera, height) samples of any
cell (at most ``len(heights_m)`` times the most cameras that see one cell). A cell's valid
samples come first, ordered by camera (table order) then height; the rest are invalid.

Default heights ``(0.0, 0.5, 1.0, 2.0)`` m above base_link (on the ground plane in the
default rig): the road surface and markings, the body of cars and pedestrians, and the
upper part of vans, buses and trucks.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from calibration import BASE_LINK, Modality, Rig
from perception.bev_grid import BevGrid
from perception.errors import BevError, GridError

#: Heights (base_link z, metres) sampled above each BEV cell by default.
DEFAULT_HEIGHTS_M: Final[tuple[float, ...]] = (0.0, 0.5, 1.0, 2.0)
#: Network input size per camera (H, W), pixels: nuScenes 1600x900 resized to 400x224.
DEFAULT_IMAGE_SIZE: Final[tuple[int, int]] = (224, 400)
#: Feature-map size per camera (Hf, Wf): the network input at stride 8.
DEFAULT_FEATURE_SIZE: Final[tuple[int, int]] = (28, 50)
#: Version of the table layout and of the ``.npz`` file; part of the geometry hash.
LUT_VERSION: Final[int] = 1

_NPZ_KEYS: Final[tuple[str, ...]] = (
    "version",
    "index",
    "camera",
    "camera_ids",
    "heights_m",
    "grid",
    "feature_size",
    "image_size",
    "rig_digest",
    "geometry_hash",
)


@dataclass(frozen=True, eq=False)
class CameraLiftTable:
    """Static camera -> BEV gather layout (see the module docstring for the conventions).

    Attributes:
        index: (S, ny * nx) int64, read-only; per sample slot and BEV cell (row-major over
            the grid's (ny, nx)), the position in the concatenation of all cameras'
            flattened feature maps, or ``sentinel`` (the extra zero slot) when invalid.
        camera: (S, ny * nx) int8, read-only; position of the sample's camera in
            ``camera_ids``, -1 when invalid.
        camera_ids: the cameras (rig sensor ids) in feature-tensor order.
        heights_m: heights sampled above each cell, base_link z, metres.
        grid: the BEV grid.
        feature_size: (Hf, Wf) per-camera feature-map size, cells.
        image_size: (H, W) per-camera network input size, pixels.
        rig_digest: sha256 (hex) of the cameras' ids, intrinsics and extrinsics
            (:func:`camera_rig_digest`).
    """

    index: NDArray[np.int64]
    camera: NDArray[np.int8]
    camera_ids: tuple[str, ...]
    heights_m: tuple[float, ...]
    grid: BevGrid
    feature_size: tuple[int, int]
    image_size: tuple[int, int]
    rig_digest: str

    def __post_init__(self) -> None:
        camera_ids = tuple(str(c) for c in self.camera_ids)
        heights = _check_heights(self.heights_m)
        feature_size, image_size = _check_sizes(self.feature_size, self.image_size)
        if not camera_ids or len(set(camera_ids)) != len(camera_ids) or len(camera_ids) > 127:
            raise BevError(f"camera lift table: camera_ids must be 1..127 distinct ids, got {list(camera_ids)}")
        raw_index, raw_camera = np.asarray(self.index), np.asarray(self.camera)
        for name, raw in (("index", raw_index), ("camera", raw_camera)):
            if not np.issubdtype(raw.dtype, np.integer) or raw.size == 0:
                raise BevError(f"camera lift table: {name} must be a non-empty integer array, got dtype {raw.dtype}")
        if raw_camera.min() < -1 or raw_camera.max() >= len(camera_ids):
            raise BevError(
                f"camera lift table: camera entries must be in [-1, {len(camera_ids)}), "
                f"got range [{raw_camera.min()}, {raw_camera.max()}]"
            )
        index = np.array(raw_index, dtype=np.int64, copy=True)
        camera = np.array(raw_camera, dtype=np.int8, copy=True)
        cells = self.grid.ny * self.grid.nx
        if index.ndim != 2 or index.shape[1] != cells or index.shape[0] < 1:
            raise BevError(
                f"camera lift table: index has shape {index.shape}, expected (S >= 1, {cells}) "
                f"for a {self.grid.ny}x{self.grid.nx} grid"
            )
        if camera.shape != index.shape:
            raise BevError(f"camera lift table: camera has shape {camera.shape}, index has {index.shape}")
        slots = feature_size[0] * feature_size[1]
        sentinel = len(camera_ids) * slots
        valid = camera >= 0
        if np.any(index[~valid] != sentinel) or np.any(index[valid] // slots != camera[valid]):
            raise BevError(
                f"camera lift table: index disagrees with camera (invalid samples must hold the sentinel "
                f"{sentinel}, valid ones a cell of their camera's {feature_size[0]}x{feature_size[1]} map)"
            )
        if np.any(valid[1:] & ~valid[:-1]):
            raise BevError("camera lift table: a cell has a valid sample after an invalid one (valid samples first)")
        if len(self.rig_digest) != 64:
            raise BevError(f"camera lift table: rig_digest must be a sha256 hex digest, got {self.rig_digest!r}")
        index.setflags(write=False)
        camera.setflags(write=False)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "camera", camera)
        object.__setattr__(self, "camera_ids", camera_ids)
        object.__setattr__(self, "heights_m", heights)
        object.__setattr__(self, "feature_size", feature_size)
        object.__setattr__(self, "image_size", image_size)

    @property
    def samples(self) -> int:
        """S: sample slots per BEV cell."""
        return int(self.index.shape[0])

    @property
    def num_cameras(self) -> int:
        return len(self.camera_ids)

    def lift_inputs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The table as the torch lift's runtime inputs (see camera_lift_torch.lift_features).

        Returns (index (S * ny * nx,) int64, camera_slot (S * ny * nx,) int64): ``index``
        row-major; ``camera_slot`` the camera position of each sample, ``num_cameras`` (an
        always-absent slot) for invalid samples.
        """
        camera = self.camera.astype(np.int64).reshape(-1)
        return self.index.reshape(-1).copy(), np.where(camera < 0, self.num_cameras, camera)

    @property
    def sentinel(self) -> int:
        """Index of the zero slot after all cameras' feature cells (``Ncam * Hf * Wf``)."""
        return self.num_cameras * self.feature_size[0] * self.feature_size[1]

    def coverage(self, camera: str | None = None) -> NDArray[np.int64]:
        """(ny, nx) int64 number of valid samples per BEV cell (of one camera, or of all)."""
        mask = self.camera >= 0 if camera is None else self.camera == self.camera_position(camera)
        counts: NDArray[np.int64] = mask.sum(axis=0, dtype=np.int64).reshape(self.grid.shape)
        return counts

    def camera_position(self, camera: str) -> int:
        """Position of ``camera`` in ``camera_ids``; BevError naming the known ids otherwise."""
        try:
            return self.camera_ids.index(camera)
        except ValueError:
            raise BevError(
                f"camera lift table: unknown camera id {camera!r}; table cameras: {list(self.camera_ids)}"
            ) from None

    def geometry_hash(self) -> str:
        """sha256 (hex) over the cameras' intrinsics/extrinsics, grid, heights and sizes.

        Two tables with the same hash gather the same samples; a model bundle manifest
        records it so that the runtime can refuse a table built for another rig or grid.
        """
        return _geometry_hash(
            self.rig_digest, self.camera_ids, self.grid, self.heights_m, self.feature_size, self.image_size
        )

    def matches(self, rig: Rig) -> bool:
        """True when ``rig``'s cameras (ids, intrinsics, extrinsics) are those the table was built from."""
        try:
            return camera_rig_digest(rig, self.camera_ids) == self.rig_digest
        except BevError:
            return False

    def save(self, path: str | Path) -> None:
        """Write the table to ``path`` as an uncompressed ``.npz`` (no pickled objects)."""
        arrays: dict[str, Any] = {
            "version": np.int64(LUT_VERSION),
            "index": self.index,
            "camera": self.camera,
            "camera_ids": np.array(self.camera_ids, dtype=np.str_),
            "heights_m": np.array(self.heights_m, dtype=np.float64),
            "grid": np.array(self.grid.to_json()),
            "feature_size": np.array(self.feature_size, dtype=np.int64),
            "image_size": np.array(self.image_size, dtype=np.int64),
            "rig_digest": np.array(self.rig_digest),
            "geometry_hash": np.array(self.geometry_hash()),
        }
        with Path(path).open("wb") as stream:
            np.savez(stream, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> CameraLiftTable:
        """Read a table written by :meth:`save`; BevError naming the file and key otherwise."""
        source = str(path)
        try:
            with np.load(source, allow_pickle=False) as data:
                arrays = {key: data[key] for key in _NPZ_KEYS if key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BevError(f"camera lift table {source}: not a readable .npz ({exc})") from exc
        missing = [key for key in _NPZ_KEYS if key not in arrays]
        if missing:
            raise BevError(f"camera lift table {source}: missing key(s) {missing}")
        version = int(arrays["version"])
        if version != LUT_VERSION:
            raise BevError(f"camera lift table {source}: key 'version' is {version}, this runtime reads {LUT_VERSION}")
        try:
            table = cls(
                index=arrays["index"],
                camera=arrays["camera"],
                camera_ids=tuple(str(c) for c in arrays["camera_ids"].tolist()),
                heights_m=tuple(float(h) for h in arrays["heights_m"].tolist()),
                grid=BevGrid.from_json(str(arrays["grid"]), source=f"{source} key 'grid'"),
                feature_size=_int_pair(arrays["feature_size"], "feature_size", source),
                image_size=_int_pair(arrays["image_size"], "image_size", source),
                rig_digest=str(arrays["rig_digest"]),
            )
        except (BevError, GridError) as exc:
            raise BevError(f"camera lift table {source}: {exc}") from exc
        recorded = str(arrays["geometry_hash"])
        if table.geometry_hash() != recorded:
            raise BevError(
                f"camera lift table {source}: key 'geometry_hash' {recorded!r} does not match the "
                f"table's metadata ({table.geometry_hash()!r}): the file is corrupt or edited"
            )
        return table


def build_camera_lut(
    rig: Rig,
    grid: BevGrid,
    *,
    cameras: Sequence[str] | None = None,
    heights_m: Sequence[float] = DEFAULT_HEIGHTS_M,
    feature_size: tuple[int, int] = DEFAULT_FEATURE_SIZE,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    samples: int | None = None,
    lookup_transform: NDArray[np.float64] | None = None,
) -> CameraLiftTable:
    """Build the camera -> BEV lookup table of ``rig`` on ``grid``.

    Args:
        rig: the sensor rig (camera intrinsics at full resolution, extrinsics to base_link).
        grid: BEV grid; every cell centre is sampled at every height.
        cameras: camera ids in feature-tensor order; default: ``rig.cameras`` in file order.
        heights_m: heights above base_link (z, metres) sampled per cell; distinct, finite.
        feature_size: (Hf, Wf) per-camera feature-map size, cells.
        image_size: (H, W) per-camera network input size, pixels; a whole multiple of
            ``feature_size`` (the stride).
        samples: fixed S (static shapes across tables, e.g. the network's input): cells with
            more valid samples keep their first ``samples``; default: the largest count.
        lookup_transform: (4, 4) affine taking points of the grid's frame into the rig's
            base_link before projection (training augmentation: the grid lives in the
            augmented frame). Tables built with it are transient: it is not part of the
            geometry hash.

    Raises:
        BevError: unknown or non-camera id, duplicate ids, bad heights or sizes (the message
            names the value).
    """
    camera_ids = _check_cameras(rig, cameras)
    heights = _check_heights(heights_m)
    (hf, wf), (h, w) = _check_sizes(feature_size, image_size)
    x, y = grid.cell_centers()
    cells = x.size
    slots = hf * wf
    candidates = np.full((len(camera_ids) * len(heights), cells), -1, dtype=np.int64)
    for k, camera in enumerate(camera_ids):
        intrinsics = rig.sensor(camera).camera.intrinsics
        for j, height in enumerate(heights):
            points = np.stack([x.ravel(), y.ravel(), np.full(cells, height)], axis=1)
            if lookup_transform is not None:
                A = np.asarray(lookup_transform, dtype=np.float64)
                points = points @ A[:3, :3].T + A[:3, 3]
            uv, _, valid = rig.project(points, src=BASE_LINK, camera=camera)
            with np.errstate(invalid="ignore"):
                col = _feature_cell(uv[:, 0], intrinsics.width, w, wf)
                row = _feature_cell(uv[:, 1], intrinsics.height, h, hf)
            ok = valid & (col >= 0) & (col < wf) & (row >= 0) & (row < hf)
            candidates[k * len(heights) + j] = np.where(ok, k * slots + row * wf + col, -1)
    valid_candidates = candidates >= 0
    if samples is None:
        samples = max(1, int(valid_candidates.sum(axis=0).max()))
    elif not 1 <= samples <= candidates.shape[0]:
        raise BevError(f"samples must be in [1, {candidates.shape[0]}] (cameras x heights), got {samples!r}")
    order = np.argsort(~valid_candidates, axis=0, kind="stable")[:samples]
    chosen = np.take_along_axis(candidates, order, axis=0)
    valid = chosen >= 0
    sentinel = len(camera_ids) * slots
    return CameraLiftTable(
        index=np.where(valid, chosen, sentinel),
        camera=np.where(valid, chosen // slots, -1).astype(np.int8),
        camera_ids=camera_ids,
        heights_m=heights,
        grid=grid,
        feature_size=(hf, wf),
        image_size=(h, w),
        rig_digest=camera_rig_digest(rig, camera_ids),
    )


def camera_rig_digest(rig: Rig, cameras: Sequence[str]) -> str:
    """sha256 (hex) of the cameras' ids, image sizes, K, distortion and extrinsics, in order."""
    digest = hashlib.sha256()
    for camera in _check_cameras(rig, cameras):
        sensor = rig.sensor(camera)
        intrinsics = sensor.camera.intrinsics
        header = f"{camera}|{intrinsics.width}|{intrinsics.height}|{intrinsics.distortion_model}|"
        digest.update(header.encode())
        for array in (intrinsics.K, intrinsics.D, sensor.extrinsic):
            digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    return digest.hexdigest()


def _geometry_hash(
    rig_digest: str,
    camera_ids: tuple[str, ...],
    grid: BevGrid,
    heights_m: tuple[float, ...],
    feature_size: tuple[int, int],
    image_size: tuple[int, int],
) -> str:
    document = {
        "version": LUT_VERSION,
        "rig_digest": rig_digest,
        "camera_ids": list(camera_ids),
        "grid": json.loads(grid.to_json()),
        "heights_m": [float(h) for h in heights_m],
        "feature_size": list(feature_size),
        "image_size": list(image_size),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _feature_cell(pixel: NDArray[np.float64], native: int, resized: int, cells: int) -> NDArray[np.int64]:
    """Feature-map cell of continuous pixel coordinates (one axis); see the module docstring."""
    stride = resized // cells
    pixel_resized = (pixel + 0.5) * (resized / native) - 0.5
    cell = np.floor((pixel_resized + 0.5) / stride)
    return np.where(np.isfinite(cell), cell, -1).astype(np.int64)


def _check_cameras(rig: Rig, cameras: Sequence[str] | None) -> tuple[str, ...]:
    rig_cameras = [sensor.id for sensor in rig.of(Modality.CAMERA)]
    if cameras is None:
        ids = tuple(rig_cameras)
        if not ids:
            raise BevError(f"rig '{rig.name}' ({rig.source or 'built in code'}) has no cameras")
        return ids
    if isinstance(cameras, str):
        raise BevError(f"cameras must be a sequence of camera ids, got the string {cameras!r}")
    ids = tuple(cameras)
    if not ids:
        raise BevError("cameras: expected at least one camera id, got none")
    for camera in ids:
        if camera not in rig_cameras:
            raise BevError(f"camera id {camera!r} is not a camera of rig '{rig.name}'; cameras: {rig_cameras}")
    duplicates = sorted({c for c in ids if ids.count(c) > 1})
    if duplicates:
        raise BevError(f"cameras: duplicate camera id(s) {duplicates} in {list(ids)}")
    if len(ids) > 127:
        raise BevError(f"cameras: at most 127 cameras fit the int8 camera table, got {len(ids)}")
    return ids


def _check_heights(heights_m: Sequence[float]) -> tuple[float, ...]:
    try:
        heights = tuple(float(h) for h in heights_m)
    except (TypeError, ValueError) as exc:
        raise BevError(f"heights_m must be a sequence of numbers (metres), got {heights_m!r}") from exc
    if not heights or not all(math.isfinite(h) for h in heights) or len(set(heights)) != len(heights):
        raise BevError(f"heights_m must be distinct finite numbers of metres, got {list(heights)}")
    return heights


def _check_sizes(feature_size: Any, image_size: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    pairs = []
    for name, value in (("feature_size", feature_size), ("image_size", image_size)):
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
        if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
            raise BevError(f"{name} must be a pair of positive integers (rows, columns), got {value!r}")
        if min(pair) < 1:
            raise BevError(f"{name} must be a pair of positive integers (rows, columns), got {value!r}")
        pairs.append((int(pair[0]), int(pair[1])))
    (hf, wf), (h, w) = pairs
    if h % hf or w % wf or h // hf != w // wf:
        raise BevError(
            f"image_size {(h, w)} must be the same whole multiple (the stride) of feature_size {(hf, wf)} "
            "along both axes"
        )
    return (hf, wf), (h, w)


def _int_pair(array: NDArray[Any], key: str, source: str) -> tuple[int, int]:
    values = array.tolist()
    if not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, int) for v in values):
        raise BevError(f"camera lift table {source}: key {key!r} must hold two integers, got {values!r}")
    return int(values[0]), int(values[1])

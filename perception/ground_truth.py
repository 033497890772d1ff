"""3D boxes, per-frame ground truth, BEV rasters, and the ``ground_truth.npz`` file format.

Every source of recorded data (the simulator, the nuScenes converter) describes the objects
of each lidar sweep with :class:`Boxes` in base_link and stores them beside the bag with
:func:`save_ground_truth`; detections reuse :class:`Boxes` with scores < 1. The file format
is documented key by key in ``docs/GROUND_TRUTH.md``. ROS-free.

Box convention: ``centers`` is the geometric centre; ``sizes`` is [length along the
heading, width, height]; ``yaws`` is the heading about +z from +x (REP-103, radians).
Corner order of :meth:`Boxes.corners` (l, w, h half-sizes in the box frame)::

    bottom (z = -h/2): 0 (+l, +w)  1 (+l, -w)  2 (-l, -w)  3 (-l, +w)
    top    (z = +h/2): 4 (+l, +w)  5 (+l, -w)  6 (-l, -w)  7 (-l, +w)

so corners 0, 1, 4, 5 form the front face. :data:`BOX_EDGES` lists the 12 edges.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import TransformError
from calibration.transforms import validate_transform
from perception.bev_grid import BevGrid
from perception.classes import CLASSES
from perception.errors import GridError, GroundTruthError

#: Version of the ``ground_truth.npz`` layout written by :func:`save_ground_truth`.
FORMAT_VERSION: Final = 1
#: File name of the ground truth beside a bag.
GROUND_TRUTH_FILE: Final = "ground_truth.npz"

#: (12, 2) int64 corner-index pairs of the box edges: bottom ring, top ring, verticals.
BOX_EDGES: Final = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]],
    dtype=np.int64,
)
BOX_EDGES.setflags(write=False)

# Corner signs (8, 3) in units of half-sizes, in the order documented above.
_CORNER_SIGNS: Final = np.array(
    [[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1], [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]],
    dtype=np.float64,
)
# Largest number of (box, point) pairs tested at once by points_in_boxes (bounds memory).
_PAIRS_PER_BLOCK: Final = 1 << 20

# field -> (trailing shape, kind: "float" | "int", output dtype)
_BOX_FIELDS: Final[dict[str, tuple[tuple[int, ...], str, type[np.generic]]]] = {
    "centers": ((3,), "float", np.float64),
    "sizes": ((3,), "float", np.float64),
    "yaws": ((), "float", np.float64),
    "velocities": ((2,), "float", np.float64),
    "labels": ((), "int", np.int64),
    "track_ids": ((), "int", np.int64),
    "num_lidar_points": ((), "int", np.int64),
    "scores": ((), "float", np.float32),
}


def _box_array(name: str, value: Any) -> NDArray[Any]:
    trailing, kind, dtype = _BOX_FIELDS[name]
    array = np.asarray(value)
    allowed = "fiu" if kind == "float" else "iu"
    if array.dtype.kind not in allowed:
        expected = "real numbers" if kind == "float" else "integers"
        raise GroundTruthError(f"Boxes.{name}: expected {expected}, got dtype {array.dtype}")
    if array.ndim != 1 + len(trailing) or array.shape[1:] != trailing:
        shape = "(N, " + ", ".join(map(str, trailing)) + ")" if trailing else "(N,)"
        raise GroundTruthError(f"Boxes.{name}: expected shape {shape}, got {array.shape}")
    result = np.array(array, dtype=dtype, copy=True)
    if kind == "int" and not np.array_equal(result, array):
        raise GroundTruthError(f"Boxes.{name}: values do not fit in {np.dtype(dtype).name}")
    result.setflags(write=False)
    return result


def _first_bad(mask: NDArray[np.bool_]) -> int | None:
    """Index of the first box where ``mask`` (N,) or (N, k) is True, else None."""
    rows = mask.any(axis=tuple(range(1, mask.ndim))) if mask.ndim > 1 else mask
    return int(np.argmax(rows)) if rows.any() else None


@dataclass(frozen=True, eq=False)
class Boxes:
    """N upright 3D boxes (ground truth or detections), all in one frame (normally base_link).

    Attributes:
        centers: (N, 3) float64 geometric centres [x, y, z], metres.
        sizes: (N, 3) float64 [length (along the heading), width, height], metres, > 0.
        yaws: (N,) float64 heading about +z from +x, radians (any finite value).
        velocities: (N, 2) float64 [vx, vy] ground-relative velocity expressed in the
            boxes' frame axes, m/s; NaN in both components = unknown.
        labels: (N,) int64 index into ``perception.classes.CLASSES``.
        track_ids: (N,) int64 identity of the object across frames (-1 = none).
        num_lidar_points: (N,) int64 lidar returns inside the box (-1 = unknown).
        scores: (N,) float32 confidence in [0, 1]; 1 for ground truth.

    Arrays are copied, cast to the dtypes above and made read-only. Invalid values raise
    GroundTruthError naming the field and the first bad index. Use :meth:`create` to fill
    the optional fields with their defaults.
    """

    centers: NDArray[np.float64]
    sizes: NDArray[np.float64]
    yaws: NDArray[np.float64]
    velocities: NDArray[np.float64]
    labels: NDArray[np.int64]
    track_ids: NDArray[np.int64]
    num_lidar_points: NDArray[np.int64]
    scores: NDArray[np.float32]

    def __post_init__(self) -> None:
        arrays = {name: _box_array(name, getattr(self, name)) for name in _BOX_FIELDS}
        count = arrays["centers"].shape[0]
        for name, array in arrays.items():
            if array.shape[0] != count:
                raise GroundTruthError(f"Boxes.{name}: has {array.shape[0]} rows, centers has {count}")
        checks: list[tuple[str, NDArray[np.bool_], str]] = [
            ("centers", ~np.isfinite(arrays["centers"]), "must be finite"),
            ("sizes", ~(np.isfinite(arrays["sizes"]) & (arrays["sizes"] > 0)), "must be finite and > 0"),
            ("yaws", ~np.isfinite(arrays["yaws"]), "must be finite"),
            ("velocities", np.isinf(arrays["velocities"]), "must be finite or NaN (unknown)"),
            (
                "velocities",
                np.isnan(arrays["velocities"]).any(axis=1) != np.isnan(arrays["velocities"]).all(axis=1),
                "must be NaN in both components or in none",
            ),
            ("labels", (arrays["labels"] < 0) | (arrays["labels"] >= len(CLASSES)), f"must be in [0, {len(CLASSES)})"),
            ("num_lidar_points", arrays["num_lidar_points"] < -1, "must be >= -1 (-1 = unknown)"),
            ("scores", ~((arrays["scores"] >= 0) & (arrays["scores"] <= 1)), "must be in [0, 1]"),
        ]
        for name, bad, rule in checks:
            index = _first_bad(bad)
            if index is not None:
                raise GroundTruthError(f"Boxes.{name}[{index}] = {arrays[name][index].tolist()}: {rule}")
        for name, array in arrays.items():
            object.__setattr__(self, name, array)

    @classmethod
    def create(
        cls,
        centers: ArrayLike,
        sizes: ArrayLike,
        yaws: ArrayLike,
        labels: ArrayLike,
        *,
        velocities: ArrayLike | None = None,
        track_ids: ArrayLike | None = None,
        num_lidar_points: ArrayLike | None = None,
        scores: ArrayLike | None = None,
    ) -> Boxes:
        """Boxes with defaults: velocities unknown (NaN), track_ids -1, num_lidar_points -1,
        scores 1 (ground truth)."""
        n = np.asarray(centers).shape[0] if np.asarray(centers).ndim else 0
        return cls(
            centers=np.asarray(centers),
            sizes=np.asarray(sizes),
            yaws=np.asarray(yaws),
            velocities=np.full((n, 2), np.nan) if velocities is None else np.asarray(velocities),
            labels=np.asarray(labels),
            track_ids=np.full(n, -1, dtype=np.int64) if track_ids is None else np.asarray(track_ids),
            num_lidar_points=np.full(n, -1, dtype=np.int64)
            if num_lidar_points is None
            else np.asarray(num_lidar_points),
            scores=np.ones(n, dtype=np.float32) if scores is None else np.asarray(scores),
        )

    @classmethod
    def empty(cls) -> Boxes:
        """Zero boxes."""
        return cls.create(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.centers.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Boxes):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, name), getattr(other, name), equal_nan=name == "velocities")
            for name in _BOX_FIELDS
        )

    __hash__ = None  # type: ignore[assignment]

    def corners(self) -> NDArray[np.float64]:
        """(N, 8, 3) float64 corners in the boxes' frame, metres, in the module's corner order."""
        local = _CORNER_SIGNS[None, :, :] * (self.sizes[:, None, :] / 2.0)
        c, s = np.cos(self.yaws)[:, None], np.sin(self.yaws)[:, None]
        x = c * local[:, :, 0] - s * local[:, :, 1]
        y = s * local[:, :, 0] + c * local[:, :, 1]
        result: NDArray[np.float64] = np.stack([x, y, local[:, :, 2]], axis=-1) + self.centers[:, None, :]
        return result

    def points_in_boxes(self, points: ArrayLike) -> NDArray[np.bool_]:
        """Which points lie inside which box (faces included).

        Args:
            points: (M, >=3) points in the boxes' frame, metres (extra columns ignored).

        Returns:
            (N, M) bool, ``[i, j]`` True when point j is inside box i (yaw respected).
        """
        xyz = self._points(points)
        result = np.zeros((len(self), xyz.shape[0]), dtype=bool)
        if result.size == 0:
            return result
        step = max(1, _PAIRS_PER_BLOCK // xyz.shape[0])
        for start in range(0, len(self), step):
            block = slice(start, start + step)
            d = xyz[None, :, :] - self.centers[block, None, :]
            c, s = np.cos(self.yaws[block])[:, None], np.sin(self.yaws[block])[:, None]
            half = self.sizes[block, None, :] / 2.0
            along = np.abs(c * d[..., 0] + s * d[..., 1]) <= half[..., 0]
            across = np.abs(-s * d[..., 0] + c * d[..., 1]) <= half[..., 1]
            result[block] = along & across & (np.abs(d[..., 2]) <= half[..., 2])
        return result

    def count_points(self, points: ArrayLike) -> NDArray[np.int64]:
        """(N,) int64 number of ``points`` (M, >=3) inside each box."""
        counts: NDArray[np.int64] = self.points_in_boxes(points).sum(axis=1, dtype=np.int64)
        return counts

    def transformed(self, T: ArrayLike) -> Boxes:
        """The same boxes in another frame: ``T`` (4, 4) rigid transform new <- current.

        Centres are transformed, the heading vector and the velocity (vx, vy, 0) rotated;
        the yaw is the azimuth of the rotated heading, so a small roll/pitch in ``T`` keeps
        the boxes upright (what the nuScenes devkit's yaw does). Unknown velocities stay NaN.
        """
        try:
            m = validate_transform(T)
        except TransformError as exc:
            raise GroundTruthError(f"Boxes.transformed: {exc}") from exc
        R = m[:3, :3]
        heading = np.stack([np.cos(self.yaws), np.sin(self.yaws), np.zeros(len(self))], axis=1) @ R.T
        velocity = np.concatenate([self.velocities, np.zeros((len(self), 1))], axis=1) @ R.T
        return replace(
            self,
            centers=self.centers @ R.T + m[:3, 3],
            yaws=np.arctan2(heading[:, 1], heading[:, 0]),
            velocities=velocity[:, :2],
        )

    def select(self, mask: ArrayLike) -> Boxes:
        """Subset by a (N,) bool mask or an array of indices (order kept as given)."""
        index = np.asarray(mask)
        if index.dtype == bool and index.shape != (len(self),):
            raise GroundTruthError(f"Boxes.select: mask must have shape ({len(self)},), got {index.shape}")
        if index.dtype != bool and index.dtype.kind not in "iu":
            raise GroundTruthError(f"Boxes.select: expected a bool mask or integer indices, got {index.dtype}")
        if index.dtype != bool and index.size and not (-len(self) <= index.min() and index.max() < len(self)):
            raise GroundTruthError(f"Boxes.select: indices out of range for {len(self)} boxes: {index.tolist()}")
        return Boxes(**{name: getattr(self, name)[index] for name in _BOX_FIELDS})

    @staticmethod
    def concatenate(parts: Sequence[Boxes]) -> Boxes:
        """All boxes of ``parts``, in order (all in the same frame)."""
        if not parts:
            return Boxes.empty()
        return Boxes(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _BOX_FIELDS})

    @staticmethod
    def _points(points: ArrayLike) -> NDArray[np.float64]:
        array = np.asarray(points)
        if array.ndim != 2 or array.shape[1] < 3 or array.dtype.kind not in "fiu":
            raise GroundTruthError(f"points must be a real (M, >=3) array, got {array.shape} {array.dtype}")
        return np.ascontiguousarray(array[:, :3], dtype=np.float64)


def rasterize_boxes(boxes: Boxes, grid: BevGrid) -> NDArray[np.uint8]:
    """Object occupancy: (ny, nx) uint8, 1 where the cell centre lies inside a box footprint
    (yaw respected; boxes' frame = the grid's base_link), 0 elsewhere. See
    ``perception.bev_grid`` for the raster layout."""
    raster = np.zeros(grid.shape, dtype=np.uint8)
    corners = boxes.corners()[:, :4, :2]
    for i in range(len(boxes)):
        low, high = corners[i].min(axis=0), corners[i].max(axis=0)
        c0 = max(0, math.floor((low[0] - grid.x_min) / grid.resolution - 0.5))
        c1 = min(grid.nx - 1, math.ceil((high[0] - grid.x_min) / grid.resolution - 0.5))
        r0 = max(0, math.floor((low[1] - grid.y_min) / grid.resolution - 0.5))
        r1 = min(grid.ny - 1, math.ceil((high[1] - grid.y_min) / grid.resolution - 0.5))
        if c0 > c1 or r0 > r1:
            continue
        xs = grid.x_min + (np.arange(c0, c1 + 1) + 0.5) * grid.resolution
        ys = grid.y_min + (np.arange(r0, r1 + 1) + 0.5) * grid.resolution
        dx, dy = xs[None, :] - boxes.centers[i, 0], ys[:, None] - boxes.centers[i, 1]
        c, s = math.cos(boxes.yaws[i]), math.sin(boxes.yaws[i])
        inside = (np.abs(c * dx + s * dy) <= boxes.sizes[i, 0] / 2) & (
            np.abs(-s * dx + c * dy) <= boxes.sizes[i, 1] / 2
        )
        raster[r0 : r1 + 1, c0 : c1 + 1] |= inside.astype(np.uint8)
    return raster


@dataclass(frozen=True, eq=False)
class FrameTruth:
    """The objects of one lidar sweep.

    Attributes:
        stamp_ns: header stamp of the sweep, int nanoseconds (>= 0).
        boxes: the objects, in base_link at ``stamp_ns``.
        ego_pose: (4, 4) float64 base_link -> odom at ``stamp_ns`` (read-only), or None.
    """

    stamp_ns: int
    boxes: Boxes
    ego_pose: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        stamp = self.stamp_ns
        if isinstance(stamp, bool) or not isinstance(stamp, int | np.integer) or stamp < 0:
            raise GroundTruthError(f"FrameTruth.stamp_ns must be an int >= 0, got {stamp!r}")
        object.__setattr__(self, "stamp_ns", int(stamp))
        if not isinstance(self.boxes, Boxes):
            raise GroundTruthError(f"FrameTruth.boxes must be Boxes, got {type(self.boxes).__name__}")
        if self.ego_pose is not None:
            try:
                pose = np.array(validate_transform(self.ego_pose), dtype=np.float64)
            except TransformError as exc:
                raise GroundTruthError(f"FrameTruth.ego_pose at stamp {stamp}: {exc}") from exc
            pose.setflags(write=False)
            object.__setattr__(self, "ego_pose", pose)


def _check_raster(name: str, raster: Any, frames: int, grid: BevGrid) -> NDArray[np.uint8] | None:
    if raster is None:
        return None
    array = np.asarray(raster)
    expected = (frames, *grid.shape)
    if array.shape != expected or array.dtype != np.uint8:
        raise GroundTruthError(
            f"GroundTruth.{name}: expected {expected} uint8 (frames, ny, nx), got {array.shape} {array.dtype}"
        )
    if array.size and array.max() > 1:
        frame = int(np.argmax((array > 1).reshape(frames, -1).any(axis=1)))
        raise GroundTruthError(f"GroundTruth.{name}[{frame}]: values must be 0 or 1, got {int(array[frame].max())}")
    result = np.array(array, copy=True)
    result.setflags(write=False)
    return result


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground truth of a recording: one :class:`FrameTruth` per lidar sweep plus BEV rasters.

    Attributes:
        frames: per-sweep boxes, stamps strictly increasing.
        grid: the BEV grid of the rasters (base_link of each frame).
        drivable: (F, ny, nx) uint8 {0, 1} drivable area per frame, or None (unknown).
        occupancy: (F, ny, nx) uint8 {0, 1} object occupancy per frame, or None.
    """

    frames: tuple[FrameTruth, ...]
    grid: BevGrid = field(default_factory=BevGrid)
    drivable: NDArray[np.uint8] | None = None
    occupancy: NDArray[np.uint8] | None = None

    def __post_init__(self) -> None:
        frames = tuple(self.frames)
        for index, frame in enumerate(frames):
            if not isinstance(frame, FrameTruth):
                raise GroundTruthError(f"GroundTruth.frames[{index}]: expected FrameTruth, got {type(frame).__name__}")
            if index and frame.stamp_ns <= frames[index - 1].stamp_ns:
                raise GroundTruthError(
                    f"GroundTruth.frames[{index}]: stamp {frame.stamp_ns} is not after the previous "
                    f"frame's {frames[index - 1].stamp_ns} (stamps must be strictly increasing)"
                )
        if not isinstance(self.grid, BevGrid):
            raise GroundTruthError(f"GroundTruth.grid must be a BevGrid, got {type(self.grid).__name__}")
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "drivable", _check_raster("drivable", self.drivable, len(frames), self.grid))
        object.__setattr__(self, "occupancy", _check_raster("occupancy", self.occupancy, len(frames), self.grid))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def stamps_ns(self) -> NDArray[np.int64]:
        """(F,) int64 frame stamps, nanoseconds."""
        return np.array([frame.stamp_ns for frame in self.frames], dtype=np.int64)

    @classmethod
    def with_box_occupancy(
        cls, frames: Sequence[FrameTruth], grid: BevGrid, drivable: NDArray[np.uint8] | None = None
    ) -> GroundTruth:
        """Ground truth whose occupancy rasters are :func:`rasterize_boxes` of each frame."""
        occupancy = np.stack([rasterize_boxes(f.boxes, grid) for f in frames]) if frames else None
        if occupancy is None:
            occupancy = np.zeros((0, *grid.shape), dtype=np.uint8)
        return cls(tuple(frames), grid, drivable, occupancy)


def save_ground_truth(directory: str | Path, gt: GroundTruth) -> Path:
    """Write ``gt`` to ``directory/ground_truth.npz`` (directory created if needed; an
    existing file is replaced atomically). Returns the file path. Layout: docs/GROUND_TRUTH.md."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    boxes = Boxes.concatenate([frame.boxes for frame in gt.frames])
    poses = np.full((len(gt), 4, 4), np.nan)
    for index, frame in enumerate(gt.frames):
        if frame.ego_pose is not None:
            poses[index] = frame.ego_pose
    arrays: dict[str, NDArray[Any]] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "classes": np.array(CLASSES, dtype=np.str_),
        "grid": np.array(gt.grid.to_json(), dtype=np.str_),
        "stamps_ns": gt.stamps_ns,
        "ego_poses": poses,
        "has_ego_pose": np.array([frame.ego_pose is not None for frame in gt.frames], dtype=bool),
        "box_frame": np.repeat(np.arange(len(gt), dtype=np.int64), [len(f.boxes) for f in gt.frames]),
    }
    arrays.update({f"box_{name}": getattr(boxes, name) for name in _BOX_FIELDS})
    for name in ("drivable", "occupancy"):
        raster = getattr(gt, name)
        if raster is not None:
            arrays[name] = raster
    path = folder / GROUND_TRUTH_FILE
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(buffer.getvalue())
    temporary.replace(path)
    return path


def load_ground_truth(path: str | Path) -> GroundTruth:
    """Read a ground-truth file: ``path`` is the bag directory holding ``ground_truth.npz``
    or the file itself. Errors (GroundTruthError) name the file and the key."""
    file = Path(path)
    if file.is_dir():
        file = file / GROUND_TRUTH_FILE
    try:
        with np.load(file, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise GroundTruthError(f"{file}: ground-truth file not found") from None
    except (OSError, ValueError) as exc:
        raise GroundTruthError(f"{file}: not a readable .npz file ({exc})") from exc
    return _from_arrays(data, str(file))


def _from_arrays(data: dict[str, NDArray[Any]], source: str) -> GroundTruth:
    def key(name: str) -> NDArray[Any]:
        if name not in data:
            raise GroundTruthError(f"{source}: key '{name}' is missing; keys: {sorted(data)}")
        return data[name]

    version = key("format_version")
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
        raise GroundTruthError(
            f"{source}: format_version is {version.tolist()!r}, this reader understands {FORMAT_VERSION}"
        )
    classes = tuple(str(name) for name in key("classes").tolist())
    if classes != CLASSES:
        raise GroundTruthError(f"{source}: classes {list(classes)} differ from the runtime's {list(CLASSES)}")
    try:
        grid = BevGrid.from_json(str(key("grid")), source=f"{source} key 'grid'")
    except GridError as exc:
        raise GroundTruthError(str(exc)) from exc
    stamps = key("stamps_ns")
    frames = stamps.shape[0] if stamps.ndim == 1 else -1
    expected = {"stamps_ns": (frames,), "ego_poses": (frames, 4, 4), "has_ego_pose": (frames,)}
    box_frame = key("box_frame")
    count = box_frame.shape[0] if box_frame.ndim == 1 else -1
    expected.update({f"box_{name}": (count, *shape) for name, (shape, _, _) in _BOX_FIELDS.items()})
    for name, shape in expected.items():
        if key(name).shape != shape:
            raise GroundTruthError(
                f"{source}: key '{name}' has shape {key(name).shape}, expected {shape} "
                f"({frames} frames from stamps_ns, {count} boxes from box_frame)"
            )
    if box_frame.dtype.kind not in "iu" or stamps.dtype.kind not in "iu":
        raise GroundTruthError(f"{source}: stamps_ns and box_frame must be integers")
    if count and (np.any(np.diff(box_frame) < 0) or box_frame[0] < 0 or box_frame[-1] >= frames):
        raise GroundTruthError(f"{source}: key 'box_frame' must be sorted frame indices in [0, {frames})")
    try:
        boxes = Boxes(**{name: key(f"box_{name}") for name in _BOX_FIELDS})
        starts = np.searchsorted(box_frame, np.arange(frames + 1))
        has_pose = key("has_ego_pose").astype(bool)
        truth = tuple(
            FrameTruth(
                stamp_ns=int(stamps[f]),
                boxes=boxes.select(np.arange(starts[f], starts[f + 1])),
                ego_pose=key("ego_poses")[f] if has_pose[f] else None,
            )
            for f in range(frames)
        )
        return GroundTruth(truth, grid, data.get("drivable"), data.get("occupancy"))
    except GroundTruthError as exc:
        raise GroundTruthError(f"{source}: {exc}") from exc


def describe(gt: GroundTruth) -> str:
    """One-line summary: frames, boxes per class, grid."""
    labels = np.concatenate([f.boxes.labels for f in gt.frames]) if gt.frames else np.zeros(0, dtype=np.int64)
    counts = {CLASSES[i]: int(n) for i, n in enumerate(np.bincount(labels, minlength=len(CLASSES))) if n}
    return f"{len(gt)} frames, {labels.size} boxes {json.dumps(counts)}, grid {gt.grid.nx}x{gt.grid.ny}"

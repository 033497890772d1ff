"""nuScenes (official devkit layout) -> SensorRecords and ground truth, without the devkit.

Layout read (https://www.nuscenes.org/nuscenes#data-format)::

    DATAROOT/VERSION/{scene,sample,sample_data,sample_annotation,instance,category,
                      calibrated_sensor,sensor,ego_pose}.json
    DATAROOT/samples/<CHANNEL>/<file>   key frames      DATAROOT/sweeps/<CHANNEL>/<file>   sweeps

For one scene, every sample_data of LIDAR_TOP, the cameras and the radars whose file is on
disk becomes a :class:`perception.samples.SensorRecord` (sensor id = channel in lower case:
LIDAR_TOP -> lidar_top, CAM_FRONT -> cam_front, RADAR_FRONT_LEFT -> radar_front_left), in
time order, plus an OdometrySample per ego pose when the rig has an odometry sensor:

- lidar ``.pcd.bin``: float32 x5 -> PointScan (x, y, z, intensity, ring), LIDAR_TOP frame.
- camera JPEG: bytes unchanged -> EncodedImage with the calibrated_sensor intrinsics.
- radar ``.pcd`` (binary PCD): -> PointScan (x, y, z, vr, vr_compensated, rcs), radar frame;
  vr is the radial component of (vx, vy), vr_compensated that of (vx_comp, vy_comp),
  positive = moving away; by default filtered like the devkit's ``RadarPointCloud``.
- ego_pose: -> OdometrySample odom -> base_link (odom = the nuScenes global frame), with
  velocities from the motion between the poses about ODOMETRY_HALF_WINDOW_NS before and after (SE(3) log).

Stamps are the sample_data timestamps (microseconds -> ns); receive time = stamp. Ground
truth: one frame per key frame with its LIDAR_TOP sweep on disk, stamped at that sweep,
boxes of the 10 detection classes in base_link (the nuScenes ego frame) at that stamp,
velocities by the devkit's ``box_velocity`` method rotated into base_link axes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from calibration import CameraIntrinsics, Modality, Rig, rig_from_dict
from calibration.transforms import invert_transform, make_transform, matrix_to_quaternion
from dataset_converters.errors import DatasetError, PcdError
from perception.bev_grid import BevGrid
from perception.classes import nuscenes_label
from perception.ground_truth import Boxes, FrameTruth, GroundTruth
from perception.samples import EncodedImage, OdometrySample, PointScan, SensorRecord

#: Tables read from DATAROOT/VERSION.
TABLES: Final = (
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "instance",
    "category",
    "calibrated_sensor",
    "sensor",
    "ego_pose",
)
LIDAR_FIELDS: Final = ("x", "y", "z", "intensity", "ring")
RADAR_FIELDS: Final = ("x", "y", "z", "vr", "vr_compensated", "rcs")
LIDAR_CHANNEL: Final = "LIDAR_TOP"
#: Devkit RadarPointCloud default filters: kept values of invalid_state, dyn_prop, ambig_state.
RADAR_KEEP: Final = {"invalid_state": (0,), "dyn_prop": tuple(range(7)), "ambig_state": (3,)}
#: The devkit's box_velocity limit between two annotations (doubled for a centred difference).
MAX_VELOCITY_TIME_DIFF_S: Final = 1.5
#: Odometry velocity: finite difference between the poses about this far before/after.
ODOMETRY_HALF_WINDOW_NS: Final = 50_000_000
#: The odometry sensor added to a rig without one (the convention of config/rigs/default.yaml).
ODOMETRY_SENSOR: Final = {
    "id": "odometry",
    "modality": "odometry",
    "topic": "/localization/odometry",
    "frame_id": "odom",
    "child_frame_id": "base_link",
    "extrinsic": {"translation": [0.0, 0.0, 0.0], "rotation_wxyz": [1.0, 0.0, 0.0, 0.0]},
}
_PCD_TYPES: Final = {("F", 2): "f2", ("F", 4): "f4", ("F", 8): "f8", ("I", 1): "i1", ("I", 2): "i2"}
_PCD_TYPES.update({("I", 4): "i4", ("I", 8): "i8", ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8"})


def sensor_id(channel: str) -> str:
    """Rig sensor id of a nuScenes channel: "CAM_FRONT_LEFT" -> "cam_front_left"."""
    return channel.lower()


def with_odometry(rig: Rig, rate_hz: float) -> Rig:
    """``rig`` plus ODOMETRY_SENSOR at ``rate_hz`` when it has no odometry sensor (a rig
    built from calibrated_sensor records has none; the ego poses become its messages)."""
    if rig.of(Modality.ODOMETRY):
        return rig
    document = rig.to_dict()
    document["sensors"].append({**ODOMETRY_SENSOR, "rate_hz": float(rate_hz)})
    return rig_from_dict(document, source=rig.source)


def read_lidar_bin(path: str | Path) -> PointScan:
    """A nuScenes ``.pcd.bin``: float32 x5 per point -> PointScan (x, y, z, intensity 0..255,
    ring 0..31), LIDAR_TOP frame (x right, y forward, z up), metres."""
    data = Path(path).read_bytes()
    if len(data) % 20:
        raise DatasetError(f"{path}: {len(data)} bytes is not a whole number of float32 x5 points (20 bytes)")
    return PointScan(LIDAR_FIELDS, np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(-1, 5))


def parse_pcd(data: bytes, source: str = "") -> NDArray[np.void]:
    """Binary PCD v0.7 (as nuScenes radar files) -> (N,) structured array of its FIELDS
    (little-endian, dtype from SIZE/TYPE/COUNT). PcdError naming ``source`` otherwise."""
    header: dict[str, list[str]] = {}
    offset = 0
    while "DATA" not in header:
        end = data.find(b"\n", offset)
        if end < 0:
            raise PcdError(f"{source}: PCD header ends without a DATA line (keys so far: {sorted(header)})")
        line = data[offset:end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if line and not line.startswith("#"):
            key, *values = line.split()
            header[key.upper()] = values
    for key in ("FIELDS", "SIZE", "TYPE", "POINTS"):
        if key not in header:
            raise PcdError(f"{source}: PCD header has no {key} line")
    if header["DATA"] != ["binary"]:
        raise PcdError(f"{source}: only 'DATA binary' PCD files are supported, got DATA {' '.join(header['DATA'])}")
    names, sizes, types = header["FIELDS"], header["SIZE"], header["TYPE"]
    counts = header.get("COUNT", ["1"] * len(names))
    if not len(names) == len(sizes) == len(types) == len(counts):
        raise PcdError(f"{source}: FIELDS/SIZE/TYPE/COUNT lengths differ: {len(names)}/{len(sizes)}/{len(types)}")
    formats = []
    for name, size, kind, count in zip(names, sizes, types, counts, strict=True):
        code = _PCD_TYPES.get((kind, int(size)) if size.isdigit() else (kind, -1))
        if code is None or not count.isdigit() or int(count) < 1:
            raise PcdError(f"{source}: field '{name}' has unsupported TYPE {kind} SIZE {size} COUNT {count}")
        formats.append(("<" + code, (int(count),)) if int(count) > 1 else "<" + code)
    dtype = np.dtype({"names": names, "formats": formats})
    points = int(header["POINTS"][0])
    if points * dtype.itemsize > len(data) - offset:
        raise PcdError(
            f"{source}: POINTS {points} x {dtype.itemsize} bytes needs {points * dtype.itemsize} bytes of data, "
            f"file has {len(data) - offset}"
        )
    return np.frombuffer(data, dtype=dtype, count=points, offset=offset)


def radar_scan(cloud: NDArray[np.void], *, filtered: bool = True, source: str = "") -> PointScan:
    """nuScenes radar PCD points -> PointScan with RADAR_FIELDS in the radar frame.

    ``filtered`` keeps the points the devkit's ``RadarPointCloud.from_file`` keeps with its
    default filters (RADAR_KEEP); a NaN in the first point marks an empty scan, as there.
    """
    names = cloud.dtype.names or ()
    required = ["x", "y", "z", "rcs", "vx", "vy", "vx_comp", "vy_comp"] + (list(RADAR_KEEP) if filtered else [])
    missing = [name for name in required if name not in names]
    if missing:
        raise PcdError(f"{source}: radar PCD lacks field(s) {missing}; fields: {list(names)}")
    if cloud.size and any(np.isnan(float(cloud[0][n])) for n in names if cloud.dtype[n].kind == "f"):
        cloud = cloud[:0]
    if filtered:
        keep = np.ones(cloud.shape[0], dtype=bool)
        for name, values in RADAR_KEEP.items():
            keep &= np.isin(cloud[name], values)
        cloud = cloud[keep]
    xyz = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1).astype(np.float64)
    distance = np.linalg.norm(xyz, axis=1)
    unit = np.divide(xyz[:, :2], distance[:, None], out=np.zeros((len(xyz), 2)), where=distance[:, None] > 0)
    vr = unit[:, 0] * cloud["vx"] + unit[:, 1] * cloud["vy"]
    vr_comp = unit[:, 0] * cloud["vx_comp"] + unit[:, 1] * cloud["vy_comp"]
    points = np.column_stack([xyz, vr, vr_comp, cloud["rcs"]]).astype(np.float32)
    return PointScan(RADAR_FIELDS, points)


class NuScenesTables:
    """The JSON tables of DATAROOT/VERSION, indexed by token. Errors name root, table, token."""

    def __init__(self, dataroot: str | Path, version: str) -> None:
        self.dataroot = Path(dataroot)
        self.version = version
        if not self.dataroot.is_dir():
            raise DatasetError(f"nuScenes dataroot {self.dataroot} is not a directory")
        folder = self.dataroot / version
        if not (folder / "scene.json").is_file():
            found = sorted(p.name for p in self.dataroot.iterdir() if (p / "scene.json").is_file())
            raise DatasetError(
                f"{self.dataroot}: no nuScenes version {version!r} (no {folder}/scene.json); found {found}"
            )
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.index: dict[str, dict[str, dict[str, Any]]] = {}
        for name in TABLES:
            path = folder / f"{name}.json"
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise DatasetError(f"{folder}: table {name}.json is missing") from None
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path}: not a readable JSON table ({exc})") from exc
            if not isinstance(rows, list) or not all(isinstance(r, dict) and "token" in r for r in rows):
                raise DatasetError(f"{path}: expected a list of records with a 'token'")
            self.tables[name] = rows
            self.index[name] = {row["token"]: row for row in rows}
        self.annotations: dict[str, list[dict[str, Any]]] = {}
        for row in self.tables["sample_annotation"]:
            self.annotations.setdefault(row.get("sample_token", ""), []).append(row)
        self.instance_number = {token: i for i, token in enumerate(self.index["instance"])}

    def get(self, table: str, token: str) -> dict[str, Any]:
        try:
            return self.index[table][token]
        except KeyError:
            raise DatasetError(f"{self.dataroot / self.version}: {table} has no token {token!r}") from None

    def scene(self, name: str | None) -> dict[str, Any]:
        """The scene called ``name`` (None: the first one of scene.json)."""
        scenes = self.tables["scene"]
        if not scenes:
            raise DatasetError(f"{self.dataroot / self.version}: scene.json is empty")
        if name is None:
            return scenes[0]
        for scene in scenes:
            if scene.get("name") == name:
                return scene
        raise DatasetError(
            f"{self.dataroot / self.version}: no scene {name!r}; scenes: {[s.get('name') for s in scenes]}"
        )


def _pose(record: dict[str, Any]) -> NDArray[np.float64]:
    """(4, 4) transform of a calibrated_sensor / ego_pose record (child -> parent)."""
    q = np.asarray(record["rotation"], dtype=np.float64)
    return make_transform(record["translation"], q / np.linalg.norm(q))


@dataclass(frozen=True)
class SampleDataFile:
    """One sample_data record whose file is on disk.

    Attributes:
        token, channel, modality ("lidar" | "camera" | "radar"), sensor_id (rig id).
        stamp_ns: timestamp, int nanoseconds. path: the file. is_key_frame.
        intrinsics: camera intrinsics (cameras only).
    """

    token: str
    channel: str
    modality: str
    sensor_id: str
    stamp_ns: int
    path: Path
    is_key_frame: bool
    intrinsics: CameraIntrinsics | None = None


@dataclass(frozen=True, eq=False)
class NuScenesScene:
    """One scene, ready to convert: files on disk, ego poses, ground truth.

    Attributes:
        name, token, description: of the scene record.
        files: sample_data on disk (lidar, cameras, radars), time-ordered.
        missing_files: sample_data of those modalities whose file is absent.
        pose_stamps_ns: (P,) int64 ego pose times; poses: (P, 4, 4) base_link -> odom.
        ground_truth: per-key-frame boxes (base_link) with box-occupancy rasters.
        radar_filtered: whether radar points get the devkit's default filters.
    """

    name: str
    token: str
    description: str
    files: tuple[SampleDataFile, ...]
    missing_files: int
    pose_stamps_ns: NDArray[np.int64]
    poses: NDArray[np.float64]
    ground_truth: GroundTruth
    radar_filtered: bool = True

    @property
    def pose_rate_hz(self) -> float:
        """Mean rate of the ego poses, Hz (50 when there are fewer than two)."""
        if len(self.pose_stamps_ns) < 2:
            return 50.0
        return float((len(self.pose_stamps_ns) - 1) / ((self.pose_stamps_ns[-1] - self.pose_stamps_ns[0]) * 1e-9))

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted({f.channel for f in self.files}))

    def odometry(self, frame_id: str = "odom", child_frame_id: str = "base_link") -> list[OdometrySample]:
        """One OdometrySample per ego pose; body-frame velocities from the poses about
        ODOMETRY_HALF_WINDOW_NS before and after (see :func:`_twist`)."""
        linear, angular = _twist(self.pose_stamps_ns, self.poses)
        samples = []
        for i, stamp in enumerate(self.pose_stamps_ns):
            q = matrix_to_quaternion(self.poses[i, :3, :3])
            samples.append(
                OdometrySample(int(stamp), frame_id, child_frame_id, self.poses[i, :3, 3], q, linear[i], angular[i])
            )
        return samples

    def check_rig(self, rig: Rig) -> None:
        """DatasetError when a channel on disk has no sensor of the same id and modality."""
        for channel in self.channels:
            modality = next(f.modality for f in self.files if f.channel == channel)
            sensor = next((s for s in rig.sensors if s.id == sensor_id(channel)), None)
            if sensor is None or sensor.modality is not Modality(modality):
                raise DatasetError(
                    f"scene {self.name}: channel {channel} needs a {modality} sensor '{sensor_id(channel)}' in rig "
                    f"'{rig.name}' ({rig.source or 'in memory'}); rig ids: {list(rig.ids)}"
                )

    def records(self, rig: Rig) -> Iterator[SensorRecord]:
        """The scene's SensorRecords in time order (files read lazily); odometry records
        only when ``rig`` has an odometry sensor. :meth:`check_rig` runs first."""
        self.check_rig(rig)
        items: list[tuple[int, int, Any]] = [(f.stamp_ns, 1, f) for f in self.files]
        odometry = rig.of(Modality.ODOMETRY)
        if odometry:
            odo = odometry[0]
            child = getattr(odo.spec, "child_frame_id", "base_link")
            items += [(s.stamp_ns, 0, (odo.id, s)) for s in self.odometry(odo.frame_id, child)]
        items.sort(key=lambda item: (item[0], item[1], getattr(item[2], "channel", "")))
        for stamp, kind, item in items:
            if kind == 0:
                yield SensorRecord(item[0], stamp, stamp, item[1])
            else:
                yield SensorRecord(item.sensor_id, stamp, stamp, self._payload(item))

    def _payload(self, item: SampleDataFile) -> PointScan | EncodedImage:
        if item.modality == "lidar":
            return read_lidar_bin(item.path)
        if item.modality == "radar":
            return radar_scan(parse_pcd(item.path.read_bytes(), str(item.path)), filtered=self.radar_filtered)
        data = item.path.read_bytes()
        fmt = "png" if item.path.suffix.lower() == ".png" else "jpeg"
        return EncodedImage(data, fmt, item.intrinsics)


def _twist(stamps: NDArray[np.int64], poses: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Body-frame linear (m/s) and angular (rad/s) velocity (P, 3) of each pose: the SE(3)
    logarithm of the motion between the poses about ODOMETRY_HALF_WINDOW_NS before and
    after it, divided by their time difference (exact for a constant twist, e.g. an arc)."""
    count = len(stamps)
    linear, angular = np.zeros((count, 3)), np.zeros((count, 3))
    if count < 2:
        return linear, angular
    before = np.clip(np.searchsorted(stamps, stamps - ODOMETRY_HALF_WINDOW_NS, side="right") - 1, 0, count - 1)
    after = np.clip(np.searchsorted(stamps, stamps + ODOMETRY_HALF_WINDOW_NS, side="left"), 0, count - 1)
    for i in range(count):
        j, k = int(before[i]), int(after[i])
        if j == k:
            j, k = max(0, i - 1), min(count - 1, i + 1)
        dt = (int(stamps[k]) - int(stamps[j])) * 1e-9
        delta = invert_transform(poses[j]) @ poses[k]
        R = delta[:3, :3]
        theta = math.acos(max(-1.0, min(1.0, (np.trace(R) - 1.0) / 2.0)))
        skew = (R - R.T) / 2.0
        scale = theta / math.sin(theta) if theta > 1e-9 else 1.0
        phi = scale * np.array([skew[2, 1], skew[0, 2], skew[1, 0]])
        W = np.array([[0.0, -phi[2], phi[1]], [phi[2], 0.0, -phi[0]], [-phi[1], phi[0], 0.0]])
        if theta > 1e-6:
            a, b = (1 - math.cos(theta)) / theta**2, (theta - math.sin(theta)) / theta**3
        else:
            a, b = 0.5 - theta**2 / 24, 1 / 6 - theta**2 / 120
        V = np.eye(3) + a * W + b * (W @ W)
        linear[i] = np.linalg.solve(V, delta[:3, 3]) / dt
        angular[i] = phi / dt
    return linear, angular


def annotation_velocity(tables: NuScenesTables, annotation: dict[str, Any]) -> NDArray[np.float64]:
    """(3,) global velocity, m/s, of an annotation by the devkit's ``box_velocity`` method:
    centred difference of the prev/next annotations (one-sided at the ends), NaN when it
    has neither or they are too far apart in time."""
    has_prev, has_next = annotation["prev"] != "", annotation["next"] != ""
    if not has_prev and not has_next:
        return np.full(3, np.nan)
    first = tables.get("sample_annotation", annotation["prev"]) if has_prev else annotation
    last = tables.get("sample_annotation", annotation["next"]) if has_next else annotation
    t_first = 1e-6 * tables.get("sample", first["sample_token"])["timestamp"]
    t_last = 1e-6 * tables.get("sample", last["sample_token"])["timestamp"]
    limit = MAX_VELOCITY_TIME_DIFF_S * (2 if has_prev and has_next else 1)
    if t_last - t_first > limit:
        return np.full(3, np.nan)
    diff: NDArray[np.float64] = (np.asarray(last["translation"], float) - np.asarray(first["translation"], float)) / (
        t_last - t_first
    )
    return diff


def sample_boxes(tables: NuScenesTables, sample_token: str, ego_pose: NDArray[np.float64]) -> Boxes:
    """The detection-class annotations of a sample as Boxes in base_link for ``ego_pose``
    (4, 4) base_link -> global, in sample_annotation table order."""
    rows = []
    for ann in tables.annotations.get(sample_token, []):
        instance = tables.get("instance", ann["instance_token"])
        label = nuscenes_label(tables.get("category", instance["category_token"])["name"])
        if label is not None:
            rows.append((ann, label, tables.instance_number[ann["instance_token"]]))
    if not rows:
        return Boxes.empty()
    R = np.stack([_pose(ann)[:3, :3] for ann, _, _ in rows])
    w, length, h = np.asarray([ann["size"] for ann, _, _ in rows], dtype=np.float64).T
    global_boxes = Boxes.create(
        centers=np.asarray([ann["translation"] for ann, _, _ in rows], dtype=np.float64),
        sizes=np.stack([length, w, h], axis=1),
        yaws=np.arctan2(R[:, 1, 0], R[:, 0, 0]),
        labels=np.array([label for _, label, _ in rows]),
        track_ids=np.array([track for _, _, track in rows]),
        num_lidar_points=np.array([ann["num_lidar_pts"] for ann, _, _ in rows]),
    )
    to_ego = invert_transform(ego_pose)
    velocity = np.stack([annotation_velocity(tables, ann) for ann, _, _ in rows]) @ to_ego[:3, :3].T
    return replace(global_boxes.transformed(to_ego), velocities=velocity[:, :2])


def open_scene(
    dataroot: str | Path,
    version: str,
    scene: str | None = None,
    *,
    grid: BevGrid | None = None,
    radar_filtered: bool = True,
    channels: Sequence[str] | None = None,
) -> NuScenesScene:
    """Read the tables of DATAROOT/VERSION and prepare scene ``scene`` (None: the first).

    ``channels`` restricts the sensors (default: LIDAR_TOP, every CAM_* and RADAR_*).
    DatasetError names the root, version, scene or file when something is wrong.
    """
    tables = NuScenesTables(dataroot, version)
    record = tables.scene(scene)
    samples = {s["token"] for s in tables.tables["sample"] if s["scene_token"] == record["token"]}
    files: list[SampleDataFile] = []
    missing = 0
    pose_rows: dict[int, NDArray[np.float64]] = {}
    lidar_keys: dict[str, tuple[SampleDataFile, NDArray[np.float64]]] = {}
    for sd in tables.tables["sample_data"]:
        if sd["sample_token"] not in samples:
            continue
        stamp = int(sd["timestamp"]) * 1000
        ego = _pose(tables.get("ego_pose", sd["ego_pose_token"]))
        pose_rows.setdefault(stamp, ego)
        calibrated = tables.get("calibrated_sensor", sd["calibrated_sensor_token"])
        sensor = tables.get("sensor", calibrated["sensor_token"])
        channel, modality = sensor["channel"], sensor["modality"]
        wanted = channel == LIDAR_CHANNEL or modality in ("camera", "radar")
        if not wanted or (channels is not None and channel not in channels):
            continue
        path = tables.dataroot / sd["filename"]
        if not path.is_file():
            missing += 1
            continue
        intrinsics = None
        if modality == "camera":
            intrinsics = CameraIntrinsics(
                K=np.asarray(calibrated["camera_intrinsic"], dtype=np.float64),
                width=int(sd["width"]),
                height=int(sd["height"]),
            )
        item = SampleDataFile(
            sd["token"], channel, modality, sensor_id(channel), stamp, path, sd["is_key_frame"], intrinsics
        )
        files.append(item)
        if channel == LIDAR_CHANNEL and item.is_key_frame:
            lidar_keys[sd["sample_token"]] = (item, ego)
    files.sort(key=lambda f: (f.stamp_ns, f.channel))
    stamps = np.array(sorted(pose_rows), dtype=np.int64)
    poses = np.stack([pose_rows[int(s)] for s in stamps]) if len(stamps) else np.zeros((0, 4, 4))
    frames = []
    for token, (lidar, ego) in sorted(lidar_keys.items(), key=lambda kv: kv[1][0].stamp_ns):
        frames.append(FrameTruth(lidar.stamp_ns, sample_boxes(tables, token, ego), ego))
    return NuScenesScene(
        name=str(record["name"]),
        token=str(record["token"]),
        description=str(record.get("description", "")),
        files=tuple(files),
        missing_files=missing,
        pose_stamps_ns=stamps,
        poses=poses,
        ground_truth=GroundTruth.with_box_occupancy(frames, grid or BevGrid()),
        radar_filtered=radar_filtered,
    )

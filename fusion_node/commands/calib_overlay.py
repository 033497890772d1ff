"""``fusion calib overlay``: lidar (and radar) points drawn on camera images, plus the
edge-alignment score of each camera.

Example (nuScenes front camera)::

    fusion calib overlay --rig nus.yaml --lidar LIDAR_TOP.pcd.bin --lidar-columns x,y,z,intensity,ring \\
        --image cam_front=CAM_FRONT.jpg --image cam_back=CAM_BACK.jpg --out overlays/

For each ``--image CAMERA_ID=FILE`` it writes ``OUT/<camera id>.png`` and prints one line:
the alignment score (``calibration.alignment``; higher = lidar depth edges closer to image
edges) and the number of points in view, or ``camera X never sees lidar Y``. Exit status:
0 when at least one camera sees the lidar (or only radar was given), 1 when none does or on
bad input (one line on stderr naming the file or argument).

Point files: ``.bin`` (raw float32 rows, columns named by ``--lidar-columns``), ``.npy``
((N, C) array, same naming), ``.pcd`` (PCD v0.7 ``ascii``, ``binary`` or PCL's LZF-compressed
``binary_compressed``, columns from its FIELDS). A column named ``ring`` is used as the laser
ring. Points are in the sensor's own frame (``--lidar-id`` / ``--radar-id``, default: the rig's only lidar / radar).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

DEFAULT_LIDAR_COLUMNS = "x,y,z,intensity"
DEFAULT_RADAR_COLUMNS = "x,y,z"
_PCD_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("U", 1): "u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8"}
_PCD_TYPES |= {("I", 1): "i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8"}


class PointFileError(ValueError):
    """A point file cannot be read: names the file and what is wrong."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rig", required=True, help="rig YAML with the cameras, lidar and radar")
    parser.add_argument("--lidar", help="lidar scan: .bin (float32), .npy or .pcd, in the lidar frame")
    parser.add_argument(
        "--lidar-columns", default=None, help=f"column names of .bin/.npy (default {DEFAULT_LIDAR_COLUMNS})"
    )
    parser.add_argument("--lidar-id", help="lidar sensor id in the rig (default: its only lidar)")
    parser.add_argument("--radar", help="radar points: .bin (float32), .npy or .pcd, in the radar frame")
    parser.add_argument(
        "--radar-columns", default=None, help=f"column names of .bin/.npy (default {DEFAULT_RADAR_COLUMNS})"
    )
    parser.add_argument("--radar-id", help="radar sensor id in the rig (default: its only radar)")
    parser.add_argument(
        "--image", action="append", required=True, metavar="CAMERA_ID=FILE", help="camera image (repeat per camera)"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for <camera id>.png")
    parser.add_argument(
        "--max-depth",
        type=float,
        default=None,
        help="depth of the colormap's far end, metres (default: 90th percentile of the lidar depths in view)",
    )


def run(args: argparse.Namespace) -> int:
    import cv2

    from calibration import CalibrationError, load_rig

    try:
        if not args.lidar and not args.radar:
            raise PointFileError("give --lidar, --radar or both")
        rig = load_rig(args.rig)
        images = [_image_argument(text, rig) for text in args.image]
        lidar_id = _sensor_id(rig, args.lidar_id, "lidar") if args.lidar else ""
        radar_id = _sensor_id(rig, args.radar_id, "radar") if args.radar else ""
        lidar = read_points(args.lidar, args.lidar_columns or DEFAULT_LIDAR_COLUMNS) if args.lidar else None
        radar = read_points(args.radar, args.radar_columns or DEFAULT_RADAR_COLUMNS) if args.radar else None
        args.out.mkdir(parents=True, exist_ok=True)
        seen = 0
        for camera_id, path in images:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise PointFileError(f"cannot read image {path} (for camera '{camera_id}')")
            report = overlay_camera(rig, camera_id, image, lidar, lidar_id, radar, radar_id, args.max_depth)
            out = args.out / f"{camera_id}.png"
            if not cv2.imwrite(str(out), report.pop("image")):
                raise PointFileError(f"cannot write {out}")
            seen += bool(report["lidar_in_view"])
            print(_line(camera_id, lidar_id, radar_id, report, out))
    except (CalibrationError, PointFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if lidar is not None and seen == 0:
        print(f"error: no camera sees lidar '{lidar_id}'", file=sys.stderr)
        return 1
    return 0


def overlay_camera(
    rig: Any,
    camera_id: str,
    image: NDArray[np.uint8],
    lidar: tuple[NDArray[np.float64], list[str]] | None,
    lidar_id: str,
    radar: tuple[NDArray[np.float64], list[str]] | None,
    radar_id: str,
    max_depth_m: float | None = None,
) -> dict[str, Any]:
    """Project, score and draw one camera. Returns {"image", "lidar_in_view", "score",
    "radar_in_view"} (score None when the camera does not see the lidar)."""
    from calibration.alignment import NoOverlapError, alignment_score, depth_discontinuities, edge_map
    from calibration.overlay import OverlayStyle, draw_overlay

    intrinsics = rig.sensor(camera_id).camera.intrinsics
    if image.shape[:2] != (intrinsics.height, intrinsics.width):
        raise PointFileError(
            f"image for camera '{camera_id}' is {image.shape[1]}x{image.shape[0]}, "
            f"the rig says {intrinsics.width}x{intrinsics.height}"
        )
    result: dict[str, Any] = {"lidar_in_view": 0, "score": None, "radar_in_view": 0}
    lidar_uv = lidar_depth = radar_uv = radar_depth = None
    if lidar is not None:
        xyz, ring = xyz_and_ring(*lidar)
        uv, depth, valid = rig.project(xyz, src=lidar_id, camera=camera_id)
        lidar_uv, lidar_depth = uv[valid], depth[valid]
        result["lidar_in_view"] = int(valid.sum())
        edges = depth_discontinuities(xyz, ring)
        if len(edges):
            near_uv, _, near_valid = rig.project(edges.points, src=lidar_id, camera=camera_id)
            far_uv, _, _ = rig.project(edges.far_points, src=lidar_id, camera=camera_id)
            try:
                result["score"] = alignment_score(edge_map(image), near_uv, far_uv, edges.weights, near_valid)
            except NoOverlapError:
                result["score"] = None
            result["edges_in_view"] = int(near_valid.sum())
    if radar is not None:
        xyz, _ = xyz_and_ring(*radar)
        uv, depth, valid = rig.project(xyz, src=radar_id, camera=camera_id)
        radar_uv, radar_depth = uv[valid], depth[valid]
        result["radar_in_view"] = int(valid.sum())
    caption = [f"{camera_id}  {intrinsics.width}x{intrinsics.height}  rig '{rig.name}'"]
    if lidar is not None:
        score = "n/a" if result["score"] is None else f"{result['score']:.4f}"
        caption.append(f"lidar {lidar_id}: {result['lidar_in_view']} points in view, edge alignment {score}")
    if radar is not None:
        caption.append(f"radar {radar_id}: {result['radar_in_view']} points in view (large rings)")
    if max_depth_m is None:
        depths = lidar_depth if lidar_depth is not None and len(lidar_depth) else radar_depth
        max_depth_m = _nice_depth(depths)
    result["image"] = draw_overlay(
        image,
        lidar_uv,
        lidar_depth,
        radar_uv=radar_uv,
        radar_depth=radar_depth,
        caption=caption,
        style=OverlayStyle(max_depth_m=max_depth_m),
    )
    return result


def _nice_depth(depths: Any) -> float:
    """90th percentile of the depths rounded up to 10 m (at least 10 m; 50 m without points)."""
    if depths is None or len(depths) == 0:
        return 50.0
    return float(max(10.0, np.ceil(np.percentile(depths, 90.0) / 10.0) * 10.0))


def read_points(path: str | Path, columns: str = DEFAULT_LIDAR_COLUMNS) -> tuple[NDArray[np.float64], list[str]]:
    """Read a point file into ((N, C) float64, C column names); see the module docstring."""
    file = Path(path)
    if not file.is_file():
        raise PointFileError(f"point file {file} does not exist")
    names = [name.strip() for name in columns.split(",") if name.strip()]
    suffix = file.suffix.lower()
    if suffix == ".pcd":
        return _read_pcd(file)
    if suffix == ".npy":
        try:
            array = np.load(file, allow_pickle=False)
        except ValueError as exc:
            raise PointFileError(f"{file}: not a numeric .npy array ({exc})") from None
        if array.ndim != 2 or array.shape[1] < 3:
            raise PointFileError(f"{file}: expected an (N, 3+) array, got shape {array.shape}")
        names = (names + [f"c{i}" for i in range(len(names), array.shape[1])])[: array.shape[1]]
        return np.asarray(array, dtype=np.float64), names
    if suffix == ".bin":
        raw = np.fromfile(file, dtype="<f4")
        if len(names) < 3 or raw.size % len(names):
            raise PointFileError(
                f"{file}: {raw.size} float32 values do not split into rows of {len(names)} columns "
                f"({','.join(names)}); set the columns option to the file's layout"
            )
        return raw.reshape(-1, len(names)).astype(np.float64), names
    raise PointFileError(f"{file}: unsupported point file type '{suffix}' (use .bin, .npy or .pcd)")


def xyz_and_ring(array: NDArray[np.float64], names: Sequence[str]) -> tuple[NDArray[np.float64], Any]:
    """(N, 3) x, y, z columns and the (N,) ring column (None when there is none)."""
    try:
        xyz = array[:, [list(names).index(axis) for axis in ("x", "y", "z")]]
    except ValueError:
        raise PointFileError(f"point columns {list(names)} lack one of x, y, z") from None
    ring = array[:, list(names).index("ring")].astype(np.int64) if "ring" in names else None
    return xyz, ring


def _read_pcd(file: Path) -> tuple[NDArray[np.float64], list[str]]:
    header: dict[str, list[str]] = {}
    with file.open("rb") as stream:
        while True:
            line = stream.readline()
            if not line:
                raise PointFileError(f"{file}: PCD header has no DATA line")
            text = line.decode("ascii", errors="replace").strip()
            if not text or text.startswith("#"):
                continue
            key, *values = text.split()
            header[key.upper()] = values
            if key.upper() == "DATA":
                break
        body = stream.read()
    try:
        names = header["FIELDS"]
        sizes = [int(v) for v in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(v) for v in header.get("COUNT", ["1"] * len(names))]
        points = int(header["POINTS"][0])
        mode = header["DATA"][0].lower()
    except (KeyError, IndexError, ValueError) as exc:
        raise PointFileError(f"{file}: malformed PCD header ({exc!r})") from None
    if not (len(names) == len(sizes) == len(types) == len(counts)) or any(c != 1 for c in counts):
        raise PointFileError(f"{file}: PCD FIELDS/SIZE/TYPE/COUNT disagree or COUNT != 1")
    if mode == "ascii":
        try:
            rows = np.loadtxt(body.decode("ascii").splitlines(), dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise PointFileError(f"{file}: bad ASCII PCD data ({exc})") from None
        if rows.shape != (points, len(names)):
            raise PointFileError(f"{file}: expected {points} x {len(names)} values, got {rows.shape}")
        return rows, names
    if mode == "binary":
        try:
            dtype = np.dtype([(n, _PCD_TYPES[(t, s)]) for n, t, s in zip(names, types, sizes, strict=True)])
        except KeyError as exc:
            raise PointFileError(f"{file}: unsupported PCD field type {exc}") from None
        if len(body) < points * dtype.itemsize:
            raise PointFileError(f"{file}: {len(body)} data bytes, {points} points need {points * dtype.itemsize}")
        table = np.frombuffer(body[: points * dtype.itemsize], dtype=dtype)
        return np.stack([table[n].astype(np.float64) for n in names], axis=1), names
    if mode == "binary_compressed":
        return _read_compressed_pcd(file, names, points)
    raise PointFileError(f"{file}: PCD DATA '{mode}' is not supported (ascii, binary or binary_compressed)")


def _read_compressed_pcd(file: Path, names: list[str], points: int) -> tuple[NDArray[np.float64], list[str]]:
    """A ``binary_compressed`` PCD (LZF, one field after another) through Open3D's tensor reader,
    which keeps every field under its own name but x, y, z (``positions``). Fields Open3D
    renames (``rgb`` -> ``colors``, ``normal_x``.. -> ``normals``) are left out."""
    import open3d as o3d

    cloud = o3d.t.io.read_point_cloud(str(file))  # a broken file gives an empty cloud (and a warning)
    attributes = {key: cloud.point[key].numpy() for key in cloud.point}
    positions = attributes.get("positions")
    read = 0 if positions is None else positions.shape[0]
    if read != points:
        raise PointFileError(
            f"{file}: {read} of the header's {points} points could be read from its binary_compressed data "
            "(truncated or corrupt)"
        )
    columns: dict[str, NDArray[np.float64]] = {}
    for name in names:
        if name in ("x", "y", "z"):
            columns[name] = np.asarray(positions)[:, "xyz".index(name)].astype(np.float64)
        elif name in attributes and attributes[name].size == points:
            columns[name] = attributes[name].reshape(points).astype(np.float64)
    return np.stack(list(columns.values()), axis=1), list(columns)


def _image_argument(text: str, rig: Any) -> tuple[str, Path]:
    camera_id, sep, path = text.partition("=")
    if not sep or not camera_id or not path:
        raise PointFileError(f"--image expects CAMERA_ID=FILE, got {text!r}")
    cameras = [s.id for s in rig.cameras]
    if camera_id not in cameras:
        raise PointFileError(f"--image {text!r}: rig '{rig.name}' has no camera '{camera_id}'; cameras: {cameras}")
    return camera_id, Path(path)


def _sensor_id(rig: Any, given: str | None, modality: str) -> str:
    ids = [s.id for s in rig.of(modality)]
    if given:
        if given not in ids:
            raise PointFileError(f"rig '{rig.name}' has no {modality} '{given}'; {modality}s: {ids}")
        return given
    if len(ids) != 1:
        raise PointFileError(f"rig '{rig.name}' has {len(ids)} {modality}s {ids}: choose one with --{modality}-id")
    return ids[0]


def _line(camera_id: str, lidar_id: str, radar_id: str, report: dict[str, Any], out: Path) -> str:
    parts = [f"{camera_id:<18}"]
    if lidar_id:
        if report["lidar_in_view"]:
            score = "n/a (no depth edge in view)" if report["score"] is None else f"{report['score']:+.4f}"
            parts.append(f"score {score}  lidar points in view {report['lidar_in_view']}")
        else:
            parts.append(f"camera {camera_id} never sees lidar {lidar_id}")
    if radar_id:
        parts.append(f"radar points in view {report['radar_in_view']}")
    parts.append(f"-> {out}")
    return "  ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fusion_node.commands.calib_overlay``: the same as ``fusion calib overlay``."""
    parser = argparse.ArgumentParser(prog="fusion calib overlay", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

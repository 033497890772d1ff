"""``fusion calib refine``: targetless lidar->camera extrinsic refinement (edge alignment).

Example::

    fusion calib refine --rig rig.yaml --camera cam_front --pair scan0.pcd=img0.png \\
        --pair scan1.pcd=img1.png --out refined.yaml

Each ``--pair LIDAR_FILE=IMAGE_FILE`` is one lidar scan (``.bin``/``.npy``/``.pcd``, see
``fusion calib overlay``) and the camera image taken with it. With ``--intensity-weight``
above 0 (default 0: edges only), a scan with an ``intensity`` (or ``reflectivity``) column
also adds the mutual information of reflectivity and image gray level to the objective
(see ``calibration.refine``). The command prints the
correction (rotation about the camera's x/y/z optical axes in degrees, translation in
metres), the alignment score before and after, the sharpness of the optimum per axis and
whether the optimum is well defined, then writes the rig with the camera remounted.
Exit status 1 on bad input or when the camera never sees the lidar (message on stderr).

With ``--view CAMERA LIDAR_FILE IMAGE_FILE`` (repeatable, instead of ``--camera`` and
``--pair``) the lidar is refined against every camera named at once
(``calibration.refine.refine_lidar_mounting``): the cameras stay put, the correction is about
the lidar's own axes, and the written rig has the lidar remounted::

    fusion calib refine --rig rig.yaml --translation --view cam_front scan0.pcd front0.png \
        --view cam_back scan0.pcd back0.png --view cam_front_left scan0.pcd left0.png --out refined.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusion_node.commands.calib_overlay import DEFAULT_LIDAR_COLUMNS, PointFileError, read_points, xyz_and_ring

AXES = ("rx", "ry", "rz", "tx", "ty", "tz")
INTENSITY_COLUMNS = ("intensity", "reflectivity")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rig", required=True, help="rig YAML with the initial extrinsics and intrinsics")
    parser.add_argument("--camera", help="camera id to refine (with --pair)")
    parser.add_argument("--lidar-id", help="lidar id (default: the rig's only lidar)")
    parser.add_argument(
        "--pair", action="append", default=[], metavar="LIDAR_FILE=IMAGE_FILE", help="scan + image (repeatable)"
    )
    parser.add_argument(
        "--view",
        action="append",
        default=[],
        nargs=3,
        metavar=("CAMERA", "LIDAR_FILE", "IMAGE_FILE"),
        help="a camera, a scan and that camera's image (repeatable): refine the lidar's mounting against them all",
    )
    parser.add_argument("--lidar-columns", default=DEFAULT_LIDAR_COLUMNS, help="column names of .bin/.npy scans")
    parser.add_argument("--out", required=True, type=Path, help="refined rig YAML to write")
    parser.add_argument("--translation", action="store_true", help="also refine the translation (several pairs)")
    parser.add_argument("--grid-deg", type=float, default=2.0, help="rotation search half-width, degrees")
    parser.add_argument(
        "--intensity-weight",
        type=float,
        default=0.0,
        help="weight of the reflectivity/gray-level mutual information against the edge score (0 = edges only)",
    )
    parser.add_argument(
        "--trend-factor",
        type=float,
        default=0.0,
        help="drop the range steps of surfaces seen at a grazing angle (DiscontinuityConfig.trend_factor; "
        "0 = keep them; 1 helps dense or simulated scans, docs/BENCHMARKS.md)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    import cv2

    from calibration import CalibrationError, load_rig
    from calibration.alignment import DiscontinuityConfig
    from calibration.refine import (
        LidarImagePair,
        RefineConfig,
        refine_extrinsic,
        refine_lidar_mounting,
        with_extrinsic,
        with_mounting,
    )

    def read_pair(scan_path: str, image_path: str) -> LidarImagePair:
        array, names = read_points(scan_path, args.lidar_columns)
        xyz, ring = xyz_and_ring(array, names)
        image = cv2.imread(image_path, cv2.IMREAD_COLOR)
        if image is None:
            raise PointFileError(f"cannot read image {image_path}")
        return LidarImagePair(
            xyz, image, ring, name=f"{scan_path}={image_path}", intensity=intensity_column(array, names)
        )

    try:
        if bool(args.view) == bool(args.pair or args.camera):
            raise PointFileError("give either --camera with --pair LIDAR_FILE=IMAGE_FILE, or --view CAMERA LIDAR IMAGE")
        if args.pair and not args.camera:
            raise PointFileError("--pair needs --camera (the camera the images come from)")
        if args.camera and not args.pair:
            raise PointFileError(f"--camera {args.camera} needs at least one --pair LIDAR_FILE=IMAGE_FILE")
        rig = load_rig(args.rig)
        lidar_id = args.lidar_id or _only_lidar(rig)
        config = RefineConfig(
            rotation_grid_deg=args.grid_deg,
            refine_translation=args.translation,
            intensity_weight=args.intensity_weight,
            discontinuities=DiscontinuityConfig(trend_factor=args.trend_factor),
        )
        if args.view:
            views: dict[str, list[LidarImagePair]] = {}
            for camera_id, scan_path, image_path in args.view:
                views.setdefault(camera_id, []).append(read_pair(scan_path, image_path))
            result = refine_lidar_mounting(views, rig, lidar_id, config)
            refined = with_mounting(rig, lidar_id, result.T_refined)
            cameras = list(views)
        else:
            pairs = []
            for text in args.pair:
                scan_path, sep, image_path = text.partition("=")
                if not sep or not scan_path or not image_path:
                    raise PointFileError(f"--pair expects LIDAR_FILE=IMAGE_FILE, got {text!r}")
                pairs.append(read_pair(scan_path, image_path))
            result = refine_extrinsic(pairs, rig, lidar_id, args.camera, config)
            refined = with_extrinsic(rig, lidar_id, args.camera, result.T_refined)
            cameras = [args.camera]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        refined.dump(args.out)
    except (CalibrationError, PointFileError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = summary(result, cameras, lidar_id, str(args.out), mounting=bool(args.view))
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return 0


def summary(result: Any, cameras: Sequence[str], lidar_id: str, out: str, mounting: bool) -> dict[str, Any]:
    """Plain-data form of a ``RefinementResult`` (for --json and the text report): one camera's
    extrinsic, corrected in the camera frame, or (``mounting``, ``--view``) the lidar's
    mounting, corrected in the lidar frame."""
    return {
        "refined": "lidar mounting" if mounting else "camera extrinsic",
        "frame": lidar_id if mounting else cameras[0],
        "cameras": list(cameras),
        "lidar": lidar_id,
        "correction_rotation_deg": [round(float(v), 4) for v in result.correction_rpy_deg],
        "correction_translation_m": [round(float(v), 4) for v in result.correction_translation_m],
        "rotation_change_deg": round(result.rotation_change_deg, 4),
        "score_before": round(result.score_before, 5),
        "score_after": round(result.score_after, 5),
        "information_before": round(result.information_before, 5),
        "information_after": round(result.information_after, 5),
        "sharpness": dict(zip(AXES, (round(float(v), 3) for v in result.sharpness), strict=True)),
        "well_defined": result.well_defined,
        "translation_refined": result.translation_refined,
        "points_in_view": result.points_in_view,
        "iterations": result.iterations,
        "seconds": round(result.seconds, 2),
        "refined_rig": out,
    }


def describe(report: dict[str, Any]) -> str:
    rx, ry, rz = report["correction_rotation_deg"]
    tx, ty, tz = report["correction_translation_m"]
    sharp = "  ".join(f"{k} {v:.3f}" for k, v in report["sharpness"].items())
    verdict = (
        "well defined: the score drops on every refined axis"
        if report["well_defined"]
        else "NOT well defined: the score is flat along some refined axis; do not trust this correction"
    )
    frame = report["frame"]
    lines = [
        f"{report['refined']}: {','.join(report['cameras'])} <- {report['lidar']}: "
        f"{report['points_in_view']} depth edges in view",
        f"correction rotation (deg, about {frame} x/y/z): {rx:+.3f} {ry:+.3f} {rz:+.3f}"
        f"  ({report['rotation_change_deg']:.3f} deg in all)",
        f"correction translation (m, {frame} frame): {tx:+.4f} {ty:+.4f} {tz:+.4f}"
        + ("" if report["translation_refined"] else "  (translation not refined)"),
        f"edge score {report['score_before']:.5f} -> {report['score_after']:.5f}, mutual information "
        f"{report['information_before']:.4f} -> {report['information_after']:.4f} nats",
        f"sharpness {sharp}",
        verdict,
        f"{report['iterations']} evaluations in {report['seconds']:.1f} s; wrote {report['refined_rig']}",
    ]
    return "\n".join(lines)


def intensity_column(array: Any, names: Sequence[str]) -> Any:
    """The (N,) ``intensity`` (or ``reflectivity``) column of a scan, None when it has none."""
    for name in INTENSITY_COLUMNS:
        if name in names:
            return array[:, list(names).index(name)]
    return None


def _only_lidar(rig: Any) -> str:
    ids = [s.id for s in rig.of("lidar")]
    if len(ids) != 1:
        raise PointFileError(f"rig '{rig.name}' has {len(ids)} lidars {ids}: choose one with --lidar-id")
    return str(ids[0])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fusion_node.commands.calib_refine``: the same as ``fusion calib refine``."""
    parser = argparse.ArgumentParser(prog="fusion calib refine", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Targetless extrinsic refinement on the real samples (``fusion bench refine``).

For each real lidar+camera pair (PJLab: raw distorted 1920x1200 image with K and 4
plumb_bob coefficients; nuScenes CAM_FRONT with LIDAR_TOP and ``lidar2cam`` including the
ego motion as the truth), ``--runs`` seeded trials start from the true extrinsic perturbed
by ``--rotation-deg`` about a random axis and ``--translation-m`` in a random direction
(trial ``k`` uses ``numpy.random.default_rng(k)``), run ``refine_extrinsic`` and measure:

- rotation error: angle of ``R_refined @ R_true^T``, degrees;
- translation error: ``|t_refined - t_true|`` of the lidar -> camera translation, metres;
- success: rotation error <= ``--max-rotation-deg`` and translation error <= ``--max-translation-m``;
  the rotation-only success count is reported too.

``sim`` is a control with exact geometry: a 2 s simulated drive (seed 7, intersection layout,
no traffic: nothing in it moves but the ego, so de-skewing with the ego's poses is exact)
through the default rig's ``lidar_top`` and ``cam_front`` at full resolution (1600x900), whose
sweeps are de-skewed to the nearest camera capture with the drive's own poses
(``calibration.poses.deskew_points``), ``--sim-frames`` pairs refined together; the truth is
the rig's extrinsic. It separates what the real samples lack (several frames, a calibration
known exactly) from what the edge objective itself can resolve.

``nuscenes6`` and ``sim6`` refine the lidar's mounting against all six cameras at once
(``calibration.refine.refine_lidar_mounting``): the lidar is perturbed in its own frame by
``--rotation-deg`` and ``--translation-m`` and the errors are those of its mounting (each
camera's rotation error is the same). ``nuscenes6``'s truth is every camera's ``lidar2cam``;
``sim6`` uses ``--sim-frames`` sweeps per camera of the ``sim`` drive. Every dataset's trials
also report how many refined transforms lie within the thresholds of the trials' median
(``agree_with_median``) and that median's own error, which separates a search that finds one
optimum from a truth that is not that optimum.

Each single-camera dataset also times one evaluation of the refinement's objective (projection of the
in-view discontinuities with ``project_camera`` and bilinear sampling of both edge-map
channels), interleaved with a baseline doing the same with ``cv2.projectPoints`` and
``cv2.remap``, and reports how many of its discontinuities meet an image edge at the truth
beyond chance (``edge_agreement``: the share of silhouettes the objective can use), and
where the edge score peaks when the scan is moved up or down at the true extrinsic
(``height_profile``; on nuScenes for all six cameras): a check of the reference itself.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HELP = "lidar->camera extrinsic refinement on the real samples (seeded trials, errors vs truth)"
REALDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "realdata"
DATASETS = ("pjlab", "nuscenes", "sim", "nuscenes6", "sim6")
#: Datasets where the lidar's mounting is refined against all six cameras at once.
MOUNTING_DATASETS = ("nuscenes6", "sim6")
#: The default rig's cameras in the ``sim`` drive; ``sim`` refines the first, ``sim6`` all.
SIM_CAMERAS = ("cam_front", "cam_front_right", "cam_back_right", "cam_back", "cam_back_left", "cam_front_left")
#: nuScenes' six cameras; the first is the one refined (``nuscenes``), all six get ``height_profile``.
NUSCENES_CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
#: The ``sim`` dataset's drive: seed, seconds, road layout, and the folder its shard is cached in.
SIM_DRIVE: dict[str, Any] = {"seed": 7, "duration_s": 2.0, "layout": "intersection", "traffic": False}
#: Shifts of the scan along the lidar's z axis probed by ``height_profile``, metres.
HEIGHT_SHIFTS_M = (-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
SIM_CACHE = Path(__file__).resolve().parent.parent / "out" / "bench" / "refine_sim"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--realdata", type=Path, default=REALDATA, help="folder of the real samples")
    parser.add_argument("--datasets", default="pjlab,nuscenes", help=f"comma-separated subset of {','.join(DATASETS)}")
    parser.add_argument("--sim-frames", type=int, default=6, help="pairs per camera (sim, sim6)")
    parser.add_argument("--rotation-deg", type=float, default=1.5, help="initial rotation error, degrees")
    parser.add_argument("--translation-m", type=float, default=0.10, help="initial translation error, metres")
    parser.add_argument("--max-rotation-deg", type=float, default=0.3, help="success threshold, degrees")
    parser.add_argument("--max-translation-m", type=float, default=0.03, help="success threshold, metres")
    parser.add_argument("--translation", action="store_true", help="also refine the translation")
    parser.add_argument(
        "--intensity-weight", type=float, default=0.0, help="weight of the mutual-information term (0 = edges only)"
    )
    parser.add_argument(
        "--trend-factor",
        type=float,
        default=0.0,
        help="DiscontinuityConfig.trend_factor: drop range steps of grazing surfaces (0 = keep them)",
    )
    parser.add_argument("--log", type=Path, help="append one JSON line per trial to this file")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from calibration.alignment import DiscontinuityConfig
    from calibration.refine import RefineConfig

    config = RefineConfig(
        refine_translation=args.translation,
        intensity_weight=args.intensity_weight,
        discontinuities=DiscontinuityConfig(trend_factor=args.trend_factor),
    )
    results: dict[str, Any] = {}
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        if name not in DATASETS:
            raise SystemExit(f"fusion bench refine: unknown dataset {name!r}; choose from {DATASETS}")
        if name in MOUNTING_DATASETS:
            views = load_sim_views(args.sim_frames) if name == "sim6" else load_nuscenes_views(args.realdata)
            results[f"refine_{name}"] = run_trials(views, config, args, name)
            continue
        sample = load_sim_sample(args.sim_frames) if name == "sim" else load_sample(name, args.realdata)
        results[f"score_eval_{name}"] = bench_objective(sample, args.runs, args.warmup)
        results[f"observability_{name}"] = translation_observability(
            sample, args.max_translation_m, config.discontinuities
        )
        results[f"edge_agreement_{name}"] = edge_agreement(sample, config.discontinuities)
        results[f"height_profile_{name}"] = height_profile(sample, discontinuities=config.discontinuities)
        if name == "nuscenes":  # the same check on the rig's five other cameras
            for camera in NUSCENES_CAMERAS[1:]:
                other = load_sample(name, args.realdata, camera)
                profile = height_profile(other, discontinuities=config.discontinuities)
                results[f"height_profile_{name}_{camera}"] = profile
        results[f"refine_{name}"] = run_trials(sample, config, args, name)
    return results


def load_sample(name: str, realdata: Path, camera: str = "CAM_FRONT") -> dict[str, Any]:
    """{"pairs": [LidarImagePair], "intrinsics": CameraIntrinsics, "T_true": (4, 4)} of a sample;
    ``camera`` picks one of nuScenes' six cameras (PJLab has one)."""
    import cv2

    from calibration import CameraIntrinsics
    from calibration.refine import LidarImagePair
    from fusion_node.commands.calib_overlay import read_points, xyz_and_ring
    from fusion_node.commands.calib_refine import intensity_column

    if name == "pjlab":
        root = realdata / "pjlab_opencalib"
        calib = json.loads((root / "calib.json").read_text())["lidar2camera"]
        array, names = read_points(root / "lidar2camera" / "0.pcd")
        image = cv2.imread(str(root / "lidar2camera" / "0.png"), cv2.IMREAD_COLOR)
        width, height = calib["image_size_wh"]
        intrinsics = CameraIntrinsics(
            K=np.array(calib["K"]), width=width, height=height, distortion_model="plumb_bob",
            D=np.array(calib["dist_k1_k2_p1_p2"]),
        )  # fmt: skip
        T_true = np.array(calib["T_cam_lidar"])
    else:
        root = realdata / "nuscenes_scene0061"
        calib = json.loads((root / "calib.json").read_text())
        if camera not in calib["cameras"]:
            raise SystemExit(f"fusion bench refine: no camera {camera!r} in {root / 'calib.json'}")
        spec = calib["cameras"][camera]
        array, names = read_points(root / calib["lidar_file"], "x,y,z,intensity,ring")
        image = cv2.imread(str(root / spec["img_file"]), cv2.IMREAD_COLOR)
        width, height = spec["image_size_wh"]
        intrinsics = CameraIntrinsics(K=np.array(spec["K"]), width=width, height=height)
        T_true = np.array(spec["lidar2cam"])  # includes the ego motion between the two stamps
    if image is None:
        raise SystemExit(f"fusion bench refine: cannot read the {name} image under {root}")
    xyz, ring = xyz_and_ring(array, names)
    pair = LidarImagePair(xyz, image, ring, name=name, intensity=intensity_column(array, names))
    return {"pairs": [pair], "intrinsics": intrinsics, "T_true": T_true}


def load_sim_sample(frames: int) -> dict[str, Any]:
    """The ``sim`` dataset (module docstring): ``frames`` pairs of ``cam_front`` spread over the
    drive, the camera's intrinsics and the true lidar -> camera transform."""
    views = load_sim_views(frames, SIM_CAMERAS[:1])
    (camera,) = views["views"]
    T_true, intrinsics = views["cameras"][camera]
    return {"pairs": views["views"][camera], "intrinsics": intrinsics, "T_true": T_true}


def load_sim_views(frames: int, cameras: tuple[str, ...] = SIM_CAMERAS) -> dict[str, Any]:
    """The simulated drive seen by ``cameras`` of the default rig: {"views": {camera: [pairs]},
    "cameras": {camera: (true (4, 4) lidar -> camera, intrinsics)}}, ``frames`` pairs per camera,
    each sweep de-skewed to that camera's capture with the drive's poses (the truth is the rig
    stored in the shard). The drive, with the lidar and ``cameras`` only (more cameras draw
    the simulator's random numbers differently: the ``sim`` figures in docs/BENCHMARKS.md are
    of the drive with ``cam_front`` alone), is simulated once into :data:`SIM_CACHE` (20 s per
    camera) and read from there afterwards."""
    import cv2

    from calibration import default_rig_path, load_rig, rig_from_dict
    from calibration.poses import deskew_points
    from calibration.refine import LidarImagePair
    from calibration.sensors import CameraSpec
    from perception.training.dataset import rig_of_shard, shard_trajectory
    from simulation.shards import read_shard

    lidar = "lidar_top"
    name = "_".join(f"{key}_{value}" for key, value in SIM_DRIVE.items())
    shard = SIM_CACHE / f"{name}_cameras_{len(cameras)}" / "shard_00000.npz"
    if not shard.exists():
        from simulation.scenario import ScenarioConfig
        from simulation.shards import write_shards
        from simulation.simulator import SimConfig, Simulator

        document = load_rig(default_rig_path()).to_dict()
        document["sensors"] = [s for s in document["sensors"] if s["id"] in (lidar, *cameras, "odometry")]
        rig = rig_from_dict(document, source=f"default rig, {lidar} + {', '.join(cameras)}")
        scenario = ScenarioConfig(**SIM_DRIVE)
        SIM_CACHE.mkdir(parents=True, exist_ok=True)
        print(f"simulating the sim dataset's drive into {shard.parent} (once)", flush=True)
        write_shards(shard.parent, Simulator(rig, SimConfig(scenario=scenario, camera_scale=1.0)), frames_per_shard=100)
    rig = rig_of_shard(shard)
    shard_frames = list(read_shard(shard))
    trajectory = shard_trajectory(shard_frames)
    sensor_to_base = rig.transform(lidar, "base_link")
    views: dict[str, list[Any]] = {}
    truth: dict[str, tuple[np.ndarray, Any]] = {}
    for camera in cameras:
        spec = rig.sensor(camera).spec
        if not isinstance(spec, CameraSpec):
            raise SystemExit(f"fusion bench refine: {camera} of the default rig is not a camera")
        captures = [c for f in shard_frames if (c := f.cameras.get(camera)) is not None]  # (jpeg, stamp, pose)
        views[camera] = []
        for i in np.linspace(2, len(shard_frames) - 2, frames).round().astype(int):
            frame = shard_frames[i]
            jpeg, camera_stamp, _ = min(captures, key=lambda c: abs(c[1] - frame.stamp_ns))
            scan = frame.lidar
            times = frame.stamp_ns + np.round(scan.column("time").astype(np.float64) * 1e9).astype(np.int64)
            xyz = deskew_points(scan.points[:, :3], times, camera_stamp, trajectory, sensor_to_base)
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            ring, intensity = scan.column("ring").astype(np.int64), scan.column("intensity")
            views[camera].append(LidarImagePair(xyz, image, ring, name=f"sim {camera} frame {i}", intensity=intensity))
        truth[camera] = (rig.transform(lidar, camera), spec.intrinsics)
    return {"views": views, "cameras": truth}


def load_nuscenes_views(realdata: Path) -> dict[str, Any]:
    """The nuScenes sample's LIDAR_TOP with all six cameras, in ``load_sim_views``' form (camera
    ids in lower case, as rig ids are); the truth of each camera is its ``lidar2cam`` (with the
    ego motion between the stamps)."""
    samples = {camera.lower(): load_sample("nuscenes", realdata, camera) for camera in NUSCENES_CAMERAS}
    return {
        "views": {camera: sample["pairs"] for camera, sample in samples.items()},
        "cameras": {camera: (sample["T_true"], sample["intrinsics"]) for camera, sample in samples.items()},
    }


def perturb(T: np.ndarray, rng: np.random.Generator, rotation_deg: float, translation_m: float) -> np.ndarray:
    """``T`` with its rotation turned by ``rotation_deg`` about a random axis (camera frame)
    and its translation moved by ``translation_m`` in a random direction."""
    axis = rng.normal(size=3)
    direction = rng.normal(size=3)
    out = _turned(T, rotation_deg * axis / np.linalg.norm(axis))
    out[:3, 3] = T[:3, 3] + translation_m * direction / np.linalg.norm(direction)
    return out


def errors(T: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """(rotation error degrees, translation error metres) of ``T`` against ``T_true``."""
    return _norms(_relative(T, T_true))


def _norms(relative: np.ndarray) -> tuple[float, float]:
    """(angle degrees, distance metres) of a ``_relative`` (6,) vector."""
    return float(np.linalg.norm(relative[:3])), float(np.linalg.norm(relative[3:]))


def run_trials(sample: dict[str, Any], config: Any, args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Seeded trials on one camera's pairs (``sample`` of ``load_sample``: its extrinsic is
    perturbed and refined) or on several cameras (``views`` of ``load_sim_views``: the lidar's
    mounting is perturbed in its own frame and refined against all of them; errors are the
    mounting's, equal to each camera's rotation error). Besides the errors against the truth,
    the trials' refined transforms are compared with their median: ``agree_with_median``
    counts those within the thresholds of it (rotation only when the translation is kept, as
    each trial keeps its own offset), ``median_solution_error`` is its own error, so
    a search that always finds the same optimum shows even where the truth is not that optimum."""
    trial = _mounting_trial(sample, config) if "views" in sample else _camera_trial(sample, config)
    for seed in range(-args.warmup, 0):  # untimed warm-up trials on other seeds
        trial(np.random.default_rng(1000 - seed), args)
    rows, solutions = [], []
    for seed in range(args.runs):
        start = time.perf_counter()
        result, T_init, T_true = trial(np.random.default_rng(seed), args)
        seconds = time.perf_counter() - start
        solutions.append(_relative(result.T_refined, T_true))
        rotation, translation = _norms(solutions[-1])
        row = {
            "dataset": name,
            "seed": seed,
            "rotation_error_deg": round(rotation, 4),
            "translation_error_m": round(translation, 4),
            "initial_errors": [round(v, 4) for v in errors(T_init, T_true)],
            "seconds": round(seconds, 3),
            "score_before": round(result.score_before, 5),
            "score_after": round(result.score_after, 5),
            "sharpness": [round(float(v), 3) for v in result.sharpness],
            "ambiguity": round(result.ambiguity, 3),
            "well_defined": result.well_defined,
            "solution": [round(float(v), 4) for v in solutions[-1]],
        }
        rows.append(row)
        print(
            f"{name} trial {seed}: rotation error {rotation:.3f} deg, translation error {translation * 100:.1f} cm, "
            f"{seconds:.1f} s, well_defined {result.well_defined}",
            flush=True,
        )
        if args.log:
            with args.log.open("a", encoding="utf-8") as log:
                log.write(json.dumps(row) + "\n")
    rotation = np.array([r["rotation_error_deg"] for r in rows])
    translation = np.array([r["translation_error_m"] for r in rows])
    seconds = np.array([r["seconds"] for r in rows])
    rotation_ok = rotation <= args.max_rotation_deg
    success = int(np.sum(rotation_ok & (translation <= args.max_translation_m)))
    median = np.median(np.array(solutions), axis=0)  # (rotation vector deg, translation m)
    from_median = np.array(solutions) - median
    # with the translation kept, each trial keeps its own random offset: compare rotations only
    close = np.linalg.norm(from_median[:, :3], axis=1) <= args.max_rotation_deg
    if config.refine_translation:
        close &= np.linalg.norm(from_median[:, 3:], axis=1) <= args.max_translation_m
    agree = int(np.sum(close))
    print(
        f"{name}: {success}/{len(rows)} within {args.max_rotation_deg} deg and {args.max_translation_m * 100:g} cm "
        f"({int(rotation_ok.sum())}/{len(rows)} within {args.max_rotation_deg} deg); rotation error median "
        f"{np.median(rotation):.3f} max {rotation.max():.3f} deg; translation error median "
        f"{np.median(translation) * 100:.1f} max {translation.max() * 100:.1f} cm; {agree}/{len(rows)} within "
        f"those thresholds of the trials' median solution, which is {np.linalg.norm(median[:3]):.3f} deg"
        + (f" and {np.linalg.norm(median[3:]) * 100:.1f} cm" if config.refine_translation else "")
        + f" from the truth; median {np.median(seconds):.1f} s/trial",
        flush=True,
    )
    views = sample.get("views", {"camera": sample.get("pairs", [])})
    pairs = [pair for camera_pairs in views.values() for pair in camera_pairs]
    return {
        "stage": "refine_lidar_mounting" if "views" in sample else "refine_extrinsic",
        "input": {
            "dataset": name,
            "cameras": len(views),
            "pairs": len(pairs),
            "points": sum(int(np.asarray(pair.points).shape[0]) for pair in pairs),
            "initial_error": f"{args.rotation_deg} deg, {args.translation_m} m",
            "translation_refined": config.refine_translation,
            "intensity_weight": config.intensity_weight,
        },
        "median_ms": round(float(np.median(seconds)) * 1e3, 1),
        "max_ms": round(float(seconds.max()) * 1e3, 1),
        "runs": len(rows),
        "success": success,
        "success_rotation_only": int(np.sum(rotation_ok)),
        "thresholds": f"{args.max_rotation_deg} deg, {args.max_translation_m} m",
        "rotation_error_deg": {"median": round(float(np.median(rotation)), 3), "max": round(float(rotation.max()), 3)},
        "translation_error_m": {
            "median": round(float(np.median(translation)), 4),
            "max": round(float(translation.max()), 4),
        },
        "well_defined": int(sum(r["well_defined"] for r in rows)),
        "agree_with_median": agree,
        "median_solution": {
            "rotation_vector_deg": [round(float(v), 3) for v in median[:3]],
            "translation_m": [round(float(v), 4) for v in median[3:]],
        },
        "median_solution_error": {
            "rotation_deg": round(float(np.linalg.norm(median[:3])), 3),
            "translation_m": round(float(np.linalg.norm(median[3:])), 4) if config.refine_translation else None,
        },
    }


Trial = Callable[[np.random.Generator, argparse.Namespace], tuple[Any, np.ndarray, np.ndarray]]


def _camera_trial(sample: dict[str, Any], config: Any) -> Trial:
    """One seeded trial on one camera: (result, initial lidar -> camera, true lidar -> camera)."""
    from calibration.refine import lidar_camera_rig, refine_extrinsic

    def trial(rng: np.random.Generator, args: argparse.Namespace) -> tuple[Any, np.ndarray, np.ndarray]:
        T_init = perturb(sample["T_true"], rng, args.rotation_deg, args.translation_m)
        rig = lidar_camera_rig(T_init, sample["intrinsics"])
        return refine_extrinsic(sample["pairs"], rig, "lidar", "camera", config), T_init, sample["T_true"]

    return trial


def _mounting_trial(views: dict[str, Any], config: Any) -> Trial:
    """One seeded trial on several cameras: the cameras sit at the truth (base_link = the true
    lidar frame), the lidar is moved; (result, initial lidar -> base, identity)."""
    from calibration.refine import lidar_cameras_rig, refine_lidar_mounting, with_mounting

    true_rig = lidar_cameras_rig(views["cameras"])

    def trial(rng: np.random.Generator, args: argparse.Namespace) -> tuple[Any, np.ndarray, np.ndarray]:
        T_init = perturb(np.eye(4), rng, args.rotation_deg, args.translation_m)
        rig = with_mounting(true_rig, "lidar", T_init)
        return refine_lidar_mounting(views["views"], rig, "lidar", config), T_init, np.eye(4)

    return trial


def _relative(T: np.ndarray, T_true: np.ndarray) -> np.ndarray:
    """(6,) rotation vector of ``R @ R_true^T`` (degrees) and ``t - t_true`` (metres)."""
    from scipy.spatial.transform import Rotation

    turn = Rotation.from_matrix(T[:3, :3] @ T_true[:3, :3].T).as_rotvec(degrees=True)
    return np.r_[turn, T[:3, 3] - T_true[:3, 3]]


def translation_observability(
    sample: dict[str, Any], translation_m: float, discontinuities: Any = None
) -> dict[str, Any]:
    """How far a translation error of ``translation_m`` can show in this pair's edge score.

    A sideways translation error ``e`` moves an edge at depth ``Z`` by ``f e / Z`` pixels; a
    rotation moves every edge by about the same amount, so the refinement can only see the
    difference between near and far edges: ``f e (1 / Z_near - 1 / Z_far)``, with the 5th and
    95th percentiles of the in-view discontinuities' depths. The silhouette itself is only
    known to one azimuth step of the lidar (``f`` times the step, median over rings).
    ``discontinuities``: a ``DiscontinuityConfig`` (None = the defaults).
    """
    from calibration.alignment import assign_rings, depth_discontinuities
    from calibration.camera_models import project_camera

    pair, intrinsics, T = sample["pairs"][0], sample["intrinsics"], sample["T_true"]
    points = np.asarray(pair.points, dtype=np.float64)[:, :3]
    edges = depth_discontinuities(points, pair.ring, discontinuities)
    _, depth, valid = project_camera(edges.points @ T[:3, :3].T + T[:3, 3], intrinsics)
    near, median, far = np.percentile(depth[valid], [5, 50, 95])
    focal_px = float(intrinsics.K[0, 0])
    rings = assign_rings(points) if pair.ring is None else np.asarray(pair.ring, dtype=np.int64)
    azimuth = np.arctan2(points[:, 1], points[:, 0])
    steps = [np.median(np.diff(np.sort(azimuth[rings == r]))) for r in np.unique(rings) if np.sum(rings == r) > 100]
    return {
        "discontinuities_in_view": int(valid.sum()),
        "depth_m": {"p5": round(float(near), 1), "median": round(float(median), 1), "p95": round(float(far), 1)},
        "parallax_px": round(float(focal_px * translation_m * (1 / near - 1 / far)), 2),
        "azimuth_step_px": round(focal_px * float(np.median(steps)), 2),
        "translation_m": translation_m,
    }


def edge_agreement(
    sample: dict[str, Any], discontinuities: Any = None, match_px: float = 3.0, chance_deg: float = 1.0
) -> dict[str, Any]:
    """How many depth discontinuities meet an image edge at the true extrinsic, against chance.

    Each in-view discontinuity (all pairs) looks up its nearest Canny edge pixel (the fine edge
    map's blur and thresholds) and that pixel's gradient direction. It matches when that edge
    is within ``match_px`` pixels and crosses the silhouette (|normal . crossing| >= 0.5, the
    crossing being the direction to the far side). The image's clutter makes some matches by
    chance, so the share is also measured with the extrinsic turned by ``chance_deg`` about
    each camera axis both ways (mean of the six): ``excess`` = share at the truth - chance
    share, the fraction of the discontinuities that are silhouettes the image shows. Reported
    with the mean offset of the matches along the crossing at the truth (pixels, far side
    positive; about 0 when the truth and the image agree). ``discontinuities``: a
    ``DiscontinuityConfig`` (None = the defaults).
    """
    import cv2

    from calibration.alignment import depth_discontinuities, edge_pixels
    from calibration.camera_models import project_camera

    intrinsics, T_true = sample["intrinsics"], sample["T_true"]
    prepared = []
    for pair in sample["pairs"]:
        gx, gy, canny = edge_pixels(pair.image)
        _, labels = cv2.distanceTransformWithLabels(
            np.where(canny, 0, 255).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
        )
        nearest = np.zeros((int(labels.max()) + 1, 4))  # label -> (u, v, unit gradient u, v)
        ys, xs = np.nonzero(canny)
        nearest[labels[canny]] = np.stack([xs, ys, gx[canny], gy[canny]], axis=1)
        nearest[:, 2:] /= np.maximum(np.linalg.norm(nearest[:, 2:], axis=1, keepdims=True), 1e-9)
        prepared.append((depth_discontinuities(pair.points, pair.ring, discontinuities), labels, nearest))

    def matches(T: np.ndarray) -> tuple[int, np.ndarray]:
        """(discontinuities in view, offsets along the crossing of the matched ones)."""
        in_view, offsets = 0, []
        for edges, labels, nearest in prepared:
            uv, _, valid = project_camera(edges.points @ T[:3, :3].T + T[:3, 3], intrinsics)
            far, _, _ = project_camera(edges.far_points @ T[:3, :3].T + T[:3, 3], intrinsics)
            uv, far = uv[valid], far[valid]
            pixel = np.clip(np.round(uv).astype(np.int64), 0, [intrinsics.width - 1, intrinsics.height - 1])
            edge = nearest[labels[pixel[:, 1], pixel[:, 0]]]
            crossing = (far - uv) / np.maximum(np.linalg.norm(far - uv, axis=1, keepdims=True), 1e-9)
            crosses = np.abs(np.sum(edge[:, 2:] * crossing, axis=1)) >= 0.5
            matched = (np.linalg.norm(edge[:, :2] - uv, axis=1) <= match_px) & crosses
            offsets.append(np.sum((edge[matched, :2] - uv[matched]) * crossing[matched], axis=1))
            in_view += len(uv)
        return in_view, np.concatenate(offsets)

    in_view, offsets = matches(T_true)
    share = offsets.size / max(in_view, 1)
    chance = []
    for axis in np.eye(3):
        for sign in (-1.0, 1.0):
            count, matched = matches(_turned(T_true, sign * chance_deg * axis))
            chance.append(matched.size / max(count, 1))
    return {
        "discontinuities_in_view": in_view,
        "match_px": match_px,
        "matched_share": round(share, 3),
        "chance_share": round(float(np.mean(chance)), 3),
        "excess": round(share - float(np.mean(chance)), 3),
        "mean_offset_px": round(float(offsets.mean()), 2) if offsets.size else None,
    }


def height_profile(
    sample: dict[str, Any], shifts_m: tuple[float, ...] = HEIGHT_SHIFTS_M, discontinuities: Any = None
) -> dict[str, Any]:
    """Edge-alignment score at the true extrinsic with the scan moved along the lidar's z axis.

    A check of the reference extrinsic itself, not of the refinement: every in-view depth
    discontinuity (all pairs) is moved by each of ``shifts_m`` (metres, + = up along the lidar's
    z axis, which is up on every sample here) and projected with ``T_true``; the score is
    ``alignment_score`` on the fine edge map. Where the reference agrees with the image the
    score peaks near 0. A peak far from 0 in several cameras of one rig says the reference
    places the scan too low or too high in all of them, which no refinement can be scored
    against to 0.3 degrees. ``discontinuities``: a ``DiscontinuityConfig`` (None = defaults).
    """
    from calibration.alignment import FINE_EDGES, alignment_score, depth_discontinuities, edge_map
    from calibration.camera_models import project_camera

    intrinsics, T = sample["intrinsics"], sample["T_true"]
    prepared = [
        (edge_map(pair.image, FINE_EDGES), depth_discontinuities(pair.points, pair.ring, discontinuities))
        for pair in sample["pairs"]
    ]
    scores = []
    for shift in shifts_m:
        up = np.array([0.0, 0.0, shift])
        total = weight = 0.0
        for maps, edges in prepared:
            uv, _, valid = project_camera((edges.points + up) @ T[:3, :3].T + T[:3, 3], intrinsics)
            far, _, _ = project_camera((edges.far_points + up) @ T[:3, :3].T + T[:3, 3], intrinsics)
            if valid.any():
                in_view = float(edges.weights[valid].sum())
                total += in_view * alignment_score(maps, uv, far, edges.weights, valid)
                weight += in_view
        scores.append(total / weight if weight else float("nan"))
    return {
        "shift_m": list(shifts_m),
        "score": [round(score, 4) for score in scores],
        "best_shift_m": shifts_m[int(np.nanargmax(scores))],
    }


def _turned(T: np.ndarray, rotation_deg: np.ndarray) -> np.ndarray:
    """``T`` (4, 4) lidar -> camera turned by the rotation vector ``rotation_deg`` (degrees,
    camera frame), about the camera centre."""
    from scipy.spatial.transform import Rotation

    out = np.array(T, dtype=np.float64)
    out[:3, :3] = Rotation.from_rotvec(np.radians(rotation_deg)).as_matrix() @ out[:3, :3]
    return out


def bench_objective(sample: dict[str, Any], runs: int, warmup: int) -> dict[str, Any]:
    """One objective evaluation of the refinement vs a cv2.projectPoints + cv2.remap baseline."""
    import cv2

    from benchmarks.timing import median_ms, speedup, time_interleaved
    from calibration.alignment import channel_weights, depth_discontinuities, edge_map, sample_edges
    from calibration.camera_models import project_camera

    pair, intrinsics, T = sample["pairs"][0], sample["intrinsics"], sample["T_true"]
    edges = depth_discontinuities(pair.points, pair.ring)
    camera_points = edges.points @ T[:3, :3].T + T[:3, 3]
    _, _, valid = project_camera(camera_points, intrinsics)
    points, weights = edges.points[valid], edges.weights[valid]
    far_uv, _, _ = project_camera(edges.far_points[valid] @ T[:3, :3].T + T[:3, 3], intrinsics)
    maps = edge_map(pair.image)
    R, t = T[:3, :3], T[:3, 3]
    rvec = cv2.Rodrigues(R)[0]
    distortion = intrinsics.D if intrinsics.distortion_model == "plumb_bob" else np.zeros(0)

    def candidate() -> float:
        uv, _, ok = project_camera(points @ R.T + t, intrinsics)
        return float(np.dot(weights[ok], sample_edges(maps, uv[ok], mix[ok])))

    mix = channel_weights(project_camera(points @ R.T + t, intrinsics)[0], far_uv)

    def baseline() -> float:
        uv = cv2.projectPoints(points, rvec, t, intrinsics.K, distortion)[0].reshape(-1, 2).astype(np.float32)
        ok = (uv[:, 0] >= 0) & (uv[:, 0] < intrinsics.width) & (uv[:, 1] >= 0) & (uv[:, 1] < intrinsics.height)
        grid = uv[ok].reshape(1, -1, 2)
        sampled = [cv2.remap(channel, grid, None, cv2.INTER_LINEAR).reshape(-1) for channel in maps]
        return float(np.dot(weights[ok], mix[ok, 0] * sampled[0] + mix[ok, 1] * sampled[1]))

    if abs(candidate() - baseline()) > 1e-3 * max(1.0, abs(candidate())):
        raise AssertionError(f"objective and baseline disagree: {candidate()} vs {baseline()}")
    times = time_interleaved([candidate, baseline], runs, warmup)
    candidate_ms, baseline_ms = median_ms(times[0]), median_ms(times[1])
    return {
        "stage": "refinement objective (one evaluation)",
        "input": {"discontinuities_in_view": int(valid.sum())},
        "median_ms": candidate_ms,
        "runs": runs,
        "baseline": "cv2.projectPoints + cv2.remap (2 channels)",
        "baseline_median_ms": baseline_ms,
        "speedup": speedup(baseline_ms, candidate_ms),
    }

"""Targetless lidar->camera extrinsic refinement by edge alignment and mutual information.

``refine_extrinsic`` maximizes, over a correction of the rig's lidar->camera transform, an
objective summed over one or more lidar scan + image pairs: the ``calibration.alignment``
edge score, plus (for pairs that carry the lidar's reflectivity) ``intensity_weight`` times
the ``calibration.mutual_information`` of reflectivity and gray level. The two terms have
unrelated units, so each is divided by its standard deviation over the search grid, and the
mutual information, whose value for unrelated alignments is well above 0, first loses its
median over the grid (the edge score is already about 0 there); a term without spread (an
image without edges or texture) contributes nothing. With ``intensity_weight`` 0 (the
default, see below) the objective is the edge score over a constant. The search:

1. a grid over rotation (and, with ``refine_translation``, translation) scored on the fine
   edge map (measured on the real samples, the cells nearest the truth rank first on the
   fine map more often than on a coarser, wider one);
2. from the best distinct grid cells, Powell local optimization on the coarse map (wide
   basin), then on the fine map; the best fine score wins;
3. how trustworthy the optimum is: its *sharpness*, for each of the 6 axes the relative
   drop of the score ``probe_rotation_deg`` / ``probe_translation_m`` away on the worse
   side, and its *ambiguity*, the score of the best rival optimum (another polished start
   ending more than ``ambiguity_separation_deg`` away) over the best score.
   ``well_defined`` when every optimized axis drops by at least ``sharpness_threshold`` and
   the ambiguity is at most ``max_ambiguity``. Both are computed on the combined objective.

The correction is applied in the camera optical frame (x right, y down, z forward):
``R = R_corr @ R_initial``, ``t = t_initial + t_corr`` for ``T = [R | t]`` lidar -> camera,
so rotations turn about the camera centre and translations move the lidar origin as seen
from the camera.

``refine_lidar_mounting`` refines one lidar against several cameras at once (a surround rig):
the cameras' mountings are kept and one correction ``D = [R_corr | t_corr]`` in the lidar's
own frame moves the lidar, ``T_camera_lidar = T_initial @ D`` for every camera and
``T_base_lidar = T_base_lidar_initial @ D``. The same search runs on the summed score of all
the cameras' pairs. Cameras looking in different directions see a translation of the lidar
differently (a sideways move is a parallax for the side cameras, a move along the axle one for
the front and back), so the translation is far better observed than from one camera. On the
nuScenes sample, started 1.5 degrees and 10 cm off with ``refine_translation``, 9 of 10 seeded
starts end within 0.3 degrees of the given calibration (0 of 10 from CAM_FRONT alone), all at
about the same mounting, which the given calibration itself misses by about 11 cm in height
(docs/BENCHMARKS.md, ``fusion bench refine --datasets nuscenes6``).

Translation: from one scan + image pair the score barely depends on the translation (a
few centimetres move the image of a point at 10-20 m by a pixel or two, less than the
lidar's own azimuth step); measured on the real samples in ``../shared/realdata``, the
score's profile along each translation axis is flat within its noise over +-15 cm. So by
default only the rotation is refined and the translation is kept; ``refine_translation``
enables it (useful with several pairs taken at different places), and far discontinuities
weigh more (``range_weight_power``) because a translation error shifts them least.
Mutual information reads the near ground too, but measured on the real samples it does not
make the translation of a single pair observable at the centimetre level either: on PJLab
the profiles along each translation axis (rotation re-optimized) of the edge score, the
information and their combination change by only 0-5 % within +-6 cm (optima 0-6 cm from
the truth; a few percent is the objective's own noise); on nuScenes CAM_FRONT (32 rings) the
information is noise. On PJLab it does help: with ``refine_translation`` and weight 1, 7 of
10 seeded starts end within 0.3 degrees (4 without) and the translation error falls from
10 to 7.6 cm (median); but it adds rival optima on nuScenes (rotation-only, one start ended
1.14 degrees off and was reported well defined), so ``intensity_weight`` is 0 by default:
opt in for dense lidars with a reflectivity channel that sees road markings.

Precision: the edge objective's own maximum is not at the truth. Started exactly at the true
extrinsic (``fusion bench refine --rotation-deg 0 --translation-m 0``), the rotation-only search
ends 0.23 degrees away on PJLab, 0.58 on nuScenes CAM_FRONT and 0.22 on six frames of a
simulated drive whose geometry is exact; with the translation free, 4-13 cm away. Expect a
refined rotation to be good to a few tenths of a degree, not better (docs/BENCHMARKS.md). The
reason is in the features: at the truth only 1-3 % of the depth discontinuities of these pairs
meet an image edge beyond chance (``fusion bench refine``'s ``edge_agreement``); the rest are
foliage, see-through fences, dropouts and (``DiscontinuityConfig.trend_factor``) the range steps
of surfaces seen at a grazing angle.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from calibration.alignment import (
    COARSE_EDGES,
    FINE_EDGES,
    AlignmentError,
    DiscontinuityConfig,
    EdgeMapConfig,
    NoOverlapError,
    channel_weights,
    depth_discontinuities,
    edge_map,
    sample_edges,
)
from calibration.camera_models import project_camera
from calibration.intrinsics import CameraIntrinsics
from calibration.mutual_information import (
    MutualInformationConfig,
    image_levels,
    intensity_levels,
    mutual_information,
)
from calibration.rig import Rig, rig_from_dict
from calibration.sensors import CameraSpec, Modality
from calibration.transforms import invert_transform, validate_transform

FloatArray = NDArray[np.float64]

#: Default ``sharpness_threshold``: the score must drop by at least 5 % at 0.3 degrees off
#: the optimum on every refined axis. Measured on the real samples (10 seeded starts each):
#: optima near the truth drop by 0.10-0.29 (pitch), 0.78-0.92 (yaw) and 0.03-0.10 (roll,
#: the weak axis) on PJLab and by 0.14-0.57 on nuScenes CAM_FRONT; an image without edges
#: gives 0. A wrong but locally sharp optimum is caught by the ambiguity instead.
SHARPNESS_THRESHOLD = 0.05


#: Default ``max_ambiguity``: a rival optimum scoring above 90 % of the best one makes the
#: result not well defined. Measured: every result more than 1 degree off the truth in the
#: seeded trials had a rival above 0.91; a lidar scan paired with another camera's image 0.99.
MAX_AMBIGUITY = 0.9


@dataclass(frozen=True, eq=False)
class LidarImagePair:
    """One lidar scan and the image taken with it (same instant, or ego motion removed).

    Attributes:
        points: (N, 3+) float [x, y, z, ...], lidar frame, metres.
        image: (H, W) or (H, W, 3) uint8, the camera's raw image (distorted as recorded,
            size equal to the camera intrinsics' width x height).
        ring: (N,) int laser ring per point, or None (derived from elevations).
        name: label used in messages (e.g. the file names).
        intensity: (N,) float reflectivity per point (any units), or None: the pair then
            adds no mutual-information term.
    """

    points: ArrayLike
    image: ArrayLike
    ring: ArrayLike | None = None
    name: str = ""
    intensity: ArrayLike | None = None


@dataclass(frozen=True)
class RefineConfig:
    """Search settings of ``refine_extrinsic``.

    Attributes:
        rotation_grid_deg: the grid spans +-this about the initial rotation, per axis, degrees.
        rotation_step_deg: grid spacing, degrees.
        refine_translation: also correct the translation (see the module docstring).
        translation_grid_m: translation grid values -v, 0, +v per axis (with
            ``refine_translation``; 0 = no translation grid), metres.
        translation_bound_m: largest translation correction per axis, metres.
        top_k: distinct grid cells polished by local optimization.
        range_weight_power: weights are multiplied by (range / reference_range_m) ** power.
        reference_range_m: see ``range_weight_power``, metres.
        probe_rotation_deg, probe_translation_m: sharpness probe distances.
        sharpness_threshold: see the module docstring.
        ambiguity_separation_deg, max_ambiguity: see ``RefinementResult.ambiguity``.
        coarse, fine: edge maps of the two stages.
        discontinuities: depth-discontinuity settings.
        intensity_weight: weight of the standardized mutual-information term against the
            standardized edge term (0 = edges only); used for pairs with an intensity.
        mutual_information: histogram settings of that term.
        max_intensity_range_m: points farther than this do not enter the mutual information,
            metres.
    """

    rotation_grid_deg: float = 2.0
    rotation_step_deg: float = 0.5
    refine_translation: bool = False
    translation_grid_m: float = 0.0
    translation_bound_m: float = 0.3
    top_k: int = 4
    range_weight_power: float = 1.0
    reference_range_m: float = 20.0
    probe_rotation_deg: float = 0.3
    probe_translation_m: float = 0.05
    sharpness_threshold: float = SHARPNESS_THRESHOLD
    ambiguity_separation_deg: float = 0.5
    max_ambiguity: float = MAX_AMBIGUITY
    coarse: EdgeMapConfig = COARSE_EDGES
    fine: EdgeMapConfig = FINE_EDGES
    discontinuities: DiscontinuityConfig = field(default_factory=DiscontinuityConfig)
    intensity_weight: float = 0.0
    mutual_information: MutualInformationConfig = field(default_factory=MutualInformationConfig)
    max_intensity_range_m: float = 80.0

    def __post_init__(self) -> None:
        checks = (
            ("intensity_weight", 0 <= self.intensity_weight <= 100),
            ("max_intensity_range_m", self.max_intensity_range_m > 1),
            ("rotation_grid_deg", 0 <= self.rotation_grid_deg <= 10),
            ("rotation_step_deg", self.rotation_step_deg > 0),
            ("translation_grid_m", 0 <= self.translation_grid_m <= self.translation_bound_m),
            ("translation_bound_m", self.translation_bound_m > 0),
            ("top_k", self.top_k >= 1),
            ("reference_range_m", self.reference_range_m > 0),
            ("probe_rotation_deg", self.probe_rotation_deg > 0),
            ("probe_translation_m", self.probe_translation_m > 0),
            ("sharpness_threshold", self.sharpness_threshold >= 0),
        )
        for name, ok in checks:
            if not ok:
                raise AlignmentError(f"RefineConfig.{name} = {getattr(self, name)!r} is out of range")


@dataclass(frozen=True, eq=False)
class RefinementResult:
    """Outcome of ``refine_extrinsic`` (one camera) or ``refine_lidar_mounting`` (the lidar
    against several cameras). "The frame" below is the camera's optical frame for the first,
    the lidar's own frame for the second.

    Attributes:
        T_refined: (4, 4) float64 refined lidar -> camera optical frame (``refine_extrinsic``)
            or lidar -> the rig's base frame (``refine_lidar_mounting``).
        T_initial: (4, 4) float64 the same transform from the rig.
        correction_rpy_deg: (3,) float64 rotation correction as angles about the frame's
            x, y, z axes (extrinsic XYZ Euler), degrees.
        correction_translation_m: (3,) float64 translation correction in the frame, metres.
        score_before: summed-pair alignment score (fine edge map) of ``T_initial``.
        score_after: the same for ``T_refined``.
        information_before: mean mutual information (nats) of the pairs with an intensity
            at ``T_initial``; 0 when no pair has one.
        information_after: the same for ``T_refined``.
        sharpness: (6,) float64 relative score drop at the probe distance along rotation
            x, y, z and translation x, y, z (the frame), worse side.
        ambiguity: best score of a distinct local optimum (farther than
            ``ambiguity_separation_deg``) over the best score; near 1 = two equally good
            alignments (repetitive structure, too few edges); 0 when no rival was found.
        well_defined: every optimized axis has sharpness >= ``sharpness_threshold`` and
            ambiguity <= ``max_ambiguity``.
        translation_refined: whether the translation was optimized.
        iterations: objective evaluations.
        seconds: wall time, seconds.
        points_in_view: discontinuity points in view at the initial extrinsic, all pairs.
    """

    T_refined: FloatArray
    T_initial: FloatArray
    correction_rpy_deg: FloatArray
    correction_translation_m: FloatArray
    score_before: float
    score_after: float
    information_before: float
    information_after: float
    sharpness: FloatArray
    ambiguity: float
    well_defined: bool
    translation_refined: bool
    iterations: int
    seconds: float
    points_in_view: int

    @property
    def rotation_change_deg(self) -> float:
        """Angle of the rotation correction, degrees."""
        return rotation_angle_deg(self.T_refined[:3, :3] @ self.T_initial[:3, :3].T)


def rotation_angle_deg(R: ArrayLike) -> float:
    """Angle of a (3, 3) rotation matrix, degrees."""
    m = np.asarray(R, dtype=np.float64)
    return float(np.degrees(np.arccos(np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0))))


def refine_extrinsic(
    pairs: Sequence[LidarImagePair],
    rig: Rig,
    lidar_id: str,
    camera_id: str,
    config: RefineConfig | None = None,
) -> RefinementResult:
    """Refine the lidar -> camera extrinsic of ``rig`` from lidar scan + image pairs.

    Args:
        pairs: one or more pairs (see ``LidarImagePair``); their scores are summed.
        rig: the rig holding the initial extrinsics and the camera's intrinsics.
        lidar_id: id of the lidar the scans come from.
        camera_id: id of the camera the images come from.
        config: search settings.

    Returns:
        The refined transform, the correction, scores, sharpness and timing.

    Raises:
        NoOverlapError: no discontinuity point of any pair projects into the camera
            (the message names the camera and the lidar).
        AlignmentError: no pair, an image whose size differs from the camera's, ids that
            are not a lidar and a camera of ``rig``.
    """
    start = time.perf_counter()
    cfg = config or RefineConfig()
    intrinsics = _camera_intrinsics(rig, camera_id)
    if rig.sensor(lidar_id).modality is not Modality.LIDAR:
        raise AlignmentError(f"sensor '{lidar_id}' of rig '{rig.name}' is not a lidar")
    if not pairs:
        raise AlignmentError(f"no lidar+image pair given for camera '{camera_id}' and lidar '{lidar_id}'")
    T_initial = rig.transform(lidar_id, camera_id)
    objective = _Objective([_prepare(pair, intrinsics, T_initial, cfg, camera_id) for pair in pairs], cfg, _apply)
    if objective.total_weight <= 0:
        raise NoOverlapError(
            f"camera '{camera_id}' never sees lidar '{lidar_id}' in rig '{rig.name}': no depth discontinuity "
            f"of {len(pairs)} scan(s) projects into the {intrinsics.width}x{intrinsics.height} image"
        )
    return _refine(objective, cfg, lambda x: _apply(*_correction(x), T_initial), start)


def refine_lidar_mounting(
    views: Mapping[str, Sequence[LidarImagePair]],
    rig: Rig,
    lidar_id: str,
    config: RefineConfig | None = None,
) -> RefinementResult:
    """Refine where a lidar sits on the rig from its scans paired with several cameras' images.

    The cameras stay where the rig mounts them; one correction in the lidar's own frame
    (module docstring) is searched for on the score summed over every camera's pairs.

    Args:
        views: camera id -> one or more pairs of a scan of ``lidar_id`` and that camera's
            image (``LidarImagePair``); the same scan may appear under several cameras.
        rig: the rig holding the initial extrinsics and the cameras' intrinsics.
        lidar_id: id of the lidar the scans come from.
        config: search settings; the grid and bounds are about the lidar's axes.

    Returns:
        ``T_refined`` / ``T_initial``: lidar -> the rig's base frame; the correction in the
        lidar frame; scores, sharpness and timing over all the cameras.

    Raises:
        NoOverlapError: no camera sees a discontinuity of any scan (the message names them).
        AlignmentError: no pair, an image whose size differs from its camera's, ids that are
            not a lidar and cameras of ``rig``.
    """
    start = time.perf_counter()
    cfg = config or RefineConfig()
    if rig.sensor(lidar_id).modality is not Modality.LIDAR:
        raise AlignmentError(f"sensor '{lidar_id}' of rig '{rig.name}' is not a lidar")
    if not any(views.values()):
        raise AlignmentError(f"no lidar+image pair given for lidar '{lidar_id}'")
    prepared = []
    for camera_id, pairs in views.items():
        intrinsics = _camera_intrinsics(rig, camera_id)
        T_camera = rig.transform(lidar_id, camera_id)
        prepared += [_prepare(pair, intrinsics, T_camera, cfg, camera_id) for pair in pairs]
    objective = _Objective(prepared, cfg, _apply_in_lidar)
    if objective.total_weight <= 0:
        raise NoOverlapError(
            f"no camera of {sorted(views)} sees lidar '{lidar_id}' in rig '{rig.name}': no depth discontinuity "
            "of the scans projects into their images"
        )
    T_base = rig.to_base(lidar_id)
    return _refine(objective, cfg, lambda x: _apply_in_lidar(*_correction(x), T_base), start)


def _refine(
    objective: _Objective, cfg: RefineConfig, corrected: Callable[[FloatArray], FloatArray], start: float
) -> RefinementResult:
    """Search, sharpness and the result; ``corrected(x)`` is the transform the result reports
    for a correction ``x`` (``corrected(0)`` the initial one)."""
    free = 6 if cfg.refine_translation else 3
    x, ambiguity = _search(objective, cfg, free)
    sharpness = _sharpness(objective, x, cfg)
    return RefinementResult(
        T_refined=corrected(x),
        T_initial=corrected(np.zeros(6)),
        correction_rpy_deg=Rotation.from_rotvec(np.radians(x[:3])).as_euler("xyz", degrees=True),
        correction_translation_m=x[3:].copy(),
        score_before=objective.terms(np.zeros(6), level=1)[0],
        score_after=objective.terms(x, level=1)[0],
        information_before=objective.terms(np.zeros(6), level=1)[1],
        information_after=objective.terms(x, level=1)[1],
        sharpness=sharpness,
        ambiguity=ambiguity,
        well_defined=bool(np.all(sharpness[:free] >= cfg.sharpness_threshold) and ambiguity <= cfg.max_ambiguity),
        translation_refined=cfg.refine_translation,
        iterations=objective.evaluations,
        seconds=time.perf_counter() - start,
        points_in_view=objective.points_in_view,
    )


def with_extrinsic(rig: Rig, lidar_id: str, camera_id: str, T_camera_lidar: ArrayLike) -> Rig:
    """A copy of ``rig`` whose camera is remounted so that ``transform(lidar, camera)`` is
    ``T_camera_lidar`` ((4, 4) lidar -> camera optical frame); the lidar stays put."""
    T = validate_transform(T_camera_lidar)
    camera_to_base = rig.to_base(lidar_id) @ invert_transform(T)
    document: dict[str, Any] = rig.to_dict()
    for entry in document["sensors"]:
        if entry["id"] == camera_id:
            entry["extrinsic"] = {"matrix": camera_to_base.tolist()}
    return rig_from_dict(document, source=rig.source)


def with_mounting(rig: Rig, lidar_id: str, T_base_lidar: ArrayLike) -> Rig:
    """A copy of ``rig`` whose lidar is remounted at ``T_base_lidar`` ((4, 4) lidar -> the
    rig's base frame, e.g. ``refine_lidar_mounting(...).T_refined``); the cameras stay put."""
    T = validate_transform(T_base_lidar)
    document: dict[str, Any] = rig.to_dict()
    for entry in document["sensors"]:
        if entry["id"] == lidar_id:
            entry["extrinsic"] = {"matrix": T.tolist()}
    return rig_from_dict(document, source=rig.source)


def lidar_camera_rig(
    T_camera_lidar: ArrayLike,
    intrinsics: CameraIntrinsics,
    *,
    lidar_id: str = "lidar",
    camera_id: str = "camera",
    name: str = "lidar_camera",
) -> Rig:
    """A two-sensor rig (base_link = the lidar frame) whose ``transform(lidar_id,
    camera_id)`` is ``T_camera_lidar`` ((4, 4) lidar -> camera optical frame)."""
    return lidar_cameras_rig({camera_id: (T_camera_lidar, intrinsics)}, lidar_id=lidar_id, name=name)


def lidar_cameras_rig(
    cameras: Mapping[str, tuple[ArrayLike, CameraIntrinsics]],
    *,
    lidar_id: str = "lidar",
    T_base_lidar: ArrayLike | None = None,
    name: str = "lidar_cameras",
) -> Rig:
    """A rig of one lidar and cameras: ``cameras`` maps each camera id to (``T_camera_lidar``
    (4, 4) lidar -> camera optical frame, its intrinsics). The lidar sits at ``T_base_lidar``
    ((4, 4) lidar -> base_link; None = the identity, base_link is the lidar frame) and each
    camera where ``transform(lidar_id, camera_id)`` is its ``T_camera_lidar``."""
    T_base = np.eye(4) if T_base_lidar is None else validate_transform(T_base_lidar)
    sensors: list[dict[str, Any]] = [
        {
            "id": lidar_id,
            "modality": "lidar",
            "topic": f"/{lidar_id}/points",
            "frame_id": lidar_id,
            "rate_hz": 10.0,
            "extrinsic": {"matrix": T_base.tolist()},
            # nominal values: refinement reads rings from the scan, not from here
            "lidar": {"fields": ["x", "y", "z"], "beams": 32, "vertical_fov_deg": [-30.0, 30.0], "max_range_m": 120.0},
        }
    ]
    for camera_id, (T_camera_lidar, intrinsics) in cameras.items():
        sensors.append(
            {
                "id": camera_id,
                "modality": "camera",
                "topic": f"/{camera_id}/image",
                "info_topic": f"/{camera_id}/camera_info",
                "compressed": False,
                "frame_id": camera_id,
                "rate_hz": 10.0,
                "extrinsic": {"matrix": (T_base @ invert_transform(validate_transform(T_camera_lidar))).tolist()},
                "intrinsics": {
                    "K": intrinsics.K.tolist(),
                    "width": intrinsics.width,
                    "height": intrinsics.height,
                    "distortion_model": intrinsics.distortion_model,
                    "D": intrinsics.D.tolist(),
                },
            }
        )
    document = {"rig": {"name": name, "base_frame": "base_link", "reference_sensor": lidar_id}, "sensors": sensors}
    return rig_from_dict(document)


@dataclass(frozen=True, eq=False)
class _PreparedPair:
    points: FloatArray  # (M, 3) discontinuities near the view, lidar frame
    weights: FloatArray  # (M,)
    mix: FloatArray  # (M, 2) channel weights at the initial extrinsic
    maps: tuple[NDArray[np.float32], NDArray[np.float32]]  # coarse, fine (2, H, W)
    intrinsics: CameraIntrinsics
    T_initial: FloatArray  # (4, 4) lidar -> camera at the start
    weight_in_view: float
    count_in_view: int
    intensity: _IntensityTerm | None


@dataclass(frozen=True, eq=False)
class _IntensityTerm:
    points: FloatArray  # (K, 3) points near the view, lidar frame, metres
    bins: NDArray[np.int64]  # (K,) reflectivity bins
    levels: NDArray[np.float32]  # (H, W) gray levels of the image


class _Objective:
    """Negative standardized objective of a correction x = (rotation vector deg (3),
    translation m (3)); ``terms`` gives the raw edge score and mean mutual information.
    ``correct(R, t, T)`` turns a pair's initial lidar -> camera ``T`` into the corrected one
    (``R``, ``t``: the correction's rotation matrix and translation, ``_correction(x)``)."""

    def __init__(self, pairs: list[_PreparedPair], cfg: RefineConfig, correct: Callable[..., FloatArray]) -> None:
        self.pairs = pairs
        self.cfg = cfg
        self.correct = correct
        self.total_weight = sum(pair.weight_in_view for pair in pairs)
        self.points_in_view = sum(pair.count_in_view for pair in pairs)
        self.with_intensity = [(pair, term) for pair in pairs if (term := pair.intensity) is not None]
        self.evaluations = 0
        # standardization (term - offset) * factor; set from the grid by ``standardize``
        self.offsets = np.zeros(2)
        self.factors = np.array([1.0, cfg.intensity_weight if self.with_intensity else 0.0])

    def terms(self, x: FloatArray, level: int = 1) -> tuple[float, float]:
        """(summed edge score / total weight, mean mutual information in nats)."""
        self.evaluations += 1
        R, t = _correction(x)  # once per evaluation, shared by every pair
        total = 0.0
        for pair in self.pairs:
            T = self.correct(R, t, pair.T_initial)
            camera_points = pair.points @ T[:3, :3].T + T[:3, 3]
            uv, _, valid = project_camera(camera_points, pair.intrinsics)
            if valid.any():
                total += float(np.dot(pair.weights[valid], sample_edges(pair.maps[level], uv[valid], pair.mix[valid])))
        information = 0.0
        if self.factors[1] != 0:
            for pair, term in self.with_intensity:
                T = self.correct(R, t, pair.T_initial)
                uv, _, valid = project_camera(term.points @ T[:3, :3].T + T[:3, 3], pair.intrinsics)
                if valid.any():
                    information += mutual_information(term.levels, uv, term.bins, valid, self.cfg.mutual_information)
            information /= len(self.with_intensity)
        return total / self.total_weight, information

    def standardize(self, values: FloatArray) -> None:
        """Set offsets and factors from (cells, 2) raw terms over the grid: each term over
        its standard deviation, the mutual information minus its median first; a term
        without spread is dropped."""
        weights = np.array([1.0, self.factors[1]])
        spread = values.std(axis=0)
        self.offsets = np.array([0.0, float(np.median(values[:, 1]))])
        self.factors = np.where(spread > _MIN_SPREAD, weights / np.where(spread > 0, spread, 1.0), 0.0)

    def combine(self, terms: tuple[float, float] | FloatArray) -> float:
        return -float(np.dot(np.asarray(terms) - self.offsets, self.factors))

    def __call__(self, x: FloatArray, level: int = 1) -> float:
        return self.combine(self.terms(x, level))


#: A grid spread below this (edge score or nats) is rounding, not signal: the term is dropped.
_MIN_SPREAD = 1e-9


def _camera_intrinsics(rig: Rig, camera_id: str) -> CameraIntrinsics:
    spec = rig.sensor(camera_id).spec
    if not isinstance(spec, CameraSpec):
        raise AlignmentError(f"sensor '{camera_id}' of rig '{rig.name}' is not a camera")
    return spec.intrinsics


def _prepare(
    pair: LidarImagePair, intrinsics: CameraIntrinsics, T: FloatArray, cfg: RefineConfig, camera_id: str
) -> _PreparedPair:
    image = np.asarray(pair.image)
    if image.shape[:2] != (intrinsics.height, intrinsics.width):
        raise AlignmentError(
            f"image {pair.name or '(unnamed pair)'} is {image.shape[1]}x{image.shape[0]}, camera '{camera_id}' "
            f"intrinsics are {intrinsics.width}x{intrinsics.height}"
        )
    if pair.intensity is not None and np.size(pair.intensity) != np.shape(pair.points)[0]:
        raise AlignmentError(
            f"intensity of {pair.name or '(unnamed pair)'} has {np.size(pair.intensity)} values "
            f"for {np.shape(pair.points)[0]} points"
        )
    edges = depth_discontinuities(pair.points, pair.ring, cfg.discontinuities)
    near = _near_view(edges.points, T, intrinsics) if len(edges) else np.zeros(0, dtype=bool)
    selected = edges.select(near)
    ranges = np.linalg.norm(selected.points, axis=1)
    weights = selected.weights * (ranges / cfg.reference_range_m) ** cfg.range_weight_power
    far_uv, _, _ = project_camera(selected.far_points @ T[:3, :3].T + T[:3, 3], intrinsics)
    uv, _, valid = project_camera(selected.points @ T[:3, :3].T + T[:3, 3], intrinsics)
    intensity = (
        _intensity_term(pair, image, intrinsics, T, cfg)
        if pair.intensity is not None and cfg.intensity_weight
        else None
    )
    return _PreparedPair(
        points=selected.points,
        weights=weights,
        mix=channel_weights(uv, far_uv),
        maps=(edge_map(image, cfg.coarse), edge_map(image, cfg.fine)),
        intrinsics=intrinsics,
        T_initial=T,
        weight_in_view=float(weights[valid].sum()),
        count_in_view=int(valid.sum()),
        intensity=intensity,
    )


def _intensity_term(
    pair: LidarImagePair, image: NDArray[Any], intrinsics: CameraIntrinsics, T: FloatArray, cfg: RefineConfig
) -> _IntensityTerm:
    """Points near the view (within ``max_intensity_range_m``) with their reflectivity bins."""
    xyz = np.asarray(pair.points, dtype=np.float64)[:, :3]
    name = f"intensity of {pair.name or '(unnamed pair)'}"
    raw = np.asarray(pair.intensity, dtype=np.float64).reshape(-1)  # length checked by _prepare
    finite = np.all(np.isfinite(xyz), axis=1) & np.isfinite(raw)
    ranges = np.linalg.norm(np.where(finite[:, None], xyz, 0.0), axis=1)
    near = _near_view(xyz, T, intrinsics) & finite & (ranges > 1.0) & (ranges <= cfg.max_intensity_range_m)
    bins = intensity_levels(raw[near], cfg.mutual_information.bins, source=name)
    return _IntensityTerm(xyz[near], bins, image_levels(image, cfg.mutual_information))


def _near_view(points: FloatArray, T: FloatArray, intrinsics: CameraIntrinsics) -> NDArray[np.bool_]:
    """(N,) points in front of the camera projecting within a 15 % margin around the image."""
    uv, depth, _ = project_camera(points @ T[:3, :3].T + T[:3, 3], intrinsics)
    margin = 0.15 * max(intrinsics.width, intrinsics.height)
    with np.errstate(invalid="ignore"):
        return np.asarray(
            (depth > 0)
            & (uv[:, 0] > -margin)
            & (uv[:, 0] < intrinsics.width + margin)
            & (uv[:, 1] > -margin)
            & (uv[:, 1] < intrinsics.height + margin),
            dtype=bool,
        )


def _correction(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(3, 3) rotation matrix and (3,) translation of a correction x = (rotation vector deg,
    translation m)."""
    return Rotation.from_rotvec(np.radians(x[:3])).as_matrix(), np.asarray(x[3:], dtype=np.float64)


def _apply(R_corr: FloatArray, t_corr: FloatArray, T_initial: FloatArray) -> FloatArray:
    """``T_initial`` corrected in the camera frame: turned about the camera centre, moved."""
    T = T_initial.copy()
    T[:3, :3] = R_corr @ T_initial[:3, :3]
    T[:3, 3] = T_initial[:3, 3] + t_corr
    return T


def _apply_in_lidar(R_corr: FloatArray, t_corr: FloatArray, T_initial: FloatArray) -> FloatArray:
    """``T_initial @ D``, D = [R_corr | t_corr]: the lidar turned about its origin and moved,
    in its own frame."""
    T = T_initial.copy()
    T[:3, :3] = T_initial[:3, :3] @ R_corr
    T[:3, 3] = T_initial[:3, :3] @ t_corr + T_initial[:3, 3]
    return T


#: Powell works on x / _SCALE: 0.3 degree and 3 cm are one unit.
_SCALE = np.array([0.3, 0.3, 0.3, 0.03, 0.03, 0.03])


def _search(objective: _Objective, cfg: RefineConfig, free: int) -> tuple[FloatArray, float]:
    """Best correction, and the ratio of the best score of a distinct optimum (more than
    ``ambiguity_separation_deg`` away in rotation) to the best score (0 when none)."""
    steps = np.arange(-cfg.rotation_grid_deg, cfg.rotation_grid_deg + 1e-9, cfg.rotation_step_deg)
    translations = (
        (-cfg.translation_grid_m, 0.0, cfg.translation_grid_m)
        if cfg.refine_translation and cfg.translation_grid_m > 0
        else (0.0,)
    )
    points = [
        np.array([*rotation, *translation], dtype=np.float64)
        for rotation in itertools.product(steps, repeat=3)
        for translation in itertools.product(translations, repeat=3)
    ]
    raw = np.array([objective.terms(x, level=1) for x in points])
    objective.standardize(raw)
    cells = sorted(zip((objective.combine(row) for row in raw), points, strict=True), key=lambda cell: cell[0])
    starts: list[FloatArray] = []
    for _, x in cells:
        if all(np.linalg.norm(x[:3] - s[:3]) > 1.5 * cfg.rotation_step_deg for s in starts):
            starts.append(x)
        if len(starts) == cfg.top_k:
            break
    bound = np.r_[np.full(3, cfg.rotation_grid_deg + 1.0), np.full(3, cfg.translation_bound_m)][:free] / _SCALE[:free]
    optima = [(objective(np.zeros(6), level=1), np.zeros(6))]
    for x in starts:
        for level in (0, 1):
            x = _local(objective, x, level, free, bound)
        optima.append((objective(x, level=1), x))
    optima.sort(key=lambda item: item[0])
    best_f, best_x = optima[0]
    rivals = [f for f, x in optima[1:] if np.linalg.norm(x[:3] - best_x[:3]) > cfg.ambiguity_separation_deg]
    ratio = min(rivals) / best_f if rivals and best_f < 0 else 0.0
    return best_x, float(max(ratio, 0.0))


def _local(objective: _Objective, x0: FloatArray, level: int, free: int, bound: FloatArray) -> FloatArray:
    """Powell from ``x0`` over the first ``free`` coordinates; outside +-bound the objective
    is a flat penalty (scipy's bounded Powell line search jumps to the bounds on rugged
    objectives, so the bounds are enforced here instead)."""
    fixed = x0.copy()

    def f(y: FloatArray) -> float:
        if np.any(np.abs(y) > bound):
            return 1.0
        x = fixed.copy()
        x[:free] = y * _SCALE[:free]
        return objective(x, level=level)

    result = minimize(
        f, x0[:free] / _SCALE[:free], method="Powell", options={"xtol": 1e-2, "ftol": 1e-6, "maxfev": 1500}
    )
    out = fixed.copy()
    out[:free] = np.asarray(result.x) * _SCALE[:free]
    return out


def _sharpness(objective: _Objective, x: FloatArray, cfg: RefineConfig) -> FloatArray:
    best = -objective(x, level=1)
    scale = max(abs(best), 1e-9)
    probes = np.r_[np.full(3, cfg.probe_rotation_deg), np.full(3, cfg.probe_translation_m)]
    drops = np.empty(6)
    for axis in range(6):
        sides = []
        for sign in (1.0, -1.0):
            y = x.copy()
            y[axis] += sign * probes[axis]
            sides.append(-objective(y, level=1))
        drops[axis] = (best - max(sides)) / scale
    return drops

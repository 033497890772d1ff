"""Camera model: ray-cast, shaded colour images of the scene, JPEG-encoded.

Pixel convention: one ray per pixel centre in OpenCV's continuous pixel coordinates (the
centre of the top-left pixel is (0, 0), as in ``calibration.camera_models``): pixel (u, v)
looks along ``undistort_points([[u, v]], intrinsics)``, so a world point projected with
``project_camera`` and the model's (scaled) intrinsics lands on the pixel that draws it.
Rays are computed once in the camera optical frame (x right, y down, z forward) and turned
into the world frame with the camera's pose at the capture time. Pixels the distortion
model has no ray for (fold-back region of a strong lens) are black.

Adaptive tracing: rays are cast first for the grid nodes, every ``stride[0]``-th pixel of
every ``stride[1]``-th row. Where the corners of a grid cell (or the two ends of a grid
edge) hit the same plane of the same surface (same actor, material and colour, equal normal
and plane offset) or all miss, the pixels between them see that plane too, and their
distances follow exactly from a ray-plane intersection (ground pixels then look up their own
ground material: markings stay sharp); only the other pixels (outlines, curved facets) are
cast. What can be lost: an object narrower than the grid spacing lying wholly inside an
agreeing cell; the default (2, 4) keeps every column pair, so upright things wider than
2 pixels (a pole nearer than ~40 m at 400 px width) are always found. ``stride=1`` casts
every pixel.

Shading: base colour (``Hits.color``) x (ambient + Lambert diffuse from a fixed sun), world
anchored textures (tileable noise sampled at the hit's world xy on the ground, so it sticks
to the road when the camera moves; foliage grain; building windows), a specular glint on
vehicles, distance haze, a sky panorama (gradient lighter at the horizon, clouds fixed in
the world) for misses, vignetting and luminance noise (triangular, from 2 x 16 random bits
per pixel). The per-pixel work (the tracer's agreement test and plane reuse, the shading)
runs in :mod:`simulation.kernels`; the casting in :mod:`simulation.raycast`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration import Sensor
from calibration.camera_models import undistort_points
from calibration.intrinsics import CameraIntrinsics
from perception.samples import EncodedImage
from simulation import kernels
from simulation.errors import SimConfigError
from simulation.ground import IS_GROUND
from simulation.materials import COLOR_RGB, Material
from simulation.raycast import Hits, SceneCaster
from simulation.scenario import Scenario
from simulation.sensors.common import sensor_poses

#: Adaptive-tracing grid spacing (horizontal, vertical), pixels: every 2nd column, so that
#: thin upright things (poles, pedestrians) are found, and every 4th row.
DEFAULT_STRIDE: Final = (2, 4)
#: Unit vector towards the sun, world frame (elevation about 55 degrees).
SUN_DIRECTION: Final = (np.array([0.45, 0.30, 0.84]) / np.linalg.norm([0.45, 0.30, 0.84])).astype(np.float32)
AMBIENT: Final = 0.62
DIFFUSE: Final = 0.48
EXPOSURE: Final = 1.12
SKY_HORIZON_RGB: Final = np.array([0.82, 0.87, 0.93], dtype=np.float32)
SKY_ZENITH_RGB: Final = np.array([0.36, 0.55, 0.86], dtype=np.float32)
CLOUD_RGB: Final = np.array([0.96, 0.96, 0.97], dtype=np.float32)
CLOUD_HEIGHT_M: Final = 1500.0
CLOUD_SCALE_M: Final = 20000.0  # one period of the cloud noise on the cloud layer
SKY_ELEVATION: Final = (-0.1, 1.3)  # elevations covered by the sky panorama, radians
SKY_ROWS, SKY_COLS = 384, 2048
HAZE_DISTANCE_M: Final = 350.0
VIGNETTING: Final = 0.22  # relative darkening at the image corners
NOISE_SIGMA: Final = 0.010  # luminance noise, fraction of full scale
WINDOW_RGB: Final = np.array([0.16, 0.20, 0.26], dtype=np.float32)

#: Per-material ground look: camera gain on the base colour, coarse noise amplitude and
#: cell (m), grain amplitude and cell (m); the cells are then stored as texels per metre.
_TEXTURE = np.zeros((5, len(Material)), dtype=np.float32)
_TEXTURE[[0, 2, 4]] = 1.0
_TEXTURE[:, Material.ASPHALT] = (1.45, 0.10, 2.5, 0.09, 0.07)
_TEXTURE[:, Material.LANE_WHITE] = (1.0, 0.05, 1.0, 0.07, 0.07)
_TEXTURE[:, Material.LANE_YELLOW] = (1.0, 0.05, 1.0, 0.07, 0.07)
_TEXTURE[:, Material.CROSSWALK] = (1.0, 0.05, 1.0, 0.07, 0.07)
_TEXTURE[:, Material.SIDEWALK] = (1.1, 0.07, 1.5, 0.06, 0.10)
_TEXTURE[:, Material.GRASS] = (1.0, 0.28, 0.9, 0.20, 0.12)
_TEXTURE[[2, 4]] = 1.0 / _TEXTURE[[2, 4]]  # cells -> texels per metre (kernels.ground_texture)
_TEXTURE_SIZE = 256
_GRAIN_FADE_M = 35.0  # the fine grain fades out beyond this distance (it would alias)
#: The shading kernel's scalars (see simulation.kernels.camera_shade).
_SHADING = np.array(
    [
        AMBIENT,
        DIFFUSE,
        HAZE_DISTANCE_M,
        _GRAIN_FADE_M,
        NOISE_SIGMA * 6**0.5,
        *SKY_ELEVATION,
        float(np.float32(AMBIENT + DIFFUSE * max(float(SUN_DIRECTION[2]), 0.0))),  # sunlit ground
    ]
)


@dataclass(frozen=True)
class CameraTrace:
    """What every pixel of one image sees (N = height * width pixels, row-major).

    Attributes:
        hits: Hits of all N pixel rays, world frame (misses and pixels without a ray:
            distance inf, material NONE).
        origin: (3,) float64 camera centre, world frame, metres.
        directions: (N, 3) float32 unit ray directions, world frame (NaN rows: no ray).
        rays_cast: number of rays actually cast (every valid pixel when ``stride`` is 1).
    """

    hits: Hits
    origin: NDArray[np.float64]
    directions: NDArray[np.float32]
    rays_cast: int


@dataclass(frozen=True)
class _Pixels:
    """What the N pixels of one image see.

    Attributes:
        distance: (N,) float32 metres along each pixel's ray (inf: miss or no ray).
        sample: (N,) int64 row of the sample table whose surface the pixel sees.
        material: (N,) uint8 per pixel (ground pixels: their own ground cell's material).
        actor: (N,) int32 per pixel, -1 for the static world and misses.
        normal, color: (T, 3) float32 world normal and RGB of the T table samples.
        origin: (3,) float64 camera centre, world frame, metres.
        rotation: (3, 3) float32 camera -> world rotation.
        rays_cast: number of rays cast.
    """

    distance: NDArray[np.float32]
    sample: NDArray[np.int64]
    material: NDArray[np.uint8]
    actor: NDArray[np.int32]
    normal: NDArray[np.float32]
    color: NDArray[np.float32]
    origin: NDArray[np.float64]
    rotation: NDArray[np.float32]
    rays_cast: int


def pixel_rays(intrinsics: CameraIntrinsics) -> NDArray[np.float32]:
    """(height * width, 3) float32 unit rays through the pixel centres (row-major), camera
    optical frame; NaN rows where the distortion model has no valid ray."""
    v, u = np.mgrid[0 : intrinsics.height, 0 : intrinsics.width]
    uv = np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64)
    rays = undistort_points(uv, intrinsics)
    with np.errstate(invalid="ignore"):
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    return rays.astype(np.float32)


def _grid_nodes(n: int, stride: int) -> NDArray[np.int64]:
    """Grid coordinates along one image axis: every ``stride``-th pixel plus the last one."""
    return np.unique(np.concatenate([np.arange(0, n, stride), [n - 1]]))


class _RefinementGrid:
    """Index tables of the adaptive tracer for one image size and stride.

    The grid nodes are pixels; every other ("inner") pixel lies on a horizontal edge
    (between two nodes of a node row), on a vertical edge, or inside a cell of four nodes.
    Its check index points into the concatenation of the horizontal-edge, vertical-edge and
    cell agreement flags; its source is the node whose plane it reuses (the top-left one).
    """

    def __init__(self, width: int, height: int, stride_u: int, stride_v: int) -> None:
        cols, rows = _grid_nodes(width, stride_u), _grid_nodes(height, stride_v)
        hn, wn = rows.size, cols.size
        self.shape = (hn, wn)
        self.nodes = (rows[:, None] * width + cols[None, :]).ravel().astype(np.int64)
        jl = np.searchsorted(cols, np.arange(width), side="right") - 1
        il = np.searchsorted(rows, np.arange(height), side="right") - 1
        row, col = np.meshgrid(il, jl, indexing="ij")  # node row / column at or before each pixel
        on_row, on_col = np.meshgrid(rows[il] == np.arange(height), cols[jl] == np.arange(width), indexing="ij")
        n_h, n_v = hn * (wn - 1), (hn - 1) * wn
        check = np.where(
            on_row, row * (wn - 1) + col, np.where(on_col, n_h + row * wn + col, n_h + n_v + row * (wn - 1) + col)
        ).ravel()
        inner = ~(on_row & on_col).ravel()
        self.inner = np.flatnonzero(inner).astype(np.int64)
        self.inner_check = check[inner].astype(np.int64)
        self.inner_source = (row * wn + col).ravel()[inner].astype(np.int64)


class CameraModel:
    """One rig camera; build once, call :meth:`render` or :meth:`capture` per capture time.

    Args:
        sensor: a camera of the rig.
        scale: image size relative to the rig's resolution, in (0, 1].
        jpeg_quality: cv2 JPEG quality, 1..100.
        stride: adaptive-tracing grid spacing in pixels, 1..8 (1 casts every pixel).
    """

    def __init__(
        self,
        sensor: Sensor,
        scale: float = 0.25,
        jpeg_quality: int = 85,
        stride: int | tuple[int, int] = DEFAULT_STRIDE,
    ) -> None:
        try:
            spec = sensor.camera
        except TypeError as exc:
            raise SimConfigError(f"CameraModel needs a camera sensor: {exc}") from None
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
            raise SimConfigError(f"camera '{sensor.id}': scale must be in (0, 1], got {scale!r}")
        if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 100:
            raise SimConfigError(
                f"camera '{sensor.id}': jpeg_quality must be an integer in [1, 100], got {jpeg_quality!r}"
            )
        strides = (stride, stride) if isinstance(stride, int) and not isinstance(stride, bool) else stride
        if not (
            isinstance(strides, tuple)
            and len(strides) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8 for v in strides)
        ):
            raise SimConfigError(
                f"camera '{sensor.id}': stride must be an integer or a (horizontal, vertical) pair of integers "
                f"in [1, 8], got {stride!r}"
            )
        self.sensor = sensor
        self.jpeg_quality = jpeg_quality
        #: The intrinsics of the rendered images (the rig's, scaled).
        self.intrinsics = spec.intrinsics.scaled(scale)
        rays = pixel_rays(self.intrinsics)
        self._valid = np.isfinite(rays[:, 0])
        rays[~self._valid] = 0.0
        self._rays = np.ascontiguousarray(rays.T)  # (3, N)
        self._grid = _RefinementGrid(self.intrinsics.width, self.intrinsics.height, *strides)
        self._valid_nodes = np.flatnonzero(self._valid[self._grid.nodes])
        w, h = self.intrinsics.width, self.intrinsics.height
        v, u = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((u - (w - 1) / 2) ** 2 + (v - (h - 1) / 2) ** 2) / (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2 + 1e-9)
        self._gain = (EXPOSURE * (1.0 - VIGNETTING * r2)).ravel().astype(np.float32) * self._valid

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the rendered images, pixels."""
        return self.intrinsics.height, self.intrinsics.width

    def trace(self, scenario: Scenario, caster: SceneCaster, t: float) -> CameraTrace:
        """What every pixel sees with the camera and the actors at time ``t`` seconds."""
        px = self._trace(scenario, caster, t)
        rotation, rays = px.rotation, self._rays
        directions = rotation[:, 0:1] * rays[0]
        directions += rotation[:, 1:2] * rays[1]
        directions += rotation[:, 2:3] * rays[2]
        directions = np.ascontiguousarray(directions.T)
        directions[~self._valid] = np.nan
        ground = (px.actor < 0) & IS_GROUND[px.material]
        color = px.color[px.sample]
        color[ground] = COLOR_RGB[px.material[ground]]
        hits = Hits(px.distance, px.normal[px.sample], px.material, color, px.actor)
        return CameraTrace(hits, px.origin, directions, px.rays_cast)

    def render(self, scenario: Scenario, caster: SceneCaster, t: float, rng: np.random.Generator) -> NDArray[np.uint8]:
        """(height, width, 3) uint8 BGR image captured at time ``t`` seconds; ``rng`` draws
        the sensor noise (luminance, triangular, standard deviation NOISE_SIGMA)."""
        px = self._trace(scenario, caster, t)
        noise = rng.bit_generator.random_raw((px.distance.size + 1) // 2)  # 2 x 16 random bits per pixel
        image = np.empty((*self.shape, 3), dtype=np.uint8)
        smooth, grain, panorama = _textures()
        kernels.camera_shade(
            px.origin,
            px.rotation,
            self._rays,
            self._valid,
            px.distance,
            px.sample,
            px.material,
            px.actor,
            px.normal,
            px.color,
            IS_GROUND,
            COLOR_RGB,
            _TEXTURE,
            smooth,
            grain,
            panorama,
            SUN_DIRECTION,
            _SHADING,
            WINDOW_RGB,
            SKY_HORIZON_RGB,
            noise,
            self._gain,
            image,
        )
        return image

    def capture(self, scenario: Scenario, caster: SceneCaster, t: float, rng: np.random.Generator) -> EncodedImage:
        """The image at time ``t`` seconds, JPEG-encoded, with the scaled intrinsics."""
        image = self.render(scenario, caster, t, rng)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise SimConfigError(f"camera '{self.sensor.id}': cv2.imencode failed for a {image.shape} image")
        return EncodedImage(data=data.tobytes(), format="jpeg", intrinsics=self.intrinsics)

    def _trace(self, scenario: Scenario, caster: SceneCaster, t: float) -> _Pixels:
        pose = sensor_poses(scenario, self.sensor, t)[0]
        origin = pose[:3, 3].copy()
        rotation = pose[:3, :3].astype(np.float32)
        grid, rays = self._grid, self._rays
        ground = scenario.world.ground

        # 1. The grid nodes (those with a ray).
        nodes = grid.nodes
        node_hits = caster.cast_rays(kernels.camera_rays(origin, rotation, rays, nodes[self._valid_nodes]), t)
        if self._valid_nodes.size < nodes.size:
            node_hits = _scatter(node_hits, self._valid_nodes, nodes.size)

        # 2. Inner pixels of agreeing cells take their source node's plane, exactly; the
        # others are listed to be cast.
        n = rays.shape[1]
        sample = np.empty(n, dtype=np.int64)
        distance = np.empty(n, dtype=np.float32)
        material = np.empty(n, dtype=np.uint8)
        actor = np.empty(n, dtype=np.int32)
        refine = kernels.camera_plan(
            origin,
            rotation,
            rays,
            self._valid,
            nodes,
            *grid.shape,
            grid.inner,
            grid.inner_check,
            grid.inner_source,
            node_hits.distance,
            node_hits.normal,
            node_hits.material,
            node_hits.color,
            node_hits.actor,
            IS_GROUND,
            np.ascontiguousarray(ground.material),
            float(ground.origin[0]),
            float(ground.origin[1]),
            float(ground.resolution),
            sample,
            distance,
            material,
            actor,
        )

        # 3. Every other inner pixel with a ray is cast.
        refined = caster.cast_rays(kernels.camera_rays(origin, rotation, rays, refine), t)

        # 4. The sample table: node hits, one "no ray" row, refined hits.
        n_nodes = nodes.size
        sample[refine] = np.arange(n_nodes + 1, n_nodes + 1 + refine.size)
        distance[refine] = refined.distance
        material[refine] = refined.material
        actor[refine] = refined.actor
        normal = np.concatenate([node_hits.normal, np.zeros((1, 3), np.float32), refined.normal])
        color = np.concatenate([node_hits.color, COLOR_RGB[:1], refined.color])
        rays_cast = int(self._valid_nodes.size) + int(refine.size)
        return _Pixels(distance, sample, material, actor, normal, color, origin, rotation, rays_cast)


def _scatter(hits: Hits, index: NDArray[np.intp], n: int) -> Hits:
    """Hits of n rays of which only ``index`` were cast (the others: misses)."""
    distance = np.full(n, np.inf, dtype=np.float32)
    normal = np.zeros((n, 3), dtype=np.float32)
    material = np.full(n, Material.NONE, dtype=np.uint8)
    color = np.tile(COLOR_RGB[Material.NONE], (n, 1))
    actor = np.full(n, -1, dtype=np.int32)
    for out, values in zip(
        (distance, normal, material, color, actor),
        (hits.distance, hits.normal, hits.material, hits.color, hits.actor),
        strict=True,
    ):
        out[index] = values
    return Hits(distance, normal, material, color, actor)


# --------------------------------------------------------------------------------------
# Shading (the per-pixel work is simulation.kernels.camera_shade)


def _periodic_noise(size: int, exponent: float, seed: int) -> NDArray[np.float32]:
    """(size, size) float32 tileable fractal noise in [0, 1], mean 0.5 (white noise with a
    1 / f^exponent spectrum)."""
    white = np.random.default_rng(seed).standard_normal((size, size))
    f = np.fft.fftfreq(size)
    k = np.hypot(f[:, None], f[None, :])
    k[0, 0] = 1.0
    spectrum = np.fft.fft2(white) / k**exponent
    spectrum[0, 0] = 0.0
    field = np.fft.ifft2(spectrum).real
    noise: NDArray[np.float32] = np.clip(0.5 + 0.18 * field / field.std(), 0.0, 1.0).astype(np.float32)
    return noise


@functools.cache
def _textures() -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """(smooth noise, grain noise, sky panorama) as (rows, cols, channels) float32: built
    once per process (deterministic).

    The panorama (SKY_ROWS, SKY_COLS, 3) RGB covers world azimuth -pi..pi along columns and
    elevation SKY_ELEVATION along rows: a gradient lighter at the horizon with clouds on a
    flat layer CLOUD_HEIGHT_M up (far enough to ignore the ego's travel)."""
    smooth = _periodic_noise(_TEXTURE_SIZE, 1.1, 1)
    clouds = _periodic_noise(_TEXTURE_SIZE, 1.7, 3)
    grain = np.random.default_rng(2).random((_TEXTURE_SIZE, _TEXTURE_SIZE)).astype(np.float32)
    low, high = SKY_ELEVATION
    azimuth = (np.arange(SKY_COLS) + 0.5) / SKY_COLS * 2 * np.pi - np.pi
    elevation = low + (np.arange(SKY_ROWS) + 0.5) / SKY_ROWS * (high - low)
    az, el = np.meshgrid(azimuth, elevation)
    up = np.clip(np.sin(el), 0.0, 1.0)
    blend = np.sqrt(np.clip(up / 0.6, 0.0, 1.0))[..., None]
    sky = SKY_HORIZON_RGB + (SKY_ZENITH_RGB - SKY_HORIZON_RGB) * blend
    reach = CLOUD_HEIGHT_M / np.tan(np.maximum(el, 0.03)) / CLOUD_SCALE_M * _TEXTURE_SIZE
    cloud = kernels.sample_linear(clouds[..., None], (reach * np.cos(az)).ravel(), (reach * np.sin(az)).ravel())
    cover = (np.clip((cloud.reshape(az.shape) - 0.56) / 0.12, 0.0, 1.0) * np.clip(up * 10.0, 0.0, 1.0) * 0.85)[
        ..., None
    ]
    panorama = (sky + (CLOUD_RGB - sky) * cover).astype(np.float32)
    return smooth[..., None], grain[..., None], panorama


def _sky(directions: NDArray[np.float32]) -> NDArray[np.float32]:
    """(3, N) float32 RGB of the sky along world ``directions`` (3, N) (from the panorama,
    by world azimuth and elevation: the clouds stay put as the camera turns)."""
    return kernels.sky(np.ascontiguousarray(directions, dtype=np.float32), _textures()[2], *SKY_ELEVATION)


def _ground_texture(
    x: NDArray[np.float64], y: NDArray[np.float64], material: NDArray[np.uint8], distance: NDArray[np.float32]
) -> NDArray[np.float32]:
    """(N,) float32 brightness factor of ground hits at world x, y (N,) metres."""
    smooth, grain, _ = _textures()
    return kernels.ground_texture(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(material, dtype=np.uint8),
        np.ascontiguousarray(distance, dtype=np.float32),
        _TEXTURE,
        smooth,
        grain,
        _GRAIN_FADE_M,
    )

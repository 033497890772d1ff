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
the world) for misses, vignetting and luminance noise. Arrays are kept component-major
((3, N), not (N, 3)): numpy is several times slower on a trailing axis of length 3.
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
from simulation.errors import SimConfigError
from simulation.materials import COLOR_RGB, Material
from simulation.raycast import Hits, SceneCaster
from simulation.scenario import Scenario
from simulation.sensors.common import sensor_poses
from simulation.sensors.ultrasonic import IS_GROUND

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
#: cell (m), grain amplitude and cell (m).
_TEXTURE = np.zeros((5, len(Material)), dtype=np.float32)
_TEXTURE[[0, 2, 4]] = 1.0
_TEXTURE[:, Material.ASPHALT] = (1.45, 0.10, 2.5, 0.09, 0.07)
_TEXTURE[:, Material.LANE_WHITE] = (1.0, 0.05, 1.0, 0.07, 0.07)
_TEXTURE[:, Material.LANE_YELLOW] = (1.0, 0.05, 1.0, 0.07, 0.07)
_TEXTURE[:, Material.CROSSWALK] = (1.0, 0.05, 1.0, 0.07, 0.07)
_TEXTURE[:, Material.SIDEWALK] = (1.1, 0.07, 1.5, 0.06, 0.10)
_TEXTURE[:, Material.GRASS] = (1.0, 0.28, 0.9, 0.20, 0.12)
_TEXTURE_SIZE = 256
_REMAP_WIDTH = 256  # cv2.remap takes maps narrower than 32767: long lists are folded into rows
_GRAIN_FADE_M = 35.0  # the fine grain fades out beyond this distance (it would alias)
_COLOR_T = np.ascontiguousarray(COLOR_RGB.T)  # (3, n_materials)

_MISS_KEY = np.int64(-(1 << 40))
_GROUND_KEY = np.int64(-(1 << 39))


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
    """What the N pixels of one image see, component-major.

    Attributes:
        distance: (N,) float32 metres along each pixel's ray (inf: miss or no ray).
        sample: (N,) intp row of the sample table whose surface the pixel sees.
        material: (N,) uint8 per pixel (ground pixels: their own ground cell's material).
        actor: (N,) int32 per pixel, -1 for the static world and misses.
        normal, color: (3, T) float32 world normal and RGB of the T table samples.
        directions: (3, N) float32 unit rays, world frame (0 where there is no ray).
        origin: (3,) float64 camera centre, world frame, metres.
        rays_cast: number of rays cast.
    """

    distance: NDArray[np.float32]
    sample: NDArray[np.intp]
    material: NDArray[np.uint8]
    actor: NDArray[np.int32]
    normal: NDArray[np.float32]
    color: NDArray[np.float32]
    directions: NDArray[np.float32]
    origin: NDArray[np.float64]
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
        self.nodes = (rows[:, None] * width + cols[None, :]).ravel()
        jl = np.searchsorted(cols, np.arange(width), side="right") - 1
        il = np.searchsorted(rows, np.arange(height), side="right") - 1
        row, col = np.meshgrid(il, jl, indexing="ij")  # node row / column at or before each pixel
        on_row, on_col = np.meshgrid(rows[il] == np.arange(height), cols[jl] == np.arange(width), indexing="ij")
        n_h, n_v = hn * (wn - 1), (hn - 1) * wn
        check = np.where(
            on_row, row * (wn - 1) + col, np.where(on_col, n_h + row * wn + col, n_h + n_v + row * (wn - 1) + col)
        ).ravel()
        inner = ~(on_row & on_col).ravel()
        self.inner = np.flatnonzero(inner)
        self.inner_check = check[inner]
        self.inner_source = (row * wn + col).ravel()[inner]

    def uniform(self, agree_h: NDArray[np.bool_], agree_v: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """(len(inner),) bool from the agreement of horizontal (hn, wn - 1) and vertical
        (hn - 1, wn) node pairs: the inner pixel's edge, or all four edges of its cell, agree."""
        cell = agree_h[:-1] & agree_h[1:] & agree_v[:, :-1] & agree_v[:, 1:]
        flags = np.concatenate([agree_h.ravel(), agree_v.ravel(), cell.ravel()])
        result: NDArray[np.bool_] = flags[self.inner_check]
        return result


def _surface_keys(hits: Hits) -> NDArray[np.int64]:
    """(N,) int64 identity of the surface each ray hit: actor, material and 8-bit colour;
    one key for all ground (one plane; its material varies per cell) and one for misses."""
    rgb = np.round(hits.color * np.float32(255.0)).astype(np.int64)
    colour = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    keys = ((hits.actor.astype(np.int64) + 1) << 32) | (hits.material.astype(np.int64) << 24) | colour
    keys[IS_GROUND[hits.material] & (hits.actor < 0)] = _GROUND_KEY
    keys[~hits.hit] = _MISS_KEY
    return keys


def _agree(
    key: NDArray[np.int64], normal: NDArray[np.float32], offset: NDArray[np.float32], axis: int
) -> NDArray[np.bool_]:
    """Neighbouring nodes along ``axis`` of the (hn, wn) grid see the same plane of the same
    surface, or both miss. ``normal`` is (3, hn, wn); ``offset`` the plane offset n . (p - o)."""
    a = (slice(None), slice(None, -1)) if axis == 1 else (slice(None, -1), slice(None))
    b = (slice(None), slice(1, None)) if axis == 1 else (slice(1, None), slice(None))
    na, nb = normal[(slice(None), *a)], normal[(slice(None), *b)]
    parallel = na[0] * nb[0] + na[1] * nb[1] + na[2] * nb[2] > np.float32(1.0 - 1e-5)
    close = np.abs(offset[a] - offset[b]) <= np.float32(1e-3) + np.float32(1e-4) * np.abs(offset[a])
    result: NDArray[np.bool_] = (key[a] == key[b]) & ((key[a] == _MISS_KEY) | (parallel & close))
    return result


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
        directions = np.ascontiguousarray(px.directions.T)
        directions[~self._valid] = np.nan
        ground = (px.actor < 0) & IS_GROUND[px.material]
        color = np.ascontiguousarray(np.take(px.color, px.sample, axis=1).T)
        color[ground] = COLOR_RGB[px.material[ground]]
        normal = np.ascontiguousarray(np.take(px.normal, px.sample, axis=1).T)
        hits = Hits(px.distance, normal, px.material, color, px.actor)
        return CameraTrace(hits, px.origin, directions, px.rays_cast)

    def render(self, scenario: Scenario, caster: SceneCaster, t: float, rng: np.random.Generator) -> NDArray[np.uint8]:
        """(height, width, 3) uint8 BGR image captured at time ``t`` seconds; ``rng`` draws
        the sensor noise (luminance, triangular, standard deviation NOISE_SIGMA)."""
        rgb = _shade(self._trace(scenario, caster, t))
        uniform = rng.random((2, rgb.shape[1]), dtype=np.float32)  # triangular noise: cheaper than normal
        rgb += (uniform[0] + uniform[1] - np.float32(1.0)) * np.float32(NOISE_SIGMA * 6**0.5)
        rgb *= self._gain  # vignetting and exposure; 0 where the lens has no ray
        rgb *= np.float32(255.0)
        np.clip(rgb, 0.0, 255.0, out=rgb)
        h, w = self.shape
        channels = [np.rint(rgb[c]).astype(np.uint8).reshape(h, w) for c in (2, 1, 0)]
        bgr: NDArray[np.uint8] = cv2.merge(channels)
        return bgr

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
        rays = self._rays
        directions = rotation[:, 0:1] * rays[0]
        directions += rotation[:, 1:2] * rays[1]
        directions += rotation[:, 2:3] * rays[2]
        grid, valid = self._grid, self._valid

        # 1. The grid nodes.
        nodes = grid.nodes
        node_dirs = np.take(directions, nodes, axis=1)
        node_hits = _cast(caster, origin, node_dirs, valid[nodes], t)
        node_normal = np.ascontiguousarray(node_hits.normal.T)
        facing_nodes = node_normal[0] * node_dirs[0] + node_normal[1] * node_dirs[1] + node_normal[2] * node_dirs[2]
        offset = np.where(node_hits.hit, node_hits.distance, np.float32(0.0)) * facing_nodes  # n . (p - o)
        key = _surface_keys(node_hits)
        key[~valid[nodes]] = -1 - np.flatnonzero(~valid[nodes])  # no ray: agrees with nothing
        shape = grid.shape
        normal_grid, offset_grid, key_grid = node_normal.reshape(3, *shape), offset.reshape(shape), key.reshape(shape)
        uniform = grid.uniform(
            _agree(key_grid, normal_grid, offset_grid, 1), _agree(key_grid, normal_grid, offset_grid, 0)
        )

        # 2. Inner pixels of agreeing cells: the source node's plane, exactly.
        inner, source = grid.inner, grid.inner_source
        src_hit = node_hits.hit[source]
        sn = np.take(node_normal, source, axis=1)
        di = np.take(directions, inner, axis=1)
        facing = sn[0] * di[0] + sn[1] * di[1] + sn[2] * di[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            inner_distance = np.where(src_hit, offset[source] / facing, np.float32(np.inf))
        ok = uniform & valid[inner] & (~src_hit | ((facing < -1e-6) & (inner_distance > 0)))

        # 3. Every other inner pixel with a ray is cast.
        refine = inner[~ok & valid[inner]]
        refined = _cast(caster, origin, np.take(directions, refine, axis=1), np.ones(refine.size, dtype=bool), t)

        # 4. A table of the node and refined hits (+ one "no ray" row), and per pixel its row.
        n, n_nodes = directions.shape[1], nodes.size
        sample = np.full(n, n_nodes + refine.size, dtype=np.intp)
        sample[nodes] = np.arange(n_nodes)
        reused = inner[ok]
        sample[reused] = source[ok]
        sample[refine] = n_nodes + np.arange(refine.size)
        distance = np.concatenate([node_hits.distance, refined.distance, [np.inf]]).astype(np.float32)[sample]
        distance[reused] = inner_distance[ok]
        material = np.concatenate([node_hits.material, refined.material, [Material.NONE]]).astype(np.uint8)[sample]
        actor = np.concatenate([node_hits.actor, refined.actor, [-1]]).astype(np.int32)[sample]
        normal = np.concatenate([node_normal, refined.normal.T, np.zeros((3, 1), np.float32)], axis=1)
        color = np.concatenate([node_hits.color.T, refined.color.T, _COLOR_T[:, :1]], axis=1)
        # Reused ground pixels take their own ground cell's material (markings, kerbs).
        ground = reused[(actor[reused] < 0) & IS_GROUND[material[reused]]]
        if ground.size:
            dist = distance[ground].astype(np.float64)
            xy = np.stack([origin[0] + dist * directions[0, ground], origin[1] + dist * directions[1, ground]], axis=1)
            material[ground] = scenario.world.ground.lookup(xy)
        rays_cast = int(valid[nodes].sum()) + int(refine.size)
        return _Pixels(distance, sample, material, actor, normal, color, directions, origin, rays_cast)


def _cast(
    caster: SceneCaster,
    origin: NDArray[np.float64],
    directions: NDArray[np.float32],
    valid: NDArray[np.bool_],
    t: float,
) -> Hits:
    """Hits of rays from ``origin`` along ``directions`` (3, N); columns where ``valid`` is
    False are not cast and come back as misses."""
    n = directions.shape[1]
    index = np.flatnonzero(valid)
    origins = np.broadcast_to(origin.astype(np.float32), (index.size, 3))
    if 0 < index.size == n:
        return caster.cast(origins, np.ascontiguousarray(directions.T), t)
    distance = np.full(n, np.inf, dtype=np.float32)
    normal = np.zeros((n, 3), dtype=np.float32)
    material = np.full(n, Material.NONE, dtype=np.uint8)
    color = np.tile(COLOR_RGB[Material.NONE], (n, 1))
    actor = np.full(n, -1, dtype=np.int32)
    if index.size:  # (SceneCaster.cast does not take an empty batch)
        hits = caster.cast(origins, np.ascontiguousarray(directions[:, index].T), t)
        for out, values in zip(
            (distance, normal, material, color, actor),
            (hits.distance, hits.normal, hits.material, hits.color, hits.actor),
            strict=True,
        ):
            out[index] = values
    return Hits(distance, normal, material, color, actor)


# --------------------------------------------------------------------------------------
# Shading


def _hash01(ix: NDArray[np.int64], iy: NDArray[np.int64], seed: int) -> NDArray[np.float32]:
    """Deterministic pseudo-random values in [0, 1) per integer lattice point (N,)."""
    h = ix.astype(np.uint32) * np.uint32(0x8DA6B343) ^ iy.astype(np.uint32) * np.uint32(0xD8163841) ^ np.uint32(seed)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0x5BD1E995)
    h ^= h >> np.uint32(15)
    result: NDArray[np.float32] = (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))
    return result


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


def _sample(
    texture: NDArray[np.float32], x: NDArray[np.float64], y: NDArray[np.float64], interpolation: int
) -> NDArray[np.float32]:
    """Texture values at texel coordinates x, y (M,) (OpenCV convention, wrapping around the
    texture): (M,) for a one-channel texture, (M, C) otherwise."""
    m = x.size
    if m == 0:
        return np.zeros((0, *texture.shape[2:]), dtype=np.float32)
    h, w = texture.shape[:2]
    width = _REMAP_WIDTH
    rows = -(-m // width)
    maps = np.zeros((2, rows * width), dtype=np.float32)
    maps[0, :m] = x - np.floor(x / w) * w  # cv2.remap saturates coordinates beyond int16
    maps[1, :m] = y - np.floor(y / h) * h
    out = cv2.remap(
        texture, maps[0].reshape(rows, width), maps[1].reshape(rows, width), interpolation, borderMode=cv2.BORDER_WRAP
    )
    result: NDArray[np.float32] = np.asarray(out, dtype=np.float32).reshape(rows * width, *texture.shape[2:])[:m]
    return result


@functools.cache
def _textures() -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """(smooth noise, grain noise, sky panorama): built once per process (deterministic).

    The panorama (SKY_ROWS, SKY_COLS, 3) float32 RGB covers world azimuth -pi..pi along
    columns and elevation SKY_ELEVATION along rows: a gradient lighter at the horizon with
    clouds on a flat layer CLOUD_HEIGHT_M up (far enough to ignore the ego's travel)."""
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
    cloud = _sample(clouds, (reach * np.cos(az)).ravel(), (reach * np.sin(az)).ravel(), cv2.INTER_LINEAR).reshape(
        az.shape
    )
    cover = (np.clip((cloud - 0.56) / 0.12, 0.0, 1.0) * np.clip(up * 10.0, 0.0, 1.0) * 0.85)[..., None]
    panorama = (sky + (CLOUD_RGB - sky) * cover).astype(np.float32)
    return smooth, grain, panorama


def _sky(directions: NDArray[np.float32]) -> NDArray[np.float32]:
    """(3, N) float32 RGB of the sky along world ``directions`` (3, N) (from the panorama,
    by world azimuth and elevation: the clouds stay put as the camera turns)."""
    panorama = _textures()[2]
    low, high = SKY_ELEVATION
    azimuth = np.arctan2(directions[1], directions[0]).astype(np.float64)
    elevation = np.arcsin(np.clip(directions[2], np.sin(low), np.sin(high))).astype(np.float64)
    x = (azimuth + np.pi) / (2 * np.pi) * SKY_COLS - 0.5
    y = (elevation - low) / (high - low) * SKY_ROWS - 0.5
    y = np.clip(y, 0.0, SKY_ROWS - 1.0)
    return np.ascontiguousarray(_sample(panorama, x, y, cv2.INTER_LINEAR).T)


def _ground_texture(
    x: NDArray[np.float64], y: NDArray[np.float64], material: NDArray[np.uint8], distance: NDArray[np.float32]
) -> NDArray[np.float32]:
    """(N,) float32 brightness factor of ground hits at world x, y (N,) metres."""
    smooth, grain, _ = _textures()
    gain, amp_c, cell_c, amp_g, cell_g = (np.take(row, material) for row in _TEXTURE)
    coarse = _sample(smooth, x / cell_c, y / cell_c, cv2.INTER_LINEAR)
    fine = _sample(grain, x / cell_g, y / cell_g, cv2.INTER_NEAREST)
    fade = np.clip(np.float32(1.5) - distance / np.float32(_GRAIN_FADE_M), 0.0, 1.0)
    result: NDArray[np.float32] = gain * (1.0 + amp_c * (2 * coarse - 1) + amp_g * fade * (2 * fine - 1))
    return result


def _fraction(x: NDArray[np.float32], period: float) -> NDArray[np.float32]:
    """x / period - floor(x / period): the position within a period, in [0, 1)."""
    scaled = x * np.float32(1.0 / period)
    result: NDArray[np.float32] = scaled - np.floor(scaled)
    return result


def _windows(points: NDArray[np.float32], normal: NDArray[np.float32]) -> tuple[NDArray[np.bool_], NDArray[np.float32]]:
    """Window mask (N,) and per-window brightness (N,) on building walls (points and normals
    (3, N), world): floors every 3.2 m, windows every 2.8 m along the wall."""
    along = points[0] * -normal[1] + points[1] * normal[0]
    z = points[2]
    level, column = _fraction(z, 3.2), _fraction(along, 2.8)
    mask = (np.abs(normal[2]) < 0.3) & (level > 0.28) & (level < 0.72) & (column > 0.18) & (column < 0.71)
    ids = _hash01(
        np.floor(along * np.float32(1 / 2.8)).astype(np.int64), np.floor(z * np.float32(1 / 3.2)).astype(np.int64), 5
    )
    return mask, np.float32(0.8) + np.float32(0.6) * ids


def _shade(px: _Pixels) -> NDArray[np.float32]:
    """(3, N) float32 RGB, about 0..1.2, of every pixel (before vignetting and noise).
    Lighting is computed once per table sample, textures per pixel."""
    d, material, sample = px.directions, px.material, px.sample
    hit = np.isfinite(px.distance)
    distance = px.distance.copy()
    distance[~hit] = 0.0
    n = px.normal
    light = np.float32(AMBIENT) + np.float32(DIFFUSE) * np.maximum(
        n[0] * SUN_DIRECTION[0] + n[1] * SUN_DIRECTION[1] + n[2] * SUN_DIRECTION[2], np.float32(0.0)
    )
    rgb: NDArray[np.float32] = np.take(px.color * light, sample, axis=1)
    origin = px.origin.astype(np.float32)

    def points(index: NDArray[np.intp]) -> NDArray[np.float32]:
        result: NDArray[np.float32] = origin[:, None] + distance[index] * np.take(d, index, axis=1)
        return result

    ground = np.flatnonzero(hit & (px.actor < 0) & IS_GROUND[material])
    if ground.size:
        dist = distance[ground].astype(np.float64)
        x, y = px.origin[0] + dist * d[0, ground], px.origin[1] + dist * d[1, ground]
        sunlit = np.float32(AMBIENT + DIFFUSE * max(float(SUN_DIRECTION[2]), 0.0))
        factor = sunlit * _ground_texture(x, y, material[ground], distance[ground])
        for c in range(3):
            rgb[c, ground] = _COLOR_T[c, material[ground]] * factor
    foliage = np.flatnonzero(material == Material.FOLIAGE)
    if foliage.size:
        cell = np.floor(points(foliage) * np.float32(1 / 0.35)).astype(np.int64)
        grain = np.float32(0.7) + np.float32(0.6) * _hash01(cell[0] + 7919 * cell[2], cell[1], 17)
        for c in range(3):
            rgb[c, foliage] *= grain
    building = np.flatnonzero(material == Material.BUILDING)
    if building.size:
        mask, brightness = _windows(points(building), np.take(n, sample[building], axis=1))
        windows = building[mask]
        shade = brightness[mask] * light[sample[windows]]
        for c in range(3):
            rgb[c, windows] = WINDOW_RGB[c] * shade
    vehicle = np.flatnonzero(material == Material.VEHICLE)
    if vehicle.size:
        dv, nv = np.take(d, vehicle, axis=1), np.take(n, sample[vehicle], axis=1)
        dn = np.float32(2.0) * (dv[0] * nv[0] + dv[1] * nv[1] + dv[2] * nv[2])
        cos = np.maximum(sum((dv[k] - dn * nv[k]) * SUN_DIRECTION[k] for k in range(3)), np.float32(0.0))
        cos8 = (cos * cos) ** 2
        cos8 *= cos8
        glint = cos8 * cos8 * cos8 * np.float32(0.45)  # cos^24: a tight glint
        for c in range(3):
            rgb[c, vehicle] += glint
    haze = np.float32(1.0) - np.exp(distance * np.float32(-1.0 / HAZE_DISTANCE_M))
    for c in range(3):
        rgb[c] += (SKY_HORIZON_RGB[c] - rgb[c]) * haze
    sky = np.flatnonzero(~hit)
    if sky.size:
        sky_rgb = _sky(np.take(d, sky, axis=1))
        for c in range(3):
            rgb[c, sky] = sky_rgb[c]
    return rgb

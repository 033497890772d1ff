"""Numba kernels of the simulator's per-ray and per-pixel loops.

The camera's adaptive-tracing plan and shading, and the lidar's return model (ray casting
itself is Open3D's, in :mod:`simulation.raycast`): each is one compiled pass
over its arrays instead of the dozens of full-size temporaries the same arithmetic takes
in numpy.

Compilation is lazy (a kernel compiles on its first call in a process) and cached on disk
(``cache=True``: next to this module, or in numba's user cache when that is read-only), so
only the first process after a change pays it (about 20 s for all of them); later ones
load the machine code (well under a second). Arithmetic stays in float32 where the
models work in float32 and in float64 for world positions and ray distances.

Writing rule for speed: the helpers inlined into hot loops take scalars only (or, for
texture reads, arrays with no branch in the helper). An inlined helper with both array
arguments and control flow leaves reference-count operations (atomic) on every call, which
costs more than the arithmetic it saves.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray

from simulation.materials import Material

_GRASS = int(Material.GRASS)
_NONE = int(Material.NONE)
_FOLIAGE = int(Material.FOLIAGE)
_BUILDING = int(Material.BUILDING)
_VEHICLE = int(Material.VEHICLE)


@nb.njit(cache=True, inline="always")
def _cell(
    x: float, y: float, origin_x: float, origin_y: float, resolution: float, rows: int, cols: int
) -> tuple[int, int]:
    """(row, column) of the ground-map cell under world x, y; (-1, -1) outside the map."""
    col = math.floor((x - origin_x) / resolution)
    row = math.floor((y - origin_y) / resolution)
    if 0 <= row < rows and 0 <= col < cols:
        return row, col
    return -1, -1


_MISS_KEY = -(1 << 40)
_GROUND_KEY = -(1 << 39)


@nb.njit(cache=True, inline="always")
def _rotate(
    r00: np.float32,
    r01: np.float32,
    r02: np.float32,
    r10: np.float32,
    r11: np.float32,
    r12: np.float32,
    r20: np.float32,
    r21: np.float32,
    r22: np.float32,
    x: np.float32,
    y: np.float32,
    z: np.float32,
) -> tuple[np.float32, np.float32, np.float32]:
    """R @ (x, y, z) in float32 (a pixel's ray, camera -> world)."""
    return r00 * x + r01 * y + r02 * z, r10 * x + r11 * y + r12 * z, r20 * x + r21 * y + r22 * z


@nb.njit(cache=True)
def camera_rays(
    origin: NDArray[np.float64],
    rotation: NDArray[np.float32],
    rays: NDArray[np.float32],
    pixels: NDArray[np.int64],
) -> NDArray[np.float32]:
    """(len(pixels), 6) float32 [origin, world direction] of the chosen pixels' rays
    (camera-frame rays (3, N), camera -> world ``rotation``)."""
    r = rotation
    out = np.empty((pixels.size, 6), dtype=np.float32)
    for j in range(pixels.size):
        p = pixels[j]
        d0, d1, d2 = _rotate(
            r[0, 0],
            r[0, 1],
            r[0, 2],
            r[1, 0],
            r[1, 1],
            r[1, 2],
            r[2, 0],
            r[2, 1],
            r[2, 2],
            rays[0, p],
            rays[1, p],
            rays[2, p],
        )
        out[j, 0], out[j, 1], out[j, 2] = origin[0], origin[1], origin[2]
        out[j, 3], out[j, 4], out[j, 5] = d0, d1, d2
    return out


@nb.njit(cache=True, error_model="numpy")
def camera_plan(
    origin: NDArray[np.float64],
    rotation: NDArray[np.float32],
    rays: NDArray[np.float32],
    valid: NDArray[np.bool_],
    nodes: NDArray[np.int64],
    grid_rows: int,
    grid_cols: int,
    inner: NDArray[np.int64],
    inner_check: NDArray[np.int64],
    inner_source: NDArray[np.int64],
    node_distance: NDArray[np.float32],
    node_normal: NDArray[np.float32],
    node_material: NDArray[np.uint8],
    node_color: NDArray[np.float32],
    node_actor: NDArray[np.int32],
    is_ground: NDArray[np.bool_],
    raster: NDArray[np.uint8],
    raster_x: float,
    raster_y: float,
    resolution: float,
    sample: NDArray[np.int64],
    distance: NDArray[np.float32],
    material: NDArray[np.uint8],
    actor: NDArray[np.int32],
) -> NDArray[np.int64]:
    """The adaptive tracer's second step (see simulation.sensors.camera).

    From the hits of the M grid nodes (pixels ``nodes``, a (grid_rows, grid_cols) grid),
    fills per pixel (N) the sample-table row (nodes: 0..M-1; an inner pixel of an agreeing
    edge or cell: its source node; rays still to cast: -1; no ray: M), the distance (the
    source node's plane along the pixel's own ray), material (ground pixels: their own
    cell's) and actor. Two neighbouring nodes agree when they see the same plane of the
    same surface (actor, material, 8-bit colour; all ground is one surface: its material
    varies per cell), or both miss. Returns the pixels to cast (ascending)."""
    r = rotation
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = (
        r[0, 0],
        r[0, 1],
        r[0, 2],
        r[1, 0],
        r[1, 1],
        r[1, 2],
        r[2, 0],
        r[2, 1],
        r[2, 2],
    )
    raster_rows, raster_cols = raster.shape[0], raster.shape[1]
    m = nodes.size
    key = np.empty(m, dtype=np.int64)
    offset = np.empty(m, dtype=np.float32)
    for j in range(m):
        p = nodes[j]
        d0, d1, d2 = _rotate(r00, r01, r02, r10, r11, r12, r20, r21, r22, rays[0, p], rays[1, p], rays[2, p])
        hit = np.isfinite(node_distance[j])
        facing = node_normal[j, 0] * d0 + node_normal[j, 1] * d1 + node_normal[j, 2] * d2
        offset[j] = (node_distance[j] if hit else np.float32(0.0)) * facing  # n . (p - o)
        if not valid[p]:
            key[j] = -1 - j  # no ray: agrees with nothing
        elif not hit:
            key[j] = _MISS_KEY
        elif node_actor[j] < 0 and is_ground[node_material[j]]:
            key[j] = _GROUND_KEY
        else:
            rgb = 0
            for k in range(3):
                rgb = (rgb << 8) | math.floor(node_color[j, k] * np.float32(255.0) + np.float32(0.5))
            key[j] = ((np.int64(node_actor[j]) + 1) << 32) | (np.int64(node_material[j]) << 24) | rgb
        sample[p] = j
        distance[p] = node_distance[j]
        material[p] = node_material[j]
        actor[p] = node_actor[j]
    # Agreement of horizontal edges, vertical edges and cells, in that order (inner_check).
    hn, wn = grid_rows, grid_cols
    n_h, n_v = hn * (wn - 1), (hn - 1) * wn
    flags = np.empty(n_h + n_v + (hn - 1) * (wn - 1), dtype=np.bool_)
    for vertical in range(2):
        for r_ in range(hn - vertical):
            for c_ in range(wn - 1 + vertical):
                a = r_ * wn + c_
                b = a + (wn if vertical else 1)
                same = key[a] == key[b]
                if same and key[a] != _MISS_KEY:
                    parallel = node_normal[a, 0] * node_normal[b, 0] + node_normal[a, 1] * node_normal[b, 1]
                    parallel += node_normal[a, 2] * node_normal[b, 2]
                    close = abs(offset[a] - offset[b]) <= np.float32(1e-3) + np.float32(1e-4) * abs(offset[a])
                    same = parallel > np.float32(1.0 - 1e-5) and close
                flags[n_h + a if vertical else r_ * (wn - 1) + c_] = same
    for r_ in range(hn - 1):
        for c_ in range(wn - 1):
            flags[n_h + n_v + r_ * (wn - 1) + c_] = (
                flags[r_ * (wn - 1) + c_]
                and flags[(r_ + 1) * (wn - 1) + c_]
                and flags[n_h + r_ * wn + c_]
                and flags[n_h + r_ * wn + c_ + 1]
            )
    refine = np.empty(inner.size, dtype=np.int64)
    n_refine = 0
    for j in range(inner.size):
        p = inner[j]
        if not valid[p]:
            sample[p] = m
            distance[p] = np.inf
            material[p] = _NONE
            actor[p] = -1
            continue
        s = inner_source[j]
        d0, d1, d2 = _rotate(r00, r01, r02, r10, r11, r12, r20, r21, r22, rays[0, p], rays[1, p], rays[2, p])
        ok = flags[inner_check[j]]
        src_hit = np.isfinite(node_distance[s])
        dist = np.float32(np.inf)
        if ok and src_hit:
            facing = node_normal[s, 0] * d0 + node_normal[s, 1] * d1 + node_normal[s, 2] * d2
            dist = offset[s] / facing
            ok = facing < np.float32(-1e-6) and dist > 0
        if not ok:
            sample[p] = -1
            refine[n_refine] = p
            n_refine += 1
            continue
        sample[p] = s
        distance[p] = dist
        a = node_actor[s]
        actor[p] = a
        mat = node_material[s]
        if src_hit and a < 0 and is_ground[mat]:  # its own ground cell (markings, kerbs)
            x = origin[0] + np.float64(dist) * np.float64(d0)
            y = origin[1] + np.float64(dist) * np.float64(d1)
            row, col = _cell(x, y, raster_x, raster_y, resolution, raster_rows, raster_cols)
            mat = _GRASS if row < 0 else raster[row, col]
        material[p] = mat
    return refine[:n_refine]


# --------------------------------------------------------------------------------------
# Camera: shading
#
# Textures are (rows, cols, channels) float32 sampled at texel coordinates with pixel
# centres at integers (as cv2.remap), wrapping around both axes: bilinear for the smooth
# noise and the sky, nearest (rounded half to even) for the grain.


@nb.njit(cache=True, inline="always")
def _wrap(i: int, n: int) -> int:
    """i modulo n in [0, n) (an integer division only when n is not a power of two and i
    is outside [0, n))."""
    if 0 <= i < n:
        return i
    if n & (n - 1) == 0:
        return i & (n - 1)
    i %= n
    return i + n if i < 0 else i


@nb.njit(cache=True, inline="always")
def _texels(x: float, y: float, rows: int, cols: int) -> tuple[int, int, int, int, float, float]:
    """The four texels around texel coordinates x, y: columns x0, x1, rows y0, y1, and the
    weights of x1 and y1."""
    fx, fy = math.floor(x), math.floor(y)
    x0, y0 = _wrap(int(fx), cols), _wrap(int(fy), rows)
    return x0, _wrap(x0 + 1, cols), y0, _wrap(y0 + 1, rows), x - fx, y - fy


@nb.njit(cache=True, inline="always")
def _bilinear(
    texture: NDArray[np.float32], x0: int, x1: int, y0: int, y1: int, ax: float, ay: float, channel: int
) -> float:
    """Bilinear sample of texture channel from :func:`_texels` (no branch: see the module note)."""
    top = texture[y0, x0, channel] * (1.0 - ax) + texture[y0, x1, channel] * ax
    bottom = texture[y1, x0, channel] * (1.0 - ax) + texture[y1, x1, channel] * ax
    return top * (1.0 - ay) + bottom * ay


@nb.njit(cache=True)
def sample_linear(texture: NDArray[np.float32], x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float32]:
    """(M, C) float32 bilinear samples of texture (H, W, C) at texel coordinates x, y (M,)."""
    out = np.empty((x.size, texture.shape[2]), dtype=np.float32)
    for i in range(x.size):
        x0, x1, y0, y1, ax, ay = _texels(x[i], y[i], texture.shape[0], texture.shape[1])
        for c in range(texture.shape[2]):
            out[i, c] = _bilinear(texture, x0, x1, y0, y1, ax, ay, c)
    return out


@nb.njit(cache=True, inline="always")
def _hash01(ix: int, iy: int, seed: int) -> np.float32:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point (32-bit hash)."""
    mask = np.uint64(0xFFFFFFFF)
    a = (np.uint64(ix & 0xFFFFFFFF) * np.uint64(0x8DA6B343)) & mask
    b = (np.uint64(iy & 0xFFFFFFFF) * np.uint64(0xD8163841)) & mask
    h = a ^ b ^ np.uint64(seed)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0x5BD1E995)) & mask
    h ^= h >> np.uint64(15)
    return np.float32(h >> np.uint64(8)) * np.float32(1.0 / (1 << 24))


@nb.njit(cache=True, inline="always")
def _ground_texels(
    x: float, y: float, coarse_scale: float, grain_scale: float, rows: int, cols: int
) -> tuple[int, int, int, int, float, float, int, int]:
    """Texels of the ground textures (both rows x cols) at world x, y: the bilinear ones of
    the coarse noise (:func:`_texels`) and the nearest one of the grain (row, column)."""
    x0, x1, y0, y1, ax, ay = _texels(x * coarse_scale, y * coarse_scale, rows, cols)
    grain_row = _wrap(int(np.rint(y * grain_scale)), rows)
    grain_col = _wrap(int(np.rint(x * grain_scale)), cols)
    return x0, x1, y0, y1, ax, ay, grain_row, grain_col


@nb.njit(cache=True, inline="always")
def _ground_mix(
    gain: np.float32,
    coarse_amplitude: np.float32,
    grain_amplitude: np.float32,
    coarse: np.float32,
    fine: np.float32,
    distance: np.float32,
    inverse_fade: np.float32,
) -> np.float32:
    """Ground brightness factor from the coarse noise and the grain (which fades out from
    half to one and a half fade distances)."""
    fade = min(max(np.float32(1.5) - distance * inverse_fade, np.float32(0.0)), np.float32(1.0))
    return gain * (
        np.float32(1.0)
        + coarse_amplitude * (np.float32(2.0) * coarse - np.float32(1.0))
        + grain_amplitude * fade * (np.float32(2.0) * fine - np.float32(1.0))
    )


@nb.njit(cache=True)
def ground_texture(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    material: NDArray[np.uint8],
    distance: NDArray[np.float32],
    texture: NDArray[np.float32],
    smooth: NDArray[np.float32],
    grain: NDArray[np.float32],
    grain_fade: float,
) -> NDArray[np.float32]:
    """(N,) float32 brightness factor of ground points at world x, y (N,): coarse noise
    (``smooth``, bilinear) and fine grain (``grain``, nearest texel; both (S, S, 1)) per
    material (texture (5, n_materials) rows: gain, coarse amplitude, coarse texels per
    metre, grain amplitude, grain texels per metre), the grain fading out with distance."""
    out = np.empty(x.size, dtype=np.float32)
    rows, cols = smooth.shape[0], smooth.shape[1]
    inverse_fade = np.float32(1.0 / grain_fade)
    for i in range(x.size):
        mat = material[i]
        x0, x1, y0, y1, ax, ay, gr, gc = _ground_texels(
            x[i], y[i], np.float64(texture[2, mat]), np.float64(texture[4, mat]), rows, cols
        )
        coarse = np.float32(_bilinear(smooth, x0, x1, y0, y1, ax, ay, 0))
        out[i] = _ground_mix(
            texture[0, mat], texture[1, mat], texture[3, mat], coarse, grain[gr, gc, 0], distance[i], inverse_fade
        )
    return out


_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1)
_ATAN_P += (-1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2)
_ATAN_Q += (4.853903996359136964868e2, 1.945506571482613964425e2)


@nb.njit(cache=True, inline="always")
def _atan(x: float) -> float:
    """arctan(x) to double precision (the Cephes rational approximation): several times
    cheaper than the C library's call on the per-pixel path."""
    sign = 1.0
    if x < 0.0:
        sign, x = -1.0, -x
    offset = 0.0
    if x > 2.41421356237309504880:  # tan(3 pi / 8)
        offset, x = 0.5 * math.pi, -1.0 / x
    elif x > 0.66:
        offset, x = 0.25 * math.pi, (x - 1.0) / (x + 1.0)
    z = x * x
    p = (((_ATAN_P[0] * z + _ATAN_P[1]) * z + _ATAN_P[2]) * z + _ATAN_P[3]) * z + _ATAN_P[4]
    q = ((((z + _ATAN_Q[0]) * z + _ATAN_Q[1]) * z + _ATAN_Q[2]) * z + _ATAN_Q[3]) * z + _ATAN_Q[4]
    return sign * (offset + (x * z * p / q + x))


@nb.njit(cache=True, inline="always")
def _atan2(y: float, x: float) -> float:
    """atan2(y, x) in (-pi, pi] from :func:`_atan` (0 for the zero vector)."""
    if x > 0.0:
        return _atan(y / x)
    if x < 0.0:
        return _atan(y / x) + (math.pi if y >= 0.0 else -math.pi)
    if y > 0.0:
        return 0.5 * math.pi
    return -0.5 * math.pi if y < 0.0 else 0.0


@nb.njit(cache=True, inline="always")
def _sky_texel(
    d0: float, d1: float, d2: float, rows: int, cols: int, low: float, high: float, sin_low: float, sin_high: float
) -> tuple[float, float]:
    """Texel coordinates (x, y) in the sky panorama (rows: elevation low..high radians,
    columns: azimuth -pi..pi) of world direction d (unit)."""
    azimuth = _atan2(d1, d0)
    up = min(max(d2, sin_low), sin_high)
    elevation = _atan2(up, math.sqrt(1.0 - up * up))  # arcsin
    x = (azimuth + math.pi) / (2 * math.pi) * cols - 0.5
    y = min(max((elevation - low) / (high - low) * rows - 0.5, 0.0), rows - 1.0)
    return x, y


@nb.njit(cache=True)
def sky(directions: NDArray[np.float32], panorama: NDArray[np.float32], low: float, high: float) -> NDArray[np.float32]:
    """(3, N) float32 sky RGB along world directions (3, N) from the panorama (rows:
    elevation low..high radians, columns: azimuth -pi..pi)."""
    n = directions.shape[1]
    rows, cols = panorama.shape[0], panorama.shape[1]
    out = np.empty((3, n), dtype=np.float32)
    sin_low, sin_high = math.sin(low), math.sin(high)
    for i in range(n):
        x, y = _sky_texel(
            directions[0, i], directions[1, i], directions[2, i], rows, cols, low, high, sin_low, sin_high
        )
        x0, x1, y0, y1, ax, ay = _texels(x, y, rows, cols)
        for c in range(3):
            out[c, i] = _bilinear(panorama, x0, x1, y0, y1, ax, ay, c)
    return out


@nb.njit(cache=True, inline="always")
def _fraction(x: np.float32, inverse_period: np.float32) -> np.float32:
    scaled = x * inverse_period
    return scaled - np.float32(math.floor(scaled))


@nb.njit(cache=True, error_model="numpy")
def camera_shade(
    origin: NDArray[np.float64],
    rotation: NDArray[np.float32],
    rays: NDArray[np.float32],
    valid: NDArray[np.bool_],
    distance: NDArray[np.float32],
    sample: NDArray[np.int64],
    material: NDArray[np.uint8],
    actor: NDArray[np.int32],
    table_normal: NDArray[np.float32],
    table_color: NDArray[np.float32],
    is_ground: NDArray[np.bool_],
    color_table: NDArray[np.float32],
    texture: NDArray[np.float32],
    smooth: NDArray[np.float32],
    grain: NDArray[np.float32],
    panorama: NDArray[np.float32],
    sun: NDArray[np.float32],
    shading: NDArray[np.float64],
    window_rgb: NDArray[np.float32],
    horizon_rgb: NDArray[np.float32],
    noise: NDArray[np.uint64],
    gain: NDArray[np.float32],
    out: NDArray[np.uint8],
) -> None:
    """The BGR image out (H, W, 3) of N = H * W pixels (see simulation.sensors.camera).

    Per pixel: its sample-table row (``sample``; normal and colour), distance, material and
    actor; camera-frame rays (3, N) turned to the world by ``rotation``. sun: (3,) unit
    vector towards the sun; shading: (ambient, diffuse, haze distance, grain fade distance,
    noise scale, sky elevation low, high, ground brightness); noise (ceil(N / 2),) random
    bits: pixel p's luminance noise is the sum of two 16-bit uniforms of the 32-bit half p % 2
    of noise[p // 2] (triangular, zero mean); gain (N,): exposure and vignetting (0: no
    ray, black)."""
    r = rotation
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = (
        r[0, 0],
        r[0, 1],
        r[0, 2],
        r[1, 0],
        r[1, 1],
        r[1, 2],
        r[2, 0],
        r[2, 1],
        r[2, 2],
    )
    ambient, diffuse = np.float32(shading[0]), np.float32(shading[1])
    inv_haze, inverse_fade = np.float32(-1.0 / shading[2]), np.float32(1.0 / shading[3])
    noise_scale, low, high = np.float32(shading[4]), shading[5], shading[6]
    sin_low, sin_high = math.sin(low), math.sin(high)
    sun0, sun1, sun2 = sun[0], sun[1], sun[2]
    sunlit = np.float32(shading[7])
    ox, oy, oz = np.float32(origin[0]), np.float32(origin[1]), np.float32(origin[2])
    sky_rows, sky_cols = panorama.shape[0], panorama.shape[1]
    tex_rows, tex_cols = smooth.shape[0], smooth.shape[1]
    height, width = out.shape[0], out.shape[1]
    # Per image row: shade the hits and list the sky pixels; find the sky texels (a loop of
    # its own: it vectorizes, the mixed one does not); sample the sky; add noise, quantize.
    line = np.zeros((3, width), dtype=np.float32)
    sky_col = np.empty(width, dtype=np.int64)
    sky_x, sky_y, sky_z = np.empty(width), np.empty(width), np.empty(width)
    for row in range(height):
        n_sky = 0
        for col in range(width):
            p = row * width + col
            if not valid[p]:
                line[0, col] = line[1, col] = line[2, col] = 0.0
                continue
            d0, d1, d2 = _rotate(r00, r01, r02, r10, r11, r12, r20, r21, r22, rays[0, p], rays[1, p], rays[2, p])
            dist = distance[p]
            if not np.isfinite(dist):  # the sky, below
                sky_col[n_sky] = col
                sky_x[n_sky], sky_y[n_sky], sky_z[n_sky] = d0, d1, d2
                n_sky += 1
                continue
            s = sample[p]
            n0, n1, n2 = table_normal[s, 0], table_normal[s, 1], table_normal[s, 2]
            light = ambient + diffuse * max(n0 * sun0 + n1 * sun1 + n2 * sun2, np.float32(0.0))
            mat = material[p]
            if actor[p] < 0 and is_ground[mat]:
                x = origin[0] + np.float64(dist) * np.float64(d0)
                y = origin[1] + np.float64(dist) * np.float64(d1)
                x0, x1, y0, y1, ax, ay, gr, gc = _ground_texels(
                    x, y, np.float64(texture[2, mat]), np.float64(texture[4, mat]), tex_rows, tex_cols
                )
                coarse = np.float32(_bilinear(smooth, x0, x1, y0, y1, ax, ay, 0))
                factor = sunlit * _ground_mix(
                    texture[0, mat], texture[1, mat], texture[3, mat], coarse, grain[gr, gc, 0], dist, inverse_fade
                )
                red, green, blue = (
                    color_table[mat, 0] * factor,
                    color_table[mat, 1] * factor,
                    color_table[mat, 2] * factor,
                )
            else:
                red, green, blue = table_color[s, 0] * light, table_color[s, 1] * light, table_color[s, 2] * light
                if mat == _FOLIAGE:
                    inv = np.float32(1 / 0.35)
                    cx = math.floor((ox + dist * d0) * inv)
                    cy = math.floor((oy + dist * d1) * inv)
                    cz = math.floor((oz + dist * d2) * inv)
                    grain_value = np.float32(0.7) + np.float32(0.6) * _hash01(cx + 7919 * cz, cy, 17)
                    red, green, blue = red * grain_value, green * grain_value, blue * grain_value
                elif mat == _BUILDING and abs(n2) < np.float32(0.3):
                    px, py, pz = ox + dist * d0, oy + dist * d1, oz + dist * d2
                    along = px * -n1 + py * n0
                    level = _fraction(pz, np.float32(1 / 3.2))
                    column = _fraction(along, np.float32(1 / 2.8))
                    if np.float32(0.28) < level < np.float32(0.72) and np.float32(0.18) < column < np.float32(0.71):
                        ids = _hash01(math.floor(along * np.float32(1 / 2.8)), math.floor(pz * np.float32(1 / 3.2)), 5)
                        shade = (np.float32(0.8) + np.float32(0.6) * ids) * light
                        red, green, blue = window_rgb[0] * shade, window_rgb[1] * shade, window_rgb[2] * shade
                elif mat == _VEHICLE:
                    dn = np.float32(2.0) * (d0 * n0 + d1 * n1 + d2 * n2)
                    cos = max((d0 - dn * n0) * sun0 + (d1 - dn * n1) * sun1 + (d2 - dn * n2) * sun2, np.float32(0.0))
                    cos8 = (cos * cos) * (cos * cos)
                    cos8 *= cos8
                    glint = cos8 * cos8 * cos8 * np.float32(0.45)  # cos^24: a tight glint
                    red, green, blue = red + glint, green + glint, blue + glint
            haze = np.float32(1.0) - np.float32(math.exp(dist * inv_haze))
            line[0, col] = red + (horizon_rgb[0] - red) * haze
            line[1, col] = green + (horizon_rgb[1] - green) * haze
            line[2, col] = blue + (horizon_rgb[2] - blue) * haze
        for k in range(n_sky):  # (sky_x, sky_y <- texel coordinates)
            sky_x[k], sky_y[k] = _sky_texel(
                sky_x[k], sky_y[k], sky_z[k], sky_rows, sky_cols, low, high, sin_low, sin_high
            )
        for k in range(n_sky):
            x0, x1, y0, y1, ax, ay = _texels(sky_x[k], sky_y[k], sky_rows, sky_cols)
            for c in range(3):
                line[c, sky_col[k]] = _bilinear(panorama, x0, x1, y0, y1, ax, ay, c)
        for col in range(width):
            p = row * width + col
            bits = (noise[p >> 1] >> np.uint64((p & 1) * 32)) & np.uint64(0xFFFFFFFF)
            uniform = np.float32((bits & np.uint64(0xFFFF)) + (bits >> np.uint64(16)) + np.uint64(1))
            jitter = (uniform * np.float32(1.0 / 65536.0) - np.float32(1.0)) * noise_scale
            for c in range(3):  # (gain 0 where there is no ray: black)
                v = (line[c, col] + jitter) * gain[p] * np.float32(255.0)
                out[row, col, 2 - c] = np.uint8(np.rint(min(max(v, np.float32(0.0)), np.float32(255.0))))


# --------------------------------------------------------------------------------------
# Lidar


@nb.njit(cache=True, error_model="numpy")
def lidar_returns(
    distance: NDArray[np.float32],
    normal: NDArray[np.float32],
    directions: NDArray[np.float64],
    material: NDArray[np.uint8],
    blocked: NDArray[np.bool_],
    reflectivity: NDArray[np.float32],
    dropout: NDArray[np.float64],
    fade: NDArray[np.float64],
    min_range: float,
    max_range: float,
    dropout_probability: float,
    reference_range: float,
    weak_return: float,
    cosine: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Indices (ascending) of a sweep's N rays (world directions (N, 3)) that return: a hit
    in [min_range, max_range] not ``blocked`` by the ego's body, not dropped (dropout (N,)
    uniform [0, 1) >= dropout_probability) and strong enough (reflectivity x |cos incidence|
    x (reference_range / range)^2 x fade (N,) >= weak_return). Fills cosine (N,) with
    |cos incidence|."""
    keep = np.empty(distance.size, dtype=np.int64)
    n = 0
    for i in range(distance.size):
        cosine[i] = abs(
            normal[i, 0] * directions[i, 0] + normal[i, 1] * directions[i, 1] + normal[i, 2] * directions[i, 2]
        )
        d = np.float64(distance[i])
        if blocked[i] or not (min_range <= d <= max_range) or dropout[i] < dropout_probability:
            continue
        strength = reflectivity[material[i]] * cosine[i] * (reference_range / max(d, 1e-3)) ** 2
        if strength * fade[i] >= weak_return:
            keep[n] = i
            n += 1
    return keep[:n]

"""The simulated cameras: pixel-centre convention against calibration.camera_models, the
adaptive tracer against casting every pixel, the look of the images, JPEG output, errors."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from calibration import CameraIntrinsics, Modality, load_rig, project_camera
from calibration.transforms import apply_transform, invert_transform
from simulation.errors import SimConfigError
from simulation.materials import Material
from simulation.raycast import SceneCaster
from simulation.scenario import ScenarioConfig, build_scenario
from simulation.sensors.camera import CameraModel, _ground_texture, _sky, pixel_rays
from simulation.sensors.common import sensor_poses

T = 1.0


@pytest.fixture(scope="module")
def rig(repo):
    return load_rig(repo / "config" / "rigs" / "default.yaml")


@pytest.fixture(scope="module")
def city():
    scenario = build_scenario(ScenarioConfig(seed=3, duration_s=4.0))
    return scenario, SceneCaster(scenario)


def _distorted(sensor, D=(-0.38, 0.0, 0.001, -0.002, 0.0)):
    """The sensor with a plumb_bob lens (strong barrel: the image corners have no ray)."""
    K = sensor.camera.intrinsics
    lens = CameraIntrinsics(K=K.K, width=K.width, height=K.height, distortion_model="plumb_bob", D=np.array(D))
    return dataclasses.replace(sensor, spec=dataclasses.replace(sensor.camera, intrinsics=lens))


def _pixel_grid(intrinsics):
    v, u = np.mgrid[0 : intrinsics.height, 0 : intrinsics.width]
    return np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64)


@pytest.mark.parametrize("lens", ["none", "plumb_bob"])
def test_pixel_rays_project_back_onto_their_pixel_centres(rig, lens) -> None:
    sensor = rig.sensor("cam_front")
    sensor = _distorted(sensor) if lens == "plumb_bob" else sensor
    intrinsics = sensor.camera.intrinsics.scaled(0.25)
    rays = pixel_rays(intrinsics).astype(np.float64)
    valid = np.all(np.isfinite(rays), axis=1)
    uv, _, _ = project_camera(np.where(valid[:, None], rays * 7.0, np.nan), intrinsics)
    assert valid.mean() > (0.99 if lens == "none" else 0.9)
    np.testing.assert_allclose(uv[valid], _pixel_grid(intrinsics)[valid], atol=1e-3)
    if lens == "plumb_bob":
        assert not valid[0]  # the corners fold back: no ray
        assert not valid[-1]


@pytest.mark.parametrize("lens", ["none", "plumb_bob"])
def test_world_hits_project_with_the_scaled_intrinsics_to_the_pixel_that_draws_them(rig, city, lens) -> None:
    scenario, caster = city
    sensor = rig.sensor("cam_front_left")
    sensor = _distorted(sensor) if lens == "plumb_bob" else sensor
    model = CameraModel(sensor, scale=0.25)
    assert model.intrinsics == sensor.camera.intrinsics.scaled(0.25)
    trace = model.trace(scenario, caster, T)
    hit = np.flatnonzero(trace.hits.hit)
    assert hit.size > 0.5 * trace.hits.distance.size
    world = trace.origin + trace.hits.distance[hit, None].astype(np.float64) * trace.directions[hit]
    camera = apply_transform(invert_transform(sensor_poses(scenario, sensor, T)[0]), world)
    uv, depth, _ = project_camera(camera, model.intrinsics)
    assert np.all(depth > 0)
    np.testing.assert_allclose(uv, _pixel_grid(model.intrinsics)[hit], atol=2e-3)


def test_actors_are_drawn_where_their_centres_project(rig, city) -> None:
    scenario, caster = city
    checked = 0
    for sensor in rig.of(Modality.CAMERA):
        model = CameraModel(sensor)
        trace = model.trace(scenario, caster, T)
        states = caster.actor_states(T)
        pose = sensor_poses(scenario, sensor, T)[0]
        camera = apply_transform(invert_transform(pose), states.centers)
        uv, _, valid = project_camera(camera, model.intrinsics, min_depth=2.0)
        centre_distance = np.linalg.norm(states.centers - pose[:3, 3], axis=1)
        h, w = model.shape
        for index in np.flatnonzero(valid & (centre_distance < 60.0)):
            u, v = np.rint(uv[index]).astype(int)
            pixel = min(v, h - 1) * w + min(u, w - 1)
            seen = trace.hits.actor[pixel]
            # Either the actor itself, or something in front of its centre hides it.
            assert seen == index or trace.hits.distance[pixel] < centre_distance[index], (sensor.id, index)
            checked += seen == index
    assert checked >= 10


def test_adaptive_tracing_matches_casting_every_pixel(rig, city) -> None:
    scenario, caster = city
    for sensor_id in ("cam_front", "cam_back"):
        sensor = rig.sensor(sensor_id)
        full = CameraModel(sensor, stride=1).trace(scenario, caster, T)
        fast = CameraModel(sensor).trace(scenario, caster, T)
        n = full.hits.distance.size
        assert full.rays_cast == n
        assert fast.rays_cast < 0.3 * n
        a, b = full.hits, fast.hits
        same_hit = a.hit == b.hit
        both = a.hit & b.hit
        close = np.ones(n, dtype=bool)
        close[both] = np.abs(a.distance[both] - b.distance[both]) <= 1e-4 * a.distance[both] + 1e-4
        assert np.mean(same_hit & close) > 0.999
        assert np.mean(a.actor == b.actor) > 0.9995
        assert np.mean(a.material == b.material) > 0.999
        assert np.mean(np.einsum("ij,ij->i", a.normal[both], b.normal[both]) > 0.999) > 0.999


def test_render_and_capture(rig, city) -> None:
    scenario, caster = city
    sensor = rig.sensor("cam_back")
    model = CameraModel(sensor, scale=0.25, jpeg_quality=90)
    image = model.render(scenario, caster, T, np.random.default_rng(0))
    assert image.shape == (225, 400, 3)
    assert image.dtype == np.uint8
    again = model.render(scenario, caster, T, np.random.default_rng(0))
    other = model.render(scenario, caster, T, np.random.default_rng(1))
    np.testing.assert_array_equal(image, again)
    assert not np.array_equal(image, other)
    assert np.mean(np.abs(image.astype(int) - other.astype(int))) < 4.0  # only the sensor noise differs
    encoded = model.capture(scenario, caster, T, np.random.default_rng(0))
    assert encoded.format == "jpeg"
    assert encoded.intrinsics == sensor.camera.intrinsics.scaled(0.25)
    decoded = cv2.imdecode(np.frombuffer(encoded.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == image.shape
    assert np.mean(np.abs(decoded.astype(int) - image.astype(int))) < 4.0


def test_distorted_camera_renders_black_where_it_has_no_ray(rig, city) -> None:
    scenario, caster = city
    model = CameraModel(_distorted(rig.sensor("cam_front")))
    image = model.render(scenario, caster, T, np.random.default_rng(0)).reshape(-1, 3)
    valid = np.all(np.isfinite(pixel_rays(model.intrinsics)), axis=1)
    assert 0 < np.count_nonzero(~valid) < 0.1 * valid.size
    assert image[~valid].max() == 0
    assert image[valid].mean() > 60


def _materials_in_view(model, scenario, caster):
    image = model.render(scenario, caster, T, np.random.default_rng(0)).reshape(-1, 3).astype(float)
    trace = model.trace(scenario, caster, T)
    return image, trace.hits.material


def test_the_image_looks_like_a_street(rig, city) -> None:
    """Sky blue, asphalt grey, grass green, markings bright, windows on buildings (BGR)."""
    scenario, caster = city
    image, material = _materials_in_view(CameraModel(rig.sensor("cam_front")), scenario, caster)

    def mean(m):
        pixels = image[material == m]
        assert len(pixels) > 50, Material(m).name
        return pixels.mean(axis=0)

    b, g, r = mean(Material.NONE)
    assert b > r + 20  # blue sky
    asphalt = mean(Material.ASPHALT)
    assert np.ptp(asphalt) < 12  # grey
    assert 60 < asphalt.mean() < 170
    b, g, r = mean(Material.GRASS)
    assert g > r
    assert g > b
    assert mean(Material.CROSSWALK).mean() > asphalt.mean() + 60
    building = image[material == Material.BUILDING].mean(axis=1)
    dark = building < 0.6 * np.median(building)
    assert 0.1 < dark.mean() < 0.6  # windows
    # Texture: the asphalt varies more than the sensor noise alone would make it.
    assert image[material == Material.ASPHALT].mean(axis=1).std() > 5.0


def test_ground_texture_is_anchored_in_the_world() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-500, 500, 2000), rng.uniform(-500, 500, 2000)
    asphalt = np.full(2000, Material.ASPHALT, dtype=np.uint8)
    near = np.full(2000, 5.0, dtype=np.float32)
    factor = _ground_texture(x, y, asphalt, near)
    assert 0.03 < factor.std() < 0.2
    # A point's brightness depends on where it is on the ground, not on which pixel or
    # which frame draws it: the same points in another order give the same values...
    order = rng.permutation(2000)
    np.testing.assert_array_equal(_ground_texture(x[order], y[order], asphalt, near), factor[order])
    # ...and moving them by 0.5 m changes them.
    assert np.mean(np.abs(_ground_texture(x + 0.5, y, asphalt, near) - factor)) > 0.02
    # Far away the fine grain fades out (it would alias): only the coarse pattern is left.
    far = _ground_texture(x, y, asphalt, np.full(2000, 200.0, dtype=np.float32))
    assert far.std() < factor.std()


def test_sky_is_lighter_at_the_horizon() -> None:
    azimuth = np.linspace(-np.pi, np.pi, 720, endpoint=False)

    def ring(elevation_deg):
        e = np.radians(elevation_deg)
        d = np.stack([np.cos(e) * np.cos(azimuth), np.cos(e) * np.sin(azimuth), np.full_like(azimuth, np.sin(e))])
        return _sky(d.astype(np.float32)).mean(axis=1)

    horizon, high = ring(1.0), ring(35.0)
    assert horizon.mean() > high.mean() + 0.1
    assert horizon[2] - horizon[0] < high[2] - high[0]  # less saturated


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"scale": 0.0}, ("scale", "0.0")),
        ({"scale": 1.5}, ("scale", "1.5")),
        ({"jpeg_quality": 101}, ("jpeg_quality", "101")),
        ({"stride": 0}, ("stride", "0")),
        ({"stride": (2, 9)}, ("stride", "(2, 9)")),
    ],
)
def test_bad_arguments_name_the_camera_and_the_value(rig, kwargs, names) -> None:
    with pytest.raises(SimConfigError) as error:
        CameraModel(rig.sensor("cam_front_right"), **kwargs)
    for name in ("cam_front_right", *names):
        assert name in str(error.value)


def test_a_non_camera_sensor_is_refused_by_name(rig) -> None:
    with pytest.raises(SimConfigError, match="radar_front"):
        CameraModel(rig.sensor("radar_front"))

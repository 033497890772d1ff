"""Camera -> BEV lookup tables: which camera sees which cell, the feature-cell convention,
distortion validity, the static layout, the geometry hash, .npz round trips and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from calibration import CameraIntrinsics, CameraSpec, Modality, Rig, Sensor, default_rig_path, load_rig
from calibration.camera_models import max_undistorted_radius
from perception.bev.camera_lut import (
    DEFAULT_HEIGHTS_M,
    CameraLiftTable,
    build_camera_lut,
    camera_rig_digest,
)
from perception.bev_grid import BevGrid
from perception.errors import BevError

NETWORK_GRID = BevGrid(resolution=0.8)
# Camera optical frame (x right, y down, z forward) -> base_link, looking along +x.
FORWARD = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
MOUNT_HEIGHT = 1.5
FX, CX, CY, WIDTH, HEIGHT = 100.0, 79.5, 39.5, 160, 80
SMALL_GRID = BevGrid(x_min=-10.0, x_max=30.0, y_min=-20.0, y_max=20.0, resolution=1.0)


def _one_camera_rig(model: str = "none", D: tuple[float, ...] = (), width: int = WIDTH, x: float = 0.0) -> Rig:
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = FORWARD
    extrinsic[:3, 3] = [x, 0.0, MOUNT_HEIGHT]
    extrinsic.setflags(write=False)
    intrinsics = CameraIntrinsics(
        K=np.array([[FX, 0.0, CX], [0.0, FX, CY], [0.0, 0.0, 1.0]]),
        width=width,
        height=HEIGHT,
        distortion_model=model,
        D=np.array(D, dtype=np.float64),
    )
    camera = Sensor(
        id="cam",
        modality=Modality.CAMERA,
        topic="/cam/image",
        frame_id="cam",
        rate_hz=10.0,
        time_offset_ns=0,
        latency_ns=0,
        extrinsic=extrinsic,
        spec=CameraSpec(intrinsics=intrinsics),
    )
    return Rig(name="hand_made", base_frame="base_link", reference_sensor="cam", sensors=(camera,))


@pytest.fixture(scope="module")
def default_rig() -> Rig:
    return load_rig(default_rig_path())


@pytest.fixture(scope="module")
def network_table(default_rig: Rig) -> CameraLiftTable:
    return build_camera_lut(default_rig, NETWORK_GRID)


def _cell(grid: BevGrid, x: float, y: float) -> int:
    row, col, inside = grid.cell_of(np.array([[x, y]]))
    assert inside[0]
    return int(row[0] * grid.nx + col[0])


def _cameras_of_cell(table: CameraLiftTable, cell: int) -> set[str]:
    return {table.camera_ids[k] for k in table.camera[:, cell] if k >= 0}


def test_default_rig_front_cell_is_seen_by_the_front_camera_and_rear_cell_by_the_back_one(
    network_table: CameraLiftTable,
) -> None:
    ahead = _cameras_of_cell(network_table, _cell(NETWORK_GRID, 10.0, 0.0))
    behind = _cameras_of_cell(network_table, _cell(NETWORK_GRID, -10.0, 0.0))
    left = _cameras_of_cell(network_table, _cell(NETWORK_GRID, 1.0, 15.0))
    assert "cam_front" in ahead
    assert "cam_back" not in ahead
    assert "cam_back" in behind
    assert "cam_front" not in behind
    assert left <= {"cam_front_left", "cam_back_left"}
    assert left
    # straight ahead at 10 m, every height is inside cam_front's view
    assert np.count_nonzero(network_table.camera[:, _cell(NETWORK_GRID, 10.0, 0.0)] == 0) == len(DEFAULT_HEIGHTS_M)


def test_default_rig_layout_is_static_and_compact(network_table: CameraLiftTable) -> None:
    table = network_table
    cells = NETWORK_GRID.ny * NETWORK_GRID.nx
    assert table.index.shape == table.camera.shape == (table.samples, cells)
    assert table.index.dtype == np.int64
    assert table.camera.dtype == np.int8
    assert table.camera_ids == tuple(c.id for c in load_rig(default_rig_path()).cameras)
    coverage = table.coverage()
    # S is the largest number of valid samples of a cell: some cell fills every slot
    assert coverage.max() == table.samples
    # at most heights x (cameras seeing one cell); neighbouring cameras overlap, three never do here
    per_camera = np.stack([table.coverage(c) > 0 for c in table.camera_ids])
    assert table.samples <= len(table.heights_m) * per_camera.sum(axis=0).max() <= 2 * len(table.heights_m)
    assert (coverage > 0).mean() > 0.99  # six cameras see nearly the whole 102 m square
    assert table.sentinel == 6 * 28 * 50
    assert np.all((table.index == table.sentinel) == (table.camera < 0))


def test_hand_made_camera_sample_is_the_hand_computed_feature_cell() -> None:
    rig = _one_camera_rig()
    table = build_camera_lut(rig, SMALL_GRID, heights_m=(0.0, 1.5), feature_size=(10, 20), image_size=(40, 80))
    cell = _cell(SMALL_GRID, 10.5, 0.5)
    # Ground point (10.5, 0.5, 0): camera frame X = -y = -0.5, Y = 1.5 - z = 1.5, Z = x = 10.5.
    u, v = FX * -0.5 / 10.5 + CX, FX * 1.5 / 10.5 + CY  # 74.74, 53.79 px of the 160x80 image
    # resized by 1/2 to 80x40, stride 4: cell = floor((u + 0.5) / 2 / 4)
    col, row = math.floor((u + 0.5) / 8), math.floor((v + 0.5) / 8)
    assert (row, col) == (6, 9)
    # same column at camera height (Y = 0, v = 39.5 -> row 5)
    assert table.index[:, cell].tolist() == [row * 20 + col, 5 * 20 + col]
    assert table.camera[:, cell].tolist() == [0, 0]


def test_hand_made_camera_table_matches_the_pinhole_model_everywhere() -> None:
    rig = _one_camera_rig()
    heights = (0.0, 0.75, 1.5, 2.5)
    table = build_camera_lut(rig, SMALL_GRID, heights_m=heights, feature_size=(10, 20), image_size=(40, 80))
    x, y = (a.ravel() for a in SMALL_GRID.cell_centers())
    expected = []
    for z in heights:
        depth = x
        with np.errstate(divide="ignore", invalid="ignore"):
            u = FX * -y / depth + CX
            v = FX * (MOUNT_HEIGHT - z) / depth + CY
        ok = (depth >= 0.1) & (u >= 0) & (u < WIDTH) & (v >= 0) & (v < HEIGHT)
        col = np.floor((np.where(ok, u, 0) + 0.5) / 8).astype(int)
        row = np.floor((np.where(ok, v, 0) + 0.5) / 8).astype(int)
        ok &= (col < 20) & (row < 10)
        expected.append(np.where(ok, row * 20 + col, -1))
    for cell in range(x.size):
        wanted = [int(e[cell]) for e in expected if e[cell] >= 0]
        got = table.index[: len(wanted), cell].tolist()
        assert got == wanted, f"cell {cell} at ({x[cell]}, {y[cell]})"
        assert np.all(table.index[len(wanted) :, cell] == table.sentinel)
    assert table.samples == len(heights)
    assert np.all(table.coverage().reshape(-1)[x < 0] == 0)  # behind the camera


def test_distorted_camera_never_uses_fold_back_projections() -> None:
    k1 = -0.5  # r (1 + k1 r^2) stops increasing at r = 1 / sqrt(-3 k1) = 0.816
    rig = _one_camera_rig("plumb_bob", (k1, 0.0, 0.0, 0.0, 0.0), width=400)
    limit = max_undistorted_radius(rig.sensor("cam").camera.intrinsics)
    assert limit == pytest.approx(1 / math.sqrt(-3 * k1))
    grid = BevGrid(x_min=0.0, x_max=20.0, y_min=-20.0, y_max=20.0, resolution=0.5)
    table = build_camera_lut(rig, grid, heights_m=(0.0,), feature_size=(10, 50), image_size=(40, 200))
    x, y = (a.ravel() for a in grid.cell_centers())
    radius = np.hypot(y, MOUNT_HEIGHT) / x  # undistorted normalized radius of the ground points
    with np.errstate(invalid="ignore"):
        u = FX * (-y / x) * (1 + k1 * radius**2) + CX
        v = FX * (MOUNT_HEIGHT / x) * (1 + k1 * radius**2) + CY
    folded_into_image = (radius > limit) & (u >= 0) & (u < 400) & (v >= 0) & (v < HEIGHT)
    assert folded_into_image.sum() > 50  # the lens folds many ground cells back into the picture
    covered = table.coverage().reshape(-1) > 0
    assert not np.any(covered & (radius >= limit))
    assert np.any(covered)


def test_geometry_hash_follows_the_geometry(default_rig: Rig, network_table: CameraLiftTable) -> None:
    rebuilt = build_camera_lut(default_rig, NETWORK_GRID)
    assert rebuilt.geometry_hash() == network_table.geometry_hash()
    assert len(network_table.geometry_hash()) == 64
    other_heights = build_camera_lut(default_rig, NETWORK_GRID, heights_m=(0.0, 1.0))
    assert other_heights.geometry_hash() != network_table.geometry_hash()
    rig, same, moved = _one_camera_rig(), _one_camera_rig(), _one_camera_rig(x=0.01)
    assert camera_rig_digest(rig, ["cam"]) == camera_rig_digest(same, ["cam"])
    assert camera_rig_digest(rig, ["cam"]) != camera_rig_digest(moved, ["cam"])
    table = build_camera_lut(rig, SMALL_GRID, feature_size=(10, 20), image_size=(40, 80))
    assert table.matches(same)
    assert not table.matches(moved)
    assert not table.matches(default_rig)
    moved_table = build_camera_lut(moved, SMALL_GRID, feature_size=(10, 20), image_size=(40, 80))
    assert moved_table.geometry_hash() != table.geometry_hash()


def test_arrays_are_read_only(network_table: CameraLiftTable) -> None:
    with pytest.raises(ValueError, match="read-only"):
        network_table.index[0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        network_table.camera[0, 0] = 1


def test_save_load_round_trip(tmp_path: Path, network_table: CameraLiftTable) -> None:
    path = tmp_path / "camera_lut.npz"
    network_table.save(path)
    loaded = CameraLiftTable.load(path)
    np.testing.assert_array_equal(loaded.index, network_table.index)
    np.testing.assert_array_equal(loaded.camera, network_table.camera)
    assert loaded.camera_ids == network_table.camera_ids
    assert loaded.heights_m == network_table.heights_m
    assert loaded.grid == network_table.grid
    assert (loaded.feature_size, loaded.image_size) == (network_table.feature_size, network_table.image_size)
    assert loaded.geometry_hash() == network_table.geometry_hash()
    assert not loaded.index.flags.writeable


def test_load_rejects_edited_missing_and_broken_files(tmp_path: Path, network_table: CameraLiftTable) -> None:
    path = tmp_path / "lut.npz"
    network_table.save(path)
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}

    edited = tmp_path / "edited.npz"
    np.savez(edited, **{**arrays, "heights_m": np.array([0.0, 0.5, 1.0, 3.0])})
    with pytest.raises(BevError, match=r"edited\.npz.*'geometry_hash'"):
        CameraLiftTable.load(edited)

    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in arrays.items() if k != "camera"})
    with pytest.raises(BevError, match=r"missing\.npz: missing key\(s\) \['camera'\]"):
        CameraLiftTable.load(missing)

    bad_index = tmp_path / "bad_index.npz"
    index = arrays["index"].copy()
    index[0, 0] = -5
    np.savez(bad_index, **{**arrays, "index": index})
    with pytest.raises(BevError, match=r"bad_index\.npz.*sentinel"):
        CameraLiftTable.load(bad_index)

    bad_camera = tmp_path / "bad_camera.npz"
    camera = arrays["camera"].astype(np.int64)
    camera[0, 0] = 300
    np.savez(bad_camera, **{**arrays, "camera": camera})
    with pytest.raises(BevError, match=r"bad_camera\.npz.*camera entries must be in \[-1, 6\), got range \[-1, 300\]"):
        CameraLiftTable.load(bad_camera)

    not_npz = tmp_path / "junk.npz"
    not_npz.write_bytes(b"not a zip file")
    with pytest.raises(BevError, match=r"junk\.npz: not a readable \.npz"):
        CameraLiftTable.load(not_npz)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(BevError, match=r"truncated\.npz: not a readable \.npz"):
        CameraLiftTable.load(truncated)
    with pytest.raises(BevError, match=r"absent\.npz: not a readable \.npz"):
        CameraLiftTable.load(tmp_path / "absent.npz")

    future = tmp_path / "future.npz"
    np.savez(future, **{**arrays, "version": np.int64(99)})
    with pytest.raises(BevError, match=r"future\.npz: key 'version' is 99"):
        CameraLiftTable.load(future)


def test_bad_build_arguments_name_the_value(default_rig: Rig) -> None:
    grid = BevGrid(x_min=0.0, x_max=8.0, y_min=0.0, y_max=8.0, resolution=1.0)
    with pytest.raises(BevError, match=r"'cam_top' is not a camera of rig 'nuscenes_like_default'.*cam_front"):
        build_camera_lut(default_rig, grid, cameras=["cam_front", "cam_top"])
    with pytest.raises(BevError, match=r"'lidar_top' is not a camera"):
        build_camera_lut(default_rig, grid, cameras=["lidar_top"])
    with pytest.raises(BevError, match=r"duplicate camera id\(s\) \['cam_back'\]"):
        build_camera_lut(default_rig, grid, cameras=["cam_back", "cam_front", "cam_back"])
    with pytest.raises(BevError, match=r"the string 'cam_front'"):
        build_camera_lut(default_rig, grid, cameras="cam_front")
    with pytest.raises(BevError, match=r"heights_m .* got \[0.0, nan\]"):
        build_camera_lut(default_rig, grid, heights_m=(0.0, float("nan")))
    with pytest.raises(BevError, match=r"heights_m .* got \[1.0, 1.0\]"):
        build_camera_lut(default_rig, grid, heights_m=(1.0, 1.0))
    with pytest.raises(BevError, match=r"image_size \(224, 400\) .* feature_size \(28, 49\)"):
        build_camera_lut(default_rig, grid, feature_size=(28, 49))
    with pytest.raises(BevError, match=r"feature_size must be a pair of positive integers.*\(0, 50\)"):
        build_camera_lut(default_rig, grid, feature_size=(0, 50))
    with pytest.raises(BevError, match=r"image_size must be a pair .*224\.0"):
        build_camera_lut(default_rig, grid, image_size=(224.0, 400))  # type: ignore[arg-type]


def test_unknown_camera_in_table_queries_names_it(network_table: CameraLiftTable) -> None:
    with pytest.raises(BevError, match=r"unknown camera id 'cam_rear'; table cameras: \['cam_front'"):
        network_table.coverage("cam_rear")

"""Camera lift (numba): means over the table's samples, camera presence, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import default_rig_path, load_rig
from perception.bev.camera_lift import lift_cameras
from perception.bev.camera_lut import CameraLiftTable, build_camera_lut
from perception.bev_grid import BevGrid
from perception.errors import BevError

GRID = BevGrid(resolution=0.8)


@pytest.fixture(scope="module")
def table() -> CameraLiftTable:
    return build_camera_lut(load_rig(default_rig_path()), GRID)


def _features(table: CameraLiftTable, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((table.num_cameras, channels, *table.feature_size)).astype(np.float32)


def _reference(features: np.ndarray, table: CameraLiftTable, present: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Per-cell mean written out sample by sample, decoding the index by hand."""
    hf, wf = table.feature_size
    out = np.zeros((features.shape[1], cells.size), dtype=np.float64)
    for j, cell in enumerate(cells):
        values = []
        for s in range(table.samples):
            k = int(table.camera[s, cell])
            if k >= 0 and present[k]:
                position = int(table.index[s, cell]) - k * hf * wf
                values.append(features[k, :, position // wf, position % wf])
        if values:
            out[:, j] = np.mean(values, axis=0)
    return out


def test_constant_features_lift_to_the_constant_where_covered_and_zero_elsewhere(table: CameraLiftTable) -> None:
    features = np.full((table.num_cameras, 3, *table.feature_size), 2.5, dtype=np.float32)
    bev = lift_cameras(features, table)
    assert bev.shape == (3, *GRID.shape)
    assert bev.dtype == np.float32
    assert bev.flags.c_contiguous
    covered = table.coverage() > 0
    assert np.count_nonzero(~covered) > 0  # unseen: under the car and a thin wedge at the back left
    np.testing.assert_array_equal(bev[:, covered], 2.5)
    np.testing.assert_array_equal(bev[:, ~covered], 0.0)


def test_lift_equals_a_sample_by_sample_mean(table: CameraLiftTable) -> None:
    features = _features(table, 8)
    present = np.array([True, True, False, True, True, True])
    bev = lift_cameras(features, table, present)
    cells = np.random.default_rng(1).choice(GRID.ny * GRID.nx, 400, replace=False)
    expected = _reference(features, table, present, cells)
    np.testing.assert_allclose(bev.reshape(8, -1)[:, cells], expected, atol=1e-6)


def test_feature_cell_per_camera_reaches_the_cell_that_camera_sees(table: CameraLiftTable) -> None:
    # every camera's feature map holds its position + 1; a cell seen by one camera gets that value
    features = np.zeros((table.num_cameras, 1, *table.feature_size), dtype=np.float32)
    features += np.arange(1, table.num_cameras + 1, dtype=np.float32)[:, None, None, None]
    bev = lift_cameras(features, table)[0]
    front = table.camera_ids.index("cam_front") + 1
    back = table.camera_ids.index("cam_back") + 1
    row, col, _ = GRID.cell_of(np.array([[20.0, 0.0], [-20.0, 0.0]]))
    assert bev[row[0], col[0]] == front
    assert bev[row[1], col[1]] == back


def test_absent_camera_is_left_out_and_the_mean_renormalized(table: CameraLiftTable) -> None:
    features = _features(table, 4, seed=2)
    k = table.camera_ids.index("cam_front")
    present = np.ones(table.num_cameras, dtype=np.bool_)
    present[k] = False
    full = lift_cameras(features, table).reshape(4, -1)
    without = lift_cameras(features, table, present).reshape(4, -1)
    mine = table.coverage("cam_front").reshape(-1) > 0
    others = (table.coverage().reshape(-1) - table.coverage("cam_front").reshape(-1)) > 0
    only_front = mine & ~others
    shared = mine & others
    assert only_front.any()
    assert shared.any()
    np.testing.assert_array_equal(without[:, only_front], 0.0)
    assert not np.allclose(full[:, only_front], 0.0)
    # shared cells: mean of the other cameras' samples only
    cells = np.flatnonzero(shared)[:200]
    np.testing.assert_allclose(without[:, cells], _reference(features, table, present, cells), atol=1e-6)
    np.testing.assert_array_equal(without[:, ~mine], full[:, ~mine])
    # NaN in an absent camera's map is never read
    features[k] = np.nan
    assert np.isfinite(lift_cameras(features, table, present)).all()
    assert not lift_cameras(features, table, np.zeros(table.num_cameras, dtype=np.bool_)).any()


def test_float64_features_are_converted(table: CameraLiftTable) -> None:
    features = _features(table, 2)
    bev = lift_cameras(features.astype(np.float64), table)
    assert bev.dtype == np.float32
    np.testing.assert_array_equal(bev, lift_cameras(features, table))


def test_bad_inputs_name_the_value(table: CameraLiftTable) -> None:
    good = _features(table, 2)
    with pytest.raises(
        BevError, match=r"shape \(6, 2, 28, 49\), expected \(6, 'C', 28, 50\) for cameras \['cam_front'"
    ):
        lift_cameras(good[..., :49], table)
    with pytest.raises(BevError, match=r"shape \(5, 2, 28, 50\)"):
        lift_cameras(good[:5], table)
    with pytest.raises(BevError, match=r"shape \(2, 28, 50\)"):
        lift_cameras(good[0], table)
    with pytest.raises(BevError, match=r"floating point .* got dtype int32"):
        lift_cameras(good.astype(np.int32), table)
    with pytest.raises(BevError, match=r"camera_present must be a \(6,\) bool array .* got shape \(5,\) dtype bool"):
        lift_cameras(good, table, np.ones(5, dtype=np.bool_))
    with pytest.raises(BevError, match=r"got shape \(6,\) dtype float32"):
        lift_cameras(good, table, np.ones(6, dtype=np.float32))

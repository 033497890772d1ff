"""Camera lift in torch: equal to the numba lift, camera presence, ONNX export (opset 17) run
in ONNX Runtime, static shapes, and bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from calibration import default_rig_path, load_rig  # noqa: E402
from perception.bev.camera_lift import lift_cameras  # noqa: E402
from perception.bev.camera_lift_torch import CameraLift  # noqa: E402
from perception.bev.camera_lut import CameraLiftTable, build_camera_lut  # noqa: E402
from perception.bev_grid import BevGrid  # noqa: E402
from perception.errors import BevError  # noqa: E402

GRID = BevGrid(resolution=0.8)


@pytest.fixture(scope="module")
def table() -> CameraLiftTable:
    return build_camera_lut(load_rig(default_rig_path()), GRID)


def _inputs(table: CameraLiftTable, batch: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    features = rng.standard_normal((batch, table.num_cameras, channels, *table.feature_size)).astype(np.float32)
    present = np.ones((batch, table.num_cameras), dtype=np.float32)
    if batch > 1:
        present[1, table.camera_ids.index("cam_front")] = 0.0
        present[1, table.camera_ids.index("cam_back_left")] = 0.0
    return features, present


def test_torch_lift_equals_the_numba_lift(table: CameraLiftTable) -> None:
    features, present = _inputs(table, 3, 16)
    present[2] = 0.0
    lift = CameraLift(table).eval()
    with torch.inference_mode():
        bev = lift(torch.from_numpy(features), torch.from_numpy(present)).numpy()
    assert bev.shape == (3, 16, *GRID.shape)
    for b in range(3):
        expected = lift_cameras(features[b], table, present[b] > 0)
        assert np.max(np.abs(bev[b] - expected)) <= 1e-5
    assert not bev[2].any()


def test_absent_camera_is_zeroed_and_the_mean_renormalized(table: CameraLiftTable) -> None:
    features, _ = _inputs(table, 1, 2)
    k = table.camera_ids.index("cam_front")
    features[0, k] = 100.0  # far from every other camera's values
    present = torch.ones(1, table.num_cameras)
    lift = CameraLift(table).eval()
    with torch.inference_mode():
        full = lift(torch.from_numpy(features), present).numpy()[0].reshape(2, -1)
        present[0, k] = 0.0
        without = lift(torch.from_numpy(features), present).numpy()[0].reshape(2, -1)
    front = table.coverage("cam_front").reshape(-1) > 0
    others = (table.coverage().reshape(-1) - table.coverage("cam_front").reshape(-1)) > 0
    assert np.all(full[:, front] > 1.0)  # the front camera's 100s pull every front cell up
    np.testing.assert_array_equal(without[:, front & ~others], 0.0)
    assert np.all(np.abs(without[:, front & others]) < 10.0)  # renormalized over the others only
    np.testing.assert_array_equal(without[:, ~front], full[:, ~front])


def test_onnx_export_runs_in_onnxruntime_with_the_same_output(tmp_path: Path, table: CameraLiftTable) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    features, present = _inputs(table, 2, 8)
    lift = CameraLift(table).eval()
    args = (torch.from_numpy(features), torch.from_numpy(present))
    path = tmp_path / "camera_lift.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated
        torch.onnx.export(
            lift,
            args,
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["features", "camera_present"],
            output_names=["bev"],
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    ops = {node.op_type for node in model.graph.node}
    assert "Gather" in ops
    assert not {op for op in ops if op.startswith("Scatter") or op in ("NonZero", "Loop", "If")}
    output_shape = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert output_shape == [2, 8, *GRID.shape]
    with torch.inference_mode():
        expected = lift(*args).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"features": features, "camera_present": present})
    assert np.max(np.abs(got - expected)) <= 1e-5


def test_buffers_follow_the_table_and_the_state_dict(table: CameraLiftTable) -> None:
    lift = CameraLift(table)
    state = lift.state_dict()
    assert set(state) == {"index", "camera_slot"}
    assert state["index"].shape == (table.samples * GRID.ny * GRID.nx,)
    np.testing.assert_array_equal(state["index"].numpy(), table.index.reshape(-1))
    assert int(state["camera_slot"].max()) == table.num_cameras  # the always-absent slot of invalid samples
    assert not list(lift.parameters())


def test_bad_inputs_name_the_value(table: CameraLiftTable) -> None:
    lift = CameraLift(table)
    with pytest.raises(BevError, match=r"shape \(1, 5, 4, 28, 50\), expected \(B, 6, C, 28, 50\)"):
        lift(torch.zeros(1, 5, 4, 28, 50), torch.ones(1, 5))
    with pytest.raises(BevError, match=r"shape \(1, 6, 4, 50, 28\)"):
        lift(torch.zeros(1, 6, 4, 50, 28), torch.ones(1, 6))
    with pytest.raises(BevError, match=r"camera_present has shape \(2, 6\), expected \(1, 6\)"):
        lift(torch.zeros(1, 6, 4, 28, 50), torch.ones(2, 6))
    with pytest.raises(BevError, match=r"floating point .* torch.int64"):
        lift(torch.zeros(1, 6, 4, 28, 50, dtype=torch.int64), torch.ones(1, 6))


def test_per_item_tables_as_inputs_equal_per_item_lifts(table: CameraLiftTable) -> None:
    """lift_features with a different table per batch item (training augmentation)."""
    from perception.bev.camera_lift_torch import lift_features

    rig = load_rig(default_rig_path())
    turned = np.eye(4)
    turned[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]  # the grid frame is base_link turned by 90 deg
    other = build_camera_lut(rig, GRID, samples=table.samples, lookup_transform=turned)
    assert other.samples == table.samples
    assert not np.array_equal(other.index, table.index)
    features, present = _inputs(table, 2, 8)
    index = np.stack([table.lift_inputs()[0], other.lift_inputs()[0]])
    slots = np.stack([table.lift_inputs()[1], other.lift_inputs()[1]])
    with torch.inference_mode():
        bev = lift_features(
            torch.from_numpy(features),
            torch.from_numpy(present),
            torch.from_numpy(index),
            torch.from_numpy(slots),
            GRID.shape,
        ).numpy()
    for b, t in enumerate((table, other)):
        np.testing.assert_allclose(bev[b], lift_cameras(features[b], t, present[b] > 0), atol=1e-5)


def test_lookup_transform_turns_the_coverage(table: CameraLiftTable) -> None:
    """A grid turned by +90 deg sees the front camera's cells on its -y side."""
    rig = load_rig(default_rig_path())
    turned = np.eye(4)
    turned[:2, :2] = [[0.0, 1.0], [-1.0, 0.0]]  # grid point (x, y) -> base_link (y, -x)
    other = build_camera_lut(rig, GRID, samples=table.samples, lookup_transform=turned)
    front = table.coverage("cam_front")
    turned_front = other.coverage("cam_front")
    # base_link (10, 0) is grid (0, 10): row along +y
    row, col, _ = GRID.cell_of(np.array([[10.0, 0.0]]))
    row_t, col_t, _ = GRID.cell_of(np.array([[0.0, 10.0]]))
    assert front[row[0], col[0]] > 0
    assert turned_front[row_t[0], col_t[0]] > 0
    assert turned_front[row[0], col[0]] == 0


def test_fixed_samples_out_of_range_is_refused() -> None:
    with pytest.raises(BevError, match="samples must be in"):
        build_camera_lut(load_rig(default_rig_path()), GRID, samples=0)

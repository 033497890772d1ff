"""Drivable area fused over time (perception.drivable_memory)."""

from __future__ import annotations

import numpy as np
import pytest

from perception.bev_grid import BevGrid
from perception.drivable_memory import DrivableMemory, DrivableMemoryConfig
from perception.ground_truth import Boxes
from perception.model.predictor import Prediction

GRID = BevGrid()
XS = GRID.x_min + (np.arange(GRID.nx) + 0.5) * GRID.resolution
YS = GRID.y_min + (np.arange(GRID.ny) + 0.5) * GRID.resolution
STEP_NS = 100_000_000


def _pose(x: float = 0.0, y: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    pose = np.eye(4)
    pose[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    pose[:2, 3] = [x, y]
    return pose


def _patch(x_range: tuple[float, float], y_range: tuple[float, float]) -> np.ndarray:
    inside_x = (x_range[0] <= XS) & (x_range[1] > XS)
    inside_y = (y_range[0] <= YS) & (y_range[1] > YS)
    return (inside_y[:, None] & inside_x[None, :]).astype(np.float32)


def _cell(x: float, y: float) -> tuple[int, int]:
    return int(np.argmin(np.abs(YS - y))), int(np.argmin(np.abs(XS - x)))


def _weight(distance: float) -> float:
    config = DrivableMemoryConfig()
    return 1.0 / (1.0 + (distance / config.half_weight_distance_m) ** config.falloff)


def test_a_still_car_seeing_the_same_road_keeps_it() -> None:
    memory = DrivableMemory(GRID)
    road = _patch((-50, 50), (-4, 4)) * 0.9
    for k in range(5):
        fused = memory.update(road, _pose(), k * STEP_NS)
    np.testing.assert_allclose(fused, road, atol=1e-6)
    assert (memory.resets, memory.fused) == (1, 4)


def test_memory_moves_with_the_car() -> None:
    """The car drives 4 m forward: what was seen at x = 22 m is now at x = 18 m, blended with
    the current frame by the distance weights of both observations."""
    memory = DrivableMemory(GRID)
    memory.update(_patch((20, 24), (-2, 2)), _pose(), 0)
    fused = memory.update(np.zeros((GRID.ny, GRID.nx), np.float32), _pose(x=4.0), STEP_NS)
    carried = DrivableMemoryConfig().decay * _weight(22.2)
    assert fused[_cell(18.2, 0.2)] == pytest.approx(carried / (carried + _weight(18.2)), rel=1e-3)
    assert fused[_cell(22.2, 0.2)] == 0.0, "the world there was not drivable before either"
    assert fused[_cell(18.2, 6.2)] == 0.0


def test_memory_turns_with_the_car() -> None:
    """After a 90 degree left turn in place, what was 20 m ahead is 20 m to the right."""
    memory = DrivableMemory(GRID)
    memory.update(_patch((18, 22), (-2, 2)), _pose(), 0)
    fused = memory.update(np.zeros((GRID.ny, GRID.nx), np.float32), _pose(yaw=np.pi / 2), STEP_NS)
    row, col = np.unravel_index(np.argmax(fused), fused.shape)
    assert (XS[col], YS[row]) == (pytest.approx(0.0, abs=2.0), pytest.approx(-20.0, abs=2.0))


def test_far_road_seen_earlier_from_near_is_recovered() -> None:
    """A straight road |y| < 4 m; the 'network' is right within 15 m and undecided (0.4)
    beyond: driving on at 10 m/s, the road behind is carried from when it was near."""
    memory = DrivableMemory(GRID)
    distance = np.maximum(np.abs(XS)[None, :], np.abs(YS)[:, None])
    truth = np.broadcast_to(np.abs(YS)[:, None] < 4, distance.shape)
    frame = np.where(distance < 15, truth.astype(np.float32), np.float32(0.4))
    for k in range(40):
        fused = memory.update(frame, _pose(x=1.0 * k), k * STEP_NS)

    def iou(pred: np.ndarray) -> float:
        return float((pred & truth).sum() / (pred | truth).sum())

    behind = XS[None, :] < -20
    assert iou(frame >= 0.5) < 0.3  # 30 m of the 102 m road
    assert (fused >= 0.5)[truth & behind].mean() > 0.9, "the road behind, seen at < 15 m, is kept"
    assert iou(fused >= 0.5) > 0.6  # and the 36 m behind it


@pytest.mark.parametrize(
    ("pose", "stamp_ns", "why"),
    [(None, STEP_NS, "no odometry"), (_pose(x=1.0), -STEP_NS, "time went back"), (_pose(x=1.0), 10**9, "a 1 s gap")],
)
def test_the_memory_starts_afresh(pose: np.ndarray | None, stamp_ns: int, why: str) -> None:
    memory = DrivableMemory(GRID)
    memory.update(np.ones((GRID.ny, GRID.nx), np.float32), _pose(), 0)
    frame = _patch((-10, 10), (-3, 3))
    np.testing.assert_array_equal(memory.update(frame, pose, stamp_ns), frame, err_msg=why)
    assert memory.resets == 2


def test_the_step_rewrites_only_the_drivable_grid() -> None:
    memory = DrivableMemory(GRID)
    logits = np.full((2, GRID.ny, GRID.nx), -5.0, np.float32)
    logits[0, _patch((-5, 5), (-5, 5)) > 0] = 5.0
    segmentation = np.zeros((2, GRID.ny, GRID.nx), np.uint8)
    segmentation[1, 0, 0] = 1
    prediction = Prediction(Boxes.empty(), segmentation, {"inference": 1.0}, logits)
    stepped = memory(prediction, _pose(), 0)
    np.testing.assert_array_equal(stepped.segmentation[0], (logits[0] > 0).astype(np.uint8))
    np.testing.assert_array_equal(stepped.segmentation[1], segmentation[1])
    assert set(stepped.timings_ms) == {"inference", "drivable_memory"}
    without_logits = Prediction(Boxes.empty(), segmentation, {})
    assert memory(without_logits, _pose(), STEP_NS) is without_logits


def test_bad_input_is_named() -> None:
    memory = DrivableMemory(GRID)
    with pytest.raises(ValueError, match=r"drivable probability must be \(256, 256\), got \(128, 128\)"):
        memory.update(np.zeros((128, 128)), _pose(), 0)
    with pytest.raises(ValueError, match=r"DrivableMemoryConfig.decay must be in \[0, 1\], got 1.5"):
        DrivableMemoryConfig(decay=1.5)
    with pytest.raises(ValueError, match=r"DrivableMemoryConfig.max_gap_s must be finite and > 0, got 0.0"):
        DrivableMemoryConfig(max_gap_s=0.0)

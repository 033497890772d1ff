"""Radar Doppler correction of detection velocities (perception.radar_velocity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration import load_rig
from perception.classes import CLASSES
from perception.ground_truth import Boxes
from perception.model.config import ModelConfig
from perception.model.predictor import Prediction
from perception.radar_velocity import RadarVelocityConfig, RadarVelocityFusion, refine_velocities

RIG = Path(__file__).resolve().parents[2] / "bags" / "sample_city_4s" / "rig.yaml"
FRONT_RADAR = np.array([[3.6, 0.0]])
CAR = CLASSES.index("car")


def _car(center: tuple[float, float], velocity: tuple[float, float], yaw: float = 0.0) -> Boxes:
    return Boxes.create(
        centers=[[center[0], center[1], 0.8]],
        sizes=[[4.5, 1.9, 1.6]],
        yaws=[yaw],
        labels=[CAR],
        velocities=[velocity],
        scores=[0.9],
    )


def _detections(
    xy: list[tuple[float, float]],
    true_velocity: tuple[float, float],
    mount: np.ndarray = FRONT_RADAR[0],
    lag: float = 0.0,
) -> np.ndarray:
    """(R, 7) rows as perception.ego_motion.radar makes them: (vx, vy) = (v . los) los."""
    rows = []
    for x, y in xy:
        los = np.array([x, y]) - mount
        los /= np.linalg.norm(los)
        radial = float(los @ np.asarray(true_velocity))
        rows.append([x, y, 0.5, 10.0, radial * los[0], radial * los[1], lag])
    return np.array(rows, dtype=np.float32)


def test_radial_component_moves_to_the_radar_and_tangential_stays_the_networks() -> None:
    truth = (8.0, 1.0)
    boxes = _car((25.0, 0.0), (6.0, 3.0))
    radar = _detections([(22.8, -0.5), (22.8, 0.4), (23.0, 0.0)], truth)
    refined, used = refine_velocities(boxes, radar, FRONT_RADAR)
    assert used.tolist() == [3]
    vx, vy = refined.velocities[0]
    # three 0.3 m/s measurements against a 0.7 m/s prior: 94 % of the way from 6 to 8
    assert vx == pytest.approx(8.0, abs=0.15), "the line of sight is almost +x: vx is measured"
    assert vy == pytest.approx(3.0, abs=0.25), "vy is not seen by the radar: the network's value stays"
    assert np.array_equal(refined.centers, boxes.centers)
    assert np.array_equal(refined.scores, boxes.scores)


def test_crossing_target_keeps_the_networks_speed_along_its_path() -> None:
    """A car crossing in front (line of sight across its motion): the radar says ~0 radial."""
    truth = (10.0, 0.0)
    boxes = _car((0.0, 15.0), (9.0, 0.8), yaw=0.0)
    mount = np.array([[3.4, 0.8]])
    radar = _detections([(-1.0, 14.1), (1.5, 14.1)], truth, mount=mount[0])
    refined, used = refine_velocities(boxes, radar, mount)
    assert used.tolist() == [2]
    vx, vy = refined.velocities[0]
    assert vx == pytest.approx(9.0, abs=0.6), "tangential: mostly the network's"
    assert abs(vy) < 0.3, "radial: pulled from 0.8 toward the radar's ~0"


def test_static_clutter_at_the_edge_of_a_moving_car_is_rejected() -> None:
    truth = (8.0, 0.0)
    boxes = _car((25.0, 0.0), (7.0, 0.0))
    own = _detections([(22.8, -0.5), (22.8, 0.4), (23.0, 0.0)], truth)
    clutter = _detections([(22.6, 1.3)], (0.0, 0.0))  # a pole beside it: within the margin
    refined, used = refine_velocities(boxes, np.concatenate([own, clutter]), FRONT_RADAR)
    assert used.tolist() == [3], "the pole's 0 m/s disagrees with the car's returns by 8 m/s"
    assert refined.velocities[0, 0] == pytest.approx(8.0, abs=0.1)


def test_association_follows_the_box_over_the_scan_lag() -> None:
    """A scan 0.1 s older than the frame saw a 12 m/s car 1.2 m further back."""
    truth = (12.0, 0.0)
    boxes = _car((25.0, 0.0), (11.0, 0.0))
    radar = _detections([(22.75 - 1.2, 0.0)], truth, lag=0.1)
    refined, used = refine_velocities(boxes, radar, FRONT_RADAR)
    assert used.tolist() == [1]
    assert refined.velocities[0, 0] > 11.5
    radar[:, 6] = 0.0  # the same point stamped at the frame: 1.2 m behind the box, beyond the margin
    _, used = refine_velocities(boxes, radar, FRONT_RADAR)
    assert used.tolist() == [0]


def test_a_still_target_uses_the_bearing_from_the_nearest_radar() -> None:
    """A parked car (radial speed ~0: no direction in the vector) the network thinks moves."""
    boxes = _car((20.0, 0.0), (1.2, 0.0))
    mounts = np.array([[-1.0, 0.0], [3.6, 0.0]])
    radar = _detections([(17.8, 0.2), (17.8, -0.3)], (0.0, 0.0))
    refined, used = refine_velocities(boxes, radar, mounts)
    assert used.tolist() == [2]
    assert abs(refined.velocities[0, 0]) < 0.3


def test_nothing_to_do_leaves_boxes_unchanged() -> None:
    boxes = Boxes.concatenate([_car((25.0, 0.0), (6.0, 3.0)), _car((40.0, 10.0), (np.nan, np.nan))])
    radar = _detections([(22.8, 0.0), (37.8, 10.0)], (8.0, 0.0))
    refined, used = refine_velocities(boxes, radar[:0], FRONT_RADAR)
    assert refined is boxes
    assert used.tolist() == [0, 0]
    refined, used = refine_velocities(boxes, radar, FRONT_RADAR)
    assert used.tolist() == [1, 0], "an unknown (NaN) network velocity is not made up from one component"
    assert np.isnan(refined.velocities[1]).all()
    far = _detections([(60.0, -20.0)], (8.0, 0.0))
    refined, used = refine_velocities(boxes, far, FRONT_RADAR)
    assert used.tolist() == [0, 0]
    assert np.array_equal(refined.velocities[0], boxes.velocities[0])
    empty = Boxes.empty()
    assert refine_velocities(empty, radar, FRONT_RADAR)[0] is empty


def test_bad_arguments_are_named() -> None:
    boxes = _car((25.0, 0.0), (6.0, 3.0))
    with pytest.raises(ValueError, match=r"radar detections must be \(R, 7\), got shape \(3, 5\)"):
        refine_velocities(boxes, np.zeros((3, 5), np.float32), FRONT_RADAR)
    with pytest.raises(ValueError, match="radar_xy: no radar mount"):
        refine_velocities(boxes, _detections([(22.8, 0.0)], (8.0, 0.0)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"RadarVelocityConfig.radar_sigma_mps must be finite and > 0, got 0.0"):
        RadarVelocityConfig(radar_sigma_mps=0.0)
    with pytest.raises(ValueError, match=r"RadarVelocityConfig.margin_m must be finite and >= 0, got nan"):
        RadarVelocityConfig(margin_m=float("nan"))


def test_the_step_uses_the_rigs_radars_and_stays_off_for_a_model_without_radar() -> None:
    rig = load_rig(RIG)
    prediction = Prediction(_car((25.0, 0.0), (6.0, 3.0)), np.zeros((2, 4, 4), np.uint8), {"inference": 1.0})
    step = RadarVelocityFusion(rig, ModelConfig())
    assert step.enabled
    assert step.radar_xy.shape == (len([s for s in rig.sensors if s.modality.value == "radar"]), 2)
    front = step.radar_xy[np.argmax(step.radar_xy[:, 0])]
    radar = _detections([(22.8, -0.5), (22.8, 0.4)], (8.0, 1.0), mount=front)
    fused = step(prediction, radar)
    assert fused.boxes.velocities[0, 0] == pytest.approx(8.0, abs=0.2)
    assert set(fused.timings_ms) == {"inference", "radar_velocity"}
    lidar_only = RadarVelocityFusion(rig, ModelConfig(modalities=("lidar",)))
    assert not lidar_only.enabled
    assert lidar_only(prediction, radar) is prediction
    assert RadarVelocityFusion(rig, ModelConfig(), enabled=False)(prediction, radar) is prediction

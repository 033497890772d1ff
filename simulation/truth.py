"""Ground truth of a simulated sweep: the actors as boxes in base_link, and BEV rasters.

Boxes are taken at the sweep's stamp (its last firing), like nuScenes annotations at the
lidar timestamp. ``num_lidar_points`` counts the sweep's returns that hit the actor.
Rasters follow perception.bev_grid (rows along +y, columns along +x, base_link).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes, FrameTruth
from simulation.raycast import SceneCaster

#: Actors farther than this from base_link (metres, horizontally) are not annotated.
ANNOTATION_RANGE_M = 75.0


def frame_truth(caster: SceneCaster, t: float, stamp_ns: int, lidar_actor_hits: NDArray[np.int32]) -> FrameTruth:
    """Boxes of every actor within ANNOTATION_RANGE_M of the ego at time ``t`` seconds.

    lidar_actor_hits: (N,) int32 actor index of each point of the sweep (-1: static world).
    """
    scenario = caster.scenario
    states = caster.actor_states(t)
    pose = scenario.ego.poses(np.array([t]))[0]
    rotation, origin = pose[:3, :3], pose[:3, 3]
    centers = (states.centers - origin) @ rotation  # world -> base_link
    ego_yaw = np.arctan2(rotation[1, 0], rotation[0, 0])
    yaws = np.mod(states.yaws - ego_yaw + np.pi, 2 * np.pi) - np.pi
    velocities = states.velocities @ rotation[:2, :2]  # world axes -> base_link axes
    counts = np.bincount(lidar_actor_hits[lidar_actor_hits >= 0], minlength=len(scenario.actors))
    near = np.hypot(centers[:, 0], centers[:, 1]) <= ANNOTATION_RANGE_M
    actors = scenario.actors
    boxes = Boxes.create(
        centers[near],
        actors.sizes[near],
        yaws[near],
        actors.labels[near],
        velocities=velocities[near],
        track_ids=actors.track_ids[near],
        num_lidar_points=counts[near],
    )
    return FrameTruth(stamp_ns=stamp_ns, boxes=boxes, ego_pose=pose)


def drivable_raster(caster: SceneCaster, t: float, grid: BevGrid) -> NDArray[np.uint8]:
    """(ny, nx) uint8 {0, 1}: road surface under each BEV cell centre at time ``t``."""
    pose = caster.scenario.ego.poses(np.array([t]))[0]
    x, y = grid.cell_centers()
    local = np.stack([x.ravel(), y.ravel()], axis=1)
    world = local @ pose[:2, :2].T + pose[:2, 3]
    return caster.scenario.world.ground.drivable(world).reshape(grid.shape).astype(np.uint8)

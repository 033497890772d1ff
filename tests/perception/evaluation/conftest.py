"""Synthetic detection sets for the evaluation tests: plausible ground truth and noisy
predictions (centre / size / yaw / velocity noise, misses, duplicates, false positives)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from perception.classes import CLASSES
from perception.ground_truth import Boxes

# Typical (length, width, height) per class, metres.
_SIZES = {
    "car": (4.6, 1.9, 1.7),
    "truck": (7.0, 2.5, 3.0),
    "construction_vehicle": (6.5, 2.8, 3.2),
    "bus": (11.0, 2.9, 3.5),
    "trailer": (12.0, 2.9, 3.8),
    "barrier": (0.5, 2.5, 1.0),
    "motorcycle": (2.1, 0.8, 1.5),
    "bicycle": (1.7, 0.6, 1.3),
    "pedestrian": (0.7, 0.7, 1.75),
    "traffic_cone": (0.4, 0.4, 1.0),
}

Frame = tuple[Boxes, Boxes]
SceneFactory = Callable[..., list[Frame]]


def _truth(rng: np.random.Generator, labels: np.ndarray) -> Boxes:
    n = len(labels)
    radius = 62.0 * np.sqrt(rng.uniform(0.0, 1.0, n))  # some beyond every class range
    angle = rng.uniform(-np.pi, np.pi, n)
    centers = np.stack([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(0.5, 1.5, n)], axis=1)
    sizes = np.array([_SIZES[CLASSES[label]] for label in labels]).reshape(n, 3) * rng.uniform(0.8, 1.2, (n, 3))
    velocities = rng.normal(0.0, 3.0, (n, 2))
    velocities[rng.uniform(size=n) < 0.15] = np.nan  # unknown velocity
    points = rng.integers(1, 400, n)
    points[rng.uniform(size=n) < 0.1] = 0  # no lidar return: not evaluated
    points[rng.uniform(size=n) < 0.1] = -1  # unknown: evaluated
    return Boxes.create(
        centers, sizes, rng.uniform(-np.pi, np.pi, n), labels, velocities=velocities, num_lidar_points=points
    )


def _predictions(rng: np.random.Generator, gt: Boxes, class_labels: Sequence[int], false_positives: int) -> Boxes:
    detected = np.flatnonzero(rng.uniform(size=len(gt)) < 0.8)
    duplicates = detected[rng.uniform(size=len(detected)) < 0.1]
    source = np.concatenate([detected, duplicates])
    n = len(source)
    centers = gt.centers[source] + np.concatenate([rng.normal(0.0, 0.7, (n, 2)), rng.normal(0, 0.2, (n, 1))], axis=1)
    sizes = gt.sizes[source] * rng.uniform(0.7, 1.3, (n, 3))
    yaws = gt.yaws[source] + rng.normal(0.0, 0.3, n) + np.pi * (rng.uniform(size=n) < 0.1)
    velocities = np.nan_to_num(gt.velocities[source]) + rng.normal(0.0, 0.8, (n, 2))
    velocities[rng.uniform(size=n) < 0.05] = np.nan
    labels = gt.labels[source].copy()
    swapped = rng.uniform(size=n) < 0.05  # wrong class
    labels[swapped] = rng.choice(class_labels, int(swapped.sum()))
    fp = _truth(rng, rng.choice(class_labels, false_positives))
    scores = np.concatenate([rng.beta(5, 2, n), rng.beta(2, 5, false_positives)])
    tied = rng.uniform(size=len(scores)) < 0.2
    scores[tied] = np.round(scores[tied], 1)  # exact score ties, across frames too
    return Boxes.create(
        np.concatenate([centers, fp.centers]),
        np.concatenate([sizes, fp.sizes]),
        np.concatenate([yaws, fp.yaws]),
        np.concatenate([labels, fp.labels]),
        velocities=np.concatenate([velocities, fp.velocities]),
        scores=scores.astype(np.float32),
    )


@pytest.fixture
def make_scene() -> SceneFactory:
    """``make_scene(seed, frames, classes=CLASSES, boxes_per_frame=30, false_positives=4)`` ->
    list of (predictions, truth) per frame; empty frames included now and then."""

    def factory(
        seed: int,
        frames: int,
        classes: Sequence[str] = CLASSES,
        boxes_per_frame: int = 30,
        false_positives: int = 4,
    ) -> list[Frame]:
        rng = np.random.default_rng(seed)
        class_labels = [CLASSES.index(name) for name in classes]
        result: list[Frame] = []
        for index in range(frames):
            if index % 10 == 7:  # an empty frame
                result.append((Boxes.empty(), Boxes.empty()))
                continue
            count = int(rng.integers(boxes_per_frame // 2, boxes_per_frame + 1))
            gt = _truth(rng, rng.choice(class_labels, count))
            result.append((_predictions(rng, gt, class_labels, false_positives), gt))
        return result

    return factory

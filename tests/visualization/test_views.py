"""BEV and camera views put things where they are; the mosaic and `fusion render` work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from calibration import default_rig_path, load_rig
from perception.bev_grid import BevGrid
from perception.classes import CLASS_COLORS
from perception.ground_truth import Boxes
from visualization import BevView, draw_boxes_on_camera, mosaic

BAG = Path(__file__).resolve().parents[2] / "bags" / "sample_city_4s"
GRID = BevGrid()


def _box(x: float, y: float, label: int = 0) -> Boxes:
    return Boxes.create(centers=[[x, y, 0.8]], sizes=[[4.5, 1.9, 1.6]], yaws=[0.0], labels=[label], scores=[0.9])


def _color_pixels(image: np.ndarray, label: int) -> np.ndarray:
    r, g, b = CLASS_COLORS[label]
    return np.argwhere(np.all(image == (b, g, r), axis=2))


def test_forward_is_up_and_left_is_left() -> None:
    view = BevView(GRID)
    view.boxes(_box(20.0, 0.0, 0))
    view.boxes(_box(0.0, 20.0, 3))
    centre = np.array([view.height / 2, view.width / 2])
    ahead = _color_pixels(view.image, 0).mean(axis=0)  # (row, col)
    left = _color_pixels(view.image, 3).mean(axis=0)
    assert ahead[0] < centre[0] - 100
    assert abs(ahead[1] - centre[1]) < 10
    assert left[1] < centre[1] - 100
    assert abs(left[0] - centre[0]) < 10


def test_raster_orientation_matches_the_points() -> None:
    raster = np.zeros(GRID.shape, dtype=np.uint8)
    row, col, _ = GRID.cell_of(np.array([[30.0, -10.0]]))
    raster[row[0], col[0]] = 1
    view = BevView(GRID)
    view.ground(drivable=raster)
    lit = np.argwhere(np.all(view.image == view.style.drivable, axis=2)).mean(axis=0)
    expected = view.to_pixels(np.array([[30.0, -10.0]]))[0][::-1]  # (row, col)
    assert np.all(np.abs(lit - expected) < 4)


def test_box_ahead_is_drawn_in_the_front_camera_only() -> None:
    rig = load_rig(default_rig_path())
    image = np.zeros((225, 400, 3), dtype=np.uint8)
    box = _box(15.0, 0.0, 0)
    front = draw_boxes_on_camera(image, box, rig, "cam_front")
    back = draw_boxes_on_camera(image, box, rig, "cam_back")
    pixels = _color_pixels(front, 0)
    assert len(pixels) > 50
    assert abs(pixels[:, 1].mean() - 200) < 40  # near the image centre column
    assert not back.any()


def test_mosaic_is_even_and_marks_missing_cameras() -> None:
    bev = np.zeros((615, 615, 3), dtype=np.uint8)
    out = mosaic(bev, {"cam_front": np.full((225, 400, 3), 200, np.uint8)})
    assert out.shape[0] % 2 == 0
    assert out.shape[1] % 2 == 0
    assert out[:, 615:].any()


def test_fusion_render_writes_video_and_pngs(tmp_path: Path) -> None:
    out = tmp_path / "render"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusion_node.cli",
            "render",
            str(BAG),
            "--out",
            str(out),
            "--max-frames",
            "6",
            "--png-every",
            "5",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["frame_0000.png", "frame_0005.png"]
    capture = cv2.VideoCapture(str(out / "render.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 6

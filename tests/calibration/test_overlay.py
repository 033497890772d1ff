"""Overlay drawing: depth colours, lidar dots and radar rings where the pixels say, the
input image untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.errors import CalibrationError
from calibration.overlay import OverlayStyle, depth_colors, draw_overlay

PLAIN = OverlayStyle(dim=1.0, show_colorbar=False)


def test_depth_colors_run_from_red_near_to_blue_far_and_clip() -> None:
    colors = depth_colors([0.0, 25.0, 50.0, 500.0, np.nan], OverlayStyle(max_depth_m=50.0)).astype(int)
    near, middle, far, beyond, unknown = colors  # BGR
    assert near[2] > near[0] + 50  # red
    assert far[0] > far[2]  # blue/violet end
    assert tuple(beyond) == tuple(far) == tuple(unknown)
    assert tuple(middle) != tuple(near)
    assert tuple(middle) != tuple(far)
    expected = cv2.applyColorMap(np.array([[255], [0]], np.uint8), cv2.COLORMAP_TURBO).reshape(-1, 3)
    np.testing.assert_array_equal(colors[[0, 2]], expected)


def test_points_are_drawn_where_projected_and_the_input_is_untouched() -> None:
    image = np.full((200, 400, 3), 60, np.uint8)
    before = image.copy()
    out = draw_overlay(image, [[100.0, 50.0]], [2.0], radar_uv=[[300.0, 150.0]], radar_depth=[45.0], style=PLAIN)
    np.testing.assert_array_equal(image, before)
    assert out.shape == image.shape
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[50, 100], depth_colors([2.0], PLAIN)[0])
    assert np.all(out[50, 110] == 60)  # a small dot
    # radar: a larger ring (dark outline, depth colour, white centre)
    np.testing.assert_array_equal(out[150, 300], [255, 255, 255])
    changed_radar = np.any(out[120:180, 270:330] != 60, axis=2).sum()
    changed_lidar = np.any(out[30:70, 80:120] != 60, axis=2).sum()
    assert changed_radar > 4 * changed_lidar


def test_near_points_are_drawn_over_far_ones() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    out = draw_overlay(image, [[50.0, 50.0], [50.0, 50.0]], [3.0, 40.0], style=PLAIN)
    np.testing.assert_array_equal(out[50, 50], depth_colors([3.0], PLAIN)[0])
    out = draw_overlay(image, [[50.0, 50.0], [50.0, 50.0]], [40.0, 3.0], style=PLAIN)
    np.testing.assert_array_equal(out[50, 50], depth_colors([3.0], PLAIN)[0])


def test_caption_colorbar_and_dimming() -> None:
    image = np.full((300, 600), 200, np.uint8)  # gray input becomes BGR
    out = draw_overlay(image, caption=["cam_front score 0.0123"], style=OverlayStyle(dim=0.5))
    assert out.shape == (300, 600, 3)
    assert out[150, 300, 0] == 100  # dimmed
    assert out[:30].mean() < 100
    assert (out[:30] == 255).any()
    bar = out[-25:, -200:]
    assert len({tuple(p) for p in bar.reshape(-1, 3)}) > 50  # the colour bar


def test_bad_input_is_reported() -> None:
    with pytest.raises(CalibrationError, match=r"overlay image must be \(H, W, 3\) or \(H, W\) uint8, got \(4, 4, 2\)"):
        draw_overlay(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(CalibrationError, match="2 pixels but 1 depths"):
        draw_overlay(np.zeros((4, 4, 3), np.uint8), [[1, 1], [2, 2]], [1.0])
    with pytest.raises(CalibrationError, match=r"0 <= min < max, got 10.0..5.0 m"):
        OverlayStyle(min_depth_m=10.0, max_depth_m=5.0)

"""Drawing of lidar and radar points on camera images (visualization only, no geometry).

Callers project the points (``Rig.project``) and pass pixels and depths; this module only
colours and draws them:

- lidar points: small dots coloured by depth with a perceptual colormap (OpenCV TURBO:
  red = near, blue = far), drawn far-to-near so near points stay on top;
- radar points: larger rings with a dark outline, same depth colours;
- a depth colour bar and a caption (camera, score, counts) in a dark band.

Images are OpenCV BGR ``(H, W, 3) uint8``; the input is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import CalibrationError

Image = NDArray[np.uint8]


@dataclass(frozen=True)
class OverlayStyle:
    """How an overlay looks.

    Attributes:
        min_depth_m, max_depth_m: depth range of the colormap, metres (clipped outside).
        colormap: OpenCV colormap id applied from near (high end) to far.
        dim: factor applied to the camera image under the points (1 = unchanged).
        lidar_radius_px: dot radius at 1000 px image width (scaled with the width).
        radar_radius_px: ring radius at 1000 px image width.
        show_colorbar: draw the depth colour bar.
    """

    min_depth_m: float = 0.0
    max_depth_m: float = 50.0
    colormap: int = cv2.COLORMAP_TURBO
    dim: float = 0.75
    lidar_radius_px: float = 1.5
    radar_radius_px: float = 7.0
    show_colorbar: bool = True

    def __post_init__(self) -> None:
        if not (0 <= self.min_depth_m < self.max_depth_m):
            raise CalibrationError(
                f"overlay depth range must satisfy 0 <= min < max, got {self.min_depth_m}..{self.max_depth_m} m"
            )
        if not (0 < self.dim <= 1):
            raise CalibrationError(f"overlay dim must be in (0, 1], got {self.dim}")


def depth_colors(depth: ArrayLike, style: OverlayStyle | None = None) -> NDArray[np.uint8]:
    """BGR colours of depths.

    Args:
        depth: (N,) float depths, metres.
        style: colormap and depth range.

    Returns:
        (N, 3) uint8 BGR; near = the colormap's high end (red for TURBO).
    """
    st = style or OverlayStyle()
    d = np.nan_to_num(np.asarray(depth, dtype=np.float64).reshape(-1), nan=st.max_depth_m)
    if d.size == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    level = 1.0 - (np.clip(d, st.min_depth_m, st.max_depth_m) - st.min_depth_m) / (st.max_depth_m - st.min_depth_m)
    lut = (level * 255.0).round().astype(np.uint8).reshape(-1, 1)
    return np.asarray(cv2.applyColorMap(lut, st.colormap), dtype=np.uint8).reshape(-1, 3)


def draw_overlay(
    image: ArrayLike,
    lidar_uv: ArrayLike | None = None,
    lidar_depth: ArrayLike | None = None,
    *,
    radar_uv: ArrayLike | None = None,
    radar_depth: ArrayLike | None = None,
    caption: Sequence[str] = (),
    style: OverlayStyle | None = None,
) -> Image:
    """Draw projected points on a copy of a camera image.

    Args:
        image: (H, W, 3) uint8 BGR or (H, W) uint8 gray camera image.
        lidar_uv: (N, 2) float pixels of the lidar points to draw (valid ones only).
        lidar_depth: (N,) float their depths, metres.
        radar_uv: (R, 2) float pixels of radar points (valid ones only).
        radar_depth: (R,) float their depths, metres.
        caption: lines of text written in a band at the top.
        style: colours and sizes.

    Returns:
        (H, W, 3) uint8 BGR overlay.
    """
    st = style or OverlayStyle()
    base = np.asarray(image)
    if base.ndim == 2:
        base = cv2.cvtColor(base, cv2.COLOR_GRAY2BGR)
    if base.ndim != 3 or base.shape[2] != 3 or base.dtype != np.uint8:
        raise CalibrationError(f"overlay image must be (H, W, 3) or (H, W) uint8, got {base.shape} {base.dtype}")
    canvas = (base.astype(np.float32) * st.dim).astype(np.uint8)
    scale = canvas.shape[1] / 1000.0
    if lidar_uv is not None:
        _dots(canvas, lidar_uv, lidar_depth, st, max(1, round(st.lidar_radius_px * scale)), outline=False)
    if radar_uv is not None:
        _dots(canvas, radar_uv, radar_depth, st, max(3, round(st.radar_radius_px * scale)), outline=True)
    if st.show_colorbar:
        _colorbar(canvas, st)
    if caption:
        _caption(canvas, caption)
    return canvas


def _dots(
    canvas: Image, uv: ArrayLike, depth: ArrayLike | None, st: OverlayStyle, radius: int, *, outline: bool
) -> None:
    pixels = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    d = np.full(len(pixels), st.max_depth_m) if depth is None else np.asarray(depth, dtype=np.float64).reshape(-1)
    if d.shape[0] != pixels.shape[0]:
        raise CalibrationError(f"{pixels.shape[0]} pixels but {d.shape[0]} depths")
    keep = np.all(np.isfinite(pixels), axis=1)
    pixels, d = pixels[keep], d[keep]
    colors = depth_colors(d, st)
    for i in np.argsort(-d, kind="stable"):  # far first: near points end on top
        center = (round(pixels[i, 0]), round(pixels[i, 1]))
        color = tuple(int(c) for c in colors[i])
        if outline:
            cv2.circle(canvas, center, radius + 2, (20, 20, 20), -1, cv2.LINE_AA)
            cv2.circle(canvas, center, radius, color, -1, cv2.LINE_AA)
            cv2.circle(canvas, center, max(1, radius // 3), (255, 255, 255), -1, cv2.LINE_AA)
        else:
            cv2.circle(canvas, center, radius, color, -1, cv2.LINE_AA)


def _colorbar(canvas: Image, st: OverlayStyle) -> None:
    height, width = canvas.shape[:2]
    size = min(width, 2 * height)
    bar_w, bar_h = max(100, size // 6), max(6, size // 120)
    x0, y0 = width - bar_w - 40, height - bar_h - 12
    depths = np.linspace(st.min_depth_m, st.max_depth_m, bar_w)
    bar = np.repeat(depth_colors(depths, st)[None, :, :], bar_h, axis=0)
    font_scale = max(0.35, size / 2400.0)
    (_, th), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    cv2.rectangle(canvas, (x0 - 32, y0 - th - 14), (x0 + bar_w + 32, y0 + bar_h + 6), (0, 0, 0), -1)
    canvas[y0 : y0 + bar_h, x0 : x0 + bar_w] = bar
    for value, x in ((st.min_depth_m, x0), (st.max_depth_m, x0 + bar_w)):
        text = f"{value:g} m"
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        cv2.putText(
            canvas,
            text,
            (x - tw // 2, y0 - 6),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )


def _caption(canvas: Image, lines: Sequence[str]) -> None:
    width = canvas.shape[1]
    font_scale = max(0.45, width / 2000.0)
    (_, th), baseline = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    line_h = th + baseline + 6
    band = canvas[: line_h * len(lines) + 8]
    band[:] = (band.astype(np.float32) * 0.35).astype(np.uint8)
    for row, text in enumerate(lines):
        cv2.putText(
            canvas,
            text,
            (10, 6 + th + row * line_h),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )

"""One video frame: the BEV view beside the six cameras (3 front over 3 back)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]

#: Camera tiles, left to right, front row then back row (as a driver would look around).
DEFAULT_LAYOUT: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("cam_front_left", "cam_front", "cam_front_right"),
    ("cam_back_right", "cam_back", "cam_back_left"),
)


def mosaic(
    bev: Image, cameras: Mapping[str, Image | None], *, layout: Sequence[Sequence[str]] = DEFAULT_LAYOUT
) -> Image:
    """``bev`` on the left; camera rows on the right scaled to the BEV height (a missing
    camera is a dark tile labelled 'missing'). Width and height are even (video codecs)."""
    rows = len(layout)
    tile_h = bev.shape[0] // rows
    tile_w = round(tile_h * 16 / 9)
    grid = np.zeros((tile_h * rows, tile_w * max(len(r) for r in layout), 3), dtype=np.uint8)
    for r, row in enumerate(layout):
        for c, camera in enumerate(row):
            image = cameras.get(camera)
            y, x = r * tile_h, c * tile_w
            if image is None:
                cv2.putText(
                    grid, f"{camera}: missing", (x + 10, y + 24), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (90, 90, 255), 1
                )
                continue
            grid[y : y + tile_h, x : x + tile_w] = cv2.resize(image, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
            cv2.putText(grid, camera, (x + 6, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    height = max(bev.shape[0], grid.shape[0])
    canvas = np.zeros((height + height % 2, bev.shape[1] + grid.shape[1], 3), dtype=np.uint8)
    canvas[: bev.shape[0], : bev.shape[1]] = bev
    canvas[: grid.shape[0], bev.shape[1] :] = grid
    if canvas.shape[1] % 2:
        canvas = canvas[:, :-1]
    return canvas

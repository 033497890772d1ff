"""Inputs shared by the benchmarks: point clouds from files users already have.

``--points-file`` takes an (N, >=3) float32 ``.npy`` or a KITTI / nuScenes style ``.bin``
(``--columns`` float32 values per point: 4 for KITTI, 5 for nuScenes LIDAR_TOP).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def add_points_arguments(parser: argparse.ArgumentParser, *, minimum_columns: int = 3) -> None:
    """Add ``--points-file`` and ``--columns`` to a benchmark's parser."""
    parser.add_argument(
        "--points-file",
        default=None,
        help=f"(N, >={minimum_columns}) float32 .npy, or a KITTI/nuScenes .bin (see --columns)",
    )
    parser.add_argument(
        "--columns", type=int, default=5, help="float32 values per point in a .bin (KITTI 4, nuScenes 5)"
    )


def load_points(path: str | Path, columns: int = 5, *, minimum_columns: int = 3) -> NDArray[np.float32]:
    """Points of a ``.npy`` or ``.bin`` file: (N, C) float32, C >= ``minimum_columns``.

    Raises ``SystemExit`` with a message naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"--points-file {path}: no such file")
    if path.suffix == ".npy":
        data = np.load(path, allow_pickle=False)
    else:
        raw = np.fromfile(path, dtype=np.float32)
        if columns < 1 or raw.size % columns:
            raise SystemExit(
                f"--points-file {path}: {raw.size} float32 values do not split into rows of --columns {columns}"
            )
        data = raw.reshape(-1, columns)
    if data.ndim != 2 or data.shape[1] < minimum_columns:
        raise SystemExit(f"--points-file {path}: expected (N, >={minimum_columns}) points, got shape {data.shape}")
    points = np.ascontiguousarray(data, dtype=np.float32)
    if not np.all(np.isfinite(points[:, :3])):
        points = points[np.all(np.isfinite(points[:, :3]), axis=1)]
    return points

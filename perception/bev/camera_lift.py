"""Camera lift (numba): per-camera feature maps -> BEV through a :class:`CameraLiftTable`.

Each BEV cell takes the mean of its table samples (feature-map cells of the cameras that see
the cell at the table's heights) over the cameras marked present; a cell with no sample of
a present camera is 0. Features of absent cameras are never read.

The kernel first copies the features channel-last (``(Ncam * Hf * Wf, C)``: one sample is
then one contiguous C-vector), then walks blocks of BEV cells: it sums each cell's valid
samples into a small block buffer and writes the block's means channel by channel. The
blocks run in parallel (``prange``) when numba has more than one thread.

Compilation is lazy and cached on disk (``cache=True``); the first call in a process after
a change compiles (seconds), later processes load the machine code.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from numpy.typing import NDArray

from perception.bev.camera_lut import CameraLiftTable
from perception.errors import BevError

#: BEV cells summed per block of the kernel (one block buffer: _BLOCK x C float32).
_BLOCK = 64


def lift_cameras(
    features: NDArray[np.floating[Any]],
    table: CameraLiftTable,
    camera_present: NDArray[np.bool_] | None = None,
) -> NDArray[np.float32]:
    """Lift per-camera feature maps into BEV.

    Args:
        features: (Ncam, C, Hf, Wf) float32 feature maps, cameras in ``table.camera_ids``
            order, (Hf, Wf) = ``table.feature_size`` (other float dtypes are converted).
        table: the camera -> BEV lookup table.
        camera_present: (Ncam,) bool, False for a camera whose image is missing from the
            frame (its samples are left out of the mean); None: all present.

    Returns:
        (C, ny, nx) float32 C-contiguous BEV features on ``table.grid``: the mean of the
        cell's samples from present cameras, 0 where there is none.

    Raises:
        BevError: shapes or dtypes that do not match the table (the message names them).
    """
    array = np.asarray(features)
    expected = (table.num_cameras, "C", *table.feature_size)
    if array.ndim != 4 or array.shape[0] != table.num_cameras or array.shape[2:] != table.feature_size:
        raise BevError(
            f"camera features have shape {array.shape}, expected {expected} for cameras {list(table.camera_ids)}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise BevError(f"camera features must be floating point (float32), got dtype {array.dtype}")
    if array.shape[1] < 1:
        raise BevError(f"camera features have shape {array.shape}: no channels")
    present = _present(camera_present, table)
    flat = np.ascontiguousarray(array, dtype=np.float32).reshape(table.num_cameras, array.shape[1], -1)
    out = _lift_kernel(flat, table.index, table.camera, present)
    return out.reshape(array.shape[1], *table.grid.shape)


def _present(camera_present: NDArray[np.bool_] | None, table: CameraLiftTable) -> NDArray[np.bool_]:
    if camera_present is None:
        return np.ones(table.num_cameras, dtype=np.bool_)
    present = np.asarray(camera_present)
    if present.shape != (table.num_cameras,) or present.dtype != np.bool_:
        raise BevError(
            f"camera_present must be a ({table.num_cameras},) bool array for cameras {list(table.camera_ids)}, "
            f"got shape {present.shape} dtype {present.dtype}"
        )
    return present


@nb.njit(cache=True, parallel=True)
def _lift_kernel(
    features: NDArray[np.float32],
    index: NDArray[np.int64],
    camera: NDArray[np.int8],
    present: NDArray[np.bool_],
) -> NDArray[np.float32]:
    """features (Ncam, C, Hf*Wf) float32, index/camera (S, cells) -> (C, cells) float32 means."""
    n_cameras, channels, slots = features.shape
    samples, cells = index.shape
    last = np.empty((n_cameras * slots, channels), dtype=np.float32)
    for k in nb.prange(n_cameras):
        if present[k]:
            for p in range(slots):  # contiguous writes, strided reads: the faster order here
                for c in range(channels):
                    last[k * slots + p, c] = features[k, c, p]
    out = np.empty((channels, cells), dtype=np.float32)
    n_blocks = (cells + _BLOCK - 1) // _BLOCK
    for block in nb.prange(n_blocks):
        start = block * _BLOCK
        stop = min(start + _BLOCK, cells)
        acc = np.zeros((_BLOCK, channels), dtype=np.float32)
        count = np.zeros(_BLOCK, dtype=np.float32)
        for i in range(stop - start):
            cell = start + i
            for s in range(samples):
                k = camera[s, cell]
                if k < 0:
                    break
                if present[k]:
                    row = index[s, cell]
                    for c in range(channels):
                        acc[i, c] += last[row, c]
                    count[i] += 1.0
        for c in range(channels):
            for i in range(stop - start):
                out[c, start + i] = acc[i, c] / count[i] if count[i] > 0 else np.float32(0.0)
    return out

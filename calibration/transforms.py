"""Rigid transforms (SE(3)) with validation, and quaternion helpers.

Convention: homogeneous column vectors, ``p_dst = T_dst_src @ [p_src, 1]``.
Quaternions are ordered [w, x, y, z] (Hamilton, as in nuScenes and ROS' geometry_msgs
reordered) and describe the rotation from the source frame to the destination frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import TransformError

#: Accepted deviation of a quaternion norm from 1 before it is rejected (then normalized).
QUATERNION_NORM_TOLERANCE = 1e-3
#: Accepted deviation of R^T R from identity for a rotation given as a matrix.
ORTHONORMAL_TOLERANCE = 1e-5


def quaternion_to_matrix(wxyz: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrix of a unit quaternion.

    Args:
        wxyz: (4,) [w, x, y, z]; must have norm 1 within ``QUATERNION_NORM_TOLERANCE``.

    Returns:
        (3, 3) float64 rotation matrix.
    """
    q = np.asarray(wxyz, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise TransformError(f"quaternion must be 4 finite numbers [w, x, y, z], got {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise TransformError(
            f"quaternion {q.tolist()} has norm {norm:.6f}, expected 1 (tolerance {QUATERNION_NORM_TOLERANCE})"
        )
    w, x, y, z = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(R: ArrayLike) -> NDArray[np.float64]:
    """Unit quaternion [w, x, y, z] (w >= 0) of a rotation matrix.

    Args:
        R: (3, 3) rotation matrix (validated orthonormal, det +1).

    Returns:
        (4,) float64 [w, x, y, z].
    """
    m = validate_rotation(R)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    out = np.asarray(q, dtype=np.float64)
    out /= np.linalg.norm(out)
    return -out if out[0] < 0 else out


def validate_rotation(R: ArrayLike) -> NDArray[np.float64]:
    """Check that ``R`` is a proper rotation: (3, 3), finite, R^T R = I, det = +1."""
    m = np.asarray(R, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise TransformError(f"rotation must be a finite 3x3 matrix, got {m.tolist()}")
    error = float(np.max(np.abs(m.T @ m - np.eye(3))))
    if error > ORTHONORMAL_TOLERANCE:
        raise TransformError(
            f"rotation is not orthonormal: max |R^T R - I| = {error:.3g} "
            f"(tolerance {ORTHONORMAL_TOLERANCE}), R = {m.tolist()}"
        )
    det = float(np.linalg.det(m))
    if det < 0:
        raise TransformError(f"rotation has determinant {det:.6f} (a reflection), expected +1")
    return m


def validate_transform(T: ArrayLike) -> NDArray[np.float64]:
    """Check a homogeneous rigid transform: (4, 4), last row [0, 0, 0, 1], proper rotation."""
    m = np.asarray(T, dtype=np.float64)
    if m.shape != (4, 4):
        raise TransformError(f"transform must be 4x4, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise TransformError(f"transform has non-finite entries: {m.tolist()}")
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
        raise TransformError(f"transform last row must be [0, 0, 0, 1], got {m[3].tolist()}")
    validate_rotation(m[:3, :3])
    return m


def make_transform(translation: Sequence[float] | NDArray[np.float64], rotation: ArrayLike) -> NDArray[np.float64]:
    """4x4 transform from a translation (3,) metres and a rotation (3, 3) or quaternion (4,) wxyz."""
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise TransformError(f"translation must be 3 finite numbers, got {t.tolist()}")
    r = np.asarray(rotation, dtype=np.float64)
    R = quaternion_to_matrix(r) if r.shape == (4,) else validate_rotation(r)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def invert_transform(T: ArrayLike) -> NDArray[np.float64]:
    """Inverse of a rigid transform, exact (R^T, -R^T t), not a general matrix inverse."""
    m = np.asarray(T, dtype=np.float64)
    inv = np.eye(4)
    inv[:3, :3] = m[:3, :3].T
    inv[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return inv


def apply_transform(T: ArrayLike, points: ArrayLike) -> NDArray[np.float64]:
    """Transform points.

    Args:
        T: (4, 4) transform dst <- src.
        points: (N, 3) points in the src frame, metres.

    Returns:
        (N, 3) float64 points in the dst frame.
    """
    m = np.asarray(T, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise TransformError(f"points must have shape (N, 3), got {p.shape}")
    result: NDArray[np.float64] = p @ m[:3, :3].T + m[:3, 3]
    return result


def yaw_to_quaternion(yaw: float) -> NDArray[np.float64]:
    """Quaternion [w, x, y, z] of a rotation by ``yaw`` radians about +z."""
    return np.array([np.cos(yaw / 2.0), 0.0, 0.0, np.sin(yaw / 2.0)])

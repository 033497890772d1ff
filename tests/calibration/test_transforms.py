"""SE(3) helpers: quaternion <-> matrix, validation, inversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibration import TransformError
from calibration.transforms import (
    apply_transform,
    invert_transform,
    make_transform,
    matrix_to_quaternion,
    quaternion_to_matrix,
    validate_transform,
)

unit_quaternions = (
    st.lists(st.floats(-1, 1), min_size=4, max_size=4)
    .filter(lambda q: np.linalg.norm(q) > 0.1)
    .map(lambda q: np.asarray(q) / np.linalg.norm(q))
)


@given(unit_quaternions)
def test_quaternion_round_trip(q: np.ndarray) -> None:
    R = quaternion_to_matrix(q)
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    back = matrix_to_quaternion(R)
    assert back[0] >= 0
    np.testing.assert_allclose(quaternion_to_matrix(back), R, atol=1e-9)
    np.testing.assert_allclose(abs(back @ q), 1.0, atol=1e-9)  # same rotation, q or -q


@given(unit_quaternions, st.lists(st.floats(-100, 100), min_size=3, max_size=3))
def test_inverse_is_exact(q: np.ndarray, t: list[float]) -> None:
    T = make_transform(t, q)
    np.testing.assert_allclose(invert_transform(T) @ T, np.eye(4), atol=1e-9)
    points = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 10.0]])
    np.testing.assert_allclose(apply_transform(invert_transform(T), apply_transform(T, points)), points, atol=1e-9)


def test_yaw_90_rotates_x_to_y() -> None:
    T = make_transform([0, 0, 0], [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(apply_transform(T, [[1.0, 0.0, 0.0]]), [[0.0, 1.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize(
    ("matrix", "words"),
    [
        (np.eye(3), "4x4"),
        (np.diag([1.0, 1.0, -1.0, 1.0]), "determinant"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1.0]]), "last row"),
        (np.full((4, 4), np.nan), "non-finite"),
    ],
)
def test_invalid_transforms(matrix: np.ndarray, words: str) -> None:
    with pytest.raises(TransformError, match=words):
        validate_transform(matrix)


def test_bad_quaternion_norm() -> None:
    with pytest.raises(TransformError, match=r"norm 0\.5"):
        quaternion_to_matrix([0.5, 0, 0, 0])

"""Camera intrinsics: pinhole matrix, image size and distortion model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from calibration.errors import IntrinsicsError

#: Supported distortion models and their number of coefficients.
#: plumb_bob: OpenCV (k1, k2, p1, p2, k3); 4 (k3 = 0) and 8 (rational) are accepted too.
#: equidistant: OpenCV fisheye (k1, k2, k3, k4). none: already rectified/undistorted.
DISTORTION_MODELS: Final[dict[str, tuple[int, ...]]] = {
    "plumb_bob": (4, 5, 8),
    "equidistant": (4,),
    "none": (0,),
}


@dataclass(frozen=True, eq=False)
class CameraIntrinsics:
    """Pinhole camera intrinsics with an optional distortion model.

    Attributes:
        K: (3, 3) float64 pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]], pixels.
        width: image width, pixels (> 0).
        height: image height, pixels (> 0).
        distortion_model: "plumb_bob" | "equidistant" | "none".
        D: (n,) float64 distortion coefficients, n allowed by ``DISTORTION_MODELS``.
    """

    K: NDArray[np.float64]
    width: int
    height: int
    distortion_model: str = "none"
    D: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        D = np.asarray(self.D, dtype=np.float64).reshape(-1)
        if K.shape != (3, 3):
            raise IntrinsicsError(f"K must be 3x3, got shape {K.shape}")
        if not np.all(np.isfinite(K)):
            raise IntrinsicsError(f"K has non-finite entries: {K.tolist()}")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise IntrinsicsError(f"focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
        if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
            raise IntrinsicsError(f"K must be upper triangular with last row [0, 0, 1], got {K.tolist()}")
        for name, value in (("width", self.width), ("height", self.height)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise IntrinsicsError(f"{name} must be a positive integer, got {value!r}")
        if self.distortion_model not in DISTORTION_MODELS:
            raise IntrinsicsError(
                f"unknown distortion_model '{self.distortion_model}', expected one of {sorted(DISTORTION_MODELS)}"
            )
        if D.size not in DISTORTION_MODELS[self.distortion_model]:
            raise IntrinsicsError(
                f"distortion_model '{self.distortion_model}' takes "
                f"{' or '.join(map(str, DISTORTION_MODELS[self.distortion_model]))} coefficients, "
                f"got {D.size}"
            )
        if not np.all(np.isfinite(D)):
            raise IntrinsicsError(f"D has non-finite entries: {D.tolist()}")
        K.setflags(write=False)
        D.setflags(write=False)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def scaled(self, factor: float) -> CameraIntrinsics:
        """Intrinsics of the same camera with the image resized by ``factor``."""
        if not factor > 0:
            raise IntrinsicsError(f"scale factor must be positive, got {factor}")
        K = self.K.copy()
        K[:2] *= factor
        # Pixel centres: continuous coordinate of pixel (0, 0) stays at 0.5 px scaled.
        K[0, 2] = (self.K[0, 2] + 0.5) * factor - 0.5
        K[1, 2] = (self.K[1, 2] + 0.5) * factor - 0.5
        return CameraIntrinsics(
            K=K,
            width=max(1, round(self.width * factor)),
            height=max(1, round(self.height * factor)),
            distortion_model=self.distortion_model,
            D=self.D.copy(),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraIntrinsics):
            return NotImplemented
        return (
            self.width == other.width
            and self.height == other.height
            and self.distortion_model == other.distortion_model
            and np.array_equal(self.K, other.K)
            and np.array_equal(self.D, other.D)
        )

    __hash__ = None  # type: ignore[assignment]

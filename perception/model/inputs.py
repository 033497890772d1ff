"""One frame's sensor data -> the network's input arrays (shared by training, eval, the node).

:class:`InputEncoder` is built once per rig and model config (it precomputes the camera
lookup table and the ultrasonic cones) and turns a frame into a dict of numpy arrays named
as the network's inputs (perception.model.network.INPUT_NAMES), without the batch axis:

    lidar (6, ny, nx), radar (5, ny, nx), ultrasonic (2, ny, nx) float32 on the input grid
    images (Ncam, 3, Hi, Wi) float32 RGB in [0, 1]; zeros for a missing camera
    camera_present (Ncam,) float32, modality_present (4,) float32 (MODALITIES order)
    lut_index, lut_camera (S * H * W,) int64 (the camera lookup table)

A modality is present when it delivered data (lidar points, at least one radar scan, at least
one ultrasonic reading, at least one camera image) and the model was trained on it
(``ModelConfig.modalities``). An absent modality's raster is zeros and its presence flag 0, so
the network masks it (perception.model.fusers).

Camera timing: images are lifted through the rig's static lookup table, i.e. as if taken at
the frame stamp. A camera stamped up to half its period away (41.7 ms at 12 Hz) sees the
scene from up to ~0.4 m away at 10 m/s; ``perception.ego_motion.camera`` gives each camera's
motion to the frame stamp for a per-frame table or a BEV resampling (not applied yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from calibration import Rig
from perception.bev import UltrasonicBev, lidar_bev, radar_bev
from perception.bev.camera_lut import CameraLiftTable, build_camera_lut
from perception.model.config import INPUT_CHANNELS, MODALITIES, ModelConfig
from perception.training.augment import Augmentation

Arrays = dict[str, NDArray[Any]]
#: Camera lookup tables kept for augmented frames (about 2 MB each at the default sizes).
MAX_CACHED_TABLES = 256


def decode_image(data: bytes, source: str = "") -> NDArray[np.uint8]:
    """JPEG/PNG bytes -> (H, W, 3) uint8 RGB; a clear error names ``source`` on bad data."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{source or 'image'}: {len(data)} bytes are not a decodable JPEG/PNG image")
    rgb: NDArray[np.uint8] = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    return rgb


class InputEncoder:
    def __init__(self, rig: Rig, config: ModelConfig) -> None:
        self.rig = rig
        self.config = config
        self.table = self._table(None)
        self._augmented_tables: dict[Augmentation, CameraLiftTable] = {}
        self.ultrasonic = UltrasonicBev.from_rig(rig, config.input_grid)

    def _table(self, augmentation: Augmentation | None) -> CameraLiftTable:
        c = self.config
        return build_camera_lut(
            self.rig,
            c.output_grid,
            cameras=c.camera_ids,
            heights_m=c.camera_heights_m,
            feature_size=c.feature_size,
            image_size=c.image_size,
            samples=c.lut_samples,
            lookup_transform=None
            if augmentation is None or augmentation.is_identity
            else augmentation.lookup_transform(),
        )

    def _augmented_table(self, augmentation: Augmentation) -> CameraLiftTable:
        table = self._augmented_tables.get(augmentation)
        if table is None:
            if len(self._augmented_tables) >= MAX_CACHED_TABLES:
                self._augmented_tables.pop(next(iter(self._augmented_tables)))
            table = self._augmented_tables[augmentation] = self._table(augmentation)
        return table

    def image(self, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
        """(H, W, 3) uint8 RGB -> (3, Hi, Wi) float32 in [0, 1] at the network's image size."""
        height, width = self.config.image_size
        resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.float32) / 255.0

    def encode(
        self,
        lidar: NDArray[np.float32] | None,
        radar: NDArray[np.float32] | None,
        ultrasonic: NDArray[np.float32] | None,
        images: Mapping[str, NDArray[np.uint8] | None],
        *,
        augmentation: Augmentation | None = None,
    ) -> Arrays:
        """Network inputs of one frame.

        Args:
            lidar: (N, 5) float32 accumulated sweeps, base_link at the frame stamp
                (perception.ego_motion.SweepAccumulator), or None when the lidar is missing.
            radar: (R, 7) float32 detections of all radars (perception.ego_motion.radar_to_frame,
                concatenated), or None when no radar delivered.
            ultrasonic: (U,) float32 ranges in ``self.ultrasonic`` sensor order (inf: nothing
                detected, nan: missing), or None.
            images: camera id -> (H, W, 3) uint8 RGB, or None for a missing image.
            augmentation: training augmentation applied to every modality (None: none).
        """
        grid = self.config.input_grid
        aug = augmentation if augmentation is not None and not augmentation.is_identity else None
        trained = self.config.modalities
        lidar = lidar if "lidar" in trained else None
        radar = radar if "radar" in trained else None
        ultrasonic = ultrasonic if "ultrasonic" in trained else None
        images = images if "camera" in trained else {}
        zeros = {name: np.zeros((channels, *grid.shape), dtype=np.float32) for name, channels in INPUT_CHANNELS.items()}
        lidar_present = lidar is not None and len(lidar) > 0
        radar_present = radar is not None
        ultrasonic_present = ultrasonic is not None and bool(np.any(~np.isnan(ultrasonic)))
        out: Arrays = {
            "lidar": lidar_bev(aug.points(lidar) if aug else lidar, grid)
            if lidar is not None and lidar_present
            else zeros["lidar"],
            "radar": radar_bev(aug.points(radar, velocity_columns=(4, 5)) if aug else radar, grid)
            if radar is not None
            else zeros["radar"],
        }
        if ultrasonic_present:
            assert ultrasonic is not None
            raster = self.ultrasonic(ultrasonic)
            out["ultrasonic"] = aug.raster(raster, grid) if aug else raster
        else:
            out["ultrasonic"] = zeros["ultrasonic"]
        height, width = self.config.image_size
        stacked = np.zeros((len(self.config.camera_ids), 3, height, width), dtype=np.float32)
        camera_present = np.zeros(len(self.config.camera_ids), dtype=np.float32)
        for k, camera in enumerate(self.config.camera_ids):
            rgb = images.get(camera)
            if rgb is not None:
                stacked[k] = self.image(rgb)
                camera_present[k] = 1.0
        out["images"] = stacked
        out["camera_present"] = camera_present
        present = {"lidar": lidar_present, "radar": radar_present, "ultrasonic": ultrasonic_present}
        present["camera"] = bool(camera_present.any())
        out["modality_present"] = np.array([present[m] for m in MODALITIES], dtype=np.float32)
        table = self._augmented_table(aug) if aug else self.table
        out["lut_index"], out["lut_camera"] = table.lift_inputs()
        return out

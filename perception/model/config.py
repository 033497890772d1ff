"""Hyper-parameters of the fusion network, fixed at construction and stored with its weights.

Every tensor shape of the network follows from a :class:`ModelConfig`, so the exported graph
has static shapes. Grids: the per-modality BEV rasters come in on ``input_grid`` (default
256 x 256 cells of 0.4 m); the network works on ``output_grid``, the same extent at
``bev_stride`` times the cell size (default 128 x 128 of 0.8 m), where the detection heads and
the camera lift live; segmentation is returned on ``input_grid`` like the ground truth.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from perception.bev_grid import BevGrid
from perception.classes import CLASSES
from perception.errors import PerceptionError

#: Modality groups, in the order of the ``modality_present`` input and the fuser's inputs.
MODALITIES: Final[tuple[str, ...]] = ("lidar", "radar", "ultrasonic", "camera")
#: Channels of each BEV raster input (perception.bev contracts).
INPUT_CHANNELS: Final = {"lidar": 6, "radar": 5, "ultrasonic": 2}


class ModelConfigError(PerceptionError, ValueError):
    """A model configuration value is out of range; the message names it."""


@dataclass(frozen=True)
class ModelConfig:
    """Shapes and widths of :class:`perception.model.network.FusionNet`.

    Attributes:
        input_grid: grid of the lidar / radar / ultrasonic BEV inputs.
        bev_stride: output cell size / input cell size (1 or 2).
        camera_ids: rig camera ids, in the order of the ``images`` input.
        image_size: (height, width) of each camera image fed to the network, pixels.
        image_stride: image pixels per camera feature-map cell (4 or 8).
        bev_channels: width of every modality's BEV features before fusion.
        image_channels: width of the camera feature maps (and of the lifted camera BEV).
        fused_channels: width after the fuser.
        backbone_channels: widths of the two down-sampled backbone levels.
        fuser: name in :data:`perception.model.fusers.FUSERS`.
        camera_heights_m: base_link heights at which BEV cells are looked up in the cameras.
        num_classes: detection classes (len(perception.classes.CLASSES)).
        lidar_sweeps: lidar sweeps accumulated into each frame (the current one included).
        lut_samples: camera lookup samples per BEV cell (heights x cameras overlapping).
        modalities: the groups the model was trained on (MODALITIES order); the input encoder
            presents every other group as absent, whatever arrives (a lidar-only model
            never sees camera features it was not trained on). Configs from before this field
            load with all four.
    """

    input_grid: BevGrid = field(default_factory=BevGrid)
    bev_stride: int = 2
    camera_ids: tuple[str, ...] = (
        "cam_front",
        "cam_front_right",
        "cam_back_right",
        "cam_back",
        "cam_back_left",
        "cam_front_left",
    )
    image_size: tuple[int, int] = (112, 200)
    image_stride: int = 4
    bev_channels: int = 32
    image_channels: int = 32
    fused_channels: int = 48
    backbone_channels: tuple[int, int] = (64, 96)
    fuser: str = "conv"
    camera_heights_m: tuple[float, ...] = (-1.0, 0.0, 1.0, 2.0)
    num_classes: int = len(CLASSES)
    lidar_sweeps: int = 3
    lut_samples: int = 8
    modalities: tuple[str, ...] = MODALITIES

    def __post_init__(self) -> None:
        if self.bev_stride not in (1, 2):
            raise ModelConfigError(f"ModelConfig.bev_stride must be 1 or 2, got {self.bev_stride!r}")
        if self.image_stride not in (4, 8):
            raise ModelConfigError(f"ModelConfig.image_stride must be 4 or 8, got {self.image_stride!r}")
        height, width = self.image_size
        if height % self.image_stride or width % self.image_stride or height <= 0 or width <= 0:
            raise ModelConfigError(
                f"ModelConfig.image_size {self.image_size!r} must be positive multiples of "
                f"image_stride {self.image_stride}"
            )
        for name in ("bev_channels", "image_channels", "fused_channels", "num_classes", "lidar_sweeps", "lut_samples"):
            if getattr(self, name) < 1:
                raise ModelConfigError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if len(self.backbone_channels) != 2 or min(self.backbone_channels) < 1:
            raise ModelConfigError(
                f"ModelConfig.backbone_channels must be two widths >= 1, got {self.backbone_channels!r}"
            )
        if not self.modalities or tuple(m for m in MODALITIES if m in self.modalities) != self.modalities:
            raise ModelConfigError(
                f"ModelConfig.modalities must be a non-empty subset of {list(MODALITIES)} in that order, "
                f"got {self.modalities!r}"
            )
        if not self.camera_ids or len(set(self.camera_ids)) != len(self.camera_ids):
            raise ModelConfigError(f"ModelConfig.camera_ids must be unique and non-empty, got {self.camera_ids!r}")
        if self.input_grid.nx % (4 * self.bev_stride) or self.input_grid.ny % (4 * self.bev_stride):
            raise ModelConfigError(
                f"ModelConfig: input grid {self.input_grid.shape} must divide by 4 x bev_stride ({4 * self.bev_stride})"
            )

    @property
    def output_grid(self) -> BevGrid:
        """The grid of the detection heads and the camera lift."""
        return replace(self.input_grid, resolution=self.input_grid.resolution * self.bev_stride)

    @property
    def feature_size(self) -> tuple[int, int]:
        """(height, width) of each camera feature map."""
        return (self.image_size[0] // self.image_stride, self.image_size[1] // self.image_stride)

    def to_json(self) -> str:
        values = asdict(self)
        values["input_grid"] = asdict(self.input_grid)
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "") -> ModelConfig:
        """Config from :meth:`to_json` output; errors name ``source``."""
        try:
            values: dict[str, Any] = json.loads(text)
            values["input_grid"] = BevGrid(**values["input_grid"])
            for key in ("camera_ids", "image_size", "backbone_channels", "camera_heights_m"):
                values[key] = tuple(values[key])
            if "modalities" in values:
                values["modalities"] = tuple(values["modalities"])
            return cls(**values)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelConfigError(f"{source or 'model config JSON'}: not a model config ({exc})") from exc

"""The four-modality BEV fusion network.

Inputs (B = batch; shapes from :class:`ModelConfig`; all float32):
    lidar       (B, 6, ny, nx)  perception.bev lidar features on ``input_grid``
    radar       (B, 5, ny, nx)  radar features
    ultrasonic  (B, 2, ny, nx)  ultrasonic features
    images      (B, Ncam, 3, Hi, Wi)  RGB in [0, 1], cameras in ``config.camera_ids`` order
    camera_present   (B, Ncam)  1 = this camera's image is real, 0 = missing
    modality_present (B, 4)     1 = the group in MODALITIES order delivered data
    lut_index, lut_camera (B, S * H * W) int64  the camera lookup table of each item
                                (perception.bev.camera_lut.CameraLiftTable.lift_inputs)

Outputs (a tuple, in this order, for a stable ONNX signature):
    heatmap (B, num_classes, H, W), regression (B, 10, H, W) on ``output_grid``,
    segmentation (B, 2, ny, nx) on ``input_grid`` (see perception.model.heads).

The camera branch lifts image features onto the output grid through the rig's lookup table,
given as inputs: the geometry is data, not weights, so a calibration update (or a training
augmentation) changes the tables, never the network or a compiled engine.
"""

from __future__ import annotations

import torch
from torch import nn

from perception.bev.camera_lift_torch import lift_features
from perception.model.backbone import BevBackbone
from perception.model.config import INPUT_CHANNELS, MODALITIES, ModelConfig
from perception.model.encoders import BevEncoder, ImageEncoder
from perception.model.fusers import make_fuser
from perception.model.heads import DetectionHead, SegmentationHead
from perception.model.layers import conv_bn_relu

#: Fixed per-channel scales bringing each BEV raster to about unit range (perception.bev
#: channel order): lidar density log1p(count), z max/min/mean m, intensity 0..255, time lag s;
#: radar occupancy, RCS dBsm, vx, vy m/s, count; ultrasonic occupied, free.
INPUT_SCALES = {
    "lidar": (0.5, 0.5, 0.5, 0.5, 0.01, 5.0),
    "radar": (1.0, 0.1, 0.1, 0.1, 0.5),
    "ultrasonic": (1.0, 1.0),
}

INPUT_NAMES = (
    "lidar",
    "radar",
    "ultrasonic",
    "images",
    "camera_present",
    "modality_present",
    "lut_index",
    "lut_camera",
)
OUTPUT_NAMES = ("heatmap", "regression", "segmentation")


class FusionNet(nn.Module):
    lidar_scale: torch.Tensor
    radar_scale: torch.Tensor
    ultrasonic_scale: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.bev_channels, config.bev_stride
        self.lidar = BevEncoder(INPUT_CHANNELS["lidar"], c, c, s, deep=True)
        self.radar = BevEncoder(INPUT_CHANNELS["radar"], 16, c, s, deep=False)
        self.ultrasonic = BevEncoder(INPUT_CHANNELS["ultrasonic"], 8, c, s, deep=False)
        self.image = ImageEncoder(config.image_channels, config.image_stride)
        for name, scales in INPUT_SCALES.items():
            self.register_buffer(f"{name}_scale", torch.tensor(scales).view(1, -1, 1, 1), persistent=False)
        self.camera_bev = conv_bn_relu(config.image_channels, c, 3)
        self.fuser = make_fuser(config.fuser, len(MODALITIES), c, config.fused_channels)
        self.backbone = BevBackbone(config.fused_channels, config.backbone_channels)
        self.detection = DetectionHead(config.fused_channels, config.num_classes)
        self.segmentation = SegmentationHead(config.fused_channels, s)

    def forward(
        self,
        lidar: torch.Tensor,
        radar: torch.Tensor,
        ultrasonic: torch.Tensor,
        images: torch.Tensor,
        camera_present: torch.Tensor,
        modality_present: torch.Tensor,
        lut_index: torch.Tensor,
        lut_camera: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lifted = lift_features(self.image(images), camera_present, lut_index, lut_camera, self.config.output_grid.shape)
        camera = self.camera_bev(lifted)
        features = torch.stack(
            [
                self.lidar(lidar * self.lidar_scale),
                self.radar(radar * self.radar_scale),
                self.ultrasonic(ultrasonic * self.ultrasonic_scale),
                camera,
            ],
            dim=1,
        )
        bev = self.backbone(self.fuser(features, modality_present))
        heatmap, regression = self.detection(bev)
        return heatmap, regression, self.segmentation(bev)

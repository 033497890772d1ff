"""Camera lift as a torch module with static shapes, exportable to ONNX (opset 17).

The same lift as :func:`perception.bev.camera_lift.lift_cameras`, batched, built from a
:class:`~perception.bev.camera_lut.CameraLiftTable` whose arrays become registered buffers.
The graph is Mul (zeroes absent cameras), Transpose/Reshape/Concat (channel-last features
plus the zero slot), one Gather of all samples and a ReduceSum over them, a Gather of the
camera flags for the per-cell count, Clip and Div: every shape is fixed by the table and the
input shape, and nothing scatters (no duplicate-index writes), so TensorRT and ONNX Runtime
run it as is.

Export with the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False,
opset_version=17)``); the torch.export-based one needs ``onnxscript``, not installed here.
"""

from __future__ import annotations

import torch
from torch import nn

from perception.bev.camera_lut import CameraLiftTable
from perception.errors import BevError


def lift_features(
    features: torch.Tensor,
    camera_present: torch.Tensor,
    index: torch.Tensor,
    camera_slot: torch.Tensor,
    grid_shape: tuple[int, int],
) -> torch.Tensor:
    """Lift a batch with one lookup table per batch item (tables as data, not weights).

    Args:
        features: (B, Ncam, C, Hf, Wf) float32 feature maps in the table's camera order;
            features of absent cameras must be finite (they are multiplied by 0).
        camera_present: (B, Ncam) float32, 1 for a camera in the frame, 0 for a missing one.
        index: (B, S * ny * nx) int64, ``CameraLiftTable.lift_inputs()[0]`` per item.
        camera_slot: (B, S * ny * nx) int64, ``CameraLiftTable.lift_inputs()[1]`` per item.
        grid_shape: (ny, nx).

    Returns:
        (B, C, ny, nx) float32: per cell the mean of the samples of present cameras, 0 where
        there is none.
    """
    batch, n_cameras, channels, hf, wf = features.shape
    ny, nx = grid_shape
    samples = index.shape[1] // (ny * nx)
    present = camera_present.to(features.dtype)
    # Absent cameras are zeroed before the gather (Ncam*Hf*Wf*C products instead of S*ny*nx*C).
    masked = features * present.reshape(batch, n_cameras, 1, 1, 1)
    # Channel-last, so that each gathered sample is one contiguous C-vector; batch items are
    # stacked so one Gather serves the whole batch (item b's slots start at b * (slots + 1)).
    slots = n_cameras * hf * wf + 1
    flat = masked.permute(0, 1, 3, 4, 2).reshape(batch, n_cameras * hf * wf, channels)
    flat = torch.cat([flat, flat.new_zeros((batch, 1, channels))], dim=1).reshape(batch * slots, channels)
    offsets = torch.arange(batch, device=index.device, dtype=index.dtype).unsqueeze(1)
    total = flat.index_select(0, (index + offsets * slots).reshape(-1))
    total = total.reshape(batch, samples, ny * nx, channels).sum(dim=1)
    flags = torch.cat([present, present.new_zeros((batch, 1))], dim=1)
    count = torch.gather(flags, 1, camera_slot).reshape(batch, samples, ny * nx).sum(dim=1)
    lifted = total.permute(0, 2, 1) / count.clamp(min=1.0).unsqueeze(1)
    return lifted.reshape(batch, channels, ny, nx)


class CameraLift(nn.Module):
    """Lift per-camera feature maps into BEV (mean over the samples of present cameras).

    Buffers (not parameters; they follow ``.to(device)`` and are saved in the state dict):
        index: (S * ny * nx,) int64 positions in the flattened, concatenated feature maps
            plus one zero slot (``table.index`` row-major).
        camera_slot: (S * ny * nx,) int64 camera position of each sample, ``Ncam`` (an extra
            always-absent slot) for invalid samples.
    """

    index: torch.Tensor
    camera_slot: torch.Tensor

    def __init__(self, table: CameraLiftTable) -> None:
        super().__init__()
        self.camera_ids = table.camera_ids
        self.feature_size = table.feature_size
        self.grid_shape = table.grid.shape
        self.samples = table.samples
        index, camera_slot = table.lift_inputs()
        self.register_buffer("index", torch.from_numpy(index))
        self.register_buffer("camera_slot", torch.from_numpy(camera_slot))

    def forward(self, features: torch.Tensor, camera_present: torch.Tensor) -> torch.Tensor:
        """Lift a batch.

        Args:
            features: (B, Ncam, C, Hf, Wf) float32 feature maps, cameras in
                ``camera_ids`` order. Features of absent cameras must be finite (they are
                multiplied by 0), e.g. zeros.
            camera_present: (B, Ncam) float32, 1 for a camera in the frame, 0 for a missing one.

        Returns:
            (B, C, ny, nx) float32 BEV features: per cell the mean of the samples of present
            cameras, 0 where there is none.
        """
        if not torch.onnx.is_in_onnx_export():  # shapes are static in an export; checks there only warn
            self._check(features, camera_present)
        batch = features.shape[0]
        return lift_features(
            features,
            camera_present,
            self.index.unsqueeze(0).expand(batch, -1),
            self.camera_slot.unsqueeze(0).expand(batch, -1),
            self.grid_shape,
        )

    def _check(self, features: torch.Tensor, camera_present: torch.Tensor) -> None:
        n_cameras = len(self.camera_ids)
        hf, wf = self.feature_size
        if features.dim() != 5 or features.shape[1] != n_cameras or tuple(features.shape[3:]) != (hf, wf):
            raise BevError(
                f"camera features have shape {tuple(features.shape)}, expected (B, {n_cameras}, C, {hf}, {wf}) "
                f"for cameras {list(self.camera_ids)}"
            )
        if not features.is_floating_point():
            raise BevError(f"camera features must be floating point (float32), got dtype {features.dtype}")
        if tuple(camera_present.shape) != (features.shape[0], n_cameras):
            raise BevError(
                f"camera_present has shape {tuple(camera_present.shape)}, expected ({features.shape[0]}, "
                f"{n_cameras}) for cameras {list(self.camera_ids)}"
            )

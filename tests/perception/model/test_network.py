"""FusionNet: static output shapes, presence masking, both fusers, ONNX Runtime == torch."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from calibration import default_rig_path, load_rig
from perception.bev.camera_lut import build_camera_lut
from perception.model.config import ModelConfig, ModelConfigError
from perception.model.fusers import make_fuser
from perception.model.network import INPUT_NAMES, OUTPUT_NAMES, FusionNet

SMALL = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))


@pytest.fixture(scope="module")
def lut() -> tuple[np.ndarray, np.ndarray]:
    c = SMALL
    table = build_camera_lut(
        load_rig(default_rig_path()),
        c.output_grid,
        cameras=c.camera_ids,
        heights_m=c.camera_heights_m,
        feature_size=c.feature_size,
        image_size=c.image_size,
        samples=c.lut_samples,
    )
    return table.lift_inputs()


def _inputs(config: ModelConfig, lut: tuple[np.ndarray, np.ndarray], batch: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ny, nx = config.input_grid.shape
    cams = len(config.camera_ids)
    return {
        "lidar": torch.rand(batch, 6, ny, nx, generator=g),
        "radar": torch.rand(batch, 5, ny, nx, generator=g),
        "ultrasonic": torch.rand(batch, 2, ny, nx, generator=g),
        "images": torch.rand(batch, cams, 3, *config.image_size, generator=g),
        "camera_present": torch.ones(batch, cams),
        "modality_present": torch.ones(batch, 4),
        "lut_index": torch.from_numpy(lut[0]).expand(batch, -1).contiguous(),
        "lut_camera": torch.from_numpy(lut[1]).expand(batch, -1).contiguous(),
    }


@pytest.mark.parametrize("fuser", ["conv", "attention"])
def test_output_shapes_are_static(fuser: str, lut) -> None:
    config = ModelConfig(**{**SMALL.__dict__, "fuser": fuser})
    net = FusionNet(config).eval()
    with torch.no_grad():
        heatmap, regression, segmentation = net(*_inputs(config, lut, batch=2).values())
    h, w = config.output_grid.shape
    assert heatmap.shape == (2, 10, h, w)
    assert regression.shape == (2, 10, h, w)
    assert segmentation.shape == (2, 2, *config.input_grid.shape)


@pytest.mark.parametrize("fuser", ["conv", "attention"])
def test_an_absent_modality_is_never_read(fuser: str, lut) -> None:
    config = ModelConfig(**{**SMALL.__dict__, "fuser": fuser})
    net = FusionNet(config).eval()
    inputs = _inputs(config, lut)
    inputs["modality_present"] = torch.tensor([[0.0, 1.0, 1.0, 1.0]])  # lidar absent
    with torch.no_grad():
        first = net(*inputs.values())
        inputs["lidar"] = inputs["lidar"] * 100.0 + 3.0
        second = net(*inputs.values())
        inputs["modality_present"] = torch.ones(1, 4)
        present = net(*inputs.values())
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], present[0])


def test_fuser_registry_names_the_known_fusers() -> None:
    with pytest.raises(ValueError, match=r"unknown fuser 'mlp'; known: \['attention', 'conv'\]"):
        make_fuser("mlp", 4, 8, 8)
    with pytest.raises(ModelConfigError, match="bev_stride must be 1 or 2, got 3"):
        ModelConfig(bev_stride=3)


def test_config_round_trips_through_json() -> None:
    config = ModelConfig(fuser="attention", lidar_sweeps=2)
    assert ModelConfig.from_json(config.to_json()) == config


def test_onnx_runtime_matches_torch(lut) -> None:
    ort = pytest.importorskip("onnxruntime")
    net = FusionNet(SMALL).eval()
    inputs = _inputs(SMALL, lut)
    inputs["camera_present"][0, 2] = 0.0
    buffer = io.BytesIO()
    with torch.no_grad():
        expected = [t.numpy() for t in net(*inputs.values())]
        torch.onnx.export(
            net,
            tuple(inputs.values()),
            buffer,
            opset_version=17,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamo=False,
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    outputs = session.run(list(OUTPUT_NAMES), {k: v.numpy() for k, v in inputs.items() if k in names})
    for got, want in zip(outputs, expected, strict=True):
        assert np.max(np.abs(got - want)) <= 1e-4

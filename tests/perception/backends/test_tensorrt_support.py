"""The TensorRT 10 ONNX support check: our exported graphs pass (both fusers), hand-built
graphs that break a documented rule fail with messages naming the node, tensor or dimension,
and the support table kept in the repository is well formed and records its source."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from perception.backends.bundle import OPSET, export_bundle
from perception.backends.tensorrt_support import (
    DEFAULT_TABLE,
    SupportCheckError,
    check_onnx_for_tensorrt,
    load_support_table,
)
from perception.model.config import ModelConfig
from perception.model.network import FusionNet
from perception.training.checkpoint import save_checkpoint

TINY = ModelConfig(bev_channels=8, image_channels=8, fused_channels=8, backbone_channels=(8, 8))


def _model(nodes: list, inputs: list, outputs: list, *, initializers: list | None = None, opset: int = OPSET):
    graph = helper.make_graph(nodes, "handmade", inputs, outputs, initializer=initializers or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _tensor(name: str, shape: list, dtype: int = TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.mark.parametrize("fuser", ["conv", "attention"])
def test_exported_bundles_pass(fuser: str, tmp_path: Path) -> None:
    config = replace(TINY, fuser=fuser)
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, {"model": FusionNet(config).state_dict(), "config": config.to_json(), "step": 0})
    bundle = export_bundle(checkpoint, tmp_path / "bundle")
    assert check_onnx_for_tensorrt(bundle.onnx_path) == []
    # the graph really uses what the table restricts (so the pass is not vacuous)
    ops = {node.op_type for node in onnx.load(str(bundle.onnx_path)).graph.node}
    assert {"Resize", "GatherElements", "ReduceSum", "Unsqueeze", "Conv"} <= ops


def test_a_valid_handmade_graph_passes() -> None:
    model = _model(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Sigmoid", ["r"], ["y"], name="sig")],
        [_tensor("x", [1, 3, 8, 8])],
        [_tensor("y", [1, 3, 8, 8])],
    )
    assert check_onnx_for_tensorrt(model) == []


def test_unsupported_unknown_and_custom_operators_are_named() -> None:
    model = _model(
        [
            helper.make_node("Col2Im", ["x", "s", "b"], ["a"], name="fold"),
            helper.make_node("Relu", ["x"], ["c"], name="mine", domain="com.example"),
            helper.make_node("FancyOp", ["x"], ["d"], name="fancy"),
        ],
        [_tensor("x", [1, 4, 4]), _tensor("s", [2], TensorProto.INT64), _tensor("b", [2], TensorProto.INT64)],
        [_tensor("a", [1, 1, 4, 4]), _tensor("c", [1, 4, 4]), _tensor("d", [1, 4, 4])],
    )
    problems = check_onnx_for_tensorrt(model)
    assert any("node 'fold' (Col2Im): operator Col2Im is not supported by TensorRT 10" in p for p in problems)
    assert any("node 'mine' (Relu): operator com.example::Relu is in a custom domain" in p for p in problems)
    assert any(
        "node 'fancy' (FancyOp): operator FancyOp is not in the TensorRT 10 operator table" in p for p in problems
    )
    assert len(problems) == 3


def test_dynamic_and_unknown_dimensions_are_named() -> None:
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [_tensor("x", ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    problems = check_onnx_for_tensorrt(model)
    assert any("graph input 'x' dimension 0 ('batch') is dynamic" in p for p in problems)
    assert any("graph output 'y' has no shape" in p for p in problems)


def test_opset_outside_tensorrt10_range_is_reported() -> None:
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    for opset in (8, 21):
        problems = check_onnx_for_tensorrt(_model([relu], [_tensor("x", [1, 4])], [_tensor("y", [1, 4])], opset=opset))
        assert problems == [
            f"handmade: opset {opset} is outside the range every TensorRT 10.x parses (9..20, "
            "tensorrt10_onnx_operators.yaml)"
        ]


def test_resize_modes_outside_the_documented_ones_fail() -> None:
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["cubic"], name="up_cubic", mode="cubic"),
        helper.make_node("Resize", ["x", "", "scales"], ["aa"], name="up_aa", mode="linear", antialias=1),
        helper.make_node("Resize", ["x", "", "scales"], ["ok"], name="up_ok", mode="linear"),
    ]
    outputs = [_tensor(n, [1, 3, 8, 8]) for n in ("cubic", "aa", "ok")]
    model = _model(nodes, [_tensor("x", [1, 3, 4, 4])], outputs, initializers=[scales], opset=18)
    problems = check_onnx_for_tensorrt(model)
    assert any(
        "node 'up_cubic' (Resize): attribute mode='cubic' is not supported by TensorRT 10" in p for p in problems
    )
    assert any("node 'up_aa' (Resize): attribute antialias=1" in p for p in problems)
    assert not any("up_ok" in p for p in problems)
    assert len(problems) == 2


def test_non_constant_axes_and_bad_data_types_fail() -> None:
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], name="sum_runtime_axes", keepdims=1),
        helper.make_node("Clip", ["i"], ["c"], name="clip_int64"),
    ]
    model = _model(
        nodes,
        [_tensor("x", [1, 4, 4]), _tensor("axes", [1], TensorProto.INT64), _tensor("i", [1, 4], TensorProto.INT64)],
        [_tensor("s", [1, 1, 4]), _tensor("c", [1, 4], TensorProto.INT64)],
    )
    problems = check_onnx_for_tensorrt(model)
    assert any(
        "node 'sum_runtime_axes' (ReduceSum): input 'axes' ('axes') must be a build-time constant" in p
        for p in problems
    )
    assert any("node 'clip_int64' (Clip): input 'i' is INT64; TensorRT 10 supports Clip on" in p for p in problems)
    # the same axes from a Constant node are fine
    constant_axes = helper.make_node(
        "Constant", [], ["axes"], value=numpy_helper.from_array(np.array([1], np.int64), "axes")
    )
    model = _model([constant_axes, nodes[0]], [_tensor("x", [1, 4, 4])], [_tensor("s", [1, 1, 4])])
    assert check_onnx_for_tensorrt(model) == []


def test_operators_newer_than_the_minimum_release_and_subgraphs_are_checked() -> None:
    then_branch = helper.make_graph(
        [helper.make_node("Unique", ["x"], ["u"], name="inner_unique")], "then", [], [_tensor("u", [4])]
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["v"], name="inner_identity")], "else", [], [_tensor("v", [4])]
    )
    nodes = [
        helper.make_node("If", ["flag"], ["out"], name="branch", then_branch=then_branch, else_branch=else_branch),
        helper.make_node("STFT", ["signal", "step"], ["spectrum"], name="stft"),
    ]
    inputs = [
        _tensor("flag", [], TensorProto.BOOL),
        _tensor("x", [4]),
        _tensor("signal", [1, 64, 1]),
        _tensor("step", [], TensorProto.INT64),
    ]
    problems = check_onnx_for_tensorrt(_model(nodes, inputs, [_tensor("out", [4]), _tensor("spectrum", [1, 4, 33, 2])]))
    assert any("node 'branch' (If) > then_branch: node 'inner_unique' (Unique): operator Unique" in p for p in problems)
    assert any("node 'stft' (STFT): operator STFT needs TensorRT >= 10.5" in p for p in problems)
    assert any("node 'stft' (STFT): input 'frame_step' ('step') must be a build-time constant" in p for p in problems)


def test_shipped_table_records_its_source_and_parses() -> None:
    table = load_support_table()
    assert table.path == DEFAULT_TABLE
    assert "onnx/onnx-tensorrt" in table.source["url"]
    assert table.source["url"].endswith("docs/operators.md")
    assert table.source["tensorrt"].startswith("10.")
    assert table.source["retrieved"][:4].isdigit()
    assert (table.opset_min, table.opset_max) == (9, 20)
    assert OPSET in range(table.opset_min, table.opset_max + 1)
    assert len(table.operators) > 150
    assert table.operators["Conv"].supported
    assert "FP16" in table.operators["Conv"].types
    assert not table.operators["Unique"].supported
    assert table.operators["Resize"].attributes["mode"].allowed == ("nearest", "linear")
    for name, operator in table.operators.items():
        assert not operator.supported or operator.types, name


def test_malformed_tables_and_models_are_clear_errors(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_TABLE.read_text())
    data["operators"]["Resize"]["attributes"]["mode"]["allowed"] = "nearest"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(
        SupportCheckError, match=r"broken\.yaml: operators\.Resize\.attributes\.mode\.allowed: must be a list"
    ):
        load_support_table(broken)
    del data["source"]["url"]
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(SupportCheckError, match=r"broken\.yaml: source: field 'url' is missing"):
        load_support_table(broken)
    with pytest.raises(SupportCheckError, match=r"missing\.yaml: TensorRT operator table not found"):
        load_support_table(tmp_path / "missing.yaml")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(SupportCheckError, match=r"garbage\.onnx: cannot read the ONNX model"):
        check_onnx_for_tensorrt(garbage)

"""Will TensorRT 10 parse this ONNX graph? A check that runs without TensorRT.

:func:`check_onnx_for_tensorrt` compares an ONNX model with the operator support table kept
in the repository (``config/tables/tensorrt10_onnx_operators.yaml``, transcribed from onnx-tensorrt's
``docs/operators.md``; its source, commit and date are recorded in the file) and returns the
problems, each naming the node / tensor / dimension / attribute and the rule it breaks:

- an opset of the default domain outside the range every TensorRT 10.x parses;
- a graph input or output with a dynamic or unknown dimension (engines are built for static
  shapes), or a data type TensorRT cannot take as network I/O;
- a node whose operator is not in the table, is documented as unsupported, was added after
  the table's ``minimum_tensorrt`` release, or lives in a custom domain (it would need a plugin);
- a node whose data type (of its first input, as ONNX shape inference infers it) is not among
  the operator's supported types;
- a node that breaks a documented restriction the table encodes: attribute values (e.g.
  Resize ``mode``), forbidden attributes, inputs that must be build-time constants (e.g. the
  ``axes`` of ReduceSum / Unsqueeze), the number of outputs.

Subgraphs (If / Loop / Scan bodies) are checked too. An empty list means the graph uses only
what the table documents; TensorRT's own parser remains the final word (docs/TENSORRT.md).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from perception.backends.base import BackendError

TABLE_FILE: Final = "tensorrt10_onnx_operators.yaml"
#: The shipped table: the source tree's config/tables/, else the installed share/fusion_runtime/config/tables/.
DEFAULT_TABLE: Final = next(
    (
        candidate
        for candidate in (
            Path(__file__).resolve().parents[2] / "config" / "tables" / TABLE_FILE,
            Path(sys.prefix) / "share" / "fusion_runtime" / "config" / "tables" / TABLE_FILE,
        )
        if candidate.is_file()
    ),
    Path(__file__).resolve().parents[2] / "config" / "tables" / TABLE_FILE,
)
DEFAULT_DOMAINS: Final = ("", "ai.onnx")
#: Operators whose outputs are never build-time constants even when their inputs are.
_NOT_CONSTANT: Final = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
#: ONNX TensorProto data type names -> the table's names.
_TYPE_NAMES: Final = {
    "FLOAT": "FP32",
    "FLOAT16": "FP16",
    "BFLOAT16": "BF16",
    "DOUBLE": "DOUBLE",
    "FLOAT8E4M3FN": "FP8",
    "FLOAT4E2M1": "FP4",
}


class SupportCheckError(BackendError, ValueError):
    """The support table or the model cannot be read; the message names the file and field."""


@dataclass(frozen=True)
class AttributeRule:
    """Documented restriction on one attribute (see the table's schema comment)."""

    default: Any = None
    allowed: tuple[Any, ...] | None = None
    each_in: tuple[Any, ...] | None = None
    length_in: tuple[int, ...] | None = None


@dataclass(frozen=True)
class OperatorSupport:
    name: str
    supported: bool
    types: tuple[str, ...] = ()
    since: str | None = None
    restrictions: str = ""
    attributes: Mapping[str, AttributeRule] = field(default_factory=dict)
    forbidden_attributes: tuple[str, ...] = ()
    constant_inputs: Mapping[str, int] = field(default_factory=dict)
    max_outputs: int | None = None


@dataclass(frozen=True)
class SupportTable:
    path: Path
    source: Mapping[str, str]
    opset_min: int
    opset_max: int
    minimum_tensorrt: str
    io_types: tuple[str, ...]
    operators: Mapping[str, OperatorSupport]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _need(mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in mapping:
        raise SupportCheckError(f"{where}: field {key!r} is missing")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise SupportCheckError(f"{where}: field {key!r} has the wrong type: {value!r}")
    return value


def _tuple(value: Any, where: str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise SupportCheckError(f"{where}: must be a list, got {value!r}")
    return tuple(value)


def _operator(name: str, entry: Any, where: str) -> OperatorSupport:
    if not isinstance(entry, dict):
        raise SupportCheckError(f"{where}: must be a mapping, got {entry!r}")
    known = {
        "supported",
        "types",
        "since",
        "restrictions",
        "attributes",
        "forbidden_attributes",
        "constant_inputs",
        "max_outputs",
    }
    if unknown := set(entry) - known:
        raise SupportCheckError(f"{where}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    supported = _need(entry, "supported", bool, where)
    types = tuple(_tuple(entry.get("types", []), f"{where}.types") or ())
    if supported and not types:
        raise SupportCheckError(f"{where}: a supported operator needs its documented 'types'")
    since = entry.get("since")
    if since is not None and (not isinstance(since, str) or not all(p.isdigit() for p in since.split("."))):
        raise SupportCheckError(f"{where}.since: {since!r} is not a version like '10.4'")
    rules = {}
    for attribute, rule in (entry.get("attributes") or {}).items():
        at = f"{where}.attributes.{attribute}"
        if not isinstance(rule, dict) or set(rule) - {"default", "allowed", "each_in", "length_in"}:
            raise SupportCheckError(f"{at}: must map default / allowed / each_in / length_in, got {rule!r}")
        rules[attribute] = AttributeRule(
            default=rule.get("default"),
            allowed=_tuple(rule.get("allowed"), f"{at}.allowed"),
            each_in=_tuple(rule.get("each_in"), f"{at}.each_in"),
            length_in=_tuple(rule.get("length_in"), f"{at}.length_in"),
        )
    constant_inputs = entry.get("constant_inputs") or {}
    if not isinstance(constant_inputs, dict) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in constant_inputs.values()
    ):
        raise SupportCheckError(
            f"{where}.constant_inputs: must map input names to indices >= 0, got {constant_inputs!r}"
        )
    max_outputs = entry.get("max_outputs")
    if max_outputs is not None and (not isinstance(max_outputs, int) or max_outputs < 1):
        raise SupportCheckError(f"{where}.max_outputs: must be an integer >= 1, got {max_outputs!r}")
    return OperatorSupport(
        name=name,
        supported=supported,
        types=types,
        since=since,
        restrictions=str(entry.get("restrictions", "")),
        attributes=rules,
        forbidden_attributes=tuple(
            _tuple(entry.get("forbidden_attributes", []), f"{where}.forbidden_attributes") or ()
        ),
        constant_inputs=dict(constant_inputs),
        max_outputs=max_outputs,
    )


@functools.lru_cache(maxsize=4)
def _load_table(path: Path, mtime_ns: int) -> SupportTable:
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SupportCheckError(f"{where}: cannot read the TensorRT operator table ({exc})") from exc
    if not isinstance(data, dict):
        raise SupportCheckError(f"{where}: expected a mapping at the top, got {type(data).__name__}")
    source = _need(data, "source", dict, where)
    for key in ("url", "tensorrt", "commit", "retrieved"):
        _need(source, key, str, f"{where}: source")
    opset = _need(data, "opset", dict, where)
    opset_min = _need(opset, "min", int, f"{where}: opset")
    opset_max = _need(opset, "max", int, f"{where}: opset")
    if not 1 <= opset_min <= opset_max:
        raise SupportCheckError(f"{where}: opset range {opset_min}..{opset_max} is empty")
    minimum = str(_need(data, "minimum_tensorrt", str, where))
    if not all(part.isdigit() for part in minimum.split(".")):
        raise SupportCheckError(f"{where}: field 'minimum_tensorrt' {minimum!r} is not a version like '10.3'")
    io_types = tuple(_tuple(_need(data, "io_types", list, where), f"{where}: io_types") or ())
    operators = _need(data, "operators", dict, where)
    return SupportTable(
        path=path,
        source={str(k): str(v) for k, v in source.items()},
        opset_min=opset_min,
        opset_max=opset_max,
        minimum_tensorrt=minimum,
        io_types=io_types,
        operators={
            str(name): _operator(str(name), entry, f"{where}: operators.{name}") for name, entry in operators.items()
        },
    )


def load_support_table(path: str | Path = DEFAULT_TABLE) -> SupportTable:
    """The operator table at ``path``, validated (errors name the file and the field)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise SupportCheckError(f"{path}: TensorRT operator table not found")
    return _load_table(path, path.stat().st_mtime_ns)


def _type_name(elem_type: int) -> str:
    from onnx import TensorProto

    name = str(TensorProto.DataType.Name(elem_type))
    return _TYPE_NAMES.get(name, name)


def _attribute_value(attribute: Any) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


def _static(value_info: Any) -> bool:
    shape = value_info.type.tensor_type.shape if value_info.type.HasField("tensor_type") else None
    return (
        shape is not None
        and all(d.HasField("dim_value") for d in shape.dim)
        and bool(value_info.type.tensor_type.HasField("shape"))
    )


def _walk(graph: Any, where: str) -> Iterator[tuple[Any, str]]:
    """Every node of ``graph`` and of its subgraphs, with a readable location."""
    from onnx import AttributeProto

    for index, node in enumerate(graph.node):
        location = f"{where}node {node.name or '#' + str(index)!r} ({node.op_type})"
        yield node, location
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                yield from _walk(attribute.g, f"{location} > {attribute.name}: ")
            elif attribute.type == AttributeProto.GRAPHS:
                for k, sub in enumerate(attribute.graphs):
                    yield from _walk(sub, f"{location} > {attribute.name}[{k}]: ")


def _constants(graph: Any, static: Mapping[str, bool], known: frozenset[str] = frozenset()) -> set[str]:
    """Tensors TensorRT can resolve at build time: initializers, Constant outputs, Shape / Size
    of statically shaped tensors, and anything computed from those alone."""
    from onnx import AttributeProto

    constant = set(known) | {i.name for i in graph.initializer}
    for node in graph.node:
        inputs = [name for name in node.input if name]
        literal = node.op_type == "Constant"
        static_shape = node.op_type in ("Shape", "Size") and bool(inputs) and static.get(inputs[0], False)
        folded = (
            bool(inputs)
            and node.op_type not in _NOT_CONSTANT
            and all(name in constant for name in inputs)
            and not any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute)
        )
        if literal or static_shape or folded:
            constant.update(node.output)
        for attribute in node.attribute:  # subgraph constants see the outer ones
            subgraphs = [attribute.g] if attribute.type == AttributeProto.GRAPH else list(attribute.graphs)
            for sub in subgraphs:
                constant |= _constants(sub, static, frozenset(constant))
    return constant


def _check_attributes(node: Any, support: OperatorSupport, location: str) -> list[str]:
    problems = []
    present = {a.name: _attribute_value(a) for a in node.attribute}
    for name in support.forbidden_attributes:
        if name in present:
            problems.append(f"{location}: attribute {name!r} is not supported by TensorRT ({support.restrictions})")
    for name, rule in support.attributes.items():
        value = present.get(name, rule.default)
        if value is None:
            continue
        shown = f"attribute {name}={value!r}" + ("" if name in present else " (ONNX default)")
        if rule.allowed is not None and value not in rule.allowed:
            problems.append(f"{location}: {shown} is not supported by TensorRT 10 (supported: {list(rule.allowed)})")
        if rule.each_in is not None and isinstance(value, list) and any(v not in rule.each_in for v in value):
            problems.append(f"{location}: {shown} must have every element in {list(rule.each_in)}")
        if rule.length_in is not None and isinstance(value, list) and len(value) not in rule.length_in:
            problems.append(f"{location}: {shown} has {len(value)} elements; TensorRT 10 takes {list(rule.length_in)}")
    return problems


def _check_node(
    node: Any,
    location: str,
    table: SupportTable,
    types: Mapping[str, int],
    constants: set[str],
) -> list[str]:
    if node.domain not in DEFAULT_DOMAINS:
        return [
            f"{location}: operator {node.domain}::{node.op_type} is in a custom domain, not in TensorRT's ONNX "
            "operator table (it would need a TensorRT plugin)"
        ]
    support = table.operators.get(node.op_type)
    if support is None:
        return [f"{location}: operator {node.op_type} is not in the TensorRT 10 operator table {table.path.name}"]
    if not support.supported:
        return [f"{location}: operator {node.op_type} is not supported by TensorRT 10 ({table.path.name})"]
    problems = []
    if support.since and _version(support.since) > _version(table.minimum_tensorrt):
        problems.append(
            f"{location}: operator {node.op_type} needs TensorRT >= {support.since}; the table's minimum is "
            f"{table.minimum_tensorrt} (JetPack 6 on Jetson Orin)"
        )
    data = next((name for name in node.input if name), None)
    tensor = data if data is not None else (node.output[0] if node.output else None)
    if tensor is not None and tensor in types:
        dtype = _type_name(types[tensor])
        if dtype not in support.types:
            role = "input" if data is not None else "output"
            problems.append(
                f"{location}: {role} {tensor!r} is {dtype}; "
                f"TensorRT 10 supports {node.op_type} on {list(support.types)}"
            )
    problems += _check_attributes(node, support, location)
    for name, index in support.constant_inputs.items():
        if index < len(node.input) and node.input[index] and node.input[index] not in constants:
            problems.append(
                f"{location}: input {name!r} ({node.input[index]!r}) must be a build-time constant for TensorRT "
                f"({support.restrictions})"
            )
    outputs = [name for name in node.output if name]
    if support.max_outputs is not None and len(outputs) > support.max_outputs:
        problems.append(
            f"{location}: {len(outputs)} outputs; TensorRT imports only the first {support.max_outputs} "
            f"({support.restrictions})"
        )
    return problems


def _check_io(graph: Any, table: SupportTable, where: str) -> list[str]:
    problems = []
    initializers = {i.name for i in graph.initializer}
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            if not value.type.HasField("tensor_type"):
                problems.append(f"{where}graph {kind} {value.name!r} is not a tensor; TensorRT takes tensors only")
                continue
            dtype = _type_name(tensor.elem_type)
            if dtype not in table.io_types:
                problems.append(
                    f"{where}graph {kind} {value.name!r} is {dtype}; TensorRT network I/O types: {list(table.io_types)}"
                )
            if not tensor.HasField("shape"):
                problems.append(
                    f"{where}graph {kind} {value.name!r} has no shape (rank unknown); engines need static shapes"
                )
                continue
            for axis, dim in enumerate(tensor.shape.dim):
                if not dim.HasField("dim_value") or dim.dim_value <= 0:
                    name = f" ({dim.dim_param!r})" if dim.HasField("dim_param") else ""
                    problems.append(
                        f"{where}graph {kind} {value.name!r} dimension {axis}{name} is dynamic; "
                        "the engine is built for static shapes (export with fixed sizes)"
                    )
    return problems


def check_onnx_for_tensorrt(model: str | Path | Any, table_path: str | Path = DEFAULT_TABLE) -> list[str]:
    """Problems TensorRT 10 would have with an ONNX model (a path or an ``onnx.ModelProto``),
    per the operator table at ``table_path``; an empty list when none is found."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import shape_inference

    table = load_support_table(table_path)
    if isinstance(model, (str, Path)):
        where = f"{model}: "
        try:
            model = onnx.load(str(model))
        except (OSError, ValueError, DecodeError) as exc:
            raise SupportCheckError(f"{where}cannot read the ONNX model ({exc})") from exc
    else:
        where = f"{model.graph.name or 'model'}: "
    problems = []
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    default = [opsets[d] for d in DEFAULT_DOMAINS if d in opsets]
    if not default:
        problems.append(f"{where}no opset of the default ONNX domain is imported")
    for version in default:
        if not table.opset_min <= version <= table.opset_max:
            problems.append(
                f"{where}opset {version} is outside the range every TensorRT 10.x parses "
                f"({table.opset_min}..{table.opset_max}, {table.path.name})"
            )
    problems += _check_io(model.graph, table, where)
    try:
        inferred = shape_inference.infer_shapes(model)
    except (shape_inference.InferenceError, ValueError):  # best effort: without types the other checks still run
        inferred = model
    graph = inferred.graph
    values = [*graph.input, *graph.output, *graph.value_info]
    types = {v.name: v.type.tensor_type.elem_type for v in values if v.type.HasField("tensor_type")}
    types.update({i.name: i.data_type for i in graph.initializer})
    static = {v.name: _static(v) for v in values}
    constants = _constants(graph, static)
    for node, location in _walk(graph, where):
        problems += _check_node(node, location, table, types, constants)
    return problems

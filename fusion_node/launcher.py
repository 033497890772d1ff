"""Start a node graph as separate processes and supervise it (``fusion launch``).

A launch configuration (YAML) lists the environment and the nodes::

    environment:                 # added to every node's environment (optional)
      ROS_DOMAIN_ID: "7"
    nodes:
      - name: fusion_node        # ROS node name (also the log prefix)
        module: fusion_node.fusion_node      # run as `python -m MODULE --ros-args ...`
        parameters: [config/fusion_node.yaml]  # parameter files: absolute, or relative to the
                                               # launch file's folder, or to the package root
                                               # (the folder holding config/)
        overrides: {backend: onnxruntime}      # -p key:=value, after the files
        remappings: {"~/output/objects": /perception/objects}

Every node is started with :func:`fusion_node.processes.start_child` (it dies with the
launcher), its output is forwarded line by line with a ``[name]`` prefix, and the launcher
stops all nodes (SIGINT, then SIGKILL after a grace period) on Ctrl-C / SIGTERM or as soon as
any node exits; its exit code is then 1 (a node died) or 0 (asked to stop).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fusion_node.processes import forward_logs, start_child, stop_child

_NODE_KEYS = {"name", "module", "parameters", "overrides", "remappings"}


class LaunchConfigError(ValueError):
    """A launch configuration is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    module: str
    parameters: tuple[Path, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        args = [sys.executable, "-m", self.module, "--ros-args", "-r", f"__node:={self.name}"]
        for path in self.parameters:
            args += ["--params-file", str(path)]
        for key, value in self.overrides.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["-p", f"{key}:={text}"]
        for source, target in self.remappings.items():
            args += ["-r", f"{source}:={target}"]
        return args


@dataclass(frozen=True)
class LaunchConfig:
    nodes: tuple[NodeSpec, ...]
    environment: dict[str, str]


def load_launch_config(path: str | Path, *, overrides: dict[str, dict[str, Any]] | None = None) -> LaunchConfig:
    """Parse and check a launch YAML; parameter files must exist. ``overrides``: node name ->
    extra parameter overrides (from the command line)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LaunchConfigError(f"{path}: cannot read launch configuration ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        raise LaunchConfigError(f"{path}: expected a mapping with a non-empty 'nodes' list")
    unknown_top = set(data) - {"nodes", "environment"}
    if unknown_top:
        raise LaunchConfigError(f"{path}: unknown keys {sorted(unknown_top)} (allowed: nodes, environment)")
    here = path.resolve().parent
    roots = (here, here.parent.parent)  # config/launch/x.yaml -> the package root
    nodes = []
    for i, entry in enumerate(data["nodes"]):
        where = f"{path}: nodes[{i}]"
        if not isinstance(entry, dict) or {"name", "module"} - set(entry):
            raise LaunchConfigError(f"{where}: needs 'name' and 'module', got {entry!r}")
        extra = set(entry) - _NODE_KEYS
        if extra:
            raise LaunchConfigError(
                f"{where} ({entry['name']}): unknown keys {sorted(extra)}; allowed {sorted(_NODE_KEYS)}"
            )
        files = []
        for name in entry.get("parameters") or []:
            candidates = [Path(name)] if Path(name).is_absolute() else [root / name for root in roots]
            file = next((c for c in candidates if c.is_file()), None)
            if file is None:
                raise LaunchConfigError(
                    f"{where} ({entry['name']}): parameter file {name} not found "
                    f"(looked at {[str(c) for c in candidates]})"
                )
            files.append(file)
        node_overrides = dict(entry.get("overrides") or {}) | dict((overrides or {}).get(entry["name"], {}))
        nodes.append(
            NodeSpec(
                str(entry["name"]),
                str(entry["module"]),
                tuple(files),
                node_overrides,
                dict(entry.get("remappings") or {}),
            )
        )
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise LaunchConfigError(f"{path}: node names must be unique, got {names}")
    environment = {str(k): str(v) for k, v in (data.get("environment") or {}).items()}
    return LaunchConfig(tuple(nodes), environment)


def supervise(config: LaunchConfig, *, poll_s: float = 0.2, grace_s: float = 10.0) -> int:
    """Run the graph until Ctrl-C / SIGTERM (exit 0) or until a node exits (exit 1)."""
    env = dict(os.environ) | config.environment
    stop_requested = False

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    children = []
    try:
        for node in config.nodes:
            process = start_child(node.command(), env=env)
            forward_logs(process, node.name)
            children.append((node, process))
            print(f"[launch] started {node.name} (pid {process.pid})", flush=True)
        while not stop_requested:
            dead = [(n, p) for n, p in children if p.poll() is not None]
            if dead:
                for node, process in dead:
                    print(f"[launch] {node.name} exited with code {process.returncode}: stopping the graph", flush=True)
                return 1
            time.sleep(poll_s)
        print("[launch] stop requested: shutting the graph down", flush=True)
        return 0
    finally:
        for node, process in reversed(children):
            code = stop_child(process, timeout_s=grace_s)
            print(f"[launch] {node.name} stopped (exit {code})", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

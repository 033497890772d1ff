"""Launch files, the RViz config and `fusion launch` graphs reference topics, types,
executables and parameter files that really exist."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from fusion_node.launcher import load_launch_config
from fusion_node.output_topics import OUTPUT_TOPICS

REPO = Path(__file__).resolve().parents[2]
RVIZ_TYPES = {
    "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
    "rviz_default_plugins/Map": "nav_msgs/msg/OccupancyGrid",
    "rviz_default_plugins/PointCloud2": "sensor_msgs/msg/PointCloud2",
    "rviz_default_plugins/Image": "sensor_msgs/msg/Image",
}


def _console_scripts() -> set[str]:
    text = (REPO / "setup.py").read_text()
    return {line.split("=")[0].strip().strip('"') for line in text.splitlines() if ":main" in line}


def test_rviz_shows_every_output_with_its_type_in_base_link() -> None:
    config = yaml.safe_load((REPO / "launch" / "fusion.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "base_link"
    published = {topic.resolved(): topic.msg_type for topic in OUTPUT_TOPICS}
    shown = {}
    for display in manager["Displays"]:
        if "Topic" not in display:
            continue
        topic = display["Topic"]["Value"]
        assert topic in published, f"RViz display {display['Name']!r} subscribes to {topic}, which nothing publishes"
        assert RVIZ_TYPES[display["Class"]] == published[topic], f"{display['Name']}: wrong type for {topic}"
        shown[topic] = display["Class"]
    assert set(shown) == set(published), f"outputs not shown in RViz: {set(published) - set(shown)}"


def test_launch_files_name_real_executables_and_files() -> None:
    scripts = _console_scripts()
    for launch_file in (REPO / "launch").glob("*.launch.py"):
        tree = ast.parse(launch_file.read_text())
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"):
            values = {k.arg: k.value for k in call.keywords}
            package = ast.literal_eval(values["package"])
            executable = ast.literal_eval(values["executable"])
            if package == "fusion_runtime":
                assert executable in scripts, f"{launch_file.name}: no console script {executable!r}"
        for constant in (n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)):
            if constant.endswith((".yaml", ".rviz")):
                matches = list(REPO.glob(f"**/{constant}"))
                assert matches, f"{launch_file.name}: references {constant}, which is not in the repository"


def test_fusion_launch_graphs_load() -> None:
    for config in (REPO / "config" / "launch").glob("*.yaml"):
        graph = load_launch_config(config)
        for node in graph.nodes:
            assert (REPO / Path(*node.module.split("."))).with_suffix(".py").is_file(), node.module
        # no transport here: each node takes the runtime's own (fusion_node.dds_transport)
        assert not {"FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_DEFAULT_PROFILES_FILE"} & set(graph.environment)

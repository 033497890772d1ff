"""The package itself: ROS-free core, installable layout, the CLI, shipped configs."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from calibration import load_rig

CORE_PACKAGES = ("calibration", "perception", "simulation", "dataset_converters", "visualization")


def test_core_imports_with_ros_blocked(repo: Path) -> None:
    """perception and calibration (every module) import with rclpy and messages blocked."""
    code = f"""
import sys, pkgutil, importlib
for name in ("rclpy", "sensor_msgs", "std_msgs", "nav_msgs", "geometry_msgs",
             "builtin_interfaces", "diagnostic_msgs", "visualization_msgs"):
    sys.modules[name] = None
for package in {CORE_PACKAGES!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_package_xml_declares_what_the_code_imports(repo: Path) -> None:
    root = ET.parse(repo / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "fusion_runtime"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    imported = set()
    for path in (repo / "fusion_node").rglob("*.py"):
        text = path.read_text()
        for package in (
            "rclpy",
            "sensor_msgs",
            "nav_msgs",
            "std_msgs",
            "diagnostic_msgs",
            "visualization_msgs",
            "geometry_msgs",
            "builtin_interfaces",
            "rcl_interfaces",
        ):
            if f"from {package}" in text or f"import {package}" in text:
                imported.add(package)
    assert imported - {"rcl_interfaces"} <= exec_deps, f"missing exec_depend: {imported - exec_deps}"
    assert root.find("export/build_type").text == "ament_python"


def test_setup_installs_data_files_and_scripts(repo: Path) -> None:
    text = (repo / "setup.py").read_text()
    assert (repo / "resource" / "fusion_runtime").is_file()
    for needle in (
        "share/ament_index/resource_index/packages",
        "launch/*.launch.py",
        "config/rigs/*.yaml",
        "fusion = fusion_node.cli:main",
        "sensor_monitor = fusion_node.sensor_monitor_node:main",
        "fusion_node = fusion_node.fusion_node:main",
    ):
        assert needle in text


def test_fusion_help_lists_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in (
        "rig",
        "bench",
        "demo",
        "sim",
        "convert",
        "calib",
        "train",
        "eval",
        "export",
        "render",
        "replay",
        "record",
        "launch",
    ):
        assert command in result.stdout


def test_fusion_rig_validate_reports_errors(tmp_path: Path, repo: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sensors:\n  - {id: cam, modality: sonar, topic: /x, frame_id: x, rate_hz: 1}\n")
    result = subprocess.run(
        [sys.executable, "-m", "fusion_node.cli", "rig", "validate", str(repo / "config/rigs/default.yaml"), str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "ok" in result.stdout
    assert "sonar" in result.stderr
    assert "bad.yaml" in result.stderr


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "config" / "rigs").glob("*.yaml")))
def test_shipped_rigs_load(path: Path) -> None:
    assert load_rig(path).sensors

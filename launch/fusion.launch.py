"""The fusion graph on a full ROS 2 install (``ros2 launch fusion_runtime fusion.launch.py weights:=...``).

Same nodes and parameters as ``fusion launch config/launch/fusion.yaml``: the fusion node
(config/fusion_node.yaml) and the sensor monitor (config/sensor_monitor.yaml), each on the
runtime's DDS transport (fusion_node/dds_transport.py); ``rviz:=true`` also opens RViz with launch/fusion.rviz.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("fusion_runtime")
    rig = LaunchConfiguration("rig_path")
    return LaunchDescription(
        [
            DeclareLaunchArgument("rig_path", default_value=os.path.join(share, "config", "rigs", "default.yaml")),
            DeclareLaunchArgument("weights", description="checkpoint (.pt) or model bundle directory"),
            DeclareLaunchArgument("backend", default_value="onnxruntime", description="torch | onnxruntime | tensorrt"),
            DeclareLaunchArgument(
                "precision", default_value="", description="onnxruntime: fp32 | fp16 | int8; tensorrt: engine precision"
            ),
            DeclareLaunchArgument("rviz", default_value="false"),
            Node(
                package="fusion_runtime",
                executable="fusion_node",
                name="fusion_node",
                output="screen",
                parameters=[
                    os.path.join(share, "config", "fusion_node.yaml"),
                    {
                        "rig_path": rig,
                        "weights": LaunchConfiguration("weights"),
                        "backend": LaunchConfiguration("backend"),
                        "precision": LaunchConfiguration("precision"),
                    },
                ],
            ),
            Node(
                package="fusion_runtime",
                executable="sensor_monitor",
                name="sensor_monitor",
                output="screen",
                parameters=[os.path.join(share, "config", "sensor_monitor.yaml"), {"rig_path": rig}],
            ),
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(share, "launch", "fusion.rviz")],
                condition=IfCondition(LaunchConfiguration("rviz")),
            ),
        ]
    )

"""Start the sensor_monitor node on a full ROS 2 install (``ros2 launch fusion_runtime sensor_monitor.launch.py``).

Same parameters as ``fusion demo`` uses: config/sensor_monitor.yaml, overridable with
``rig_path:=/path/to/rig.yaml``. The node takes the runtime's DDS transport
(fusion_node/dds_transport.py) unless the environment chooses one.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory("fusion_runtime")
    return LaunchDescription(
        [
            DeclareLaunchArgument("rig_path", default_value=os.path.join(share, "config", "rigs", "default.yaml")),
            Node(
                package="fusion_runtime",
                executable="sensor_monitor",
                name="sensor_monitor",
                output="screen",
                parameters=[
                    os.path.join(share, "config", "sensor_monitor.yaml"),
                    {"rig_path": LaunchConfiguration("rig_path")},
                ],
            ),
        ]
    )

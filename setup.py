"""Install the fusion runtime as an ament_python ROS 2 package or with plain pip.

Both `colcon build` on a full ROS 2 install and `pip install -e .` use this file: the
ament resource marker, package.xml, launch files, RViz config and rig/parameter configs are
installed as data files under ``share/fusion_runtime/``.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "fusion_runtime"
SHARE = f"share/{PACKAGE}"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Camera/lidar/radar/ultrasonic BEV fusion runtime for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(
        include=[
            "fusion_node*",
            "perception*",
            "calibration*",
            "benchmarks*",
            "simulation*",
            "dataset_converters*",
            "visualization*",
        ]
    ),
    package_data={"": ["py.typed"], "fusion_node": ["fastdds_tcp.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (SHARE, ["package.xml"]),
        (f"{SHARE}/launch", glob("launch/*.launch.py") + glob("launch/*.rviz")),
        (f"{SHARE}/config", glob("config/*.yaml")),
        (f"{SHARE}/config/rigs", glob("config/rigs/*.yaml")),
        (f"{SHARE}/config/tables", glob("config/tables/*.yaml")),
        (f"{SHARE}/config/launch", glob("config/launch/*.yaml")),
    ],
    install_requires=["numpy", "pyyaml"],
    zip_safe=False,  # fusion_node/fastdds_tcp.xml is read by path
    entry_points={
        "console_scripts": [
            "fusion = fusion_node.cli:main",
            "sensor_monitor = fusion_node.sensor_monitor_node:main",
            "fusion_node = fusion_node.fusion_node:main",
        ],
    },
)

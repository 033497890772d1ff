"""Readers of public driving datasets that turn them into the runtime's source records
(``perception.samples.SensorRecord``) and ground truth (``perception.ground_truth``).

ROS-free: nothing here imports rclpy or message packages; ``fusion convert`` writes the
records into bags with ``fusion_node.bag.write_records``.
"""

from dataset_converters.errors import DatasetError, PcdError

__all__ = ["DatasetError", "PcdError"]

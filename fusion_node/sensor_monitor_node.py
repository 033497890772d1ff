"""sensor_monitor: subscribes to every sensor of the rig and publishes their health.

Thin node: parameters -> rig -> one subscription per sensor; every message goes through the
conversion module (``fusion_node.sensor_inputs.decode``); the ROS-free
``perception.sensor_health.SensorHealthMonitor`` grades rate, staleness and rejected
messages; a timer publishes one diagnostic_msgs/DiagnosticStatus per sensor on /diagnostics.
A malformed message never stops the node: it is counted, logged and reported with its reason.
"""

from __future__ import annotations

from typing import Any

from calibration import CalibrationError, Sensor, default_rig_path, load_rig
from fusion_node.errors import ConversionError
from fusion_node.parameters import ParameterError, ParameterSpec, declare_parameters
from fusion_node.sensor_inputs import decode, message_type
from fusion_node.teardown import exit_process
from perception.sensor_health import SensorHealthMonitor, SensorStatus

NODE_NAME = "sensor_monitor"
PARAMETERS = (
    ParameterSpec("rig_path", str, "", "rig YAML file; empty = the shipped default rig"),
    ParameterSpec("qos", str, "sensor_data", "QoS of the sensor subscriptions", choices=("sensor_data", "reliable")),
    ParameterSpec(
        "diagnostics_period_s", float, 1.0, "period of /diagnostics publishing, seconds", minimum=0.05, maximum=10.0
    ),
    ParameterSpec(
        "stale_after_periods",
        float,
        5.0,
        "a sensor silent for this many nominal periods is reported stopped",
        minimum=1.0,
        maximum=1000.0,
    ),
    ParameterSpec("decode_images", bool, False, "fully decode compressed images (costly) to check them"),
)


def _diagnostic(status: SensorStatus, sensor: Sensor) -> Any:
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    values = {
        "modality": sensor.modality.value,
        "topic": sensor.topic,
        "rate_hz": f"{status.rate_hz:.2f}",
        "nominal_rate_hz": f"{sensor.rate_hz:.2f}",
        "received": str(status.received),
        "rejected": str(status.rejected),
        "out_of_order": str(status.out_of_order),
        "age_s": f"{status.age_s:.3f}",
        "last_error": status.last_error,
    }
    return DiagnosticStatus(
        level=bytes([int(status.level)]),
        name=f"{NODE_NAME}: {sensor.id}",
        message=status.message,
        hardware_id=sensor.frame_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()],
    )


def main(args: list[str] | None = None) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node

    from fusion_node.dds_transport import use_runtime_transport
    from fusion_node.qos import QOS_PROFILES
    from fusion_node.teardown import close_ros, spin_until_shutdown

    use_runtime_transport()
    rclpy.init(args=args)
    node = Node(NODE_NAME)
    try:
        params = declare_parameters(node, PARAMETERS)
        rig = load_rig(params["rig_path"] or default_rig_path())
    except (ParameterError, CalibrationError) as exc:
        node.get_logger().fatal(f"refusing to start: {exc}")
        node.destroy_node()
        rclpy.try_shutdown()
        return 2

    monitor = SensorHealthMonitor(
        {s.id: s.rate_hz for s in rig.sensors}, stale_after_periods=params["stale_after_periods"]
    )
    clock = node.get_clock()
    logger = node.get_logger()

    def on_message(sensor: Sensor, msg: Any) -> None:
        now = clock.now().nanoseconds
        try:
            stamp_ns, _ = decode(sensor, msg, decode_images=params["decode_images"])
        except ConversionError as exc:
            monitor.record_rejected(sensor.id, str(exc), now)
            logger.warning(f"dropped message: {exc}", throttle_duration_sec=1.0)
            return
        except Exception as exc:  # node boundary: one bad message never kills the node
            monitor.record_rejected(sensor.id, f"internal error: {type(exc).__name__}: {exc}", now)
            logger.error(f"dropped message on {sensor.topic} after an internal error: {exc!r}")
            return
        monitor.record(sensor.id, stamp_ns, now)

    qos = QOS_PROFILES[params["qos"]]
    for sensor in rig.sensors:
        node.create_subscription(message_type(sensor), sensor.topic, lambda m, s=sensor: on_message(s, m), qos)

    publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
    sensors = {s.id: s for s in rig.sensors}

    def publish() -> None:
        now = clock.now()
        array = DiagnosticArray()
        array.header.stamp = now.to_msg()
        array.status = [_diagnostic(st, sensors[st.sensor_id]) for st in monitor.status(now.nanoseconds)]
        publisher.publish(array)

    node.create_timer(params["diagnostics_period_s"], publish)
    logger.info(f"monitoring {len(rig.sensors)} sensors of rig '{rig.name}' ({rig.source})")
    try:
        spin_until_shutdown(node)
    finally:
        close_ros(node, what=NODE_NAME)
    return 0


if __name__ == "__main__":
    exit_process(main())

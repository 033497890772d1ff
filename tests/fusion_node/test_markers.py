"""Boxes -> MarkerArray: geometry (edge endpoints are the box corners), colours, labels, arrows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from visualization_msgs.msg import Marker, MarkerArray

from fusion_node.convert import boxes_to_marker_array, time_to_ns
from fusion_node.convert.markers import MIN_ARROW_SPEED, box_label_text
from fusion_node.errors import InvalidArrayError
from perception.classes import CLASS_COLORS, CLASSES
from perception.ground_truth import BOX_EDGES, Boxes


def _boxes() -> Boxes:
    return Boxes.create(
        centers=[[10.0, 2.0, 0.8], [-5.0, -3.0, 1.2], [0.0, 20.0, 0.5]],
        sizes=[[4.5, 1.9, 1.6], [0.7, 0.6, 1.8], [0.4, 0.4, 0.8]],
        yaws=[0.3, -2.0, math.pi],
        labels=[0, 8, 9],
        velocities=[[5.0, 1.0], [np.nan, np.nan], [0.05, 0.0]],
        track_ids=[7, -1, 3],
        scores=np.array([1.0, 0.5, 1.0], dtype=np.float32),
    )


def _by(markers: list[Marker], ns: str) -> dict[int, Marker]:
    return {m.id: m for m in markers if m.ns == ns and m.action == Marker.ADD}


def test_line_list_edges_are_the_box_corners() -> None:
    boxes = _boxes()
    array = boxes_to_marker_array(boxes, stamp_ns=1_500_000_000_123, frame_id="base_link", namespace="gt")
    lines = _by(array.markers, "gt")
    assert sorted(lines) == [0, 1, 2]
    corners = boxes.corners()
    for i, marker in lines.items():
        assert marker.type == Marker.LINE_LIST
        assert len(marker.points) == 24
        points = np.array([[p.x, p.y, p.z] for p in marker.points])
        np.testing.assert_allclose(points.reshape(12, 2, 3), corners[i][BOX_EDGES], atol=1e-12)
        assert marker.pose.orientation.w == 1.0
        assert marker.pose.position.x == 0.0
        r, g, b = CLASS_COLORS[int(boxes.labels[i])]
        assert (marker.color.r, marker.color.g, marker.color.b, marker.color.a) == pytest.approx(
            (r / 255, g / 255, b / 255, 1.0)
        )
        assert marker.header.frame_id == "base_link"
        assert time_to_ns(marker.header.stamp) == 1_500_000_000_123
        assert marker.scale.x > 0
    # every edge of a box is one of its 12 distinct edges, each of length l, w or h
    seg = np.array([[p.x, p.y, p.z] for p in lines[0].points]).reshape(12, 2, 3)
    lengths = np.sort(np.linalg.norm(seg[:, 0] - seg[:, 1], axis=1))
    np.testing.assert_allclose(lengths, [1.6] * 4 + [1.9] * 4 + [4.5] * 4, atol=1e-12)


def test_deleteall_first_labels_and_arrows() -> None:
    boxes = _boxes()
    array = boxes_to_marker_array(boxes, stamp_ns=10, namespace="gt", lifetime_ns=250_000_000)
    first = array.markers[0]
    assert first.action == Marker.DELETEALL
    assert first.ns == "gt"
    assert all(m.action == Marker.ADD for m in array.markers[1:])
    texts = _by(array.markers, "gt/labels")
    assert [texts[i].text for i in range(3)] == ["car #7", "pedestrian 0.50", "traffic_cone #3"]
    assert texts[0].type == Marker.TEXT_VIEW_FACING
    assert texts[0].pose.position.z == pytest.approx(0.8 + 0.8 + 0.4)
    arrows = _by(array.markers, "gt/velocity")
    # box 1 has an unknown velocity, box 2 is slower than MIN_ARROW_SPEED
    assert sorted(arrows) == [0]
    assert MIN_ARROW_SPEED > 0.05
    start, end = ([p.x, p.y, p.z] for p in arrows[0].points)
    np.testing.assert_allclose(start, boxes.centers[0])
    np.testing.assert_allclose(np.subtract(end, start), [5.0, 1.0, 0.0])
    assert arrows[0].type == Marker.ARROW
    lifetimes = {(m.lifetime.sec, m.lifetime.nanosec) for m in array.markers[1:]}
    assert lifetimes == {(0, 250_000_000)}
    keys = [(m.ns, m.id) for m in array.markers[1:]]
    assert len(keys) == len(set(keys)) == 3 + 3 + 1


def test_options_and_empty_boxes() -> None:
    plain = boxes_to_marker_array(_boxes(), stamp_ns=0, namespace="d", with_text=False, with_velocity=False)
    assert [m.type for m in plain.markers[1:]] == [Marker.LINE_LIST] * 3
    empty = boxes_to_marker_array(Boxes.empty(), stamp_ns=5, frame_id="map")
    assert len(empty.markers) == 1
    assert empty.markers[0].action == Marker.DELETEALL
    assert empty.markers[0].header.frame_id == "map"
    assert box_label_text(CLASSES.index("bus"), -1, 1.0) == "bus"


def test_serializes_as_a_marker_array() -> None:
    array = boxes_to_marker_array(_boxes(), stamp_ns=42, namespace="gt")
    back = deserialize_message(serialize_message(array), MarkerArray)
    assert len(back.markers) == len(array.markers)
    assert [p.x for p in back.markers[1].points] == [p.x for p in array.markers[1].points]


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArrayError, match=r"expected Boxes, got ndarray"):
        boxes_to_marker_array(np.zeros((2, 7)), stamp_ns=0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArrayError, match=r"lifetime_ns must be an int >= 0, got -1"):
        boxes_to_marker_array(_boxes(), stamp_ns=0, lifetime_ns=-1)

"""Sensor models: each renders one message of one rig sensor at a capture time."""

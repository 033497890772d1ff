"""Simulation: a procedural driving world rendered through the rig's real sensor geometry.

ROS-free (numpy, Open3D ray casting, OpenCV). Entry points: :class:`simulation.simulator.Simulator`
(records for the bag writer), :func:`simulation.shards.write_shards` (training shards) and the
``fusion sim`` command.
"""

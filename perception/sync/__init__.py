"""Time synchronization of the rig's sensor streams into frames (ROS-free).

Public API::

    from perception.sync import SyncConfig, Synchronizer
    sync = Synchronizer(SyncConfig.from_rig(rig, clock="data"))
    frames = sync.push(record)        # list[Frame], reference-stamp order
    frames += sync.poll(now_ns)       # deadlines passed with no new record
    frames += sync.flush()            # end of stream
    sync.stats.as_dict()

See :mod:`perception.sync.synchronizer` for the rules.
"""

from perception.sync.config import CLOCKS, DEFAULT_MATCH, MATCHES, Clock, Match, SensorSync, SyncConfig
from perception.sync.frames import Frame, Missing, MissingReason, Stamped
from perception.sync.stats import DropReason, SensorStats, SyncStats
from perception.sync.synchronizer import Synchronizer

__all__ = [
    "CLOCKS",
    "DEFAULT_MATCH",
    "MATCHES",
    "Clock",
    "DropReason",
    "Frame",
    "Match",
    "Missing",
    "MissingReason",
    "SensorStats",
    "SensorSync",
    "Stamped",
    "SyncConfig",
    "SyncStats",
    "Synchronizer",
]

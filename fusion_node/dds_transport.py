"""The DDS transport of every process of the runtime, chosen in one place.

``FUSION_DDS_TRANSPORT`` names it (the nodes, ``fusion replay``, ``fusion record``, ``fusion
demo`` and the tests read it through :func:`use_runtime_transport`):

``large_data`` (default)
    Fast DDS's LARGE_DATA builtin transports: UDP discovery, then shared memory on one
    machine and TCP between machines. The fastest for point clouds (``fusion bench
    transport``: 0.6 MB in ~2.6 ms against ~4.8 ms over TCP). But its shared memory does not
    survive a process killed with SIGKILL (a crash, an OOM kill): the node restarted in its
    place reopens the dead one's port and can stay deaf to the processes already running. Here
    1 restart in 10 received nothing for the next 40 s (eProsima/Fast-DDS #5053, #5469).
``tcp``
    The profile ``fusion_node/fastdds_tcp.xml``: UDP discovery, TCP data, no shared memory.
    TCP connections close with the process that owned them, so a restarted node is matched
    again at once: 25 of 25 restarts recovered. It costs time: the demo's end-to-end p50 was
    ~45 ms higher with it, and 0-4 frames in 39 were dropped (docs/BENCHMARKS.md). Choose it
    where processes may be killed and restarted under a running graph.

A user who sets ``FASTDDS_DEFAULT_PROFILES_FILE`` or ``FASTDDS_BUILTIN_TRANSPORTS`` keeps that
choice: nothing is changed then. Processes on other transports (RViz on Fast DDS's default
UDP + shared memory, for one) still talk to ours over UDP or TCP.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

#: The Fast DDS XML profile of the ``tcp`` transport (the default participant profile).
PROFILE: Final = Path(__file__).with_name("fastdds_tcp.xml")
#: The environment variable naming the transport, and the default.
VARIABLE: Final = "FUSION_DDS_TRANSPORT"
DEFAULT: Final = "large_data"
#: What each transport adds to a process environment.
TRANSPORTS: Final[Mapping[str, Mapping[str, str]]] = {
    "large_data": {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
    "tcp": {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE)},
}
#: Environment variables through which a user configures Fast DDS directly.
USER_CHOICE: Final = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")


class TransportError(ValueError):
    """``FUSION_DDS_TRANSPORT`` names no transport; the message says what it holds."""


def transport_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to a process environment (``environ``, default ``os.environ``)
    for the transport it names in ``FUSION_DDS_TRANSPORT`` (default ``large_data``); ``{}``
    when it already configures Fast DDS itself. Raises TransportError for an unknown name."""
    environ = os.environ if environ is None else environ
    if any(environ.get(name) for name in USER_CHOICE):
        return {}
    name = environ.get(VARIABLE) or DEFAULT
    if name not in TRANSPORTS:
        raise TransportError(f"{VARIABLE}={name!r} names no DDS transport; choose one of {sorted(TRANSPORTS)}")
    return dict(TRANSPORTS[name])


def use_runtime_transport() -> None:
    """Give this process the runtime's transport (unless the user configured Fast DDS). Call it
    before the first ``rclpy.init``: Fast DDS reads the variables when it creates a
    participant, and child processes inherit them."""
    os.environ.update(transport_environment())

"""Simulated scenario bags generated on first use and cached (never committed).

Longer drives (for the demo, replay and evaluation) are a pure function of the simulator
version, the rig and the options, so they are generated once into ``out/scenarios/<key>/``
and reused. The key hashes everything that changes the data; a different rig, seed or
simulator version gives a different directory. Generation writes into a temporary
directory and renames it, so an interrupted run never leaves a half bag behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from calibration import Rig

#: Bump when the simulator's output changes for the same options (invalidates the cache).
SIMULATOR_VERSION = 3  # 3: lidar sweeps stamped at their last firing
DEFAULT_ROOT = Path("out/scenarios")


def scenario_key(rig: Rig, config: Any) -> str:
    """Short stable hash of the rig, the simulation options and the simulator version."""
    text = json.dumps(
        {"version": SIMULATOR_VERSION, "rig": rig.to_dict(), "config": asdict(config)}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_scenario_bag(rig: Rig, config: Any, root: str | Path = DEFAULT_ROOT, progress: Any = None) -> Path:
    """The bag of ``config`` (a simulation.simulator.SimConfig) for ``rig``, generated if missing.

    Returns the bag directory ``root/<seed>_<duration>s_<key>``.
    """
    from fusion_node.bag.records import write_records
    from simulation.simulator import Simulator

    scenario = config.scenario
    path = Path(root) / f"seed{scenario.seed}_{scenario.duration_s:g}s_{scenario_key(rig, config)}"
    if (path / "metadata.yaml").is_file():
        return path
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    simulator = Simulator(rig, config)
    write_records(
        partial,
        rig,
        simulator.records(),
        ground_truth=simulator.ground_truth,
        progress=progress,
        metadata={"source": "fusion sim (cached scenario)", "scenario_key": path.name},
    )
    partial.rename(path)
    return path

"""Shared fixtures: paths to the repository, the shipped configs and the real samples, and
simulated training shards. The test process and the nodes it starts use the runtime's DDS
transport (fusion_node.dds_transport), as a user's processes do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fusion_node.dds_transport import use_runtime_transport

use_runtime_transport()

REPO = Path(__file__).resolve().parent.parent
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real recorded samples beside the checkout; tests using it skip when absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real samples not found at {REALDATA}")
    return REALDATA


@pytest.fixture(scope="session")
def simulated_shards(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make(seed, duration_s, frames_per_shard)``: the folder of training shards of one
    simulated drive of the default rig (what ``fusion sim --shards`` writes), made once per
    session for each set of arguments."""
    from calibration import default_rig_path, load_rig
    from simulation.scenario import ScenarioConfig
    from simulation.shards import write_shards
    from simulation.simulator import SimConfig, Simulator

    made: dict[tuple[int, float, int], Path] = {}

    def make(seed: int, duration_s: float, frames_per_shard: int) -> Path:
        key = (seed, duration_s, frames_per_shard)
        if key not in made:
            directory = tmp_path_factory.mktemp("shards") / f"seed_{seed}"
            config = SimConfig(scenario=ScenarioConfig(seed=seed, duration_s=duration_s))
            write_shards(directory, Simulator(load_rig(default_rig_path()), config), frames_per_shard=frames_per_shard)
            made[key] = directory
        return made[key]

    return make

"""Bag writing and reading speed (``fusion bench bag``) on simulated records.

One simulated drive (default rig, ``--duration`` seconds) is rendered once into memory; then
each storage/compression writes it as a bag and reads it back (deserializing every message),
interleaved run by run. The baseline is uncompressed MCAP in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.timing import median_ms, speedup, time_interleaved

HELP = "rosbag2 write + read of a simulated drive per storage/compression (baseline: mcap uncompressed)"
VARIANTS = (("mcap", "zstd"), ("mcap", "none"), ("sqlite3", "none"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=1.0, help="seconds of simulated driving (default 1)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from calibration import default_rig_path, load_rig
    from fusion_node.bag import BagReader, write_records
    from simulation.scenario import ScenarioConfig
    from simulation.simulator import SimConfig, Simulator

    rig = load_rig(default_rig_path())
    simulator = Simulator(rig, SimConfig(scenario=ScenarioConfig(seed=0, duration_s=args.duration)))
    records = list(simulator.records())
    truth = simulator.ground_truth()
    root = Path(tempfile.mkdtemp(prefix="fusion-bench-bag-"))
    sizes: dict[str, int] = {}
    counter = iter(range(10**9))

    def write(storage: str, compression: str) -> None:
        path = root / f"{storage}-{compression}-{next(counter)}"
        summary = write_records(path, rig, records, storage=storage, compression=compression, ground_truth=truth)
        sizes[f"{storage}/{compression}"] = summary.size_bytes
        shutil.rmtree(path)

    try:
        write_times = time_interleaved([lambda s=s, c=c: write(s, c) for s, c in VARIANTS], args.runs, args.warmup)
        readable = {}
        for storage, compression in VARIANTS:
            path = root / f"read-{storage}-{compression}"
            write_records(path, rig, records, storage=storage, compression=compression, ground_truth=truth)
            readable[(storage, compression)] = path

        def read(path: Path) -> None:
            with BagReader(path) as reader:
                for _ in reader.messages():
                    pass

        read_times = time_interleaved([lambda p=p: read(p) for p in readable.values()], args.runs, args.warmup)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base_write, base_read = median_ms(write_times[1]), median_ms(read_times[1])
    results: dict[str, Any] = {}
    for index, (storage, compression) in enumerate(VARIANTS):
        for kind, times, base in (("write", write_times, base_write), ("read", read_times, base_read)):
            candidate = median_ms(times[index])
            results[f"{kind} {storage}/{compression}"] = {
                "median_ms": candidate,
                "runs": len(times[index]),
                "input": {"records": len(records), "duration_s": args.duration},
                "size_mb": round(sizes[f"{storage}/{compression}"] / 2**20, 2),
                "baseline": f"{kind} mcap/none",
                "baseline_median_ms": base,
                "speedup": speedup(base, candidate),
            }
    return results

"""Timing helpers shared by every benchmark: interleaved runs, medians in milliseconds.

Interleaving (candidate, baseline, candidate, baseline, ...) makes drift in machine load hit
both alike, so the ratio between them is meaningful on a busy 2-core machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def time_interleaved(fns: list[Callable[[], Any]], runs: int, warmup: int) -> list[list[int]]:
    """Run times (ns) of each function, interleaved run by run, after ``warmup`` untimed rounds."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[int]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, sink in zip(fns, times, strict=True):
            start = time.perf_counter_ns()
            fn()
            sink.append(time.perf_counter_ns() - start)
    return times


def median_ms(times: list[int]) -> float:
    """Median of nanosecond timings, in milliseconds (4 decimals)."""
    return round(float(np.median(times)) / 1e6, 4)


def speedup(baseline_ms: float, candidate_ms: float) -> float | None:
    """baseline / candidate, 2 decimals; None when the candidate took no measurable time."""
    return round(baseline_ms / candidate_ms, 2) if candidate_ms > 0 else None

"""``fusion record --out DIR``: record live topics into an MCAP bag over DDS, no ROS install needed.

::

    fusion record --out out/run1 --all --duration 30
    fusion record --out out/run2 --topics /sensing/lidar/top/points /localization/odometry

Topics and their types come from the ROS graph (new publishers are picked up while recording);
the log time of a message is its receive time. Ends after ``--duration`` or on Ctrl-C / SIGTERM,
with the bag closed and readable either way. A progress bar shows the messages written and the
topics recorded; a table of messages per topic follows at the end. The recording itself is
:mod:`fusion_node.recorder`. Exit status: 0 done, 2 bad input (including an existing --out).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from fusion_node.dds_transport import use_runtime_transport
from fusion_node.errors import BagError
from fusion_node.recorder import RecordOptions, RecordSummary, stop_on_signals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="bag directory to create (must not exist)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--topics", nargs="+", metavar="T", help="record these topics")
    which.add_argument(
        "--all", action="store_true", help="record every topic (except /rosout, /parameter_events, hidden ones)"
    )
    parser.add_argument(
        "--storage", default="mcap", help="mcap (default, zstd chunk compression) or sqlite3 (uncompressed)"
    )
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def run(args: argparse.Namespace) -> int:
    use_runtime_transport()
    from fusion_node.recorder import record

    try:
        options = RecordOptions(
            out=args.out,
            topics=None if args.all else tuple(args.topics),
            storage=args.storage,
            duration_s=args.duration,
        )
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress = _Progress(quiet=args.quiet)
    with stop_on_signals() as should_stop:
        try:
            summary = record(options, should_stop=should_stop, on_progress=progress.update, on_event=progress.write)
        except BagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            progress.close()
    if not args.quiet:
        print(describe(summary))
    if summary.missing:
        print(f"warning: never published, not in the bag: {list(summary.missing)}", file=sys.stderr)
    return 0


class _Progress:
    """tqdm counter on stderr: messages written, topics recorded, seconds."""

    def __init__(self, *, quiet: bool) -> None:
        self.bar: Any = None
        self.quiet = quiet
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(desc="record", unit=" msg", dynamic_ncols=True)

    def update(self, counts: Mapping[str, int], elapsed_s: float) -> None:
        if self.bar is None:
            return
        self.bar.n = sum(counts.values())
        self.bar.set_postfix_str(f"{len(counts)} topics, {elapsed_s:.1f} s", refresh=False)
        self.bar.refresh()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def describe(summary: RecordSummary) -> str:
    """The table of messages per topic of a finished recording."""
    width = max((len(t) for t in summary.counts), default=5)
    lines = [f"{'topic':<{width}}  messages"]
    lines += [f"{topic:<{width}}  {count:>8}" for topic, count in sorted(summary.counts.items())]
    lines += [f"{topic:<{width}}  skipped: {reason}" for topic, reason in sorted(summary.skipped.items())]
    total = sum(summary.counts.values())
    lines.append(
        f"{total} messages on {len(summary.counts)} topics in {summary.wall_s:.1f} s -> {summary.path} "
        f"(ended by {summary.ended_by})"
    )
    return "\n".join(lines)

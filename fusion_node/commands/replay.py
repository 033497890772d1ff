"""``fusion replay BAG``: play a rosbag2 bag on live topics over DDS, no ROS install needed.

::

    fusion replay bags/sample_city_4s --rate 2 --clock --loop
    fusion replay BAG --topics /sensing/lidar/top/points --remap /sensing/lidar/top/points:=/points

Messages keep their log-time spacing divided by ``--rate``, with the QoS recorded in the bag
(``--qos bag``) or a named profile; ``--clock [HZ]`` publishes rosgraph_msgs/msg/Clock for
nodes with ``use_sim_time``. Interactive (stdin a terminal, no ``--no-keyboard``): space
pauses/resumes, ``s`` steps one message while paused, ``q`` quits. Ctrl-C / SIGTERM stop
cleanly. Here: the command line, the checks of topics, remap rules and start offset against
the bag (:func:`plan_playback`), the keyboard and the progress bar; the playback is
:mod:`fusion_node.player`. Exit status: 0 done, 1 subscribers never came, 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

from fusion_node.dds_transport import use_runtime_transport
from fusion_node.errors import BagError, BagOptionError, BagReadError, UnknownTopicError
from fusion_node.player import (
    CLOCK_TOPIC,
    DEFAULT_CLOCK_HZ,
    QOS_CHOICES,
    PlaybackOptions,
    PlaybackPlan,
    PlaybackStatus,
    PlaybackSummary,
    PlayerCommand,
)
from fusion_node.recorder import is_topic_name, stop_on_signals

#: Keys of the interactive player (Ctrl-C arrives as SIGINT in cbreak mode; as a byte it quits too).
KEYS: Final = {
    " ": PlayerCommand.TOGGLE_PAUSE,
    "s": PlayerCommand.STEP,
    "q": PlayerCommand.QUIT,
    "\x03": PlayerCommand.QUIT,
}
KEY_HELP: Final = "keys: space = pause/resume, s = step one message while paused, q = quit"
_NS = 1_000_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="rosbag2 bag directory (or a single .mcap / .db3 file)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback rate: 2 plays twice as fast (default 1)")
    parser.add_argument("--loop", action="store_true", help="restart at the beginning after the last message")
    parser.add_argument(
        "--start-offset", type=float, default=0.0, metavar="S", help="start S seconds after the bag's first message"
    )
    parser.add_argument("--topics", nargs="+", metavar="T", help="play only these topics (default: all)")
    parser.add_argument(
        "--remap", nargs="+", default=[], metavar="OLD:=NEW", help="publish topic OLD under the name NEW"
    )
    parser.add_argument(
        "--clock",
        nargs="?",
        type=float,
        const=DEFAULT_CLOCK_HZ,
        default=None,
        metavar="HZ",
        help=f"publish /clock (bag time) at HZ (default {DEFAULT_CLOCK_HZ:g}) for nodes with use_sim_time",
    )
    parser.add_argument(
        "--qos",
        choices=QOS_CHOICES,
        default="bag",
        help="publisher QoS: as recorded in the bag (default), reliable, or sensor_data (best effort)",
    )
    parser.add_argument(
        "--wait-for-subscribers",
        nargs="?",
        type=float,
        const=30.0,
        default=None,
        metavar="S",
        help="before playing, wait up to S seconds (default 30) for a subscriber on every played topic",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="S",
        help="sleep S seconds before the first message, after --wait-for-subscribers (subscribers finish matching)",
    )
    parser.add_argument("--no-keyboard", action="store_true", help="ignore the keyboard even on a terminal")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")


def run(args: argparse.Namespace) -> int:
    use_runtime_transport()
    from fusion_node.player import play

    try:
        options = PlaybackOptions(
            rate=args.rate,
            loop=args.loop,
            start_offset_s=args.start_offset,
            topics=tuple(args.topics) if args.topics else None,
            remap=tuple(args.remap),
            clock_hz=args.clock,
            qos=args.qos,
            wait_for_subscribers_s=args.wait_for_subscribers,
            delay_s=args.delay,
        )
        plan = plan_for_bag(args.bag, options)
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    interactive = not args.no_keyboard and sys.stdin.isatty()
    progress = _Progress(plan, quiet=args.quiet)
    if interactive:
        progress.write(KEY_HELP)
    with stop_on_signals() as should_stop, Keyboard(sys.stdin) if interactive else contextlib.nullcontext() as keys:
        try:
            summary = play(
                plan,
                options,
                wait_for_command=keys.wait_for_command if keys is not None else None,
                should_stop=should_stop,
                on_progress=progress.update,
                on_event=progress.write,
            )
        except BagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except TimeoutError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            progress.close()
    if not args.quiet:
        print(describe(summary))
    if summary.unacknowledged:
        print(f"warning: not every message was acknowledged on: {list(summary.unacknowledged)}", file=sys.stderr)
    return 0


# -- checks ------------------------------------------------------------------------------
def plan_for_bag(path: str | Path, options: PlaybackOptions) -> PlaybackPlan:
    """Open the bag and check ``options`` against it (see :func:`plan_playback`)."""
    from fusion_node.bag.reader import BagReader

    with BagReader(path) as reader:
        if reader.start_ns is None or reader.end_ns is None:
            raise BagReadError("has no messages to play", path=str(path))
        return plan_playback(str(path), reader.topics, reader.start_ns, reader.end_ns, options)


def plan_playback(
    path: str, bag_topics: Mapping[str, str], start_ns: int, end_ns: int, options: PlaybackOptions
) -> PlaybackPlan:
    """The playback of a bag with these topics (topic -> type) and first/last log times."""
    topics = select_topics(bag_topics, options.topics, path)
    outputs = parse_remaps(options.remap, topics, path)
    if options.clock_hz is not None and CLOCK_TOPIC in outputs.values():
        source = next(t for t, o in outputs.items() if o == CLOCK_TOPIC)
        raise BagOptionError(
            f"--clock: the bag's topic {source} would also be published on {CLOCK_TOPIC} "
            "(leave it out with --topics or rename it with --remap)",
            path=path,
        )
    offset_ns = round(options.start_offset_s * _NS)
    if offset_ns > end_ns - start_ns:
        raise BagOptionError(
            f"--start-offset {options.start_offset_s:g} s is past the end of the bag "
            f"(duration {(end_ns - start_ns) / _NS:.3f} s)",
            path=path,
        )
    return PlaybackPlan(path, topics, outputs, start_ns + offset_ns, end_ns)


def select_topics(bag_topics: Mapping[str, str], requested: Sequence[str] | None, path: str) -> dict[str, str]:
    """``requested`` topics (None: all) -> message type; UnknownTopicError names the missing
    topic(s) and lists the bag's topics with their types."""
    if requested is None:
        return dict(bag_topics)
    missing = [t for t in requested if t not in bag_topics]
    if missing:
        listing = "\n  ".join(f"{t} ({bag_topics[t]})" for t in sorted(bag_topics))
        raise UnknownTopicError(
            f"--topics {', '.join(missing)}: not in the bag; its topics are:\n  {listing}", path=path
        )
    return {t: bag_topics[t] for t in dict.fromkeys(requested)}


def parse_remaps(rules: Sequence[str], played: Iterable[str], path: str = "") -> dict[str, str]:
    """``OLD:=NEW`` rules -> {played topic: published name} for every played topic.

    BagOptionError naming the rule: not one OLD:=NEW, a name that is not an absolute topic
    name, OLD not played (the played topics are listed), OLD remapped twice, or two topics
    published on one name (a remap onto another played topic included).
    """
    outputs = {t: t for t in played}
    rule_of: dict[str, str] = {}
    for rule in rules:
        old, sep, new = rule.partition(":=")
        if not sep or ":=" in new:
            raise BagOptionError(
                f"--remap {rule!r}: expected one OLD:=NEW rule, e.g. /points:=/lidar/points", path=path
            )
        for name in (old, new):
            if not is_topic_name(name):
                raise BagOptionError(
                    f"--remap {rule!r}: {name!r} is not an absolute topic name (/name/of/topic)", path=path
                )
        if old not in outputs:
            raise BagOptionError(f"--remap {rule!r}: {old} is not played; played topics: {sorted(outputs)}", path=path)
        if old in rule_of:
            raise BagOptionError(f"--remap {rule!r}: {old} is remapped already by {rule_of[old]!r}", path=path)
        rule_of[old] = rule
        outputs[old] = new
    published: dict[str, str] = {}
    for topic, name in outputs.items():
        if name in published:
            rules = " and ".join(repr(rule_of[t]) for t in (published[name], topic) if t in rule_of)
            raise BagOptionError(
                f"--remap {rules}: {published[name]} and {topic} would both be published on {name}", path=path
            )
        published[name] = topic
    return outputs


# -- terminal ----------------------------------------------------------------------------
class Keyboard:
    """Single-key commands from a terminal: cbreak mode while in the ``with`` block (keys arrive
    at once and are not echoed; Ctrl-C still raises SIGINT), the previous mode restored on exit,
    also after an error or a signal."""

    def __init__(self, stream: TextIO) -> None:
        self.fd = stream.fileno()
        self._saved: list[Any] | None = None
        self._eof = False

    def __enter__(self) -> Keyboard:
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read_key(self, timeout_s: float) -> str | None:
        """One key pressed within ``timeout_s`` (0: a poll), or None."""
        if self._eof:
            time.sleep(max(0.0, timeout_s))
            return None
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
        if not ready:
            return None
        data = os.read(self.fd, 1)
        if not data:  # the terminal went away: no more keys, keep playing
            self._eof = True
            return None
        return data.decode("latin-1")

    def wait_for_command(self, timeout_s: float) -> PlayerCommand | None:
        """The command of a key pressed within ``timeout_s`` (other keys are ignored)."""
        key = self.read_key(timeout_s)
        return None if key is None else KEYS.get(key.lower())


class _Progress:
    """tqdm bar on stderr: bag time in the loop, messages, achieved rate, loop, pause."""

    def __init__(self, plan: PlaybackPlan, *, quiet: bool) -> None:
        self.quiet = quiet
        self.window_s = round((plan.end_ns - plan.start_ns) / _NS, 2)
        self.bar: Any = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.window_s,
                desc=f"replay {Path(plan.path).name}",
                bar_format="{desc}: {n:.2f}/{total:.2f} s |{bar}|{postfix}",
                dynamic_ncols=True,
            )

    def update(self, status: PlaybackStatus) -> None:
        if self.bar is None:
            return
        self.bar.n = min(self.window_s, round(max(0.0, status.position_s), 2))
        paused = "  PAUSED" if status.paused else ""
        self.bar.set_postfix_str(
            f"{status.published} msgs, {status.achieved_rate:.2f}x, loop {status.loop + 1}{paused}", refresh=False
        )
        self.bar.refresh()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        elif not self.quiet:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def describe(summary: PlaybackSummary) -> str:
    """One line per fact of a finished playback."""
    total = sum(summary.published.values())
    lines = [
        f"played {total} messages on {len(summary.published)} topics: {summary.bag_s:.2f} s of bag in "
        f"{summary.wall_s:.2f} s ({summary.achieved_rate:.2f}x), {summary.loops} loop(s), ended by {summary.ended_by}"
    ]
    if summary.clock_messages:
        lines.append(f"/clock: {summary.clock_messages} messages")
    return "\n".join(lines)

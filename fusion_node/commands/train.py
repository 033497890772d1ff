"""``fusion train``: train the fusion network on simulated shards (resumable).

The data are shard directories written by ``fusion sim --shards``; the run directory gets
``last.pt`` (weights-only checkpoint: model, optimizer, schedule, step), ``config.json``,
``options.json`` and ``log.jsonl``. Running the same command again resumes from ``last.pt``.
``--modalities`` trains a model that only ever sees those groups and records them in its
config (``ModelConfig.modalities``), so every backend presents the other groups as absent. The
single-modality baselines of the "fusion helps" comparison use the same recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perception.training.dataset import DropoutConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", nargs="+", default=["out/data/train"], help="shard directories (searched recursively)"
    )
    parser.add_argument("--out", default="out/train/fusion_sim", help="run directory (resumes when it has last.pt)")
    parser.add_argument("--epochs", type=int, default=12, help="passes over the data (default 12)")
    parser.add_argument("--batch", type=int, default=4, help="frames per batch (default 4)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--fuser", default="conv", help="fusion module: conv | attention (default conv)")
    parser.add_argument("--seed", type=int, default=0, help="data order, augmentation and dropout seed")
    parser.add_argument("--no-augment", action="store_true", help="no rotation / flip / scaling")
    parser.add_argument("--no-dropout", action="store_true", help="no modality dropout")
    parser.add_argument(
        "--dropout",
        default="",
        help="dropout probabilities to change, e.g. radar=0.3,single_camera=0.1 (defaults: groups 0.2, one camera 0.1)",
    )
    parser.add_argument(
        "--velocity-weight", type=float, default=0.5, help="weight of vx, vy among the box regressions (default 0.5)"
    )
    parser.add_argument(
        "--init", default=None, help="start a new run from this checkpoint's weights (fine-tuning; same model config)"
    )
    parser.add_argument(
        "--modalities",
        default="lidar,radar,ultrasonic,camera",
        help="groups the model ever sees, comma-separated (default all four)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="data preparation processes (default 1)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from perception.model.config import MODALITIES, ModelConfig
    from perception.model.inputs import InputEncoder
    from perception.training.checkpoint import CheckpointError
    from perception.training.dataset import (
        background_batches,
        rig_of_shard,
        shard_files,
        steps_per_epoch,
    )
    from perception.training.trainer import TrainOptions, train

    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown or not modalities:
        print(
            f"error: --modalities {args.modalities!r}: unknown {unknown}; choose from {list(MODALITIES)}",
            file=sys.stderr,
        )
        return 2
    for name, value, low in (("--epochs", args.epochs, 1), ("--batch", args.batch, 1), ("--threads", args.threads, 1)):
        if value < low:
            print(f"error: {name} must be >= {low}, got {value}", file=sys.stderr)
            return 2
    try:
        files = shard_files(args.data)
        config = ModelConfig(fuser=args.fuser, modalities=tuple(m for m in MODALITIES if m in modalities))
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rig = rig_of_shard(files[0])
    encoder = InputEncoder(rig, config)
    try:
        dropout = None if args.no_dropout else _dropout(args.dropout)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    per_epoch = steps_per_epoch(files, args.batch)
    epochs = args.epochs
    options = TrainOptions(
        out=Path(args.out),
        epochs=epochs,
        steps_per_epoch=per_epoch,
        learning_rate=args.lr,
        seed=args.seed,
        threads=args.threads,
        max_steps=args.max_steps,
        init=None if args.init is None else Path(args.init),
        velocity_weight=args.velocity_weight,
        batches={
            "data": list(args.data),
            "batch": args.batch,
            "augment": not args.no_augment,
            "dropout": None if dropout is None else dataclasses.asdict(dropout),
            "modalities": modalities,
        },
    )
    print(
        f"{len(files)} shards, {per_epoch} steps/epoch x {epochs} epochs, batch {args.batch}, modalities {modalities}"
    )

    def stream(start_step: int):  # type: ignore[no-untyped-def]
        return background_batches(
            files,
            encoder,
            workers=args.workers,
            batch_size=args.batch,
            seed=args.seed * 1_000_003 + start_step,
            augment=not args.no_augment,
            dropout=dropout,
            allowed=modalities,
        )

    try:
        last = train(config, options, stream, progress=not args.quiet)
    except (CheckpointError, ValueError) as exc:  # --init: missing, unreadable or another model
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"checkpoint: {last}")
    return 0


def _dropout(text: str) -> DropoutConfig:
    """DropoutConfig with the ``name=p`` pairs of ``text`` changed; ValueError names a bad pair."""
    from perception.training.dataset import DropoutConfig

    changes: dict[str, float] = {}
    names = [f.name for f in dataclasses.fields(DropoutConfig)]
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = pair.partition("=")
        try:
            probability = float(value)
        except ValueError:
            probability = math.nan
        if name not in names or not 0.0 <= probability <= 1.0:
            raise ValueError(f"--dropout {pair!r}: expected NAME=P with NAME in {names} and 0 <= P <= 1")
        changes[name] = probability
    return dataclasses.replace(DropoutConfig(), **changes)

"""The training loop: AdamW + one-cycle schedule, progress bar, checkpoints and resume.

``train(config, options, batches)`` runs ``epochs x steps_per_epoch`` steps over an endless
stream of batches (dicts of tensors, see perception.training.dataset), writes ``last.pt``
every ``checkpoint_every`` steps and at each epoch end (atomically), and resumes from
``last.pt`` in ``options.out`` when it exists: the model, optimizer, schedule and step are
restored and the data stream reopens seeded by that step, so an interrupted run continues
where it stopped. A new run may start from another run's weights (``options.init``: fine-tuning
with a fresh optimizer and schedule; the model configs must be equal). Losses go to
``log.jsonl``, one JSON object per step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from perception.model.config import ModelConfig
from perception.model.losses import LossWeights, total_loss
from perception.model.network import INPUT_NAMES, FusionNet
from perception.training.checkpoint import load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class TrainOptions:
    out: Path
    epochs: int = 12
    steps_per_epoch: int = 400
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 100
    threads: int = 2
    max_steps: int | None = None
    init: Path | None = None
    velocity_weight: float = LossWeights().channels[8]
    #: How the batches were made (data, batch size, augmentation, dropout, modalities): not used
    #: by the loop, recorded in options.json so that a run states its whole recipe.
    batches: dict[str, Any] = field(default_factory=dict)


def _to_model(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return tuple(batch[name] for name in INPUT_NAMES)


def train(
    config: ModelConfig,
    options: TrainOptions,
    batches: Callable[[int], Iterable[dict[str, torch.Tensor]]],
    *,
    progress: bool = True,
) -> Path:
    """Train a FusionNet on ``batches(start_step)``, an endless stream of batches, seeded by
    the step it starts at (a resumed run opens a new stream at its step).

    Returns the path of the final checkpoint (``last.pt``).
    """
    torch.set_num_threads(options.threads)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    model = FusionNet(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    total_steps = options.epochs * options.steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=options.learning_rate, total_steps=total_steps, pct_start=0.1
    )
    step = 0
    last = out / "last.pt"
    if last.exists():
        payload = load_checkpoint(last)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        schedule.load_state_dict(payload["schedule"])
        step = int(payload["step"])
        print(f"resumed from {last} at step {step} of {total_steps}")
    elif options.init is not None:
        _initialize(model, config, options.init)
        print(f"initialized from the weights of {options.init}")
    speed = options.velocity_weight
    weights = LossWeights(channels=(*LossWeights().channels[:8], speed, speed))
    torch.manual_seed(options.seed + step)
    recorded = {**asdict(options), "out": str(out), "init": None if options.init is None else str(options.init)}
    (out / "options.json").write_text(json.dumps(recorded, indent=2))
    (out / "config.json").write_text(config.to_json())

    def checkpoint(epoch: int) -> None:
        save_checkpoint(
            last,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "step": step,
                "epoch": epoch,
                "config": config.to_json(),
            },
        )

    model.train()
    bar = tqdm(total=total_steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    stream = iter(batches(step))
    with open(out / "log.jsonl", "a") as log:
        stop = total_steps if options.max_steps is None else min(total_steps, options.max_steps)
        while step < stop:
            batch = next(stream)
            started = time.perf_counter()
            outputs = model(*_to_model(batch))
            terms = total_loss(outputs, batch, weights)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            schedule.step()
            step += 1
            epoch = (step - 1) // options.steps_per_epoch
            values = {name: round(float(value.detach()), 5) for name, value in terms.items()}
            if not math.isfinite(values["total"]):
                raise FloatingPointError(f"training diverged at step {step}: losses {values}")
            record = {"step": step, "epoch": epoch, "lr": schedule.get_last_lr()[0]}
            log.write(json.dumps(record | values | {"s": round(time.perf_counter() - started, 3)}) + "\n")
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{values['total']:.3f}", hm=f"{values['heatmap']:.3f}")
            if step % options.checkpoint_every == 0 or step % options.steps_per_epoch == 0 or step == stop:
                log.flush()
                checkpoint(epoch)
    bar.close()
    return last


def _initialize(model: FusionNet, config: ModelConfig, path: Path) -> None:
    from perception.training.checkpoint import load_model_config

    payload = load_checkpoint(path)
    if (found := load_model_config(payload, str(path))) != config:
        raise ValueError(f"--init {path}: its model config differs from this run's: {found} vs {config}")
    model.load_state_dict(payload["model"])


def load_trained(path: str | Path) -> tuple[FusionNet, dict[str, Any]]:
    """A FusionNet in eval mode from a checkpoint or shipped weights file."""
    from perception.training.checkpoint import load_model_config

    payload = load_checkpoint(path)
    model = FusionNet(load_model_config(payload, str(path)))
    model.load_state_dict(payload["model"])
    return model.eval(), payload

"""Checkpoints and shipped weights: state dicts only, loaded with ``weights_only=True``.

A checkpoint file holds tensors and plain Python values (numbers, strings, lists, dicts) —
no pickled classes — so loading one never runs code. The model config travels as JSON text
beside the weights, so a file is self-describing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from perception.errors import PerceptionError
from perception.model.config import ModelConfig


class CheckpointError(PerceptionError):
    """A checkpoint file is missing, unreadable or inconsistent; the message names it."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically (temporary file + rename), so an interrupted save never corrupts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's payload; refuses anything that is not plain data."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        raise CheckpointError(f"{path}: not a readable weights-only checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise CheckpointError(f"{path}: expected a dict with 'model' and 'config', got {type(payload).__name__}")
    return payload


def load_model_config(payload: dict[str, Any], source: str) -> ModelConfig:
    return ModelConfig.from_json(str(payload["config"]), source=source)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

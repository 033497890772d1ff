"""Fixtures of the backend tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def bundle_without(tmp_path: Path) -> Callable[[Path, str, str], Path]:
    """``strip(bundle, file, key)``: a copy of ``bundle`` as exported without its optional graph
    copy ``file`` (no file, no checksum, no manifest section ``key``)."""

    def strip(bundle: Path, file: str, key: str) -> Path:
        copy = tmp_path / f"{bundle.name}_without_{key}"
        shutil.copytree(bundle, copy)
        (copy / file).unlink()
        manifest = json.loads((copy / "manifest.json").read_text())
        del manifest["files"][file], manifest[key]
        (copy / "manifest.json").write_text(json.dumps(manifest))
        return copy

    return strip

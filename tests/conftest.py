"""Fixtures every test area may use: the demo configuration in a private data dir, artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiosk.runtime import demo_config

__all__ = ["ARTIFACTS", "demo_config"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MOTCUA_ARTIFACTS", ROOT / "artifacts"))


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

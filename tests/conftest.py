"""Fixtures every test area may use: the demo configuration in a private data dir, artifacts."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MOTCUA_ARTIFACTS", ROOT / "artifacts"))


def demo_config(data_dir: Path, **kiosk_overrides: Any) -> Any:
    """config/simulate.toml with every device simulated and its data under ``data_dir``."""
    from kiosk.cli import SIMULATE_CONFIG
    from kiosk.config import load_config
    from kiosk.runtime import simulated

    config = load_config(SIMULATE_CONFIG)
    kiosk = dataclasses.replace(config.kiosk, data_dir=data_dir, **kiosk_overrides)
    return simulated(dataclasses.replace(config, kiosk=kiosk))


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

"""Fixtures every test area may use: the demo configuration in a private data dir, artifacts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kiosk.runtime import demo_config

__all__ = ["ARTIFACTS", "demo_config"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MOTCUA_ARTIFACTS", ROOT / "artifacts"))


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# The tests that use the machine's one pcscd and its vpcd slots (card reads, the kiosk window, the
# demos that run a whole kiosk) run on one pytest-xdist worker (scripts/test runs two): a pcscd started
# by one worker is stopped when that worker ends, under the other's feet, and two programs on one vpcd
# slot plug their cards into the same reader. Every other module runs whole on one worker, so its
# module-scoped fixtures (a browser, a broker, a database) start once.
ONE_READER = (
    "tests/card/",
    "tests/ui/",
    "tests/provisioning/test_journey.py",
    "tests/provisioning/test_demo_",
    "tests/privacy/test_file_modes.py",
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # Our own grouping rather than ``--dist loadgroup``: pytest-xdist 3.8 marks a group by rewriting
    # ``item._nodeid``, which pytest 9 no longer reads (seen: the card tests ran on both workers).
    from xdist.scheduler import LoadScopeScheduling

    class OneReaderScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "the card reader" if nodeid.startswith(ONE_READER) else nodeid.split("::", 1)[0]

    return OneReaderScheduling(config, log)

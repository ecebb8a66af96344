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


# The tests that use the machine's one pcscd and its vpcd slots (card reads, the kiosk window, the
# demos that run a whole kiosk) run on one pytest-xdist worker (``--dist loadgroup``, scripts/test): a
# pcscd started by one worker is stopped when that worker ends, under the other's feet, and two
# programs on one vpcd slot plug their cards into the same reader.
_ONE_READER = (
    "tests/card/", "tests/ui/", "tests/provisioning/test_journey.py", "tests/provisioning/test_demo_",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
        marked = item.get_closest_marker("pcsc") or item.get_closest_marker("window")
        if marked or where.startswith(_ONE_READER):
            item.add_marker(pytest.mark.xdist_group("pcscd"))

"""Each privacy test starts without a citizen session's values registered in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.privacy import SESSION_VALUES


@pytest.fixture(autouse=True)
def no_session_values() -> Iterator[None]:
    SESSION_VALUES.clear()
    yield
    SESSION_VALUES.clear()

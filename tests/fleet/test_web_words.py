"""Managers read words, not codes: a card read's result on the usage page (Vietnamese and English; the
JSON keeps the code). An unknown code shows as itself. In-process over the real app and a real store
(SQLite)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from fleet.store import Store, open_store
from tests.fleet.conftest import FakeClock
from tests.fleet.usage_data import event, local, seed
from tests.fleet.web import Browser, browser

NOVEMBER = "/usage?center=hcm-ben-thanh&from=2026-11-01&to=2026-11-30"


def _row(html: str, attribute: str, value: str) -> str:
    """The table row with ``attribute="value"`` (its cells' text, tags removed)."""
    found = re.search(rf'<tr {attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return re.sub(r"<[^>]+>", " ", found.group(1))


def _english(person: Browser, path: str) -> str:
    assert person.post("/language", {"lang": "en", "next": path}).status_code == 303
    return person.client.get(path).text


@pytest.fixture
def usage_store(sqlite_url: str, clock: FakeClock) -> Iterator[Store]:
    store = open_store(sqlite_url, clock=clock)
    f, _ = seed(store, clock)  # one CardRemovedError read among two "ok" on 23/11
    # a result this fleet has no word for (a newer kiosk's)
    event(store, f.center, f.kiosk, "card_read", local(23, 9, 45), result="NewerKioskError", duration_ms=50)
    yield store
    store.close()


def test_the_usage_page_says_card_results_in_words(usage_store: Store) -> None:
    with browser(usage_store, "quanly.bt") as manager:
        page = manager.client.get(NOVEMBER).text
        assert "Thẻ bị rút ra giữa chừng" in _row(page, "data-outcome", "CardRemovedError")
        assert "Đọc được" in _row(page, "data-outcome", "ok")
        assert "NewerKioskError" in _row(page, "data-outcome", "NewerKioskError")  # shown as it came
        assert ">CardRemovedError<" not in page and "⟦" not in page

        answer = manager.client.get(NOVEMBER + "&format=json").json()
        reads = {r["outcome"]: r for r in answer["card_reads"]}
        assert set(reads) == {"ok", "CardRemovedError", "NewerKioskError"}  # the API keeps the codes
        assert "label" not in reads["CardRemovedError"]  # as look-ups: no words in the JSON

        english = _english(manager, NOVEMBER)
        assert "Card removed during the read" in _row(english, "data-outcome", "CardRemovedError")
        assert "Read" in _row(english, "data-outcome", "ok")
        assert "NewerKioskError" in _row(english, "data-outcome", "NewerKioskError")
        assert "Thẻ bị rút ra giữa chừng" not in english and "⟦" not in english


"""``contract.events.CARD_READ_RESULTS`` names every result a kiosk's card read can send: "ok" and the
class name of each error of the card stack (the drivers' CardError subclasses and the kiosk's own).
A new card error added without joining the list fails here, so the center always has words for it.

Tests may import the kiosk side (the import rules bind ``contract`` and ``fleet``, not ``tests``)."""

from __future__ import annotations

import importlib
import pkgutil

import drivers.card
from contract.events import CARD_READ_RESULTS, CardRead, payload_from_data
from drivers.card.errors import CardError


def _card_errors() -> set[str]:
    """Every CardError subclass the card stack defines: each module of ``drivers.card`` is imported
    (``FileAccessError`` lives in ``drivers.card.files``), the simulator aside, and the kiosk's own."""
    for module in pkgutil.walk_packages(drivers.card.__path__, "drivers.card."):
        if not module.name.startswith("drivers.card.sim"):
            importlib.import_module(module.name)
    importlib.import_module("kiosk.effects")  # the module whose read_card writes CardRead
    found: set[str] = set()
    todo: list[type[CardError]] = [CardError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def test_the_list_is_every_card_error_and_ok() -> None:
    errors = _card_errors()
    assert {"CardRemovedError", "FileAccessError", "AlteredCardError", "ReaderMissingError"} <= errors
    missing = sorted(errors - CARD_READ_RESULTS)
    assert missing == [], f"card errors without a place in CARD_READ_RESULTS: {missing}"
    assert CARD_READ_RESULTS - errors == {"ok"}  # no stale name either


def test_a_result_outside_the_list_is_still_read() -> None:
    payload = payload_from_data("card_read", {"result": "NewerKioskError", "duration_ms": 12})
    assert payload == CardRead("NewerKioskError", "not_checked", 12)

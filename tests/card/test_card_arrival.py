"""A card laid on the reader is read: the read waits (within its own timeout) for a card that is present
and answering, instead of refusing one whose arrival pcscd has not reported yet.

Through the real pcscd + vpcd: pcscd notices a vpcd card only at its next poll (up to ~0.4 s after the
virtual chip connected), so a read started right after the insertion used to fail at once with "no card
in the reader" (16 of 20 in a run before the fix).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from drivers.card.errors import CardError, CardRemovedError, CardTimeoutError
from drivers.card.identity import IdentityRecord
from drivers.card.keys import AccessKey
from drivers.card.service import CardReaderService
from drivers.card.sim.chip import CardFaults
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile
from drivers.card.sim.vicc import VirtualCard

from .conftest import VPCD_PORT, wait_reader_empty

pytestmark = pytest.mark.pcsc

Insert = Callable[..., VirtualCard]
INSERTIONS = 50


def _key(profile: CardProfile) -> AccessKey:
    return AccessKey.from_mrz(
        profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
    )


def test_read_started_right_after_each_of_50_insertions_never_fails(
    pcscd: str, inserted: Insert, adult: CardProfile, pki: TestPki
) -> None:
    service = CardReaderService(pcscd, pki.trust_dir, timeout_s=5.0)
    card = inserted(adult)
    card.remove()
    wait_reader_empty(pcscd)
    failures: list[str] = []
    waits: list[float] = []
    for _ in range(INSERTIONS):
        assert not service.card_present()  # the read really starts before pcscd reports the card
        card.insert(port=VPCD_PORT)
        started = time.monotonic()
        try:
            record = service.read_identity([_key(adult)])
            if record.id_number != "079090001234":
                failures.append("wrong record")
            record.wipe()
        except CardError as exc:
            failures.append(f"{type(exc).__name__}: {exc.message}")
        waits.append(time.monotonic() - started)
        card.remove()
        wait_reader_empty(pcscd)
    assert failures == []
    assert len(waits) == INSERTIONS
    assert max(waits) < 5.0
    # at least some reads had to wait for pcscd's poll: the race this test is about was met
    assert sum(1 for w in waits if w > 0.05) >= INSERTIONS // 4, sorted(waits)


def test_no_card_within_the_timeout_is_a_timeout(pcscd: str) -> None:
    service = CardReaderService(pcscd, None, timeout_s=1.0)
    assert not service.card_present()
    started = time.monotonic()
    with pytest.raises(CardTimeoutError) as info:
        service.read_identity([AccessKey.from_mrz("090001234", "900517", "300517")])
    waited = time.monotonic() - started
    assert 0.9 <= waited < 1.6
    assert info.value.code == "card_timeout"


def test_card_lifted_during_the_read_is_still_removed_not_waited_for(
    pcscd: str, inserted: Insert, adult: CardProfile
) -> None:
    """A card that answered some APDUs and then left: CardRemovedError at once, no waiting for another."""
    card = inserted(adult, CardFaults(remove_after_apdus=4))
    service = CardReaderService(pcscd, None, timeout_s=5.0)
    assert service.wait_for_card(3.0)
    started = time.monotonic()
    with pytest.raises(CardRemovedError):
        service.read_identity([_key(adult)])
    assert time.monotonic() - started < 1.0
    assert card.wait_removed(2.0)


def test_read_started_as_the_previous_card_leaves_reads_the_next_card(
    pcscd: str, inserted: Insert, adult: CardProfile, married: CardProfile
) -> None:
    """The read starts while pcscd may still report the card that just left (connect accepted, the first
    APDU refused): it waits for the next card instead of failing."""
    first = inserted(adult)
    service = CardReaderService(pcscd, None, timeout_s=5.0)
    assert service.wait_for_card(3.0)
    outcome: list[IdentityRecord | BaseException] = []

    def read() -> None:
        try:
            outcome.append(service.read_identity([_key(married)]))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    first.remove()
    reader = threading.Thread(target=read)
    reader.start()
    inserted(married)
    reader.join(6.0)
    assert len(outcome) == 1
    result = outcome[0]
    assert isinstance(result, IdentityRecord), repr(result)
    assert result.full_name == "Trần Thị Bích Ngọc"

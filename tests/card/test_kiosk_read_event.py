"""What the fleet learns of a card read that ends in an error: the outcome and, when the card's own
evidence ended it, the failed verdict — through the kiosk's effect handler on the real pcscd."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.card.errors import ChipAuthenticationError
from drivers.card.service import CardReaderService
from drivers.card.sim.chip import CardFaults
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile
from drivers.card.sim.vicc import VirtualCard
from kiosk.flows.identify import ReadCard
from kiosk.runtime import KioskRuntime, demo_config, simulated

pytestmark = pytest.mark.pcsc


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[KioskRuntime]:
    config = demo_config(tmp_path)
    devices = dataclasses.replace(
        config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
    )
    runtime = KioskRuntime(simulated(dataclasses.replace(config, devices=devices)), synchronous=True)
    yield runtime
    runtime.stop()


def test_a_clone_ending_the_read_is_recorded_as_failed(
    runtime: KioskRuntime,
    pcscd: str,
    inserted: Callable[..., VirtualCard],
    adult: CardProfile,
    pki: TestPki,
) -> None:
    """Seen: the read raised ChipAuthenticationError and the event said authenticity "not_checked"."""
    runtime.devices.card = CardReaderService(pcscd, pki.trust_dir, timeout_s=5.0)
    inserted(adult, CardFaults(wrong_ca_key=True, wrong_aa_key=True))
    with pytest.raises(ChipAuthenticationError):
        runtime.handlers.read_card(ReadCard(can=adult.id_number[-6:]))  # the virtual chip's CAN
    reads = [e.payload for e in runtime.journal.pending(limit=1000) if e.kind == "card_read"]
    assert reads[-1]["result"] == "ChipAuthenticationError"
    assert reads[-1]["authenticity"] == "failed"

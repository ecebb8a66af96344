"""Fixtures of the card tests: a test PKI, pcscd with the vpcd reader, and virtual cards in that reader.

The pcscd fixture starts pcscd itself when none answers and stops only what it started. Tests use the
second vpcd slot (``Virtual PCD 00 01``, TCP 35964; override with CARD_TEST_VPCD_PORT/READER) so that a
kiosk demo on the first slot does not collide with them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from drivers.card.sim.chip import CardFaults, VirtualChip
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, load_profile
from drivers.card.sim.vicc import VirtualCard
from drivers.card.transport import DirectTransport

VPCD_PORT = int(os.environ.get("CARD_TEST_VPCD_PORT", "35964"))
READER = os.environ.get("CARD_TEST_READER", "Virtual PCD 00 01")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.load_or_create(tmp_path_factory.mktemp("card-pki"))


@pytest.fixture(scope="session")
def adult() -> CardProfile:
    return load_profile("adult")


@pytest.fixture(scope="session")
def elderly() -> CardProfile:
    return load_profile("elderly")


@pytest.fixture(scope="session")
def married() -> CardProfile:
    return load_profile("married")


@pytest.fixture
def direct_card(pki: TestPki) -> Callable[..., tuple[VirtualChip, DirectTransport]]:
    """A virtual chip wired to an in-process transport (no pcscd): for protocol and APDU-count tests."""

    def make(profile: CardProfile, faults: CardFaults | None = None) -> tuple[VirtualChip, DirectTransport]:
        faults = faults or CardFaults()
        card = VirtualCard(profile, pki, faults)  # same chip as on vpcd, never inserted
        return card.chip, DirectTransport(card.chip.process)

    return make


@pytest.fixture(scope="session")
def vpcd_slot() -> Iterator[int]:
    """Exclusive use of the test vpcd slot across processes: two test runs on one machine (two
    engineers, or CI next to a developer) would otherwise plug their virtual cards into the same slot."""
    from drivers.card.pcscd import hold_vpcd_slot

    with hold_vpcd_slot(VPCD_PORT) as port:
        yield port


@pytest.fixture(scope="session")
def _started_pcscds(vpcd_slot: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The pcscd processes this test session started; stopped (only those) at the end."""
    from drivers.card.pcscd import stop_started_pcscd

    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        stop_started_pcscd(proc)


@pytest.fixture
def pcscd(_started_pcscds: list[subprocess.Popen[bytes]]) -> str:
    """pcscd running with the vpcd readers; yields the reader name the tests use.

    Checked before every test: a pcscd started by another session on this machine may be stopped by
    it at any time, and then this session starts its own.
    """
    from drivers.card.pcscd import start_pcscd, wait_for_reader

    proc = start_pcscd()
    if proc is not None:
        _started_pcscds.append(proc)
    wait_for_reader(READER)
    return READER


@pytest.fixture
def inserted(pcscd: str, pki: TestPki) -> Iterator[Callable[..., VirtualCard]]:
    """Insert a virtual card into the test reader; every card is removed at teardown."""
    cards: list[VirtualCard] = []

    def insert(profile: CardProfile, faults: CardFaults | None = None) -> VirtualCard:
        card = VirtualCard(profile, pki, faults)
        cards.append(card)
        card.insert(port=VPCD_PORT)
        return card

    yield insert
    for card in cards:
        card.close()
    wait_reader_empty(pcscd)


def wait_reader_empty(reader: str, timeout_s: float = 3.0) -> None:
    """Wait until pcscd noticed the card left (it polls vpcd every ~0.4 s): a card inserted sooner
    meets a stale PC/SC state (SCardTransmit 0x80100016), which no citizen can produce."""
    import time

    from drivers.card.transport import PcscContext

    ctx = PcscContext()
    try:
        deadline = time.monotonic() + timeout_s
        while ctx.card_present(reader):
            if time.monotonic() > deadline:
                raise AssertionError(f"pcscd still sees a card in {reader} after {timeout_s} s")
            time.sleep(0.05)
    finally:
        ctx.close()

"""The bottom layer: send one APDU, get one response. PC/SC through pyscard, or a chip in-process.

Template method as in pyscard: ``CardTransport.transmit`` encodes, counts and times every exchange;
a backend implements only ``_raw``. PC/SC error codes are translated here into CardError subclasses, so
nothing above this module sees pyscard.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from drivers.card.apdu import CommandApdu, ResponseApdu
from drivers.card.errors import (
    CardError,
    CardRemovedError,
    CardTimeoutError,
    ReaderMissingError,
)

log = logging.getLogger(__name__)


@dataclass
class TransportStats:
    apdus: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    seconds: float = 0.0


class CardTransport(ABC):
    """One connected card. ``supports_extended`` is what the reader side allows."""

    supports_extended: bool = True

    def __init__(self) -> None:
        self.stats = TransportStats()

    def transmit(self, apdu: CommandApdu) -> ResponseApdu:
        raw = apdu.encode()
        start = time.perf_counter()
        answer = self._raw(raw)
        self.stats.seconds += time.perf_counter() - start
        self.stats.apdus += 1
        self.stats.bytes_out += len(raw)
        self.stats.bytes_in += len(answer)
        return ResponseApdu.decode(answer)

    @abstractmethod
    def _raw(self, apdu: bytes) -> bytes:
        """Send encoded APDU bytes, return response bytes including SW1 SW2."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection (no-op where there is nothing to release)."""


class DirectTransport(CardTransport):
    """A chip's ``process(bytes) -> bytes`` called in-process: unit tests and the CPU benchmark."""

    def __init__(self, process: Callable[[bytes], bytes]) -> None:
        super().__init__()
        self._process = process

    def _raw(self, apdu: bytes) -> bytes:
        return self._process(apdu)


# PC/SC return codes we translate (winscard.h / pcsclite.h)
SCARD_S_SUCCESS = 0
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_NOT_READY = 0x80100010
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_SERVICE_STOPPED = 0x8010001E
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_UNRESPONSIVE_CARD = 0x80100066
SCARD_W_UNPOWERED_CARD = 0x80100067
SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069

_REMOVED = {
    SCARD_E_NO_SMARTCARD,
    SCARD_W_REMOVED_CARD,
    SCARD_W_RESET_CARD,
    SCARD_E_NOT_TRANSACTED,
    SCARD_W_UNPOWERED_CARD,
    SCARD_W_UNRESPONSIVE_CARD,
}
#: what SCardConnect answers while a card that just arrived is being powered up, or while the reader
#: state is still the previous card's: retried by ``connect_when_ready`` until its deadline
_SETTLING = {
    SCARD_E_NO_SMARTCARD,
    SCARD_W_REMOVED_CARD,
    SCARD_W_RESET_CARD,
    SCARD_W_UNPOWERED_CARD,
    SCARD_W_UNRESPONSIVE_CARD,
    SCARD_E_NOT_READY,
}
#: longest single SCardGetStatusChange wait, and the pause before connecting again while settling
_POLL_MS = 100
_SETTLE_PAUSE_S = 0.02
_NO_READER = {
    SCARD_E_UNKNOWN_READER,
    SCARD_E_READER_UNAVAILABLE,
    SCARD_E_NO_SERVICE,
    SCARD_E_SERVICE_STOPPED,
    SCARD_E_NO_READERS_AVAILABLE,
}


def _u32(code: int) -> int:
    return code & 0xFFFFFFFF


def pcsc_error(what: str, code: int) -> CardError:
    """Translate a PC/SC return code into the error the citizen/technician can act on."""
    code = _u32(code)
    text = f"{what}: PC/SC error 0x{code:08X}"
    if code in _REMOVED:
        return CardRemovedError(text)
    if code in _NO_READER:
        return ReaderMissingError(text)
    if code == SCARD_E_TIMEOUT:
        return CardTimeoutError(text)
    return CardError(text)


class PcscContext:
    """A PC/SC context (pyscard's low-level ``scard`` API) owned by one thread at a time.

    Low-level calls are used rather than pyscard's ``CardRequest``/``CardMonitor`` so that every wait has
    an explicit timeout and no hidden thread outlives a read.
    """

    def __init__(self) -> None:
        from smartcard import scard

        self._scard = scard
        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc != SCARD_S_SUCCESS:
            raise ReaderMissingError(f"cannot reach pcscd (is it running?): PC/SC error 0x{_u32(rc):08X}")
        self._ctx = ctx

    def readers(self) -> list[str]:
        rc, names = self._scard.SCardListReaders(self._ctx, [])
        if _u32(rc) == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rc != SCARD_S_SUCCESS:
            raise pcsc_error("list readers", rc)
        return list(names)

    def find_reader(self, substring: str | None) -> str:
        names = self.readers()
        for name in names:
            if substring is None or substring in name:
                return name
        wanted = f"reader matching {substring!r}" if substring else "any reader"
        raise ReaderMissingError(f"{wanted} not found; PC/SC lists {names!r}")

    def card_present(self, reader: str) -> bool:
        """Is a card there right now (zero timeout)? For status displays; a read waits instead."""
        return self.wait_for_card(reader, 0.0)

    def _reader_state(self, reader: str, known: int, timeout_ms: int) -> tuple[int, bytes] | None:
        """SCardGetStatusChange for one reader: (event state, ATR), or None when ``timeout_ms`` passed
        without a change from ``known``."""
        s = self._scard
        rc, new_states = s.SCardGetStatusChange(self._ctx, timeout_ms, [(reader, known)])
        if _u32(rc) == SCARD_E_TIMEOUT:
            return None
        if rc != SCARD_S_SUCCESS:
            raise pcsc_error("wait for card", rc)
        _name, event, atr = new_states[0]
        if event & s.SCARD_STATE_UNKNOWN:
            raise ReaderMissingError("reader disappeared while waiting for a card")
        return int(event), bytes(atr)

    def _ready(self, event: int, atr: bytes) -> bool:
        """A card is there, powered, and pcscd has its ATR (a card just laid on the reader is first
        PRESENT with MUTE/UNPOWERED or without an ATR while pcscd powers it up)."""
        s = self._scard
        not_answering = s.SCARD_STATE_MUTE | s.SCARD_STATE_UNPOWERED
        return bool(event & s.SCARD_STATE_PRESENT) and not event & not_answering and bool(atr)

    def wait_for_card(self, reader: str, timeout_s: float) -> bool:
        """True once a card in ``reader`` is present and answering (ATR known); False after ``timeout_s``."""
        return self.wait_until_ready(reader, time.monotonic() + timeout_s)

    def wait_until_ready(self, reader: str, deadline: float) -> bool:
        """Block on SCardGetStatusChange until a card is ready or ``deadline`` (time.monotonic) passes.

        Each wait is capped at ``_POLL_MS``: pcscd signals PRESENT once, and whether it has the ATR by
        then depends on the driver, so a state that stays "present, no ATR" is asked again.
        """
        known = self._scard.SCARD_STATE_UNAWARE  # the first call answers at once with the state as is
        while True:
            remaining_ms = max(0, math.ceil((deadline - time.monotonic()) * 1000))
            state = self._reader_state(reader, known, min(remaining_ms, _POLL_MS))
            if state is not None:
                event, atr = state
                if self._ready(event, atr):
                    return True
                known = event & ~self._scard.SCARD_STATE_CHANGED
            if time.monotonic() >= deadline:
                return False

    def connect(self, reader: str) -> PcscTransport:
        """SCardConnect once, now (the card must be there): PC/SC errors are translated as they are."""
        rc, transport = self._try_connect(reader)
        if transport is None:
            raise pcsc_error("connect to card", rc)
        return transport

    def _try_connect(self, reader: str) -> tuple[int, PcscTransport | None]:
        s = self._scard
        rc, handle, protocol = s.SCardConnect(
            self._ctx, reader, s.SCARD_SHARE_SHARED, s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1
        )
        if rc != SCARD_S_SUCCESS:
            return _u32(rc), None
        return SCARD_S_SUCCESS, PcscTransport(s, handle, protocol)

    def connect_when_ready(self, reader: str, deadline: float) -> PcscTransport:
        """Wait for a card that is present and answering, then connect; both within ``deadline``.

        A card that has just arrived (or whose reader state is still settling after the previous card)
        can be reported present while SCardConnect still answers SCARD_E_NO_SMARTCARD,
        SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD or SCARD_W_UNPOWERED_CARD (seen with vpcd: pcscd
        powers the card up after it reported it): those are retried until the deadline. CardTimeoutError
        when no card answered in time; any other PC/SC error is translated at once.
        """
        started = time.monotonic()
        last = 0
        while True:
            if not self.wait_until_ready(reader, deadline):
                waited = time.monotonic() - started
                if last:
                    raise CardTimeoutError(
                        f"the card did not accept a connection within {waited:.1f} s "
                        f"(last PC/SC error 0x{last:08X})"
                    )
                raise CardTimeoutError(f"no card answering in the reader within {waited:.1f} s")
            rc, transport = self._try_connect(reader)
            if transport is not None:
                if last:
                    log.debug("connect succeeded after settling (last 0x%08X)", last)
                return transport
            if rc not in _SETTLING:
                raise pcsc_error("connect to card", rc)
            last = rc
            # The state pcscd reports may still be the previous one: give it a moment to change.
            time.sleep(min(_SETTLE_PAUSE_S, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        self._scard.SCardReleaseContext(self._ctx)


class PcscTransport(CardTransport):
    """A card connected through pcscd."""

    def __init__(self, scard: object, handle: object, protocol: int) -> None:
        super().__init__()
        self._s: object = scard
        self._handle = handle
        self._protocol = protocol

    def _raw(self, apdu: bytes) -> bytes:
        s = self._s
        rc, response = s.SCardTransmit(self._handle, self._protocol, list(apdu))  # type: ignore[attr-defined]
        if rc != SCARD_S_SUCCESS:
            raise pcsc_error("transmit", rc)
        if not response:
            # vpcd quirk: when the card side drops mid-APDU, SCardTransmit succeeds with 0 bytes.
            raise CardRemovedError("transmit: the card returned nothing (left the field)")
        return bytes(response)

    def atr(self) -> bytes:
        s = self._s
        rc, _reader, _state, _proto, atr = s.SCardStatus(self._handle)  # type: ignore[attr-defined]
        if rc != SCARD_S_SUCCESS:
            raise pcsc_error("card status", rc)
        return bytes(atr)

    def close(self) -> None:
        # Reset on the way out: the chip drops its session keys, and the next read starts clean.
        s = self._s
        s.SCardDisconnect(self._handle, s.SCARD_RESET_CARD)  # type: ignore[attr-defined]

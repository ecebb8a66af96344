"""The bottom layer: send one APDU, get one response. PC/SC through pyscard, or a chip in-process.

Template method as in pyscard: ``CardTransport.transmit`` encodes, counts and times every exchange;
a backend implements only ``_raw``. PC/SC error codes are translated here into CardError subclasses, so
nothing above this module sees pyscard.
"""

from __future__ import annotations

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
        return self.wait_for_card(reader, 0.0)

    def wait_for_card(self, reader: str, timeout_s: float) -> bool:
        """True once a card is in ``reader``; False after ``timeout_s``."""
        s = self._scard
        states = [(reader, s.SCARD_STATE_UNAWARE)]
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            rc, new_states = s.SCardGetStatusChange(self._ctx, remaining, states)
            if _u32(rc) == SCARD_E_TIMEOUT:
                return False
            if rc != SCARD_S_SUCCESS:
                raise pcsc_error("wait for card", rc)
            _name, event, _atr = new_states[0]
            if event & s.SCARD_STATE_UNKNOWN:
                raise ReaderMissingError("reader disappeared while waiting for a card")
            if event & s.SCARD_STATE_PRESENT and not event & s.SCARD_STATE_MUTE:
                return True
            if remaining == 0:
                return False
            states = [(reader, event & ~s.SCARD_STATE_CHANGED)]

    def connect(self, reader: str) -> PcscTransport:
        s = self._scard
        rc, handle, protocol = s.SCardConnect(
            self._ctx, reader, s.SCARD_SHARE_SHARED, s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1
        )
        if rc != SCARD_S_SUCCESS:
            raise pcsc_error("connect to card", rc)
        return PcscTransport(s, handle, protocol)

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

"""Errors of the ID-card stack: one CardError subclass per thing a citizen or technician must do.

Each has a stable ``code``; messages are English and never contain personal data (no MRZ, no names, no
numbers from the card). The kiosk decides what a citizen sees for each (``kiosk.error_screens``).
"""

from __future__ import annotations

from common.errors import DeviceError, DeviceUnavailableError
from drivers.card.verdict import Verdict, failed

__all__ = [
    "BadQrError",
    "CardError",
    "CardProtocolError",
    "CardRemovedError",
    "CardTimeoutError",
    "ChipAuthenticationError",
    "MalformedDataError",
    "NotIdCardError",
    "ReaderMissingError",
    "SecureMessagingError",
    "StatusWordError",
    "WrongKeyError",
]


class CardError(DeviceError):
    """Base of the ID-card stack's errors (transport, access control, secure messaging, parsing)."""

    code = "card_error"


class ReaderMissingError(CardError, DeviceUnavailableError):
    """The configured PC/SC reader is not listed (unplugged, wrong name, or pcscd not running)."""

    code = "card_reader_missing"


class CardRemovedError(CardError):
    """The card left the field before the read finished; nothing half-read is kept."""

    code = "card_removed"


class CardTimeoutError(CardError):
    """No card arrived, or the card stopped answering within the step's time budget."""

    code = "card_timeout"


class NotIdCardError(CardError):
    """The card does not carry the eMRTD application (a bank card, a transport card...)."""

    code = "card_not_id_card"


class WrongKeyError(CardError):
    """Mutual authentication failed with every key tried: the numbers typed or scanned do not match."""

    code = "card_wrong_key"


class CardProtocolError(CardError):
    """The card answered something the protocol does not allow (bad length, unexpected status)."""

    code = "card_protocol"


class StatusWordError(CardProtocolError):
    """The card answered an error status word; ``sw`` keeps it for the caller to decide."""

    code = "card_status_word"

    def __init__(self, message: str, sw: int) -> None:
        super().__init__(f"{message}: status word {sw:04X}")
        self.sw = sw


class SecureMessagingError(CardProtocolError):
    """A protected response failed its MAC or structure check: the channel cannot be trusted any more."""

    code = "card_secure_messaging"


class ChipAuthenticationError(SecureMessagingError):
    """Chip authentication was accepted by the chip but its answers fail under the new keys: the chip
    does not hold the DG14 private key (a clone with copied files). The read ends; ``verdict`` is the
    card's verdict (failed) for staff and events."""

    code = "card_chip_auth_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.verdict: Verdict = failed("chip_auth_failed", message)


class MalformedDataError(CardProtocolError):
    """A file from the card does not parse (bad TLV length, truncated file, wrong check digit)."""

    code = "card_malformed_data"


class BadQrError(CardError):
    """The scanned text is not the QR printed on a CCCD."""

    code = "card_bad_qr"

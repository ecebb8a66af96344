"""What a citizen sees for an error: one table from error types to catalog keys.

Drivers and the kiosk's own modules raise typed errors with English messages for the log; only here
is it decided which Vietnamese (or English) sentence the screen shows. The most specific type wins
(the table is looked up along the error's class hierarchy); anything not listed shows
``error.generic``. A test checks every key exists in both catalogs.
"""

from __future__ import annotations

from common.errors import DeviceError, NetworkError
from drivers.card.errors import (
    BadQrError,
    CardError,
    CardRemovedError,
    CardTimeoutError,
    ChipAuthenticationError,
    NotIdCardError,
    ReaderMissingError,
    WrongKeyError,
)
from drivers.printer.errors import (
    PrinterCoverOpenError,
    PrinterError,
    PrinterOfflineError,
    PrinterPaperOutError,
)
from drivers.scanner.errors import ScannerError
from kiosk.dossier.backend import DossierNotFound, LookupUnavailable
from kiosk.dossier.code import InvalidDossierCode
from kiosk.dossier.visit import AppointmentNotFound, InvalidVisitInput, RequestRefused
from kiosk.payments.vietqr import VietQrError
from kiosk.ticketing import NoNumberAvailableError, NumberRefusedError


class AlteredCardError(CardError):
    """The kiosk refuses a card whose data does not match its signature (never use such data)."""

    code = "card_data_altered"


GENERIC = "error.generic"

SCREEN_KEYS: dict[type[BaseException], str] = {
    # printers
    PrinterPaperOutError: "printer.paper_out",
    PrinterCoverOpenError: "printer.cover_open",
    PrinterOfflineError: "printer.offline",
    PrinterError: "printer.error",
    # scanners
    ScannerError: "scanner.error",
    # the ID card
    ReaderMissingError: "card.reader_missing",
    CardRemovedError: "card.removed",
    CardTimeoutError: "card.timeout",
    NotIdCardError: "card.not_id_card",
    WrongKeyError: "card.wrong_key",
    BadQrError: "card.bad_qr",
    AlteredCardError: "card.data_altered",
    ChipAuthenticationError: "card.data_altered",  # a chip that cannot prove it holds the card's key
    CardError: "card.read_failed",
    # dossier look-up
    DossierNotFound: "lookup.not_found",
    LookupUnavailable: "lookup.unavailable",
    InvalidDossierCode: "lookup.not_a_dossier",
    # the rest of the visit (docs/visit.md)
    RequestRefused: "visit.refused",
    AppointmentNotFound: "appointment.not_found",
    InvalidVisitInput: "visit.invalid_input",
    VietQrError: "payment.qr_unavailable",
    # queue numbers
    NumberRefusedError: "ticket.print_failed",
    NoNumberAvailableError: "error.network",
    # kinds
    NetworkError: "error.network",
    DeviceError: "error.device",
}


def screen_key(error: BaseException) -> str:
    """The catalog key of the message shown for ``error``."""
    for kind in type(error).__mro__:
        key = SCREEN_KEYS.get(kind)
        if key is not None:
            return key
    return GENERIC

"""Dossier look-up: receipt codes, statuses, and the back ends that hold them (docs/lookup.md).

Importing this package does no I/O; ``open_backend`` opens the configured back end.
"""

from kiosk.dossier.backend import (
    DossierBackend,
    DossierNotFound,
    LookupConfig,
    LookupUnavailable,
    open_backend,
)
from kiosk.dossier.code import FORMAT_HINT, DossierCode, InvalidDossierCode, parse_dossier_code
from kiosk.dossier.demo import DemoDossierStore
from kiosk.dossier.events import lookup_event
from kiosk.dossier.http import HttpDossierBackend
from kiosk.dossier.model import (
    FIELD_LABELS,
    DossierDataError,
    DossierState,
    DossierStatus,
    FeeDue,
    Payee,
    PostDelivery,
    overdue_label,
)
from kiosk.dossier.tally import LookupTally
from kiosk.dossier.visit import (
    Appointment,
    AppointmentNotFound,
    AppointmentQuery,
    DeliveryReceipt,
    DeliveryRequest,
    FeedbackMessage,
    FeedbackReceipt,
    InvalidVisitInput,
    RequestRefused,
    VisitBackend,
)

#: The contract's name for the status enum.
DossierStatusCode = DossierState

__all__ = [
    "FIELD_LABELS",
    "FORMAT_HINT",
    "Appointment",
    "AppointmentNotFound",
    "AppointmentQuery",
    "DeliveryReceipt",
    "DeliveryRequest",
    "DemoDossierStore",
    "DossierBackend",
    "DossierCode",
    "DossierDataError",
    "DossierNotFound",
    "DossierState",
    "DossierStatus",
    "DossierStatusCode",
    "FeeDue",
    "FeedbackMessage",
    "FeedbackReceipt",
    "HttpDossierBackend",
    "InvalidDossierCode",
    "InvalidVisitInput",
    "LookupConfig",
    "LookupTally",
    "LookupUnavailable",
    "Payee",
    "PostDelivery",
    "RequestRefused",
    "VisitBackend",
    "lookup_event",
    "open_backend",
    "overdue_label",
    "parse_dossier_code",
]

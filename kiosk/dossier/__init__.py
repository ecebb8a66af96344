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
    overdue_label,
)
from kiosk.dossier.tally import LookupTally

#: The contract's name for the status enum.
DossierStatusCode = DossierState

__all__ = [
    "FIELD_LABELS",
    "FORMAT_HINT",
    "DemoDossierStore",
    "DossierBackend",
    "DossierCode",
    "DossierDataError",
    "DossierNotFound",
    "DossierState",
    "DossierStatus",
    "DossierStatusCode",
    "HttpDossierBackend",
    "InvalidDossierCode",
    "LookupConfig",
    "LookupTally",
    "LookupUnavailable",
    "lookup_event",
    "open_backend",
    "overdue_label",
    "parse_dossier_code",
]

"""The ``lookup`` event for the fleet: what happened, never whose dossier.

The full code is left out on purpose: a look-up is an anonymous question, and counting outcomes per
agency is all the fleet needs. The agency part tells managers which office's dossiers people chase.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from contract.events import Lookup
from kiosk.dossier.code import DossierCode
from kiosk.dossier.model import DossierStatus

LookupOutcome = Literal["found", "not_found", "unavailable", "not_a_dossier"]
LookupSource = Literal["camera", "serial", "keyboard"]


def lookup_event(
    outcome: LookupOutcome,
    *,
    source: str,
    code: DossierCode | None = None,
    status: DossierStatus | None = None,
    today: date | None = None,
    latency_ms: float | None = None,
) -> Lookup:
    """The event of one look-up; ``source`` is camera, serial or keyboard."""
    return Lookup(
        outcome,
        _source(source),
        agency_code=code.agency if code is not None else None,
        status=status.status.value if status is not None else None,
        overdue_days=status.overdue_days(today or date.today()) if status is not None else None,
        latency_ms=round(latency_ms, 1) if latency_ms is not None else None,
    )


def _source(value: str) -> LookupSource:
    """Where the code came from; anything but a scanner was typed."""
    if value == "camera":
        return "camera"
    if value == "serial":
        return "serial"
    return "keyboard"

"""The ``lookup`` event payload for the edge agent: what happened, never whose dossier.

The full code is left out on purpose: a look-up is an anonymous question, and counting outcomes per
agency is all the fleet needs. The agency part tells managers which office's dossiers people chase.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from kiosk.dossier.code import DossierCode
from kiosk.dossier.model import DossierStatus

LookupOutcome = Literal["found", "not_found", "unavailable", "not_a_dossier"]


def lookup_event_payload(
    outcome: LookupOutcome,
    *,
    source: str,
    code: DossierCode | None = None,
    status: DossierStatus | None = None,
    today: date | None = None,
    latency_ms: float | None = None,
) -> dict[str, Any]:
    """Payload for ``EventJournal.append("lookup", ...)``; ``source`` is camera, serial or keyboard."""
    payload: dict[str, Any] = {"outcome": outcome, "source": source}
    if code is not None:
        payload["agency_code"] = code.agency
    if status is not None:
        payload["status"] = status.status.value
        payload["overdue_days"] = status.overdue_days(today or date.today())
    if latency_ms is not None:
        payload["latency_ms"] = round(latency_ms, 1)
    return payload

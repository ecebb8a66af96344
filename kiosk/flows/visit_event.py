"""The one effect every visit flow uses to say what happened: a ``visit_service`` event, nothing personal."""

from __future__ import annotations

from dataclasses import dataclass

from contract.events import VisitOutcome, VisitServiceName
from kiosk.flows.base import Effect


@dataclass(frozen=True)
class RecordVisit(Effect):
    """What was done and how it ended; a feedback's topic; the agency part of a dossier code."""

    service: VisitServiceName
    outcome: VisitOutcome
    topic: str | None = None
    agency_code: str | None = None

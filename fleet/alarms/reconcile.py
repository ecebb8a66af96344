"""Bring a kiosk's active alarms in line with what its latest report calls for (level-based rules)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from common.errors import ConflictError
from fleet.alarms.rules import Wanted
from fleet.store import Store
from fleet.store.alarms import AlarmChange
from fleet.store.models import Alarm

log = logging.getLogger(__name__)


def decide(
    current: Mapping[str, tuple[str, dict[str, Any] | None]],
    wanted: dict[str, Wanted],
    decided: Iterable[str],
) -> list[Wanted | str]:
    """What brings a kiosk's active alarms (type -> (severity, detail)) in line, in type order: a
    ``Wanted`` to raise or update, a type to clear. Nothing when they already agree."""
    steps: list[Wanted | str] = []
    for kind in sorted(set(decided) | set(wanted)):
        want = wanted.get(kind)
        have = current.get(kind)
        if want is not None:
            if have is None or not want.same_as(*have):
                steps.append(want)
        elif have is not None:
            steps.append(kind)
    return steps


def reconcile(
    store: Store,
    kiosk_id: str,
    wanted: dict[str, Wanted],
    decided: Iterable[str],
    *,
    at: datetime,
    active: list[Alarm] | None = None,
) -> tuple[list[Alarm], list[Alarm]]:
    """Raise or update what ``wanted`` names, clear active alarms of the ``decided`` types it does not.
    Returns (raised or changed, cleared). Writes nothing when the alarms already agree."""
    alarms = active if active is not None else store.alarms.active_for_kiosk(kiosk_id)
    current = {a.type: (a.severity, a.detail) for a in alarms}
    raised: list[Alarm] = []
    cleared: list[Alarm] = []
    for step in decide(current, wanted, decided):
        if isinstance(step, str):
            ended = store.alarms.clear_alarm(kiosk_id, step, at=at)
            if ended is not None:
                cleared.append(ended)
            continue
        try:
            alarm, _new = store.alarms.raise_alarm(
                kiosk_id, step.type, step.severity, device=step.device, detail=step.detail, at=at
            )
        except ConflictError:  # another worker raised it this very moment: it exists, as wanted
            log.debug("alarm %s of %s raised concurrently", step.type, kiosk_id)
            continue
        raised.append(alarm)
    return raised, cleared


class AlarmRun:
    """The kiosks' alarms over a run of the ingest's batch: each message reconciled against what the
    messages before it left (in memory), the changes written together at the end (``flush``:
    ``Alarms.apply_changes``), not ~6 statements per raise or clear."""

    def __init__(self, store: Store, active: Mapping[str, list[Alarm]]) -> None:
        self.store = store
        self.current = {k: {a.type: (a.severity, a.detail) for a in alarms} for k, alarms in active.items()}
        self.changes: list[AlarmChange] = []

    def reconcile(
        self, kiosk_id: str, wanted: dict[str, Wanted], decided: Iterable[str], at: datetime
    ) -> None:
        current = self.current.setdefault(kiosk_id, {})
        for step in decide(current, wanted, decided):
            if isinstance(step, str):
                self.changes.append(AlarmChange(kiosk_id, step, at))
                del current[step]
            else:
                change = AlarmChange(kiosk_id, step.type, at, step.severity, step.device, step.detail)
                self.changes.append(change)
                current[step.type] = (step.severity, step.detail)

    def flush(self) -> None:
        self.store.alarms.apply_changes(self.changes)
        self.changes = []

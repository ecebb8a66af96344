"""Bring a kiosk's active alarms in line with what its latest report calls for (level-based rules)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fleet.alarms.rules import Wanted
from fleet.store import Store
from fleet.store.alarms import AlarmChange
from fleet.store.models import Alarm


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


class AlarmRun:
    """Kiosks' alarms brought in line with what reports say (a run of the ingest's batch, a sweep): each
    report reconciled against what the reports before it left (in memory), the changes written together
    at the end (``flush``: ``Alarms.apply_changes``), not ~6 statements per raise or clear."""

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

"""Bring a kiosk's active alarms in line with what its latest report calls for (level-based rules)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from common.errors import ConflictError
from fleet.alarms.rules import Wanted
from fleet.store import Store
from fleet.store.models import Alarm

log = logging.getLogger(__name__)


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
    current = {a.type: a for a in (active if active is not None else store.alarms.active_for_kiosk(kiosk_id))}
    raised: list[Alarm] = []
    cleared: list[Alarm] = []
    for kind in sorted(set(decided) | set(wanted)):
        want = wanted.get(kind)
        have = current.get(kind)
        if want is not None:
            if have is not None and want.same_as(have.severity, have.detail):
                continue
            try:
                alarm, _new = store.alarms.raise_alarm(
                    kiosk_id, want.type, want.severity, device=want.device, detail=want.detail, at=at
                )
            except ConflictError:  # another worker raised it this very moment: it exists, as wanted
                log.debug("alarm %s of %s raised concurrently", kind, kiosk_id)
                continue
            raised.append(alarm)
        elif have is not None:
            ended = store.alarms.clear_alarm(kiosk_id, kind, at=at)
            if ended is not None:
                cleared.append(ended)
    return raised, cleared

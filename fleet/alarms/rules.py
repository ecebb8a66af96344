"""Alarm types, their severities, and what a heartbeat or a status calls for (see the package doc).

| type | raised when | severity |
|---|---|---|
| ``offline`` | the kiosk is offline (Will, missing heartbeats, clean stop) | major; clean stop minor |
| ``app_down`` | the heartbeat says the kiosk app is not running | major |
| ``printer``, ``receipt_printer``, | the device is in any state but ok (or disabled) | by state, |
| ``card_reader``, ``scanner`` | | ``DEVICE_SEVERITY`` |
| ``outbox_near_full`` | the kiosk's outbox passed its alarm ratio | major |
| ``events_missing`` | an event gap stayed open longer than the grace period | major |
| ``events_dropped`` | the kiosk announced events dropped unsent (``outbox_dropped``) | major |
| ``cert_expiring`` | the certificate expires within ``cert_warn_days`` | warning; major 14 d; critical 3 d |
| ``clock_off`` | the kiosk's clock differs from the center's by more than ``clock_skew_s`` | minor |
| ``allocator_offline`` | (the center's own) the allocator's retained status is offline | major |
| ``allocator_unhealthy`` | (the center's own) online, its worker dead or its registry unreadable | major |

One alarm per (kiosk, type): a printer that goes from "near end" to "out of paper" keeps its alarm,
whose severity rises (and a worse severity needs a new acknowledgement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from contract.health import Health
from contract.wire import parse_time

QUIET_STATES = ("ok", "disabled")  # and "unknown": the app is down; the app_down alarm says so
DEVICE_SEVERITY: dict[str, dict[str, str]] = {
    "printer": {"paper_out": "critical", "paper_near_end": "warning"},
    "receipt_printer": {"paper_near_end": "warning"},
    "scanner": {"missing": "minor"},
}
DEVICE_DEFAULT = {"printer": "major", "receipt_printer": "major", "card_reader": "major", "scanner": "minor"}
#: types decided by a heartbeat (the set ``reconcile`` manages for it)
HEALTH_TYPES = frozenset({"app_down", "outbox_near_full", "cert_expiring", "clock_off", *DEVICE_DEFAULT})
#: alarms that end when a person acknowledged them: the loss they report cannot be undone
ONE_SHOT_TYPES = frozenset({"events_dropped"})


@dataclass(frozen=True)
class AlarmSettings:
    #: reminders while an alarm stays active and unacknowledged
    reminder_every: timedelta = timedelta(hours=1)
    cert_warn_days: int = 30
    clock_skew_s: float = 120.0
    #: an event gap must stay open this long before it is an alarm (two workers may store n+1 before n)
    gap_grace: timedelta = timedelta(seconds=60)
    #: an alarm is mailed and sent to webhooks only once it has stayed active this long (the dashboard
    #: shows it at once): a broker restart sends every kiosk's Will at once, and the births that clear
    #: them seconds later would otherwise mail a province's worth of "offline" and "back" notices
    announce_after: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class Wanted:
    type: str
    severity: str
    device: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def same_as(self, severity: str, detail: dict[str, Any] | None) -> bool:
        """Whether an active alarm already says this (a measurement that moves, such as the clock's
        skew or the outbox's fill, does not rewrite the alarm at every heartbeat)."""
        return severity == self.severity and (detail or {}).get("state") == self.detail.get("state")


def offline_wanted(reason: str | None) -> Wanted:
    severity = "minor" if reason == "shutdown" else "major"
    return Wanted("offline", severity, detail={"state": reason or "offline", "reason": reason})


def device_wanted(device: str, state: str, error: str | None = None) -> Wanted | None:
    if state in QUIET_STATES:
        return None
    severity = DEVICE_SEVERITY.get(device, {}).get(state, DEVICE_DEFAULT.get(device, "minor"))
    detail: dict[str, Any] = {"state": state}
    if error:
        detail["error"] = error[:300]
    return Wanted(device, severity, device=device, detail=detail)


def cert_wanted(not_after: datetime, now: datetime, warn_days: int) -> Wanted | None:
    left = not_after - now
    if left > timedelta(days=warn_days):
        return None
    days = left.total_seconds() / 86400
    severity = "critical" if days <= 3 else "major" if days <= 14 else "warning"
    state = "expired" if days <= 0 else "expiring"
    return Wanted(
        "cert_expiring",
        severity,
        detail={"state": state, "not_after": not_after.isoformat(), "days_left": round(days, 1)},
    )


def from_health(
    health: Health, received_at: datetime, settings: AlarmSettings
) -> tuple[dict[str, Wanted], frozenset[str]]:
    """The alarms a heartbeat calls for, and the types it decides. Device types the heartbeat cannot
    judge (state ``unknown`` while the app is down) are left as they are."""
    wanted: dict[str, Wanted] = {}
    decided = set(HEALTH_TYPES)
    if health.app.state == "down":
        wanted["app_down"] = Wanted("app_down", "major", detail={"error": (health.app.error or "")[:300]})
    if health.outbox.alarm:
        wanted["outbox_near_full"] = Wanted(
            "outbox_near_full",
            "major",
            detail={
                "pending": health.outbox.pending,
                "max": health.outbox.max,
                "fill_ratio": health.outbox.fill_ratio,
            },
        )
    for device in DEVICE_DEFAULT:
        reported = health.devices.get(device)
        if reported is None:
            continue  # not on this kiosk (receipt printer) or not reported: an alarm it had clears
        if reported.state == "unknown":
            decided.discard(device)
            continue
        found = device_wanted(device, reported.state, reported.error)
        if found is not None:
            wanted[device] = found
    if health.cert_not_after:
        cert = cert_wanted(
            parse_time(health.cert_not_after, "cert_not_after"), received_at, settings.cert_warn_days
        )
        if cert is not None:
            wanted["cert_expiring"] = cert
    else:
        decided.discard("cert_expiring")  # an older agent does not say: nothing to decide
    skew = (parse_time(health.at, "health.at") - received_at).total_seconds()
    if abs(skew) > settings.clock_skew_s:
        wanted["clock_off"] = Wanted(
            "clock_off",
            "minor",
            detail={"state": "ahead" if skew > 0 else "behind", "skew_s": round(skew, 1)},
        )
    return wanted, frozenset(decided)

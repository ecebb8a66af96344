"""What the heartbeat reports: the machine (psutil), the app (over its control socket), the outbox.

Only technical facts: no personal data reaches the heartbeat (device states come from the app and are
checked by the journal's personal-data guard before they are sent).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from kiosk.events import JournalStats, PrivacyError, check_no_personal_data

log = logging.getLogger(__name__)

DEVICE_NAMES = ("printer", "card_reader", "scanner")
#: devices a kiosk may have; reported only when the app reports them
OPTIONAL_DEVICE_NAMES = ("receipt_printer",)


def hardware_inventory(data_dir: Path) -> dict[str, Any]:
    """What the birth message says about the box (cheap, read once per connection)."""
    disk = psutil.disk_usage(str(data_dir))
    return {
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu_count": psutil.cpu_count() or 0,
        "memory_bytes": psutil.virtual_memory().total,
        "disk_bytes": disk.total,
    }


def _temperature_c() -> float | None:
    """The hottest CPU/SoC sensor, or None on boards (and VMs) without one."""
    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:
        return None
    try:
        sensors = read()
    except OSError:
        return None
    values = [entry.current for entries in sensors.values() for entry in entries if entry.current]
    return round(max(values), 1) if values else None


class HealthProbe:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._process = psutil.Process(os.getpid())
        self._started = time.monotonic()
        psutil.cpu_percent(None)  # prime: the first call has no interval to measure
        self._process.cpu_percent(None)

    def system(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.data_dir))
        return {
            "uptime_s": round(time.time() - psutil.boot_time()),
            "agent_uptime_s": round(time.monotonic() - self._started),
            "cpu_percent": psutil.cpu_percent(None),
            "agent_cpu_percent": self._process.cpu_percent(None),
            "memory": {"used_percent": memory.percent, "agent_rss_bytes": self._process.memory_info().rss},
            "disk": {"used_percent": disk.percent, "free_bytes": disk.free},
            "temperature_c": _temperature_c(),
        }


def app_section(reply: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    """The app's part of the heartbeat from its ``app.health`` answer (or why there is none)."""
    if reply is None:
        return {"state": "down", "error": error or "no answer"}
    return {
        "state": "up",
        "version": reply.get("app_version"),
        "uptime_s": reply.get("uptime_s"),
        "screen": reply.get("screen"),
        "out_of_service": reply.get("out_of_service"),
        "config_version": reply.get("config_version"),
        # where queue numbers come from and what is still to report to the allocator (counts only)
        "numbering": reply.get("numbering"),
    }


def devices_section(reply: dict[str, Any] | None) -> dict[str, Any]:
    """Each device's state; ``unknown`` when the app is down (the agent does not open devices itself)."""
    devices = (reply or {}).get("devices") or {}
    out: dict[str, Any] = {}
    for name in DEVICE_NAMES + tuple(n for n in OPTIONAL_DEVICE_NAMES if n in devices):
        item = devices.get(name)
        if not isinstance(item, dict):
            out[name] = {"state": "unknown"}
            continue
        try:
            check_no_personal_data(item, f"devices.{name}")
        except PrivacyError as exc:
            log.error("dropping device details: %s", exc.message)
            item = {"state": item.get("state")}
        out[name] = item
    return out


def outbox_section(stats: JournalStats, alarm_ratio: float, journal_id: str) -> dict[str, Any]:
    oldest_age = None
    if stats.oldest_occurred_at:
        oldest = datetime.fromisoformat(stats.oldest_occurred_at)
        oldest_age = round((datetime.now(UTC) - oldest).total_seconds(), 1)
    return {
        "pending": stats.pending,
        "max": stats.max_events,
        "fill_ratio": round(stats.fill_ratio, 4),
        "alarm": stats.fill_ratio >= alarm_ratio,
        "oldest_age_s": oldest_age,
        "oldest_seq": stats.oldest_seq,
        "dropped_total": stats.dropped_total,
        "journal_id": journal_id,
    }

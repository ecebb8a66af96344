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

from common.journal import JournalStats
from contract.errors import ContractError
from contract.health import (
    DEVICE_NAMES,
    OPTIONAL_DEVICE_NAMES,
    AppHealth,
    DeviceHealth,
    DiskHealth,
    MemoryHealth,
    OutboxHealth,
)
from contract.schema import parse_dataclass
from contract.status import Hardware
from contract.wire import now_iso

log = logging.getLogger(__name__)


def hardware_inventory(data_dir: Path, devices: dict[str, str]) -> Hardware:
    """What the birth message says about the box (cheap, read once per connection)."""
    disk = psutil.disk_usage(str(data_dir))
    return Hardware(
        machine=platform.machine(),
        os=f"{platform.system()} {platform.release()}"[:200],
        python=platform.python_version(),
        cpu_count=psutil.cpu_count() or 0,
        memory_bytes=psutil.virtual_memory().total,
        disk_bytes=disk.total,
        devices=devices,
    )


class CertificateExpiry:
    """When the kiosk's client certificate expires (``health/1`` ``cert_not_after``), read again only
    when the file changes (a renewal replaces it); None when there is none or it cannot be read."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen: tuple[float, int] | None = None
        self._value: str | None = None

    def not_after(self) -> str | None:
        if self.path is None:
            return None
        try:
            info = self.path.stat()
            key = (info.st_mtime, info.st_size)
            if key != self._seen:
                from cryptography import x509

                cert = x509.load_pem_x509_certificate(self.path.read_bytes())
                self._value = now_iso(cert.not_valid_after_utc)
                self._seen = key
        except (OSError, ValueError) as exc:
            if self._seen != (0.0, -1):
                log.warning("cannot read the expiry of %s: %s", self.path, exc)
            self._seen, self._value = (0.0, -1), None
        return self._value


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
        """The machine's part of ``health/1`` (keyword arguments of ``contract.health.Health``)."""
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.data_dir))
        return {
            "uptime_s": float(max(0, round(time.time() - psutil.boot_time()))),
            "agent_uptime_s": float(round(time.monotonic() - self._started)),
            "cpu_percent": float(psutil.cpu_percent(None)),
            "agent_cpu_percent": float(self._process.cpu_percent(None)),
            "memory": MemoryHealth(float(memory.percent), self._process.memory_info().rss),
            "disk": DiskHealth(float(disk.percent), disk.free),
            "temperature_c": _temperature_c(),
        }


def app_section(reply: dict[str, Any] | None, error: str | None) -> AppHealth:
    """The app's part of the heartbeat from its ``app.health`` answer (or why there is none).

    The answer comes from another process: it is checked like any other input, and what does not fit
    the contract is reported as the app's error instead of being passed on.
    """
    if reply is None:
        return AppHealth("down", error=(error or "no answer")[:300])
    fields = ("uptime_s", "screen", "out_of_service", "config_version", "numbering")
    data = {"state": "up", "version": reply.get("app_version"), **{k: reply.get(k) for k in fields}}
    try:
        return parse_dataclass(AppHealth, data, "app", lenient=True)
    except ContractError as exc:
        log.error("the app's health answer does not fit health/1: %s", exc.message)
        return AppHealth("up", error=f"unusable health answer: {exc.message}"[:300])


def devices_section(reply: dict[str, Any] | None) -> dict[str, DeviceHealth]:
    """Each device's state; ``unknown`` when the app is down (the agent does not open devices itself).

    Only the fields ``health/1`` defines are passed on (state, model, error): nothing else the app may
    have put in its answer reaches the center.
    """
    devices = (reply or {}).get("devices") or {}
    if not isinstance(devices, dict):
        devices = {}
    out: dict[str, DeviceHealth] = {}
    for name in DEVICE_NAMES + tuple(n for n in OPTIONAL_DEVICE_NAMES if n in devices):
        item = devices.get(name)
        if not isinstance(item, dict):
            out[name] = DeviceHealth("unknown")
            continue
        try:
            out[name] = parse_dataclass(DeviceHealth, item, f"devices.{name}", lenient=True)
        except ContractError as exc:
            log.error("device %s: %s", name, exc.message)
            out[name] = DeviceHealth("unknown", error="unusable state from the app")
    return out


def outbox_section(
    stats: JournalStats, alarm_ratio: float, journal_id: str, recovered_from: str | None = None
) -> OutboxHealth:
    oldest_age = None
    if stats.oldest_occurred_at:
        oldest = datetime.fromisoformat(stats.oldest_occurred_at)
        oldest_age = round((datetime.now(UTC) - oldest).total_seconds(), 1)
    return OutboxHealth(
        pending=stats.pending,
        max=stats.max_events,
        fill_ratio=min(1.0, round(stats.fill_ratio, 4)),
        alarm=stats.fill_ratio >= alarm_ratio,
        oldest_age_s=oldest_age,
        oldest_seq=stats.oldest_seq,
        dropped_total=stats.dropped_total,
        journal_id=journal_id,
        recovered_from=recovered_from,
    )

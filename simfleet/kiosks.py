"""The simulated kiosks of a demo fleet and the faults file that drives them.

Layout: ``DIR/<nn>/kiosk.toml`` per kiosk (written by the demo center's enrollment: identity, broker,
certificates, ``data_dir``), ``DIR/faults.json`` what is wrong with which kiosk. Every kiosk runs in this
one process: its agent (the real one, with its outbox, session, Will and commands), a simulated app on
``data_dir/app.sock`` that answers the agent's ``app.health`` with the devices the faults file says,
and a visitor who now and then looks up a dossier, reads an ID card or rates the center (events in the
kiosk's journal, which the agent publishes like any other).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError, DeviceError
from common.ipc import ControlServer
from common.journal import EventJournal
from contract.events import CardRead, EventPayload, Lookup, Rating, SessionEnded
from edge_agent.agent import Agent, AgentSettings
from edge_agent.cli import load_settings

log = logging.getLogger(__name__)

FAULTS_FILE = "faults.json"
#: what a fault may set, and the states it may take (``ok`` clears it)
FAULTS: dict[str, tuple[str, ...]] = {
    "printer": ("ok", "paper_near_end", "paper_out", "cover_open", "offline"),
    "card_reader": ("ok", "missing"),
    "scanner": ("ok", "missing"),
}
APP_VERSION = "1.0.0-sim"


@dataclass
class Fault:
    """What is wrong with one kiosk (``faults.json``): device states, and whether it is cut off."""

    devices: dict[str, str] = field(default_factory=dict)
    offline: bool = False

    def to_data(self) -> dict[str, Any]:
        return {"devices": dict(self.devices), "offline": self.offline}

    @classmethod
    def from_data(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            return cls()
        found = data.get("devices")
        devices: dict[str, Any] = found if isinstance(found, dict) else {}
        known = {k: v for k, v in devices.items() if k in FAULTS and v in FAULTS[k]}
        return cls(known, data.get("offline") is True)


def read_faults(directory: Path) -> dict[str, Fault]:
    """The faults file; a missing or broken one means nothing is wrong (logged once by the caller)."""
    try:
        data = json.loads((directory / FAULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(kiosk): Fault.from_data(value) for kiosk, value in data.items()}


def set_fault(
    directory: Path, kiosk_id: str, *, device: str | None = None, state: str | None = None,
    offline: bool | None = None,
) -> Fault:
    """Change one kiosk's fault in the file (written whole and renamed: the runner never reads half)."""
    kiosks = {p.name: p for p in kiosk_dirs(directory)}
    known = {load_settings(p / "kiosk.toml").kiosk_id for p in kiosks.values()}
    if kiosk_id not in known:
        there = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"no simulated kiosk {kiosk_id!r} in {directory} (there are: {there})")
    faults = read_faults(directory)
    fault = faults.get(kiosk_id, Fault())
    if device is not None:
        if device not in FAULTS or state not in FAULTS[device]:
            raise ConfigError(f"{device}: state must be one of {', '.join(FAULTS.get(device, ()))}")
        if state == "ok":
            fault.devices.pop(device, None)
        else:
            fault.devices[device] = state
    if offline is not None:
        fault.offline = offline
    faults[kiosk_id] = fault
    tmp = directory / f".{FAULTS_FILE}.{os.getpid()}"
    body = json.dumps({k: f.to_data() for k, f in sorted(faults.items())}, indent=2)
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(directory / FAULTS_FILE)
    return fault


def kiosk_dirs(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if (p / "kiosk.toml").is_file())


#: the printer faults that stop a print, and the code the real app's printer driver answers with
#: (``drivers.printer.errors``: PrinterPaperOutError, PrinterCoverOpenError, PrinterOfflineError)
PRINT_STOPPERS = {
    "paper_out": "printer_paper_out", "cover_open": "printer_cover_open", "offline": "printer_offline",
}


class SimulatedPrinterFault(DeviceError):
    """A test print refused while the simulated printer has a fault that stops printing, answered over
    the control socket as the real app answers it (its error's ``code``), so the fleet's console shows
    the reason ("máy in hết giấy") on the demo fleet too."""

    def __init__(self, state: str) -> None:
        super().__init__(f"printer {state} before printing; nothing was printed (simulated kiosk)")
        self.code = PRINT_STOPPERS[state]


class SimulatedApp:
    """The app's control socket as the agent sees it: health with the faulted devices, commands done
    (a test print refused while the printer's fault stops printing)."""

    def __init__(self, data_dir: Path, devices: Callable[[], dict[str, str]]) -> None:
        self.server = ControlServer(data_dir / "app.sock")
        self.devices = devices
        self.started = time.monotonic()
        self.notice: str | None = None
        self.out_of_service = False
        self.server.register("app.health", self._health)
        self.server.register("app.notice", self._notice)
        self.server.register("app.service_mode", self._service_mode)
        self.server.register("app.print_test_ticket", self._print_test_ticket)
        for cmd in ("app.restart", "app.reload_config"):
            self.server.register(cmd, lambda args: {})

    def _health(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "app_version": APP_VERSION,
            "uptime_s": round(time.monotonic() - self.started),
            "screen": "attract",
            "out_of_service": self.out_of_service,
            "devices": {name: {"state": state} for name, state in self.devices().items()},
        }

    def _print_test_ticket(self, args: dict[str, Any]) -> dict[str, Any]:
        state = self.devices().get("printer", "ok")
        if state in PRINT_STOPPERS:
            raise SimulatedPrinterFault(state)
        return {}

    def _notice(self, args: dict[str, Any]) -> dict[str, Any]:
        self.notice = str(args.get("text_vi") or "") or None
        return {}

    def _service_mode(self, args: dict[str, Any]) -> dict[str, Any]:
        self.out_of_service = bool(args.get("out_of_service"))
        return {}

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


def a_visit(rng: random.Random) -> list[EventPayload]:
    """What one citizen leaves in the journal: a look-up or a card read, a rating, the session's end."""
    first: EventPayload = (
        Lookup(rng.choice(["found", "found", "found", "not_found"]), "camera", agency_code="000.00.10.H12")
        if rng.random() < 0.6
        else CardRead("ok", "valid", rng.randint(900, 2600))
    )
    level = rng.choice([4, 4, 4, 3, 3, 2, 1])
    keys = {4: "very_satisfied", 3: "satisfied", 2: "neutral", 1: "unsatisfied"}
    return [first, Rating(level, 4, keys[level]), SessionEnded("done", round(rng.uniform(20, 180), 1))]


class SimulatedKiosk:
    """One kiosk: the real agent on its own thread, the simulated app, visits into its journal."""

    def __init__(self, config: Path, faults: Callable[[], dict[str, Fault]], visit_every_s: float) -> None:
        self.settings: AgentSettings = load_settings(config)
        self.kiosk_id = self.settings.kiosk_id
        self.faults = faults
        self.visit_every_s = visit_every_s
        self.app = SimulatedApp(self.settings.data_dir, self._devices)
        self.agent: Agent | None = None
        self.thread: threading.Thread | None = None
        self.rng = random.Random(self.kiosk_id)
        self.next_visit = time.monotonic() + self.rng.uniform(1, visit_every_s)

    def _fault(self) -> Fault:
        return self.faults().get(self.kiosk_id, Fault())

    def _devices(self) -> dict[str, str]:
        wrong = self._fault().devices
        return {name: wrong.get(name, "ok") for name in FAULTS}

    def start(self) -> None:
        self.app.start()
        self._start_agent()

    def _start_agent(self) -> None:
        self.agent = Agent(self.settings)
        self.thread = threading.Thread(target=self.agent.run, name=f"agent-{self.kiosk_id}", daemon=True)
        self.thread.start()

    def _stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.request_stop()
        if self.thread is not None:
            self.thread.join(15)
        self.agent, self.thread = None, None

    def tick(self) -> None:
        """Follow the faults file (offline: the agent stops, so the center sees it go; back: it starts
        again, a new connection and birth) and let a citizen visit now and then."""
        offline = self._fault().offline
        if offline and self.agent is not None:
            log.info("%s: offline (agent stopped)", self.kiosk_id)
            self._stop_agent()
        elif not offline and self.agent is None:
            log.info("%s: back online", self.kiosk_id)
            self._start_agent()
        if time.monotonic() >= self.next_visit:
            self.next_visit = time.monotonic() + self.rng.uniform(0.5, 1.5) * self.visit_every_s
            journal = EventJournal(self.settings.data_dir / "events.sqlite")
            try:
                journal.append_many(a_visit(self.rng))
            finally:
                journal.close()

    def stop(self) -> None:
        self._stop_agent()
        self.app.stop()


class SimulatedFleet:
    """Every kiosk of ``directory``, until ``stop`` is set."""

    def __init__(self, directory: Path, *, visit_every_s: float = 45.0) -> None:
        self.directory = directory
        self._faults: dict[str, Fault] = {}
        self._faults_mtime = -1.0
        configs = [p / "kiosk.toml" for p in kiosk_dirs(directory)]
        if not configs:
            raise ConfigError(f"{directory}: no simulated kiosk (<dir>/<nn>/kiosk.toml)")
        self.kiosks = [SimulatedKiosk(c, lambda: self._faults, visit_every_s) for c in configs]

    def _reload_faults(self) -> None:
        try:
            mtime = (self.directory / FAULTS_FILE).stat().st_mtime
        except OSError:
            mtime = 0.0
        if mtime != self._faults_mtime:
            self._faults_mtime = mtime
            self._faults = read_faults(self.directory)
            log.info("faults: %s", {k: f.to_data() for k, f in self._faults.items()} or "none")

    def run(self, stop: threading.Event) -> None:
        self._reload_faults()
        for kiosk in self.kiosks:
            kiosk.start()
        log.info("simulated fleet: %d kiosks running from %s", len(self.kiosks), self.directory)
        try:
            while not stop.wait(0.5):
                self._reload_faults()
                for kiosk in self.kiosks:
                    kiosk.tick()
        finally:
            for kiosk in self.kiosks:
                kiosk.stop()

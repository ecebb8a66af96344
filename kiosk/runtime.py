"""Assembles a running kiosk from its configuration: devices, journal, books, core, control socket.

No Kivy here: tests build a ``KioskRuntime`` and drive the core directly, and the Kivy app wraps the
same object. Devices that cannot be opened are reported (health, technician screen, a device-fault
event) and the other services keep working; nothing falls back to a simulator silently.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.errors import ConfigError, MotcuaError
from common.ipc import ControlServer
from common.journal import EventJournal
from contract.events import AppStarted, ServiceModeChanged
from kiosk import __version__
from kiosk.config import ConfigHolder, KioskConfig, apply_overlay, apply_pushed
from kiosk.core import KioskCore, Route
from kiosk.effects import Devices, EffectHandlers
from kiosk.errors import KioskError
from kiosk.flows.delivery import PostDeliveryFlow
from kiosk.flows.feedback import FeedbackFlow
from kiosk.flows.identify import IdentifyFlow
from kiosk.flows.lookup import LookupFlow
from kiosk.flows.technician import LOCKOUT_FILE, PinCheck, PinGuard, VerifyPin, pin_config_warnings
from kiosk.flows.ticket import IssuedTicket, IssueTicket
from kiosk.numbering import CenterTicketSource, NumberingStatus, numbering_status, open_ticket_source

log = logging.getLogger(__name__)

#: seconds between device polls (printer paper, reader and scanner presence)
POLL_INTERVAL_S = 5.0
#: a screenshot the agent did not collect (and delete) is deleted after this many seconds
SCREENSHOT_KEEP_S = 300.0
SCREENSHOT_DIR = "screenshots"


class ScreenshotRefused(KioskError):
    """The center asked for a screenshot while a citizen's personal data is on screen."""

    code = "screenshot_refused"


class _PrintedImages:
    """Renderings of a ticket that carries a citizen's name: deleted with the citizen's session."""

    def __init__(self, printer: Any, paths: list[Path]) -> None:
        self.printer = printer
        self.paths = paths

    def wipe(self) -> None:
        self.printer.wipe_outputs(self.paths)
        self.paths = []


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may enter (0700), created or tightened."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(0o700)
    except OSError as exc:
        log.warning("cannot make %s private: %s", path, exc)
    return path


def simulated(config: KioskConfig) -> KioskConfig:
    """The same configuration with every device on its simulator (``--simulate``)."""
    devices = config.devices
    data_dir = config.kiosk.data_dir
    return dataclasses.replace(
        config,
        devices=dataclasses.replace(
            devices,
            printer=dataclasses.replace(
                devices.printer, backend="simulator", output_dir=str(data_dir / "printer")
            ),
            receipt_printer=None
            if devices.receipt_printer is None
            else dataclasses.replace(
                devices.receipt_printer, backend="simulator", output_dir=str(data_dir / "receipt-printer")
            ),
            scanner=dataclasses.replace(devices.scanner, backend="simulator"),
            card_reader=dataclasses.replace(devices.card_reader, backend="simulator"),
        ),
    )


def demo_config(data_dir: Path, **kiosk_overrides: Any) -> KioskConfig:
    """config/simulate.toml, every device simulated, its data under ``data_dir`` (tests, benchmarks)."""
    from kiosk import SIMULATE_CONFIG
    from kiosk.config import load_config

    config = load_config(SIMULATE_CONFIG, with_pushed=False)  # not the demo's own pushed overlay
    kiosk = dataclasses.replace(config.kiosk, data_dir=data_dir, **kiosk_overrides)
    return simulated(dataclasses.replace(config, kiosk=kiosk))


class KioskRuntime:
    def __init__(
        self, config: KioskConfig, *, synchronous: bool = False, wall_clock: Callable[[], Any] | None = None
    ) -> None:
        #: the kiosk's own file: every push is applied to it, never on top of an earlier push
        self.base_config = config
        config = apply_pushed(config)
        self.settings = ConfigHolder(config)
        self.started = time.monotonic()
        data_dir = private_dir(config.kiosk.data_dir)
        self.journal = EventJournal(data_dir / "events.sqlite")
        self.tickets = open_ticket_source(config)  # [numbering] mode: this kiosk alone, or the center
        from kiosk.rating import RatingBook, RatingScale

        scale = RatingScale.from_config(config.rating)
        self.ratings = RatingBook(data_dir / "ratings.sqlite", scale, config.rating.repeat_interval_s)
        from kiosk.dossier.tally import LookupTally

        self.lookups = LookupTally(data_dir / "lookups.sqlite")
        self.devices = Devices()
        self.simulator: Any = None  # kiosk.simulation.SimulatedHardware in simulate mode
        self._open_devices()
        self.core = KioskCore(
            self.settings, self.journal, [], synchronous=synchronous, wall_clock=wall_clock
        )
        self.handlers = EffectHandlers(
            self.settings,
            self.journal,
            self.devices,
            self.tickets,
            self.ratings,
            self.lookups,
            now=self.core.now,
            set_service_mode=self._service_mode_from_ui,
        )
        # The technician PIN: slow hash on a worker lane, escalating lock kept across restarts, audit.
        self.core.pin_guard = PinGuard(
            time.time, state_file=data_dir / LOCKOUT_FILE, record=self.handlers.record
        )
        for warning in pin_config_warnings(config.kiosk):
            log.warning("%s", warning)
        self.core.set_routes(self._routes())
        self.settings.subscribe(self._config_changed)
        self.control = ControlServer(data_dir / "app.sock")
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._capture_lock = threading.Lock()
        self._scan_capture: Any = None  # a queue while a self-test waits for a scan
        self._ui_call: Callable[[Callable[[], None]], None] = lambda fn: fn()
        #: set by the window (``screens``): take a screenshot, close the window
        self.screenshot: Callable[[], Path] | None = None
        self.stop_ui: Callable[[], None] = lambda: None
        self.restart_requested = False

    @property
    def config(self) -> KioskConfig:
        return self.settings.current

    def _routes(self) -> list[Route[Any]]:
        routes: list[Route[Any]] = []
        for route in self.handlers.routes():
            if route.effect is IssueTicket:
                route = Route(IssueTicket, self._issue_ticket, route.lane)
            routes.append(route)
        routes.append(Route(VerifyPin, self._verify_pin, "local"))
        return routes

    def _verify_pin(self, effect: VerifyPin) -> PinCheck:
        return self.core.pin_guard.check(effect.pin, self.config.kiosk)

    def _issue_ticket(self, effect: IssueTicket) -> IssuedTicket:
        """Print a ticket; a virtual printer's rendering of one with a name goes with the session."""
        printer = getattr(self.devices.printer, "simulator", None)
        if effect.citizen_name is None or printer is None:
            return self.handlers.issue_ticket(effect)
        session = self.core.session  # the visit that asked (read on this lane: a reference, atomic)
        mark = printer.output_mark()
        try:
            return self.handlers.issue_ticket(effect)
        finally:  # printed or torn, the image shows the name
            held = _PrintedImages(printer, printer.outputs_since(mark))
            if session is not None:
                session.hold(held)
            if session is None or self.core.session is not session:
                held.wipe()  # the citizen already left (checked after hold: no window between)

    def _config_changed(self, old: KioskConfig, new: KioskConfig) -> None:
        """What is built from the configuration follows it (the flows and timeouts read it live)."""
        if new.rating != old.rating:
            from kiosk.rating import RatingScale

            self.ratings.configure(RatingScale.from_config(new.rating), new.rating.repeat_interval_s)
        log.info("configuration version %d applied", new.version)

    # -- devices ---------------------------------------------------------------------------------
    def _open_devices(self) -> None:
        devices, config = self.devices, self.config
        if (
            config.devices.printer.backend == "simulator"
            or config.devices.scanner.backend == "simulator"
            or (config.devices.card_reader.enabled and config.devices.card_reader.backend == "simulator")
        ):
            from kiosk.simulation import SimulatedHardware

            self.simulator = SimulatedHardware(config)
        from drivers.printer import open_printer

        try:
            devices.printer = open_printer(config.devices.printer)
        except MotcuaError as exc:
            devices.open_errors["printer"] = exc.message
            log.error("printer: %s", exc.message)
        if config.devices.receipt_printer is not None:
            try:
                devices.receipt_printer = open_printer(config.devices.receipt_printer)
            except MotcuaError as exc:
                devices.open_errors["receipt_printer"] = exc.message
                log.error("receipt printer: %s", exc.message)
        try:
            from drivers.scanner import open_scanner

            devices.scanner = open_scanner(config.devices.scanner)
        except MotcuaError as exc:
            devices.open_errors["scanner"] = exc.message
            log.error("scanner: %s", exc.message)
        reader = config.devices.card_reader
        if reader.enabled:
            try:
                if reader.backend == "simulator":
                    assert self.simulator is not None
                    self.simulator.start_card_reader()
                from drivers.card import CardReaderService

                devices.card = CardReaderService(reader.reader, reader.trust_dir, reader.timeout_s)
            except MotcuaError as exc:
                devices.open_errors["card_reader"] = exc.message
                log.error("card reader: %s", exc.message)
        try:
            from kiosk.dossier import open_backend

            lookup = config.lookup
            if not lookup.demo_path.is_absolute():  # the demo store lives with the kiosk's other data
                lookup = dataclasses.replace(lookup, demo_path=config.kiosk.data_dir / lookup.demo_path.name)
            devices.dossiers = open_backend(lookup)
        except MotcuaError as exc:
            devices.open_errors["lookup"] = exc.message
            log.error("dossier look-up: %s", exc.message)
        if self.simulator is not None:
            self.simulator.attach(devices)

    def start(self, ui_call: Callable[[Callable[[], None]], None] | None = None) -> None:
        """Start the scanner, the device poller and the control socket.

        ``ui_call(fn)`` must run ``fn`` on the UI thread (the app passes a Kivy clock call).
        """
        if ui_call is not None:
            self._ui_call = ui_call
        self.handlers.on_device_change = lambda: self._on_ui(self.core.notify)
        if isinstance(self.tickets, CenterTicketSource):
            self.tickets.start()  # reports printed/voided/offline numbers to the allocator
        if self.devices.scanner is not None:
            try:
                self.devices.scanner.start(self._scanned)
            except MotcuaError as exc:
                log.error("scanner: %s", exc.message)
        self._register_control()
        self.control.start()
        self._poller = threading.Thread(target=self._poll, name="device-poller", daemon=True)
        self._poller.start()
        self.core.record(AppStarted(__version__, self.config.version))

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_devices()
            except Exception:
                log.exception("device poll failed")
            try:
                self.prune_outputs()
            except Exception:
                log.exception("retention of screenshots and printer output failed")
            self._stop.wait(POLL_INTERVAL_S)

    def prune_outputs(self) -> None:
        """Retention of what holds pictures of the screen or of tickets: screenshots the agent did not
        take away, the virtual printers' PNGs (``output_keep_last``/``output_keep_s``)."""
        for printer in (self.devices.printer, self.devices.receipt_printer):
            simulator = getattr(printer, "simulator", None)
            if simulator is not None:
                simulator.prune()
        folder = self.config.kiosk.data_dir / SCREENSHOT_DIR
        cutoff = time.time() - SCREENSHOT_KEEP_S
        for path in folder.glob("*.png") if folder.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def stop(self) -> None:
        self._stop.set()
        self.control.stop()
        if self.devices.scanner is not None:
            self.devices.scanner.stop()
        for printer in (self.devices.printer, self.devices.receipt_printer):
            if printer is not None:
                printer.close()
        if self.simulator is not None:
            self.simulator.close()
        self.core.shutdown()
        self.journal.close()
        self.tickets.close()
        self.ratings.close()
        self.lookups.close()

    # -- control socket: what the edge agent and the simulator panel may ask -----------------------
    def _register_control(self) -> None:
        c = self.control
        c.register("app.health", lambda args: self.health())
        c.register("app.notice", self._notice)
        c.register("app.print_test_ticket", self._print_test_ticket)
        c.register("app.screenshot", self._screenshot)
        c.register("app.restart", self._restart)
        c.register("app.service_mode", self._service_mode)
        c.register("app.reload_config", self._reload_config)
        c.register("app.self_test", self._self_test)
        c.register("app.await_input", self._await_input)
        if self.simulator is not None:
            self.simulator.register(c)

    def _on_ui(self, fn: Callable[[], None]) -> None:
        self._ui_call(fn)

    # -- the technician's guided self-test (main.py provision selftest, docs/provisioning.md) ----------
    def _scanned(self, result: Any) -> None:
        """A scan goes to the flows, unless a self-test is waiting for it (then only to the self-test)."""
        with self._capture_lock:
            capture = self._scan_capture
            self._scan_capture = None
        if capture is not None:
            capture.put({"text": result.text, "source": result.source})
            return
        self.core.scanned(result.text, result.source)

    def _self_test(self, args: dict[str, Any]) -> dict[str, Any]:
        """Each device's verdict, as on the technician screen (not recorded: the caller reports)."""
        return dict(self.core.submit("local", self.handlers.run_self_test).result(timeout=60))

    def _await_input(self, args: dict[str, Any]) -> dict[str, Any]:
        """Wait for the next scan (``kind: scan``, taken from the flows) or touch (``kind: touch``)."""
        import queue

        kind = args.get("kind")
        timeout = min(max(float(args.get("timeout_s", 30)), 0.5), 120.0)
        if kind == "scan":
            box: queue.Queue[dict[str, Any]] = queue.Queue(1)
            with self._capture_lock:
                self._scan_capture = box
            try:
                return {"seen": True, **box.get(timeout=timeout)}
            except queue.Empty:
                return {"seen": False}
            finally:
                with self._capture_lock:
                    if self._scan_capture is box:
                        self._scan_capture = None
        if kind == "touch":
            before = self.core.last_touch
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.core.last_touch != before:
                    return {"seen": True}
                time.sleep(0.05)
            return {"seen": False}
        raise ValueError("kind: expected 'scan' or 'touch'")

    def _print_test_ticket(self, args: dict[str, Any]) -> dict[str, Any]:
        self.core.submit("printer", self.handlers.print_test_ticket).result(timeout=60)
        return {}

    def poll_devices(self) -> None:
        """Each device is asked on its own lane, never concurrently with a print or a card read."""
        futures = [
            self.core.submit("printer", self.handlers.poll_printer),
            self.core.submit("receipt", self.handlers.poll_receipt_printer),
            self.core.submit("card", self.handlers.poll_card_reader),
        ]
        self.handlers.poll_scanner()
        for future in futures:
            future.result(timeout=60)

    def health(self) -> dict[str, Any]:
        states = self.handlers.device_states()
        devices: dict[str, dict[str, Any]] = {}
        names = ["printer", "card_reader", "scanner"]
        if self.config.devices.receipt_printer is not None:
            names.append("receipt_printer")
        for name in names:
            entry: dict[str, Any] = {"state": states.get(name, "unknown")}
            if name in self.devices.open_errors:
                entry["error"] = self.devices.open_errors[name]
            devices[name] = entry
        if not self.config.devices.card_reader.enabled:
            devices["card_reader"] = {"state": "disabled"}
        numbering: dict[str, Any] = {"mode": self.config.numbering.mode}
        if isinstance(self.tickets, CenterTicketSource):
            numbering["pending_reports"] = self.tickets.pending_reports()
            numbering["offline_blocked"] = self.tickets.offline_blocked
        return {
            "app_version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "numbering": numbering,
            "screen": self.core.screen,
            "out_of_service": self.core.out_of_service_reason is not None,
            "config_version": self.config.version,
            "devices": devices,
        }

    def numbering(self) -> NumberingStatus:
        """Where queue numbers come from, for the technician screen (counts and codes only)."""
        return numbering_status(self.tickets)

    def totals(self) -> dict[str, int]:
        now = self.core.now()
        return {
            "tickets": self.tickets.issued_today(now),
            "ratings": self.ratings.totals(now.date()).counted,
            "lookups": sum(self.lookups.totals(now.date()).values()),
        }

    def _notice(self, args: dict[str, Any]) -> dict[str, Any]:
        text_vi, text_en = str(args.get("text_vi", "")), str(args.get("text_en", ""))
        if len(text_vi) > 300 or len(text_en) > 300:
            raise ValueError("notice text is limited to 300 characters")

        def apply() -> None:
            self.core.notice = {"vi": text_vi, "en": text_en or text_vi}
            self.core.notify()

        self._on_ui(apply)
        return {}

    def _set_service_mode(self, reason: str | None, source: str) -> None:
        """UI thread: change the service mode and record the change (audit), if it is one."""
        before = self.core.out_of_service_reason is not None
        self.core.set_out_of_service(reason)
        after = self.core.out_of_service_reason is not None
        if after != before:
            log.info("service mode: %s (%s)", "out of service" if after else "in service", source)
            self.core.record(ServiceModeChanged(after, "technician" if source == "technician" else "center"))

    def _service_mode_from_ui(self, reason: str | None) -> None:
        self._on_ui(lambda: self._set_service_mode(reason, "technician"))

    def _service_mode(self, args: dict[str, Any]) -> dict[str, Any]:
        out = args.get("out_of_service")
        if not isinstance(out, bool):
            raise ValueError("'out_of_service' must be true or false")
        reason = str(args.get("reason") or "center") if out else None
        self._on_ui(lambda: self._set_service_mode(reason, "center"))
        return {"out_of_service": out}

    # -- screenshots: never of a citizen's personal data --------------------------------------------
    def personal_data_on_screen(self) -> str | None:
        """Why the window may show a citizen's personal data now (UI thread), or None.

        Refused while the visit holds an identity (the name on the identify and ticket screens), while
        the ID-card step is open (the card's QR, the CAN typed), while a dossier code is typed or
        shown (it leads to a person), and while a delivery address, a feedback text or a phone number
        is typed and not yet sent.
        """
        session = self.core.session
        if session is not None and session.identity is not None:
            return "an identified citizen's name is part of the visit on screen"
        for flow in self.core.flows:
            if isinstance(flow, IdentifyFlow):
                return "the ID-card step is on screen"
            if isinstance(flow, LookupFlow) and (flow.typed or flow.code is not None or flow.status):
                return "a dossier code is on screen"
            # Typed on the visit's screens (issue 15): on screen until the back end has them.
            if isinstance(flow, PostDeliveryFlow) and (flow.address or flow.phone):
                return "an address or phone number for delivery is on screen"
            if isinstance(flow, FeedbackFlow) and (flow.text or flow.phone):
                return "a feedback message or phone number is on screen"
        return None

    def screenshot_path(self) -> Path:
        """Where the window saves the next screenshot (a private folder; the agent deletes it once sent)."""
        folder = private_dir(self.config.kiosk.data_dir / SCREENSHOT_DIR)
        return folder / f"screen-{time.strftime('%Y%m%dT%H%M%S')}-{time.monotonic_ns() % 10**6:06d}.png"

    def _screenshot(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.screenshot is None:
            raise KioskError("no window to take a screenshot of")
        done = threading.Event()
        result: dict[str, Any] = {}

        def take() -> None:  # on the UI thread: what is checked is what is captured
            try:
                reason = self.personal_data_on_screen()
                if reason is not None:
                    result["refused"] = reason
                    return
                assert self.screenshot is not None
                path = self.screenshot()
                os.chmod(path, 0o600)
                result["png_path"] = str(path)
            finally:
                done.set()

        self._on_ui(take)
        if not done.wait(10):
            raise KioskError("screenshot timed out")
        if "refused" in result:
            log.info("screenshot refused: %s", result["refused"])
            raise ScreenshotRefused(
                f"screenshot refused: {result['refused']} (citizens' personal data never leaves the "
                "kiosk); ask again when the kiosk is idle"
            )
        self.prune_outputs()
        return result

    def _restart(self, args: dict[str, Any]) -> dict[str, Any]:
        self.restart_requested = True
        self._on_ui(self.stop_ui)
        return {"restarting": True}

    def _reload_config(self, args: dict[str, Any]) -> dict[str, Any]:
        import json

        overlay_path = Path(str(args.get("overlay_path", "")))
        try:
            overlay = json.loads(overlay_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read pushed configuration {overlay_path}: {exc}") from exc
        new_config = apply_overlay(self.base_config, overlay)
        self._on_ui(lambda: self.settings.replace(new_config))
        return {"config_version": new_config.version}

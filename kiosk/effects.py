"""What each flow effect does, on its device's worker lane.

Handlers talk to drivers and back ends, record events (never personal data) and return plain
results to the flows. They run off the UI thread and never touch widgets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from common.errors import DeviceError, MotcuaError
from common.journal import EventJournal
from contract.config import ServiceArea
from contract.events import (
    CardRead,
    DeviceFault,
    DeviceRecovered,
    EventPayload,
    Lookup,
    TicketIssued,
)
from drivers.card.errors import ReaderMissingError
from drivers.card.verdict import Verdict
from drivers.printer.errors import PrinterError, PrinterStateError, PrinterUnavailableError
from kiosk import __version__
from kiosk.config import ConfigHolder, KioskConfig
from kiosk.core import Route
from kiosk.error_screens import AlteredCardError
from kiosk.flows.identify import ReadCard
from kiosk.flows.lookup import LookupDossier, PrintDossierStatus, RecordRejectedCode
from kiosk.flows.rating import SubmitRating
from kiosk.flows.technician import PrintTestTicket, RunSelfTest, SetServiceMode
from kiosk.flows.ticket import IssuedTicket, IssueTicket, waiting_text
from kiosk.i18n import Translator
from kiosk.session import Identity
from kiosk.ticketing import AllocatedNumber, TicketNumberSource, ticket_qr_text
from kiosk.visit_effects import VisitHandlers

if TYPE_CHECKING:
    from drivers.card import CardReaderService
    from drivers.printer import PrinterStatus, TicketContent, TicketPrinter
    from drivers.scanner import Scanner
    from kiosk.dossier import DossierBackend, DossierStatus
    from kiosk.dossier.tally import LookupTally
    from kiosk.rating import RatingBook, RatingOutcome

log = logging.getLogger(__name__)


@dataclass
class Devices:
    """The opened devices and back ends; ``None`` with an error when one could not be opened."""

    printer: TicketPrinter | None = None
    #: optional second printer for dossier status slips (role "receipt")
    receipt_printer: TicketPrinter | None = None
    scanner: Scanner | None = None
    card: CardReaderService | None = None
    dossiers: DossierBackend | None = None
    open_errors: dict[str, str] = field(default_factory=dict)


def printer_state(status: PrinterStatus, near_end_alarm: bool = True) -> str:
    """One word for health and the technician screen (docs/mqtt.md lists them): the printer's own
    ``problem`` (cause before symptom: ESC/POS printers also say "offline" while the paper is out),
    else whether the paper is running low (unless the printer's ``near_end_alarm`` is off)."""
    if status.problem is not None:
        return status.problem
    return "paper_near_end" if status.paper == "near_end" and near_end_alarm else "ok"


class EffectHandlers:
    def __init__(
        self,
        config: ConfigHolder,
        journal: EventJournal,
        devices: Devices,
        tickets: TicketNumberSource,
        ratings: RatingBook,
        lookups: LookupTally,
        *,
        now: Callable[[], datetime],
        set_service_mode: Callable[[str | None], None] = lambda reason: None,
    ) -> None:
        self.settings = config
        self.journal = journal
        self.devices = devices
        self.tickets = tickets
        self.ratings = ratings
        self.lookups = lookups
        self.now = now
        self.set_service_mode = set_service_mode
        self._device_states: dict[str, str] = {}
        self._states_lock = threading.Lock()
        #: called (on the caller's thread) when a device's state changed: screens show it
        self.on_device_change: Callable[[], None] = lambda: None

    @property
    def config(self) -> KioskConfig:
        """The current configuration (a push from the center applies to the next effect)."""
        return self.settings.current

    def routes(self) -> list[Route[Any]]:
        # A receipt printer, when there is one, has its own lane: a slip never delays a ticket.
        slips = "printer" if self.devices.receipt_printer is None else "receipt"
        return [
            Route(IssueTicket, self.issue_ticket, "printer"),
            Route(PrintDossierStatus, self.print_dossier_status, slips),
            Route(PrintTestTicket, self.print_test_ticket, "printer"),
            Route(ReadCard, self.read_card, "card"),
            Route(LookupDossier, self.lookup, "network"),
            Route(RecordRejectedCode, self.rejected_code, "local"),
            Route(SubmitRating, self.submit_rating, "local"),
            Route(RunSelfTest, self.run_self_test, "local"),
            Route(SetServiceMode, self.service_mode, "local"),
            *VisitHandlers(self).routes(slips),
        ]

    # -- events and device state -----------------------------------------------------------------
    def record(self, payload: EventPayload) -> None:
        """Journal an event (these handlers run on worker lanes: the fsync never blocks the screen)."""
        try:
            self.journal.append(payload)
        except MotcuaError as exc:
            log.error("event %s not recorded: %s", payload.kind, exc.message)

    def note_device(self, device: str, state: str, detail: str = "") -> None:
        """Remember a device's state; a change to or from a fault becomes an event for the fleet."""
        with self._states_lock:
            previous = self._device_states.get(device)
            self._device_states[device] = state
        if previous == state:
            return
        self.on_device_change()
        if state != "ok":
            log.warning("device %s: %s %s", device, state, detail)
            self.record(DeviceFault(device, state, detail[:200]))
        elif previous is not None:
            log.info("device %s recovered", device)
            self.record(DeviceRecovered(device))

    def device_states(self) -> dict[str, str]:
        with self._states_lock:
            return dict(self._device_states)

    def _printer(self, device: str = "printer") -> TicketPrinter:
        """The ticket printer, or the receipt printer (``device="receipt_printer"``)."""
        printer = self.devices.receipt_printer if device == "receipt_printer" else self.devices.printer
        if printer is None:
            error = self.devices.open_errors.get(device, "no printer configured")
            self.note_device(device, "missing", error)
            raise PrinterUnavailableError(f"{device}: {error}")
        return printer

    def poll_printer(self, device: str = "printer") -> None:
        """The printer's lane: ask the printer how it is (paper, cover, online)."""
        printer = self.devices.receipt_printer if device == "receipt_printer" else self.devices.printer
        if printer is None:
            self.note_device(device, "missing", self.devices.open_errors.get(device, ""))
            return
        try:
            self.note_device(device, printer_state(printer.status(), printer.config.near_end_alarm))
        except DeviceError as exc:
            self.note_device(device, "offline", exc.message)

    def poll_receipt_printer(self) -> None:
        if self.config.devices.receipt_printer is not None:
            self.poll_printer("receipt_printer")

    def poll_card_reader(self) -> None:
        """Card lane: is the configured reader listed by PC/SC?"""
        if not self.config.devices.card_reader.enabled:
            return
        present = False
        if self.devices.card is not None:
            try:
                present = self.devices.card.reader_present()
            except MotcuaError as exc:
                log.warning("card reader: %s", exc.message)
        self.note_device(
            "card_reader", "ok" if present else "missing", self.devices.open_errors.get("card_reader", "")
        )

    def poll_scanner(self) -> None:
        scanner = self.devices.scanner
        present = scanner is not None and scanner.present()
        self.note_device(
            "scanner", "ok" if present else "missing", self.devices.open_errors.get("scanner", "")
        )

    # -- tickets ---------------------------------------------------------------------------------
    def issue_ticket(self, effect: IssueTicket) -> IssuedTicket:
        """Take a number and print it. A printer that cannot print (no paper, cover open, gone) does not
        cost the citizen the number: it is issued all the same and shown on the screen (``printed``
        False), and the fault is noted for the center. Only a number that cannot be had fails."""
        service = self.config.service(effect.service_code)
        printer: TicketPrinter | None
        try:
            printer = self._ready_printer()  # asked first: a known-empty printer is not sent the ticket
        except PrinterError as exc:
            log.warning("ticket printer cannot print (%s): the number goes on the screen", exc.code)
            printer = None
        now = self.now()
        allocated = self.tickets.allocate(service, effect.priority, now)
        printed = False
        if printer is not None:
            content = self._ticket_content(effect, service, allocated, now)
            try:
                report = printer.print_ticket(content, checked=True)
            except PrinterError as exc:
                log.warning("ticket %s not printed (%s): shown on the screen", allocated.number, exc.code)
                self._note_print_failure("printer", exc)
            else:
                printed = True
                self.note_device("printer", printer_state(report.status_after, printer.config.near_end_alarm))
        self.tickets.confirm(allocated)
        identified = effect.citizen_name is not None
        self.record(
            TicketIssued(
                allocated.number, service.code, effect.priority, identified, allocated.day,
                effect.appointment_at,
            )
        )
        return IssuedTicket(
            allocated.number,
            service.code,
            effect.priority,
            now,
            tuple(service.counters),
            allocated.waiting_ahead,
            service.name_vi,
            service.name_en,
            expected_wait_min=allocated.expected_wait_min if allocated.waiting_ahead is not None else None,
            printed=printed,
        )

    def _ticket_content(
        self, effect: IssueTicket, service: ServiceArea, allocated: AllocatedNumber, now: datetime
    ) -> TicketContent:
        """The printed ticket: where to go and how long, in the words the screen uses."""
        from drivers.printer import TicketContent

        tr = Translator(effect.language)
        config = self.config
        counters = ", ".join(service.counters)
        notes = []
        wait = waiting_text(tr, allocated.waiting_ahead, allocated.expected_wait_min)
        if wait:
            notes.append(wait)
        notes += [
            tr("ticket.valid_today", date=f"{now:%d/%m/%Y}"),
            tr("ticket.hotline", hotline=config.visit.hotline),
        ]
        return TicketContent(
            center_name=config.kiosk.center_name,
            service_name=service.name_vi if effect.language == "vi" else service.name_en,
            number=allocated.number,
            counters=list(service.counters),
            issued_at=now,
            waiting_ahead=None,  # said in ``notes`` with the expected wait
            citizen_name=effect.citizen_name,
            priority_label=(
                tr("appointment.ticket_mark", time=effect.appointment_at)
                if effect.appointment_at
                else tr("ticket.priority_mark") if effect.priority else None
            ),
            qr_data=ticket_qr_text(config.queue, config.kiosk.center_id, allocated.day, allocated.number),
            footer=tr("ticket.footer"),
            lead=tr("ticket.lead", number=allocated.number),
            counter_text=tr("ticket.counter_call", counters=counters) if counters else None,
            notes=notes,
            labels={
                "your_number": tr("ticket.your_number"),
                "counter": tr("ticket.counter_label"),
                "time": tr("ticket.issued_at"),
                "citizen": tr("ticket.citizen_label"),
                "scan_qr": tr("ticket.scan_phone" if config.queue.phone_page else "ticket.scan_qr"),
            },
        )

    def _note_print_failure(self, device: str, exc: MotcuaError) -> None:
        """The state a failed print left the printer in, from the status that said so."""
        if isinstance(exc, PrinterStateError) and exc.status is not None:
            self.note_device(device, printer_state(exc.status), exc.message)
        elif isinstance(exc, DeviceError):
            self.note_device(device, "offline", exc.message)

    def _ready_printer(self, device: str = "printer") -> TicketPrinter:
        """The printer, after its one readiness check; raises (and notes the state) when it cannot print."""
        printer = self._printer(device)
        try:
            status = printer.check_ready()
        except MotcuaError as exc:
            self._note_print_failure(device, exc)
            raise
        self.note_device(device, printer_state(status, printer.config.near_end_alarm))
        return printer

    def print_dossier_status(self, effect: PrintDossierStatus) -> None:
        from drivers.printer import DocumentContent

        device = "printer" if self.config.devices.receipt_printer is None else "receipt_printer"
        printer = self._ready_printer(device)
        tr = Translator(effect.language)
        lines = effect.status.summary_lines(self.now().date(), effect.language)
        try:
            report = printer.print_document(
                DocumentContent(
                    title=tr("lookup.title"),
                    lines=lines,
                    qr_data=effect.status.code.text,
                    footer=self.config.kiosk.center_name,
                ),
                checked=True,
            )
        except MotcuaError as exc:
            self._note_print_failure(device, exc)
            raise
        self.note_device(device, printer_state(report.status_after, printer.config.near_end_alarm))

    def print_test_ticket(self, effect: PrintTestTicket | None = None) -> None:
        from drivers.printer import DocumentContent

        printer = self._ready_printer()
        now = self.now()
        try:
            report = printer.print_document(
                DocumentContent(
                    title="PHIẾU IN THỬ / TEST PRINT",
                    lines=[
                        ("Kiosk", self.config.kiosk.id),
                        ("Trung tâm", self.config.kiosk.center_name),
                        ("Thời gian", now.strftime("%d/%m/%Y %H:%M:%S")),
                        ("Phiên bản", __version__),
                        ("Tiếng Việt", "ĂÂĐÊÔƠƯ ăâđêôơư áàảãạ ấầẩẫậ ắằẳẵặ ếềểễệ ốồổỗộ ớờởỡợ ứừửữự"),
                    ],
                    qr_data=f"MOTCUA-TEST:{self.config.kiosk.id}",
                ),
                checked=True,
            )
        except MotcuaError as exc:
            self._note_print_failure("printer", exc)
            raise
        self.note_device("printer", printer_state(report.status_after, printer.config.near_end_alarm))

    # -- identity --------------------------------------------------------------------------------
    def read_card(self, effect: ReadCard) -> Identity:
        from drivers.card import AccessKey, access_keys_from_cccd_qr

        card = self.devices.card
        if card is None:
            raise ReaderMissingError(
                f"card reader: {self.devices.open_errors.get('card_reader', 'not configured')}"
            )
        started = time.monotonic()
        result = "ok"
        authenticity = "not_checked"
        try:
            keys = (
                access_keys_from_cccd_qr(effect.cccd_qr)
                if effect.cccd_qr
                else [AccessKey.from_can(effect.can or "")]
            )
            # The read itself waits for the card to be present and answering, within the reader's
            # timeout (CardTimeoutError when no card comes): no second wait before it.
            record = card.read_identity(keys)
            try:
                authenticity = record.authenticity.value
                if authenticity == "failed":  # genuine / not_verified / failed (drivers/card/verdict.py)
                    raise AlteredCardError(f"card failed verification: {record.authenticity_reason}")
                identity = Identity(
                    record.full_name,
                    record.birth_date,
                    authenticity,
                    record.birth_date_trusted,
                    sex=record.sex,
                )
                # The signature's verdict is for staff (this log, the card_read event), never the citizen.
                log.info("card read: %s (%s)", authenticity, record.verdict.code)
            finally:
                record.wipe()  # the kiosk keeps only name and birth date, in the session
            return identity
        except Exception as exc:
            result = type(exc).__name__
            # a read that ends on the card's own evidence (a clone failing chip authentication) carries
            # its verdict: the event says "failed", not "not_checked"
            verdict = getattr(exc, "verdict", None)
            if isinstance(verdict, Verdict):
                authenticity = verdict.authenticity.value
            raise
        finally:
            # What the fleet sees of a card read: outcome and speed, nothing about the person.
            self.record(CardRead(result, authenticity, round((time.monotonic() - started) * 1000)))

    # -- look-up and rating ----------------------------------------------------------------------
    def lookup(self, effect: LookupDossier) -> DossierStatus:
        from kiosk.dossier import DossierNotFound, LookupUnavailable, lookup_event

        backend = self.devices.dossiers
        started = time.monotonic()
        status = None
        outcome: Literal["found", "not_found", "unavailable"] = "found"
        try:
            if backend is None:
                raise LookupUnavailable(
                    self.devices.open_errors.get("lookup", "no dossier back end configured")
                )
            status = backend.lookup(effect.code)
            return status
        except DossierNotFound:
            outcome = "not_found"
            raise
        except MotcuaError:
            outcome = "unavailable"
            raise
        finally:
            self._count_lookup(
                lookup_event(
                    outcome,
                    source=effect.source,
                    code=effect.code,
                    status=status,
                    today=self.now().date(),
                    latency_ms=(time.monotonic() - started) * 1000,
                ),
            )

    def rejected_code(self, effect: RecordRejectedCode) -> None:
        from kiosk.dossier import lookup_event

        self._count_lookup(lookup_event("not_a_dossier", source=effect.source))

    def _count_lookup(self, event: Lookup) -> None:
        self.record(event)
        try:
            self.lookups.record(event.outcome, event.source, self.now())
        except MotcuaError as exc:
            log.error("look-up totals not updated: %s", exc.message)

    def submit_rating(self, effect: SubmitRating) -> RatingOutcome:
        from kiosk.rating import RatingTarget, rating_event

        target = RatingTarget.of(effect.target_kind, effect.target_id)
        outcome = self.ratings.submit(effect.level, reasons=effect.reasons, target=target, now=self.now())
        if outcome.counted:
            self.record(rating_event(effect.level, self.ratings.scale, target, effect.reasons))
        return outcome

    # -- technician ------------------------------------------------------------------------------
    def run_self_test(self, effect: RunSelfTest | None = None) -> dict[str, Any]:
        """Each device's verdict for the technician screen: ``ok``, ``state`` and the error if any."""
        results: dict[str, Any] = {}
        printer = self.devices.printer
        results["printer"] = self._probe(
            "printer", None if printer is None else lambda: {"state": printer_state(printer.status())}
        )
        receipt = self.devices.receipt_printer
        if self.config.devices.receipt_printer is not None:
            results["receipt_printer"] = self._probe(
                "receipt_printer",
                None if receipt is None else lambda: {"state": printer_state(receipt.status())},
            )
        scanner = self.devices.scanner
        results["scanner"] = self._probe("scanner", None if scanner is None else scanner.self_test)
        if not self.config.devices.card_reader.enabled:
            results["card_reader"] = {"ok": True, "state": "disabled"}
        else:
            card = self.devices.card
            results["card_reader"] = self._probe(
                "card_reader", None if card is None else self._card_self_test
            )
        if effect is not None:  # from the technician screen: the report goes to the fleet as an event
            from contract.events import SelfTest

            self.record(SelfTest.from_devices(results, "screen"))
        return results

    def _card_self_test(self) -> dict[str, Any]:
        assert self.devices.card is not None
        report = self.devices.card.self_test()
        # The reader must be there and answer; a card on it is optional, but if one is, it must answer.
        found = bool(report.get("reader_found"))
        return {**report, "state": "ok" if found else "missing", "ok": found and report.get("error") is None}

    def _probe(self, device: str, test: Callable[[], dict[str, Any]] | None) -> dict[str, Any]:
        if test is None:
            return {"ok": False, "state": "missing", "error": self.devices.open_errors.get(device)}
        try:
            result = {"state": "ok", **test()}
        except MotcuaError as exc:
            return {"ok": False, "state": "error", "error": exc.message}
        # A device's own "ok: false" (e.g. a decoder check) fails it too.
        result["ok"] = bool(result.get("ok", True)) and result["state"] in ("ok", "disabled")
        return result

    def service_mode(self, effect: SetServiceMode) -> None:
        self.set_service_mode("technician" if effect.out_of_service else None)

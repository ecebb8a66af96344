"""What the visit's effects do (docs/visit.md), on their lanes: the back end's operations on the
network lane, slips on the slip printer's lane, events on the local lane.

A part of ``EffectHandlers`` (it adds these routes to its own): it uses the same devices, printer
checks and journal. Nothing personal is logged or recorded: the requests hide their fields from
``repr`` and the events are ``visit_service`` (what and how it ended, the topic of a feedback).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from common.errors import MotcuaError
from contract.events import VisitService
from kiosk.core import Route
from kiosk.dossier import (
    FIELD_LABELS,
    Appointment,
    DeliveryReceipt,
    FeedbackReceipt,
    LookupUnavailable,
    VisitBackend,
)
from kiosk.flows.appointment import MatchAppointment
from kiosk.flows.delivery import PrintDeliverySlip, RequestDelivery
from kiosk.flows.feedback import SendFeedback
from kiosk.flows.payment import PrintFeeQr
from kiosk.flows.visit_event import RecordVisit
from kiosk.i18n import Translator
from kiosk.payments import format_vnd

if TYPE_CHECKING:
    from drivers.printer import DocumentContent
    from kiosk.effects import EffectHandlers


class VisitHandlers:
    def __init__(self, handlers: EffectHandlers) -> None:
        self.h = handlers

    def routes(self, slips_lane: str) -> list[Route[Any]]:
        return [
            Route(RequestDelivery, self.request_delivery, "network"),
            Route(SendFeedback, self.send_feedback, "network"),
            Route(MatchAppointment, self.match_appointment, "network"),
            Route(PrintDeliverySlip, self.print_delivery_slip, slips_lane),
            Route(PrintFeeQr, self.print_fee_qr, slips_lane),
            Route(RecordVisit, self.record_visit, "local"),
        ]

    def _backend(self) -> VisitBackend:
        backend = self.h.devices.dossiers
        if backend is None:
            error = self.h.devices.open_errors.get("lookup", "no dossier back end configured")
            raise LookupUnavailable(error)
        if not isinstance(backend, VisitBackend):
            raise LookupUnavailable(f"{type(backend).__name__} has no delivery, feedback or appointment "
                                    "operations")
        return cast(VisitBackend, backend)

    def request_delivery(self, effect: RequestDelivery) -> DeliveryReceipt:
        return self._backend().request_delivery(effect.request)

    def send_feedback(self, effect: SendFeedback) -> FeedbackReceipt:
        return self._backend().send_feedback(effect.message)

    def match_appointment(self, effect: MatchAppointment) -> Appointment:
        return self._backend().match_appointment(effect.query)

    def record_visit(self, effect: RecordVisit) -> None:
        self.h.record(VisitService(effect.service, effect.outcome, effect.topic, effect.agency_code))

    # -- slips -----------------------------------------------------------------------------------
    def print_delivery_slip(self, effect: PrintDeliverySlip) -> None:
        from drivers.printer import DocumentContent

        tr = Translator(effect.language)
        i = 0 if effect.language == "vi" else 1
        lines = [
            (tr("delivery.request_number"), effect.receipt.request_number),
            (FIELD_LABELS["code"][i], effect.status.code.text),
            (FIELD_LABELS["procedure_name"][i], effect.status.procedure_name),
        ]
        if effect.receipt.fee_vnd:
            lines.append((tr("delivery.fee"), format_vnd(effect.receipt.fee_vnd, effect.language)))
        hotline = tr("visit.hotline", hotline=self.h.config.visit.hotline)
        self._print(DocumentContent(
            title=tr("delivery.slip_title"),
            lines=lines,
            footer=f"{tr('delivery.slip_note')}. {self.h.config.kiosk.center_name} · {hotline}",
        ))

    def print_fee_qr(self, effect: PrintFeeQr) -> None:
        from drivers.printer import DocumentContent

        tr = Translator(effect.language)
        i = 0 if effect.language == "vi" else 1
        lines = [
            (FIELD_LABELS["code"][i], effect.status.code.text),
            (tr("payment.fee"), effect.fee.label or FIELD_LABELS["fees"][i]),
            (tr("payment.amount"), format_vnd(effect.fee.amount_vnd, effect.language)),
            (tr("payment.payee"), effect.payee.name or effect.payee.account),
            (tr("payment.account"), effect.payee.account),
            (tr("payment.reference"), effect.fee.reference),
        ]
        self._print(DocumentContent(
            title=tr("payment.slip_title"),
            lines=lines,
            qr_data=effect.payload,
            footer=tr("payment.slip_footer"),
        ))

    def _print(self, content: DocumentContent) -> None:
        from kiosk.effects import printer_state

        device = "printer" if self.h.config.devices.receipt_printer is None else "receipt_printer"
        printer = self.h._ready_printer(device)
        try:
            report = printer.print_document(content, checked=True)
        except MotcuaError as exc:
            self.h._note_print_failure(device, exc)
            raise
        self.h.note_device(device, printer_state(report.status_after, printer.config.near_end_alarm))

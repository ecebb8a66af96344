"""Fees by QR (phí, lệ phí): the VietQR payment code of a fee the back end reports, shown and printed.

Runs on top of the look-up. The payee is the account the back end names for the fee, else the
center's ``[visit]`` account; the reference is the back end's (the dossier code by default). Whether
it was paid comes back through the adapter on the next look-up; the kiosk never learns who paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import MotcuaError
from kiosk.dossier import DossierStatus, FeeDue, Payee
from kiosk.error_screens import screen_key
from kiosk.flows.base import Effect, Flow, FlowContext
from kiosk.flows.visit_event import RecordVisit
from kiosk.payments import VietQrError, VietQrPayment, build_vietqr


@dataclass(frozen=True)
class PrintFeeQr(Effect):
    status: DossierStatus
    fee: FeeDue
    payee: Payee
    payload: str
    language: str = "vi"


def payee_for(fee: FeeDue, ctx: FlowContext) -> Payee | None:
    """The fee's own payee, else the center's configured account, else none (pay at the counter)."""
    if fee.payee is not None:
        return fee.payee
    visit = ctx.config.visit
    if visit.payee_bank_bin and visit.payee_account:
        return Payee(visit.payee_bank_bin, visit.payee_account, visit.payee_name)
    return None


class FeePaymentFlow(Flow):
    name = "payment"
    initial = "show"
    ON_TOP = True
    TRANSITIONS = frozenset(
        {
            ("show", "printing"),
            ("printing", "show"),
            ("show", "paid"),  # the fee was already paid: nothing to pay
            ("show", "unavailable"),  # no account configured, or a reference no QR can carry
        }
    )
    BUSY = frozenset({"printing"})
    RESULT = frozenset({"paid", "unavailable"})

    def __init__(self, ctx: FlowContext, status: DossierStatus) -> None:
        super().__init__(ctx)
        if status.fee_due is None:
            raise ValueError(f"dossier {status.code.agency}: no fee due")
        self.status = status
        self.fee: FeeDue = status.fee_due
        self.payee = payee_for(self.fee, ctx)
        #: the VietQR text to draw as a QR (``kiosk.payments.render_png``) and print
        self.payload: str | None = None
        self.printed = False
        self.shown_recorded = False
        if self.fee.paid:
            self.go("paid")
        elif self.payee is None:
            self.fail("unavailable", "payment.no_account")
        else:
            try:
                self.payload = build_vietqr(VietQrPayment(self.payee.bank_bin, self.payee.account,
                                                          self.fee.amount_vnd, self.fee.reference))
            except VietQrError as exc:
                self.fail("unavailable", exc)


    def do_shown(self) -> list[Effect]:
        """The screen drew the code: recorded once (the fleet counts codes shown against fees paid)."""
        if self.state != "show" or self.shown_recorded:
            return []
        self.shown_recorded = True
        return [RecordVisit("fee_qr", "shown", agency_code=self.status.code.agency)]

    def do_print(self) -> list[Effect]:
        if self.state != "show" or self.payload is None or self.payee is None:
            return []
        self.error_key = None
        self.go("printing")
        return [PrintFeeQr(self.status, self.fee, self.payee, self.payload, self.ctx.session.language)]

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        if isinstance(effect, PrintFeeQr):
            self.printed = True
            self.go("show")
            return [RecordVisit("fee_qr", "printed", agency_code=self.status.code.agency)]
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        if isinstance(effect, PrintFeeQr):
            self.error_key = screen_key(error)
            self.go("show")
        return []

"""The screens of the rest of the visit (issue 15, docs/visit.md): results by post, the fee's VietQR,
the booked appointment's check-in, feedback. Drawn like the other screens: title and text on top,
the keys and the actions in the lower part, Quay lại / Về trang chủ in the footer.
"""

from __future__ import annotations

import io
from functools import partial
from typing import TYPE_CHECKING

from kivy.core.image import Image as CoreImage
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.image import Image
from kivy.uix.widget import Widget

from kiosk.dossier.visit import MAX_ADDRESS, MAX_FEEDBACK
from kiosk.flows.appointment import AppointmentFlow
from kiosk.flows.delivery import PostDeliveryFlow
from kiosk.flows.feedback import FeedbackFlow
from kiosk.flows.payment import FeePaymentFlow
from kiosk.payments import format_vnd, render_png
from screens.keyboard import digit_pad, keyboard
from screens.views import FlowScreen, TicketScreen, help_line
from screens.widgets import BLUE, DARK, GREEN, GREY, PANEL, RED, BigButton, EvenGrid, Panel, Text, esc, u

if TYPE_CHECKING:
    from screens.app import KioskApp


def field(text: str) -> Panel:
    """What the citizen typed, framed (never a hint in its place)."""
    return Panel(text or " ", PANEL, size=48, bold=True, color=DARK, halign="left",
                 padding=(24 * u(), 16 * u()))


def waiting(app: KioskApp, body: BoxLayout) -> None:
    body.add_widget(Widget())
    body.add_widget(Text(app.tr("common.please_wait"), size=56))
    body.add_widget(Widget())


class TypingScreen(FlowScreen):
    """A screen with the text keyboard: its page (letters or digits) is the only thing it remembers,
    and only while it is shown."""

    digits_page = False

    def clear(self) -> None:
        super().clear()
        self.digits_page = False

    def page(self, app: KioskApp, digits: bool) -> None:
        self.digits_page = digits
        self.render(app)


class DeliveryScreen(TypingScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, PostDeliveryFlow)
        body.add_widget(Text(app.tr("delivery.title"), size=52, bold=True))
        state = flow.state
        if state == "address":
            # One line above the field: what went wrong, else where it came from, else what to type.
            if flow.error_key:
                self.error(app, body, flow.error_key)
            elif flow.address_from_card:
                body.add_widget(Text(app.tr("delivery.from_card"), size=42, color=GREEN, bold=True))
            else:
                body.add_widget(Text(app.tr("delivery.address_prompt"), size=44, halign="left"))
            body.add_widget(field(flow.address))
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("keyboard.mark_hint"), size=40, color=GREY))
            body.add_widget(
                keyboard(app, flow.address, lambda text: app.act("set_address", text=text),
                         digits=self.digits_page, on_page=partial(self.page, app), limit=MAX_ADDRESS)
            )
            actions = EvenGrid(cols=2, spacing=12)
            actions.add_widget(BigButton(app.tr("delivery.use_card"), lambda: app.act("use_card"),
                                         color=GREY, size=40, height=130))
            actions.add_widget(BigButton(app.tr("common.continue"), lambda: app.act("next"),
                                         color=GREEN, size=48, height=130))
            body.add_widget(actions)
        elif state == "consent":
            body.add_widget(Panel(app.tr("delivery.consent"), PANEL, size=46, padding=(24 * u(), 24 * u())))
            body.add_widget(Widget())
            yes = app.tr("delivery.consent_yes")
            body.add_widget(BigButton(yes, lambda: app.act("consent"), color=GREEN))
            body.add_widget(BigButton(app.tr("delivery.consent_no"), lambda: app.act("decline"), color=GREY,
                                      height=150))
        elif state == "scan_card":
            body.add_widget(Text(app.tr("delivery.scan_card"), size=48, color=BLUE, bold=True))
            self.error(app, body, flow.error_key)
            body.add_widget(Widget())
            body.add_widget(BigButton(app.tr("delivery.consent_no"), lambda: app.act("decline"), color=GREY,
                                      height=150))
        elif state == "phone":
            body.add_widget(Text(app.tr("delivery.phone_prompt"), size=44, halign="left"))
            body.add_widget(field(flow.phone))
            self.error(app, body, flow.error_key)
            body.add_widget(Widget())
            body.add_widget(digit_pad(flow.phone, lambda text: app.act("set_phone", text=text), app))
            body.add_widget(BigButton(app.tr("common.continue"), lambda: app.act("next"), color=GREEN,
                                      height=140))
        elif state == "confirm":
            dossier = f"{flow.status.code.text} · {flow.status.procedure_name}"
            body.add_widget(Text(dossier, size=40, color=GREY))
            body.add_widget(Text(app.tr("delivery.confirm"), size=44))
            fee = (f"{esc(app.tr('delivery.fee'))}: [b]{format_vnd(flow.fee_vnd, app.language)}[/b]"
                   if flow.fee_vnd else esc(app.tr("delivery.no_fee")))
            facts = [
                f"{esc(app.tr('delivery.address_label'))}: [b]{esc(flow.address)}[/b]",
                f"{esc(app.tr('delivery.phone_label'))}: [b]{esc(flow.phone)}[/b]",
                fee,
            ]
            body.add_widget(Panel("\n".join(facts), PANEL, size=44, markup=True, halign="left",
                                  padding=(24 * u(), 20 * u())))
            body.add_widget(Widget())
            body.add_widget(BigButton(app.tr("delivery.send"), lambda: app.act("send"), color=GREEN))
        elif state in ("sending", "printing"):
            waiting(app, body)
        elif state == "done" and flow.receipt is not None:
            body.add_widget(Text(app.tr("delivery.done"), size=46, color=GREEN, bold=True))
            number = f"{esc(app.tr('delivery.request_number'))}: [b]{esc(flow.receipt.request_number)}[/b]"
            body.add_widget(Panel(number, PANEL, size=48, markup=True))
            if flow.fee_vnd:
                body.add_widget(Text(f"{app.tr('delivery.fee')}: {format_vnd(flow.fee_vnd, app.language)}",
                                     size=44))
            self.error(app, body, flow.error_key)
            body.add_widget(Widget())
            if flow.printed:
                body.add_widget(Text(app.tr("ticket.take_ticket"), size=46, color=GREEN, bold=True))
            else:
                body.add_widget(BigButton(app.tr("delivery.print"), lambda: app.act("print"), height=150))
            body.add_widget(BigButton(app.tr("common.done"), app.finish, color=GREEN, height=150))
        else:  # refused, unavailable
            self.error(app, body, flow.error_key)
            body.add_widget(help_line(app))
            body.add_widget(Widget())
            if state == "unavailable":
                body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry"), color=GREEN))


class PaymentScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, FeePaymentFlow)
        fee = flow.fee
        body.add_widget(Text(app.tr("payment.title"), size=52, bold=True))
        facts = [
            f"{esc(app.tr('payment.fee'))}: [b]{esc(fee.label or flow.status.procedure_name)}[/b]",
            f"{esc(app.tr('payment.amount'))}: [b]{format_vnd(fee.amount_vnd, app.language)}[/b]",
        ]
        if flow.state == "paid":
            body.add_widget(Panel("\n".join(facts), PANEL, size=44, markup=True, halign="left",
                                  padding=(24 * u(), 20 * u())))
            body.add_widget(Text(app.tr("payment.paid"), size=52, color=GREEN, bold=True))
            body.add_widget(Widget())
            return
        if flow.state == "unavailable" or flow.payload is None or flow.payee is None:
            body.add_widget(Panel("\n".join(facts), PANEL, size=44, markup=True, halign="left",
                                  padding=(24 * u(), 20 * u())))
            self.error(app, body, flow.error_key)
            body.add_widget(help_line(app))
            body.add_widget(Widget())
            return
        if flow.state == "printing":
            waiting(app, body)
            return
        payee = flow.payee
        facts += [
            f"{esc(app.tr('payment.payee'))}: [b]{esc(payee.name or payee.bank_bin)}[/b]",
            f"{esc(app.tr('payment.account'))}: [b]{esc(payee.account)}[/b]",
            f"{esc(app.tr('payment.reference'))}: [b]{esc(fee.reference)}[/b]",
        ]
        body.add_widget(Text(app.tr("payment.scan_hint"), size=44, color=BLUE, bold=True))
        texture = CoreImage(io.BytesIO(render_png(flow.payload)), ext="png").texture
        texture.mag_filter = "nearest"  # sharp modules: a banking app's camera reads it at arm's length
        body.add_widget(Image(texture=texture, size_hint_y=None, height=420 * u(), fit_mode="contain"))
        body.add_widget(Panel("\n".join(facts), PANEL, size=40, markup=True, halign="left",
                              padding=(24 * u(), 12 * u())))
        body.add_widget(Text(app.tr("payment.pending_note"), size=40, color=GREY))
        self.error(app, body, flow.error_key)
        body.add_widget(Widget())
        if flow.printed:
            body.add_widget(Text(app.tr("ticket.take_ticket"), size=46, color=GREEN, bold=True))
        else:
            body.add_widget(BigButton(app.tr("payment.print"), lambda: app.act("print"), height=150))
        if not flow.shown_recorded:
            app.after_draw(lambda: app.act("shown"))  # recorded once the code is on the screen


class AppointmentScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, AppointmentFlow)
        if flow.state == "done" and flow.ticket is not None:
            if flow.appointment is not None:
                booked = app.tr("appointment.booked_at", time=f"{flow.appointment.at:%H:%M}")
                body.add_widget(Text(booked, size=48, color=BLUE, bold=True))
            TicketScreen.ticket_done(app, body, flow.ticket)
            return
        body.add_widget(Text(app.tr("appointment.title"), size=52, bold=True))
        if flow.state == "scan":
            body.add_widget(Text(app.tr("appointment.scan_prompt"), size=48, color=BLUE, bold=True))
            if flow.card_offered:
                body.add_widget(Text(app.tr("appointment.scan_card"), size=44))
            self.error(app, body, flow.error_key)
            body.add_widget(Widget())
        elif flow.state in ("matching", "printing"):
            waiting(app, body)
        else:  # too_early, too_late, not_found, unavailable, failed
            if flow.error_key == "appointment.too_early":
                body.add_widget(Text(app.tr("appointment.too_early", time=flow.opens_at), size=44, color=RED,
                                     bold=True))
            else:
                self.error(app, body, flow.error_key)
            body.add_widget(help_line(app))
            body.add_widget(Widget())
            if flow.state in ("unavailable", "failed"):
                body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry"), color=GREEN))
            if flow.state != "failed":
                body.add_widget(BigButton(app.tr("appointment.take_ticket"), partial(app.start, "ticket"),
                                          height=150))


class FeedbackScreen(TypingScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, FeedbackFlow)
        body.add_widget(Text(app.tr("feedback.title"), size=52, bold=True))
        hotline = Text(app.tr("ticket.hotline", hotline=flow.hotline), size=44, color=BLUE, bold=True)
        if flow.state == "topic":
            body.add_widget(hotline)
            body.add_widget(Text(app.tr("feedback.choose_topic"), size=46))
            for code in flow.topics:
                label = app.tr(f"feedback.topic_{code}")
                body.add_widget(BigButton(label, partial(app.act, "topic", code=code), size=46, height=140))
            body.add_widget(Widget())
        elif flow.state == "text":
            topic = app.tr(f"feedback.topic_{flow.topic}")
            if flow.error_key:
                self.error(app, body, flow.error_key)
            else:
                body.add_widget(Text(f"{app.tr('feedback.text_prompt')} ({topic})", size=44, halign="left"))
            body.add_widget(field(flow.text))
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("keyboard.mark_hint"), size=40, color=GREY))
            body.add_widget(
                keyboard(app, flow.text, lambda text: app.act("set_text", text=text),
                         digits=self.digits_page, on_page=partial(self.page, app), limit=MAX_FEEDBACK)
            )
            body.add_widget(BigButton(app.tr("common.continue"), lambda: app.act("next"), color=GREEN,
                                      height=130))
        elif flow.state == "phone":
            body.add_widget(Text(app.tr("feedback.phone_prompt"), size=44, halign="left"))
            body.add_widget(field(flow.phone))
            self.error(app, body, flow.error_key)
            body.add_widget(Widget())
            body.add_widget(digit_pad(flow.phone, lambda text: app.act("set_phone", text=text), app))
            body.add_widget(BigButton(app.tr("feedback.send"), lambda: app.act("send"), color=GREEN,
                                      height=140))
        elif flow.state == "sending":
            waiting(app, body)
        elif flow.state == "thanks":
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("feedback.thanks"), size=64, color=GREEN, bold=True))
            body.add_widget(hotline)
            body.add_widget(Widget())
            body.add_widget(BigButton(app.tr("common.done"), app.finish, color=GREEN))
        else:  # refused, unavailable
            self.error(app, body, flow.error_key)
            body.add_widget(hotline)
            body.add_widget(help_line(app))
            body.add_widget(Widget())
            if flow.state == "unavailable":
                body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry"), color=GREEN))


VISIT_SCREENS: dict[str, type[FlowScreen]] = {
    "delivery": DeliveryScreen,
    "payment": PaymentScreen,
    "appointment": AppointmentScreen,
    "feedback": FeedbackScreen,
}

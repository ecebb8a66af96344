"""One screen per flow: ``render()`` draws the flow's current state and wires taps to ``app.act``.

Screens hold no state of their own: everything comes from the core and its flows, so a screen can
be redrawn at any time (language toggle, device result) and shows the same thing.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.screenmanager import Screen
from kivy.uix.widget import Widget

from kiosk.dossier import DossierStatus
from kiosk.flows.identify import IdentifyFlow
from kiosk.flows.lookup import LookupFlow
from kiosk.flows.rating import RatingFlow
from kiosk.flows.technician import TechnicianFlow, numbering_lines
from kiosk.flows.ticket import IssuedTicket, TicketFlow, is_open, waiting_text
from kiosk.payments import format_vnd
from screens.widgets import (
    AMBER,
    BLUE,
    DARK,
    GREEN,
    GREY,
    PANEL,
    RED,
    WARM_PANEL,
    BigButton,
    CardFrontPicture,
    CardReaderPicture,
    EvenGrid,
    Face,
    IconButton,
    Panel,
    Text,
    esc,
    text_scale,
    u,
)

if TYPE_CHECKING:
    from screens.app import KioskApp


class FlowScreen(Screen):
    def render(self, app: KioskApp) -> None:
        body: BoxLayout = self.ids.body
        body.clear_widgets()
        self.build(app, body)

    def build(self, app: KioskApp, body: BoxLayout) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        self.ids.body.clear_widgets()

    @staticmethod
    def error(app: KioskApp, body: BoxLayout, key: str | None) -> None:
        if key:
            body.add_widget(Text(app.tr(key), size=44, color=RED, bold=True))


def service_grid(app: KioskApp, *, priority: bool) -> GridLayout:
    """Every service area on one screen, two columns: one tap takes the number."""
    flow = app.core.flow
    now = app.core.now()
    services = app.core.config.services
    grid = EvenGrid(cols=2 if len(services) > 3 else 1)
    for service in services:
        name = service.name_vi if app.language == "vi" else service.name_en
        counters = app.tr("ticket.counters", counters=", ".join(service.counters))
        if is_open(service, now):
            if isinstance(flow, TicketFlow):
                tap = partial(app.act, "choose", code=service.code)
            else:
                tap = partial(app.quick_ticket, service.code, priority)
            grid.add_widget(
                BigButton(
                    f"[b]{esc(name)}[/b]\n[size={int(40 * u() * text_scale())}]{esc(counters)}[/size]",
                    tap,
                    color=AMBER if priority else BLUE,
                    size=44,
                    height=140,
                    markup=True,
                )
            )
        else:
            # Not a disabled button (grey on grey reads as broken): a panel that says why.
            grid.add_widget(
                Panel(f"{name}: {app.tr('home.service_unavailable')}", PANEL, size=40, color=GREY)
            )
    return grid


def help_line(app: KioskApp) -> Text:
    return Text(app.tr("common.help", hotline=app.core.config.visit.hotline), size=40, color=GREY)


class HomeScreen(FlowScreen):
    """The idle screen is the home: every service one tap from a ticket, look-up and rating below."""

    def build(self, app: KioskApp, body: BoxLayout) -> None:
        # Closer rows than the other screens (14 design px, not 20): the appointment, feedback and the
        # hotline fit under every service without scrolling.
        body.spacing = 14 * u()
        body.add_widget(Text(app.tr("home.greeting"), size=48, bold=True, color=BLUE))
        if app.device_states().get("printer", "ok") in PRINTER_PROBLEM_KEYS:
            # Tickets still work: the number shows on the screen. Say so before the citizen chooses.
            body.add_widget(Panel(app.tr("home.printer_notice"), WARM_PANEL, size=42, color=RED, bold=True))
        body.add_widget(Text(app.tr("home.choose_service"), size=42, halign="left"))
        body.add_widget(service_grid(app, priority=False))
        body.add_widget(
            IconButton(
                f"[b]{app.tr('home.priority')}[/b]\n[size={int(40 * u() * text_scale())}]"
                f"{app.tr('home.priority_who')}[/size]",
                app.priority_ticket,
                "priority",
                color=AMBER,
                size=48,
                height=200,
                markup=True,
            )
        )
        # Two other ways to a number side by side: the ID card, and the booking made online.
        other_ways = EvenGrid(cols=2)
        if (
            app.core.config.devices.card_reader.enabled
            and app.device_states().get("card_reader") != "missing"
        ):
            other_ways.add_widget(
                BigButton(app.tr("home.use_id_card"), app.id_card_ticket, color=GREY, size=44, height=130)
            )
        other_ways.add_widget(
            BigButton(app.tr("home.appointment"), partial(app.start, "appointment"), color=GREY, size=44,
                      height=130)
        )
        if len(other_ways.children) == 1:
            other_ways.cols = 1
        body.add_widget(other_ways)
        # Feedback with the province's hotline on it: the number is where a complaint starts.
        hotline = app.tr("ticket.hotline", hotline=app.core.config.visit.hotline)
        body.add_widget(
            BigButton(
                f"[b]{esc(app.tr('home.feedback'))}[/b] · {esc(hotline)}",
                partial(app.start, "feedback"),
                color=GREEN,
                size=44,
                height=120,
                markup=True,
            )
        )
        row = EvenGrid(cols=2)
        row.add_widget(
            IconButton(
                app.tr("home.lookup"),
                partial(app.start, "lookup"),
                "search",
                above=True,
                color=GREEN,
                size=44,
                height=200,
            )
        )
        row.add_widget(
            IconButton(
                app.tr("home.rating"),
                partial(app.start, "rating"),
                "face",
                above=True,
                color=GREEN,
                size=44,
                height=200,
            )
        )
        body.add_widget(row)


#: printer state -> what the citizen is told (the technician screen names the state itself)
PRINTER_PROBLEM_KEYS = {
    "paper_out": "printer.paper_out",
    "cover_open": "printer.cover_open",
    "offline": "printer.offline",
    "missing": "printer.error",
}


class OutOfServiceScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        body.add_widget(Text(app.tr("out_of_service.title"), size=72, color=RED, bold=True))
        body.add_widget(Text(app.tr("out_of_service.body"), size=48))
        body.add_widget(help_line(app))
        body.add_widget(Widget())


class TicketScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, TicketFlow)
        if flow.state == "choose_service":
            if flow.priority:
                body.add_widget(Text(app.tr("ticket.priority_title"), size=56, bold=True, color=AMBER))
                body.add_widget(Text(app.tr("ticket.priority"), size=40))
            identity = app.core.session.identity if app.core.session else None
            if identity is not None:
                title_key = identity.honorific_key
                title = app.tr(title_key) if title_key else ""
                hello = app.tr("identify.hello_name", title=title, name=identity.full_name)
                body.add_widget(Text(" ".join(hello.split()), size=48, color=GREEN, bold=True))
            body.add_widget(Text(app.tr("ticket.choose_service"), size=48, bold=True))
            body.add_widget(service_grid(app, priority=flow.priority))
            if (
                identity is None
                and app.core.config.devices.card_reader.enabled
                and app.device_states().get("card_reader") != "missing"
            ):
                body.add_widget(
                    IconButton(
                        app.tr("ticket.use_id_card"),
                        lambda: app.start("identify"),
                        "card",
                        color=GREY,
                        size=44,
                        height=130,
                    )
                )
            body.add_widget(Widget())
        elif flow.state == "printing":
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("ticket.printing"), size=64, bold=True))
            body.add_widget(Widget())
        elif flow.state == "done" and flow.ticket is not None:
            self.ticket_done(app, body, flow.ticket)
        elif flow.state == "failed":
            self.error(app, body, flow.error_key)
            body.add_widget(Text(app.tr("ticket.print_failed"), size=44))
            body.add_widget(help_line(app))
            body.add_widget(Widget())
            body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry"), color=GREEN))

    @staticmethod
    def ticket_done(app: KioskApp, body: BoxLayout, ticket: IssuedTicket) -> None:
        """Where to go and how long, the counter in bold; "Hoàn tất" (not "Quay lại": no second ticket)."""
        body.add_widget(Text(app.tr("ticket.your_number"), size=48))
        body.add_widget(Text(ticket.number, size=200, color=BLUE, bold=True))
        if ticket.priority:
            body.add_widget(Text(app.tr("ticket.priority_mark"), size=56, color=AMBER, bold=True))
        body.add_widget(Text(ticket.service_name(app.language), size=52, bold=True))
        call = esc(app.tr("ticket.counter_call", counters=", ".join(ticket.counters)))
        body.add_widget(
            Panel(
                f"{esc(app.tr('ticket.lead', number=ticket.number))}\n"
                f"[b][size={int(64 * u() * text_scale())}]{call}[/size][/b]",
                PANEL,
                size=44,
                markup=True,
                padding=(20 * u(), 24 * u()),
            )
        )
        wait = waiting_text(app.tr, ticket.waiting_ahead, ticket.expected_wait_min)
        if wait:
            body.add_widget(Text(wait, size=44, bold=True))
        issued = ticket.issued_at
        body.add_widget(
            Text(
                f"{app.tr('ticket.issued_at', date=f'{issued:%d/%m/%Y}', time=f'{issued:%H:%M}')} · "
                f"{app.tr('ticket.hotline', hotline=app.core.config.visit.hotline)}",
                size=40,
                color=GREY,
            )
        )
        if ticket.printed:
            body.add_widget(Text(app.tr("ticket.take_ticket"), size=46, color=GREEN, bold=True))
        else:
            body.add_widget(Text(app.tr("ticket.not_printed"), size=46, color=RED, bold=True))
        body.add_widget(Widget())
        body.add_widget(BigButton(app.tr("common.done"), app.finish, color=GREEN, size=56))


class IdentifyScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, IdentifyFlow)
        if flow.state == "done":
            # Full screen, with a chime (kiosk/voice.py): the card must not be forgotten on the reader.
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("identify.take_card"), size=88, color=GREEN, bold=True))
            body.add_widget(CardReaderPicture())
            body.add_widget(Widget())
            return
        body.add_widget(Text(app.tr("identify.title"), size=52, bold=True))
        if flow.state == "scan_qr":
            body.add_widget(Text(app.tr("identify.privacy"), size=40, color=GREY))
            body.add_widget(Text(app.tr("identify.scan_qr_first"), size=44))
            body.add_widget(CardReaderPicture(height=200))
            self.error(app, body, flow.error_key)
            body.add_widget(Text(app.tr("identify.can_hint"), size=40))
            body.add_widget(CardFrontPicture(height=130))
            # The digits themselves, spaced: the citizen checks them against the card (six digits
            # printed on a card in the citizen's own hand are not a secret worth hiding).
            typed = " ".join(flow.can_typed.ljust(6, "_"))
            body.add_widget(Panel(typed, PANEL, size=64, bold=True, color=DARK))
            pad = GridLayout(cols=5, size_hint_y=None, spacing=12 * u())
            pad.bind(minimum_height=pad.setter("height"))
            for key in "1234567890":
                pad.add_widget(BigButton(key, partial(app.act, "digit", digit=key), size=56, height=125))
            body.add_widget(pad)
            actions = EvenGrid(cols=3, spacing=12)
            actions.add_widget(
                BigButton(
                    app.tr("common.delete_one"), lambda: app.act("backspace"), color=GREY, size=44, height=125
                )
            )
            actions.add_widget(
                BigButton(app.tr("identify.skip"), app.core.close_flow, color=GREY, size=44, height=125)
            )
            actions.add_widget(
                BigButton(
                    app.tr("identify.can_submit"), lambda: app.act("can"), color=GREEN, size=44, height=125
                )
            )
            body.add_widget(actions)
        elif flow.state == "reading":
            body.add_widget(Text(app.tr("identify.place_card"), size=56, color=BLUE, bold=True))
            body.add_widget(CardReaderPicture())
            body.add_widget(Text(app.tr("identify.keep_still"), size=48))
            body.add_widget(Widget())
        elif flow.state == "failed":
            self.error(app, body, flow.error_key)
            body.add_widget(CardReaderPicture(height=260))
            body.add_widget(help_line(app))
            body.add_widget(Widget())
            body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry"), color=GREEN))
            body.add_widget(BigButton(app.tr("identify.skip"), app.core.close_flow, color=GREY, height=150))


#: the letters, behind the numeric pad ("ABC"), for codes of another agency: in the alphabet's order
#: (a citizen who never typed on QWERTY finds a letter there) and seven a row, as wide as the 120 px
#: rule wants (ten a row, as before, were 93 px); the digits are the pad's ("123" goes back)
KEYBOARD_ROWS = ("ABCDEFG", "HIJKLMN", "OPQRSTU", "VWXYZ.-")


class LookupScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, LookupFlow)
        body.add_widget(Text(app.tr("lookup.title"), size=52, bold=True))
        if flow.state == "scan":
            self.scan(app, body, flow)
        elif flow.state in ("searching", "printing"):
            body.add_widget(Widget())
            body.add_widget(
                Text(
                    app.tr("lookup.searching" if flow.state == "searching" else "common.please_wait"), size=56
                )
            )
            body.add_widget(Widget())
        elif flow.state == "found" and flow.status is not None:
            self.found(app, body, flow)
        elif flow.state in ("not_found", "unavailable"):
            self.error(app, body, flow.error_key)
            if flow.code is not None:
                body.add_widget(Text(f"{app.tr('lookup.code')}: {flow.code.text}", size=44, bold=True))
            body.add_widget(help_line(app))
            body.add_widget(Widget())
            if flow.state == "unavailable":
                body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry"), color=GREEN))
            body.add_widget(BigButton(app.tr("lookup.type_again"), lambda: app.act("again"), color=BLUE))

    @staticmethod
    def scan(app: KioskApp, body: BoxLayout, flow: LookupFlow) -> None:
        if app.device_states().get("scanner", "ok") == "ok":
            body.add_widget(Text(app.tr("lookup.scan_hint"), size=44, color=BLUE, bold=True))
            body.add_widget(Text(app.tr("lookup.type_hint"), size=40))
        else:
            body.add_widget(Text(app.tr("scanner.error"), size=44, color=RED, bold=True))
        FlowScreen.error(app, body, flow.error_key)
        # A framed field: what is typed, never the example in its place.
        body.add_widget(Panel(flow.typed or " ", PANEL, size=48, bold=True, color=DARK))
        body.add_widget(Text(app.tr("lookup.format_hint"), size=40, color=GREY))
        body.add_widget(Widget())  # the keys in the lower part, where hands are; the text stays on top
        if flow.letters:
            for row in KEYBOARD_ROWS:
                line = GridLayout(cols=len(row), size_hint_y=None, height=125 * u(), spacing=6 * u())
                for char in row:
                    line.add_widget(BigButton(char, partial(app.act, "type", char=char), size=44, height=125))
                body.add_widget(line)
        else:
            pad = GridLayout(cols=5, size_hint_y=None, spacing=12 * u())
            pad.bind(minimum_height=pad.setter("height"))
            for key in "1234567890":
                pad.add_widget(BigButton(key, partial(app.act, "digit", digit=key), size=56, height=125))
            body.add_widget(pad)
        actions = GridLayout(cols=3, size_hint_y=None, spacing=12 * u())
        actions.bind(minimum_height=actions.setter("height"))
        actions.add_widget(
            BigButton(
                app.tr("common.delete_one"), lambda: app.act("backspace"), color=GREY, size=44, height=125
            )
        )
        actions.add_widget(
            BigButton(
                "123" if flow.letters else "ABC",
                lambda: app.act("letters", on=not flow.letters),
                color=GREY,
                size=44,
                height=125,
            )
        )
        actions.add_widget(
            BigButton(app.tr("lookup.search"), lambda: app.act("submit"), color=GREEN, size=48, height=125)
        )
        body.add_widget(actions)

    @staticmethod
    def found(app: KioskApp, body: BoxLayout, flow: LookupFlow) -> None:
        """One card: status, due date, one instruction; an overdue dossier with an apology and whom to see."""
        status = flow.status
        assert status is not None
        today = app.core.now().date()
        overdue = status.overdue_days(today)
        body.add_widget(Text(status.status.label(app.language), size=60, color=BLUE, bold=True))
        facts = [
            f"{esc(app.tr('lookup.code'))}: [b]{esc(status.code.text)}[/b]",
            f"{esc(app.tr('lookup.procedure'))}: [b]{esc(status.procedure_name)}[/b]",
            f"{app.tr('lookup.due_on')}: [b]{status.due_on:%d/%m/%Y}[/b]",
        ]
        if status.collect_at:
            facts.append(f"{esc(app.tr('lookup.collect_at'))}: [b]{esc(status.collect_at)}[/b]")
        body.add_widget(
            Panel("\n".join(facts), PANEL, size=42, markup=True, halign="left", padding=(24 * u(), 20 * u()))
        )
        if overdue > 0:
            place = status.collect_at or app.tr("lookup.help_desk")
            body.add_widget(
                Panel(
                    app.tr("lookup.overdue", days=overdue, place=place),
                    WARM_PANEL,
                    size=46,
                    color=RED,
                    bold=True,
                )
            )
        else:
            body.add_widget(Text(app.tr(NEXT_STEP[status.status.value]), size=46, bold=True, color=GREEN))
        FlowScreen.error(app, body, flow.error_key)
        body.add_widget(Widget())
        LookupScreen.visit_offers(app, body, status)
        if flow.printed:
            body.add_widget(Text(app.tr("lookup.printed"), size=44, color=GREEN, bold=True))
        else:
            body.add_widget(BigButton(app.tr("lookup.print_status"), lambda: app.act("print"), height=150))


    @staticmethod
    def visit_offers(app: KioskApp, body: BoxLayout, status: DossierStatus) -> None:
        """What the back end offers for this dossier: its fee by QR, its result by post."""
        fee = status.fee_due
        if fee is not None:
            amount = format_vnd(fee.amount_vnd, app.language)
            if fee.paid:
                line = f"{fee.label or app.tr('payment.fee')}: {amount} · {app.tr('payment.paid_short')}"
                body.add_widget(Text(line, size=44, color=GREEN, bold=True))
            else:
                body.add_widget(
                    BigButton(
                        f"[b]{app.tr('payment.offer')}[/b]\n{amount}",
                        partial(app.start, "payment", status=status),
                        color=AMBER,
                        size=46,
                        height=150,
                        markup=True,
                    )
                )
        if status.can_send_by_post and app.core.config.visit.post_delivery:
            body.add_widget(
                BigButton(app.tr("delivery.offer"), partial(app.start, "delivery", status=status), height=150)
            )


#: the one instruction of a dossier's state (an overdue one gets the apology instead)
NEXT_STEP = {
    "received": "lookup.next_waiting",
    "in_progress": "lookup.next_waiting",
    "awaiting_documents": "lookup.next_more",
    "result_ready": "lookup.next_ready",
    "returned": "lookup.next_returned",
    "rejected": "lookup.next_rejected",
}

#: catalog keys of the faces, worst first, by scale size
FACE_KEYS = {
    3: ("rating.dissatisfied", "rating.neutral", "rating.satisfied"),
    4: ("rating.very_dissatisfied", "rating.dissatisfied", "rating.satisfied", "rating.very_satisfied"),
    5: (
        "rating.very_dissatisfied",
        "rating.dissatisfied",
        "rating.neutral",
        "rating.satisfied",
        "rating.very_satisfied",
    ),
}
#: worst to best; each carries white text at 7:1 or more
FACE_COLOURS = (RED, (0.5, 0.18, 0.0, 1), AMBER, (0.2, 0.36, 0.05, 1), GREEN)


class RatingScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, RatingFlow)
        if flow.state in ("thanks", "not_counted"):
            body.add_widget(Widget())
            if flow.state == "thanks":
                body.add_widget(Text(app.tr("rating.thanks"), size=88, color=GREEN, bold=True))
            else:  # neutral: the citizen did nothing wrong
                body.add_widget(Text(app.tr("rating.not_counted"), size=56, color=BLUE, bold=True))
            body.add_widget(Widget())
            return
        if flow.state != "details":  # the details screen needs the room: its own heading says it all
            body.add_widget(Text(app.tr("rating.title"), size=52, bold=True))
        linked = self.linked(app, flow)
        if linked:
            body.add_widget(Text(linked, size=44, color=BLUE, bold=True))
        if flow.state == "choose_level":
            body.add_widget(Text(app.tr("rating.question"), size=48))
            self.error(app, body, flow.error_key)
            keys = FACE_KEYS[flow.scale]
            for index in reversed(range(len(keys))):  # best first, as citizens read top-down
                level = index + 1
                mood = -1 + 2 * index / (len(keys) - 1)
                colour = FACE_COLOURS[round(index * 4 / (len(keys) - 1))]
                row = BoxLayout(size_hint_y=None, height=190 * u(), spacing=24 * u())
                row.add_widget(
                    Face(
                        mood,
                        colour,
                        partial(app.act, "level", level=level),
                        size_hint_x=None,
                        width=190 * u(),
                    )
                )
                row.add_widget(
                    BigButton(
                        app.tr(keys[index]),
                        partial(app.act, "level", level=level),
                        color=colour,
                        size=52,
                        height=190,
                    )
                )
                body.add_widget(row)
            body.add_widget(Widget())
            if flow.target_kind not in ("ticket", "dossier"):
                body.add_widget(Text(app.tr("rating.link_hint"), size=40, color=GREY))
        elif flow.state == "details":
            self.details(app, body, flow)
        elif flow.state == "sending":
            body.add_widget(Text(app.tr("common.please_wait"), size=52))
        else:
            self.error(app, body, flow.error_key)
            body.add_widget(help_line(app))

    @staticmethod
    def linked(app: KioskApp, flow: RatingFlow) -> str:
        if flow.target_kind == "ticket":
            if "/q/" in flow.target_id:
                return app.tr("rating.linked_ticket_phone")
            return app.tr("rating.linked_ticket", number=flow.target_id.rsplit("/", 1)[-1])
        if flow.target_kind == "dossier":
            return app.tr("rating.linked_dossier", code=flow.target_id)
        if flow.target_kind == "counter":
            return app.tr("rating.linked_counter", counter=flow.target_id)
        if flow.target_kind == "official":
            official = next((o for o in app.core.config.rating.officials if o.id == flow.target_id), None)
            if official is not None:
                return app.tr("rating.linked_official", name=official.name, counter=official.counter)
        return ""

    @staticmethod
    def details(app: KioskApp, body: BoxLayout, flow: RatingFlow) -> None:
        """After the tap: optional, sent by itself when left alone (the tap already counts)."""
        body.add_widget(Text(app.tr("rating.details_title"), size=44, color=GREEN, bold=True))
        if flow.asks_reasons:
            body.add_widget(Text(app.tr("rating.reasons_title"), size=44))
            grid = EvenGrid(cols=2, spacing=12)
            for reason in app.core.config.rating.reasons:
                chosen = reason.code in flow.reasons
                label = reason.label_vi if app.language == "vi" else reason.label_en
                mark = f" ({app.tr('common.selected')})" if chosen else ""
                grid.add_widget(
                    BigButton(
                        label + mark,
                        partial(app.act, "toggle_reason", code=reason.code),
                        color=AMBER if chosen else BLUE,
                        size=40,
                        height=120,
                    )
                )
            body.add_widget(grid)
        if flow.asks_who:
            officials = app.core.config.rating.officials
            if officials:
                body.add_widget(Text(app.tr("rating.official_hint"), size=44))
                grid = EvenGrid(cols=2, spacing=12)
                for official in officials:
                    chosen = flow.target_kind == "official" and flow.target_id == official.id
                    counter = f"{app.tr('ticket.counter_label')} {official.counter}"
                    small = int(40 * u() * text_scale())
                    label = f"{esc(official.name)}\n[size={small}]{esc(counter)}[/size]"
                    button = BigButton(
                        label,
                        partial(app.act, "official", official_id=official.id),
                        color=AMBER if chosen else BLUE,
                        size=40,
                        height=130,
                        markup=True,
                    )
                    photo = app.core.config.official_photo(official)
                    if app.core.config.rating.show_official_photos and photo is not None:
                        cell = BoxLayout(orientation="vertical", size_hint_y=None, height=350 * u())
                        cell.add_widget(Image(source=str(photo), size_hint_y=None, height=200 * u()))
                        cell.add_widget(button)
                        grid.add_widget(cell)
                    else:
                        grid.add_widget(button)
                body.add_widget(grid)
            else:
                body.add_widget(Text(app.tr("rating.counter_hint"), size=44))
                grid = GridLayout(cols=4, size_hint_y=None, spacing=12 * u())
                grid.bind(minimum_height=grid.setter("height"))
                for counter in flow.counters():
                    chosen = flow.target_kind == "counter" and flow.target_id == counter
                    grid.add_widget(
                        BigButton(
                            counter,
                            partial(app.act, "counter", counter=counter),
                            color=AMBER if chosen else BLUE,
                            size=48,
                            height=130,
                        )
                    )
                body.add_widget(grid)
        body.add_widget(Widget())
        body.add_widget(BigButton(app.tr("rating.send"), lambda: app.act("send"), color=GREEN, height=140))


class TechnicianScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, TechnicianFlow)
        body.add_widget(Text(app.tr("technician.title"), size=56, bold=True))
        if flow.state == "pin":
            body.add_widget(Text(app.tr("technician.enter_pin"), size=44))
            body.add_widget(Text("•" * len(flow.pin) or " ", size=64))
            if flow.error_key == "technician.locked":
                body.add_widget(
                    Text(
                        app.tr("technician.locked", seconds=int(flow.guard.locked_for()) + 1),
                        size=44,
                        color=RED,
                        bold=True,
                    )
                )
            else:
                self.error(app, body, flow.error_key)
            pad = GridLayout(cols=3, size_hint_y=None, height=4 * 150 * u(), spacing=12 * u())
            for key in "123456789":
                pad.add_widget(BigButton(key, partial(app.act, "digit", digit=key), size=60, height=140))
            pad.add_widget(
                BigButton(
                    app.tr("common.delete_one"), lambda: app.act("backspace"), color=GREY, size=40, height=140
                )
            )
            pad.add_widget(BigButton("0", lambda: app.act("digit", digit="0"), size=60, height=140))
            pad.add_widget(
                BigButton(
                    app.tr("common.confirm"), lambda: app.act("enter"), color=GREEN, size=44, height=140
                )
            )
            body.add_widget(pad)
            return
        if flow.state in ("testing", "printing"):
            body.add_widget(Text(app.tr("technician.running"), size=52))
            return
        body.add_widget(Text(app.tr("technician.devices"), size=46, bold=True, halign="left"))
        states = app.device_states()
        test = flow.self_test or {}
        devices = ["printer", "card_reader", "scanner"]
        if app.core.config.devices.receipt_printer is not None:
            devices.insert(1, "receipt_printer")
        for device in devices:
            state = states.get(device, "unknown")
            if device == "card_reader" and not app.core.config.devices.card_reader.enabled:
                state = "disabled"
            key = (
                f"technician.state_{state}"
                if app.has_text(f"technician.state_{state}")
                else "technician.state_error"
            )
            colour = GREEN if state in ("ok", "disabled") else RED
            line = f"{app.tr('technician.' + device)}: {app.tr(key)}"
            if device in test:
                verdict = "technician.test_passed" if test[device].get("ok") else "technician.test_failed"
                line += f" — {app.tr('technician.self_test')}: {app.tr(verdict)}"
            body.add_widget(Text(line, size=40, color=colour, halign="left"))
        self.error(app, body, flow.error_key)
        # Where the numbers come from: the first question when citizens say they are wrong or missing.
        body.add_widget(Text(app.tr("technician.numbering"), size=44, bold=True, halign="left"))
        for said in numbering_lines(app.numbering(), app.core.now()):
            text = app.tr(said.key, **said.values)
            body.add_widget(Text(text, size=40, color=RED if said.alert else DARK, halign="left"))
        body.add_widget(Text(app.tr("technician.totals"), size=44, bold=True, halign="left"))
        totals = app.totals()
        body.add_widget(
            Text(app.tr("technician.tickets_today", count=totals["tickets"]), size=40, halign="left")
        )
        body.add_widget(
            Text(app.tr("technician.ratings_today", count=totals["ratings"]), size=40, halign="left")
        )
        body.add_widget(
            Text(app.tr("technician.lookups_today", count=totals["lookups"]), size=40, halign="left")
        )
        body.add_widget(BigButton(app.tr("technician.self_test"), lambda: app.act("self_test"), height=150))
        body.add_widget(BigButton(app.tr("technician.test_print"), lambda: app.act("test_print"), height=150))
        out = app.core.out_of_service_reason is not None
        body.add_widget(
            BigButton(
                app.tr("technician.back_in_service" if out else "technician.out_of_service"),
                lambda: app.act("service_mode", out_of_service=not out),
                color=GREEN if out else RED,
                height=150,
            )
        )
        body.add_widget(BigButton(app.tr("technician.exit"), app.home, color=GREY, height=150))


SCREENS: dict[str, type[FlowScreen]] = {
    "home": HomeScreen,
    "out_of_service": OutOfServiceScreen,
    "ticket": TicketScreen,
    "identify": IdentifyScreen,
    "lookup": LookupScreen,
    "rating": RatingScreen,
    "technician": TechnicianScreen,
}

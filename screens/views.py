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

from kiosk.flows.identify import IdentifyFlow
from kiosk.flows.lookup import LookupFlow
from kiosk.flows.rating import RatingFlow
from kiosk.flows.technician import TechnicianFlow
from kiosk.flows.ticket import TicketFlow
from screens.widgets import AMBER, BLUE, DARK, GREEN, GREY, RED, BigButton, Face, Panel, Text, u

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


class AttractScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        body.add_widget(Widget())
        body.add_widget(Text(app.center_name, size=64, color=BLUE, bold=True))
        body.add_widget(Text(app.tr("home.greeting"), size=52))
        body.add_widget(Widget())
        body.add_widget(Text(app.tr("attract.touch_to_start"), size=60, color=GREEN, bold=True))
        body.add_widget(Widget())


#: printer state -> what the citizen is told instead of offering a ticket
PRINTER_PROBLEM_KEYS = {
    "paper_out": "printer.paper_out",
    "cover_open": "printer.cover_open",
    "offline": "printer.offline",
    "missing": "printer.error",
}


class HomeScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        body.add_widget(Text(app.tr("home.greeting"), size=60, bold=True))
        body.add_widget(Widget(size_hint_y=None, height=40 * u()))
        problem = PRINTER_PROBLEM_KEYS.get(app.device_states().get("printer", "ok"))
        if problem is None:
            body.add_widget(
                BigButton(app.tr("home.ticket"), partial(app.start, "ticket"), size=64, height=300)
            )
        else:
            # Say so before the citizen chooses, and keep the other services open.
            body.add_widget(
                Panel(
                    f"[b]{app.tr('home.ticket')}[/b]\n{app.tr(problem)}",
                    (1, 0.9, 0.88, 1),
                    size=44,
                    color=RED,
                    markup=True,
                    padding=(20 * u(), 40 * u()),
                )
            )
        for flow, key in (("lookup", "home.lookup"), ("rating", "home.rating")):
            body.add_widget(BigButton(app.tr(key), partial(app.start, flow), size=64, height=300))
        body.add_widget(Widget())


class OutOfServiceScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        body.add_widget(Widget())
        body.add_widget(Text(app.tr("out_of_service.title"), size=72, color=RED, bold=True))
        body.add_widget(Text(app.tr("out_of_service.body"), size=48))
        body.add_widget(Widget())


class TicketScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, TicketFlow)
        if flow.state == "choose_service":
            body.add_widget(Text(app.tr("ticket.choose_service"), size=60, bold=True))
            identity = app.core.session.identity if app.core.session else None
            if identity is not None:
                body.add_widget(
                    Text(app.tr("identify.hello_name", name=identity.full_name), size=44, color=GREEN)
                )
            elif (
                app.core.config.devices.card_reader.enabled
                and app.device_states().get("card_reader") != "missing"
            ):
                body.add_widget(
                    BigButton(
                        app.tr("ticket.use_id_card"),
                        lambda: app.start("identify"),
                        color=GREY,
                        size=40,
                        height=130,
                    )
                )
            mark = f" ({app.tr('common.selected')})" if flow.priority else ""
            body.add_widget(
                BigButton(
                    app.tr("ticket.priority") + mark,
                    lambda: app.act("toggle_priority"),
                    color=AMBER if flow.priority else GREY,
                    size=36,
                    height=170,
                )
            )
            open_codes = {s.code for s in flow.open_services()}
            for service in app.core.config.services:
                name = service.name_vi if app.language == "vi" else service.name_en
                if service.code in open_codes:
                    counters = app.tr("ticket.counters", counters=", ".join(service.counters))
                    body.add_widget(
                        BigButton(
                            f"{name}\n[size={int(34 * u())}]{counters}[/size]",
                            partial(app.act, "choose", code=service.code),
                            size=50,
                            height=190,
                            markup=True,
                        )
                    )
                else:
                    body.add_widget(
                        BigButton(
                            f"{name} — {app.tr('home.service_unavailable')}",
                            lambda: None,
                            color=GREY,
                            size=44,
                            height=150,
                            disabled=True,
                        )
                    )
        elif flow.state == "printing":
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("ticket.printing"), size=64, bold=True))
            body.add_widget(Widget())
        elif flow.state == "done" and flow.ticket is not None:
            ticket = flow.ticket
            body.add_widget(Text(app.tr("ticket.your_number"), size=52))
            body.add_widget(Text(ticket.number, size=220, color=BLUE, bold=True))
            if ticket.priority:
                body.add_widget(Text(app.tr("ticket.priority_short"), size=52, color=AMBER, bold=True))
            body.add_widget(Text(ticket.service_name(app.language), size=52, bold=True))
            if ticket.waiting_ahead is not None:
                body.add_widget(Text(app.tr("ticket.waiting", count=ticket.waiting_ahead), size=48))
            body.add_widget(
                Text(app.tr("ticket.go_to_counter", counters=", ".join(ticket.counters)), size=44)
            )
            body.add_widget(Text(app.tr("ticket.take_ticket"), size=44, color=GREEN, bold=True))
            body.add_widget(Widget())
        elif flow.state == "failed":
            body.add_widget(Widget())
            self.error(app, body, flow.error_key)
            body.add_widget(Text(app.tr("ticket.print_failed"), size=44))
            body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry")))
            body.add_widget(Widget())


class IdentifyScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, IdentifyFlow)
        body.add_widget(Text(app.tr("identify.title"), size=56, bold=True))
        if flow.state == "scan_qr":
            body.add_widget(Text(app.tr("identify.scan_qr_first"), size=48))
            body.add_widget(Text(app.tr("identify.privacy"), size=34, color=GREY))
            self.error(app, body, flow.error_key)
            body.add_widget(Text(app.tr("identify.can_hint"), size=36))
            body.add_widget(Text("•" * len(flow.can_typed) or " ", size=56))
            pad = GridLayout(cols=6, size_hint_y=None, height=2 * 120 * u(), spacing=10 * u())
            for key in "1234567890":
                pad.add_widget(BigButton(key, partial(app.act, "digit", digit=key), size=48, height=110))
            pad.add_widget(
                BigButton(
                    app.tr("common.delete_one"), lambda: app.act("backspace"), color=GREY, size=28, height=110
                )
            )
            pad.add_widget(
                BigButton(
                    app.tr("identify.can_submit"), lambda: app.act("can"), color=GREEN, size=32, height=110
                )
            )
            body.add_widget(pad)
            body.add_widget(BigButton(app.tr("identify.skip"), app.core.close_flow, color=GREY, height=150))
        elif flow.state == "reading":
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("identify.place_card"), size=56, color=BLUE, bold=True))
            body.add_widget(Text(app.tr("identify.keep_still"), size=48))
            body.add_widget(Widget())
        elif flow.state == "done":
            identity = app.core.session.identity if app.core.session else None
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("identify.done"), size=52, color=GREEN, bold=True))
            if identity is not None:
                body.add_widget(
                    Text(app.tr("identify.hello_name", name=identity.full_name), size=56, bold=True)
                )
                key = "identify.genuine" if identity.authenticity == "genuine" else "identify.not_verified"
                body.add_widget(
                    Text(app.tr(key), size=36, color=GREEN if key == "identify.genuine" else AMBER)
                )
            body.add_widget(BigButton(app.tr("common.continue"), app.core.close_flow))
            body.add_widget(Widget())
        elif flow.state == "failed":
            body.add_widget(Widget())
            self.error(app, body, flow.error_key)
            body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry")))
            body.add_widget(BigButton(app.tr("identify.skip"), app.core.close_flow, color=GREY, height=150))
            body.add_widget(Widget())


KEYBOARD_ROWS = ("1234567890", "QWERTYUIOP", "ASDFGHJKL.", "ZXCVBNM-")


class LookupScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, LookupFlow)
        body.add_widget(Text(app.tr("lookup.title"), size=56, bold=True))
        if flow.state == "scan":
            if app.device_states().get("scanner", "ok") == "ok":
                body.add_widget(Text(app.tr("lookup.scan_hint"), size=46, color=BLUE))
            else:
                body.add_widget(Text(app.tr("scanner.error"), size=42, color=AMBER, bold=True))
            self.error(app, body, flow.error_key)
            body.add_widget(Text(app.tr("lookup.type_hint"), size=40))
            body.add_widget(
                Text(
                    flow.typed or app.tr("lookup.format_hint"),
                    size=48,
                    color=DARK if flow.typed else GREY,
                    bold=bool(flow.typed),
                )
            )
            for row in KEYBOARD_ROWS:
                line = GridLayout(cols=len(row), size_hint_y=None, height=110 * u(), spacing=8 * u())
                for char in row:
                    line.add_widget(BigButton(char, partial(app.act, "type", char=char), size=44, height=110))
                body.add_widget(line)
            actions = GridLayout(cols=3, size_hint_y=None, height=130 * u(), spacing=12 * u())
            actions.add_widget(
                BigButton(
                    app.tr("common.delete_one"), lambda: app.act("backspace"), color=GREY, size=40, height=130
                )
            )
            actions.add_widget(
                BigButton(app.tr("lookup.clear"), lambda: app.act("clear"), color=GREY, size=40, height=130)
            )
            actions.add_widget(
                BigButton(
                    app.tr("lookup.search"), lambda: app.act("submit"), color=GREEN, size=44, height=130
                )
            )
            body.add_widget(actions)
        elif flow.state in ("searching", "printing"):
            body.add_widget(Widget())
            body.add_widget(
                Text(
                    app.tr("lookup.searching" if flow.state == "searching" else "common.please_wait"), size=56
                )
            )
            body.add_widget(Widget())
        elif flow.state == "found" and flow.status is not None:
            status = flow.status
            today = app.core.now().date()
            overdue = status.overdue_days(today)
            body.add_widget(Text(status.status.label(app.language), size=56, color=BLUE, bold=True))
            if overdue > 0:
                body.add_widget(Text(app.tr("lookup.overdue", days=overdue), size=48, color=RED, bold=True))
            for label, value in status.summary_lines(today, app.language):
                if label:  # the unlabelled line is the overdue flag, shown in red above
                    body.add_widget(Text(f"{label}: [b]{value}[/b]", size=38, halign="left", markup=True))
            if status.timeline:
                body.add_widget(Text(app.tr("lookup.timeline"), size=40, bold=True, halign="left"))
                for day, step in status.timeline:
                    body.add_widget(Text(f"{day:%d/%m/%Y} — {step}", size=34, halign="left", color=GREY))
            self.error(app, body, flow.error_key)
            if flow.printed:
                body.add_widget(Text(app.tr("lookup.printed"), size=42, color=GREEN, bold=True))
            else:
                body.add_widget(
                    BigButton(app.tr("lookup.print_status"), lambda: app.act("print"), height=150)
                )
        elif flow.state in ("not_found", "unavailable"):
            body.add_widget(Widget())
            self.error(app, body, flow.error_key)
            if flow.code is not None:
                body.add_widget(Text(f"{app.tr('lookup.code')}: {flow.code.text}", size=40))
            if flow.state == "unavailable":
                body.add_widget(BigButton(app.tr("common.retry"), lambda: app.act("retry")))
            body.add_widget(BigButton(app.tr("common.back"), lambda: app.act("again"), color=GREY))
            body.add_widget(Widget())


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
FACE_COLOURS = (RED, (0.9, 0.4, 0.1, 1), AMBER, (0.4, 0.65, 0.2, 1), GREEN)


class RatingScreen(FlowScreen):
    def build(self, app: KioskApp, body: BoxLayout) -> None:
        flow = app.core.flow
        assert isinstance(flow, RatingFlow)
        body.add_widget(Text(app.tr("rating.title"), size=56, bold=True))
        if flow.target_kind == "ticket":
            body.add_widget(
                Text(
                    app.tr("rating.linked_ticket", number=flow.target_id.rsplit("/", 1)[-1]),
                    size=40,
                    color=BLUE,
                )
            )
        elif flow.target_kind == "dossier":
            body.add_widget(Text(app.tr("rating.linked_dossier", code=flow.target_id), size=40, color=BLUE))
        elif flow.target_kind == "counter":
            body.add_widget(
                Text(app.tr("rating.linked_counter", counter=flow.target_id), size=40, color=BLUE)
            )
        elif flow.target_kind == "official":
            names = {official.id: official.name for official in app.core.config.rating.officials}
            official_name = names.get(flow.target_id, flow.target_id)
            body.add_widget(Text(app.tr("rating.linked_official", name=official_name), size=40, color=BLUE))
        if flow.state == "choose_level":
            body.add_widget(Text(app.tr("rating.question"), size=48))
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
                        size=50,
                        height=190,
                    )
                )
                body.add_widget(row)
            self.error(app, body, flow.error_key)
            counters = flow.counters()
            if counters:
                body.add_widget(Text(app.tr("rating.counter_hint"), size=36))
                row = GridLayout(
                    cols=min(len(counters), 8), size_hint_y=None, height=110 * u(), spacing=10 * u()
                )
                for counter in counters:
                    chosen = flow.target_kind == "counter" and flow.target_id == counter
                    row.add_widget(
                        BigButton(
                            counter,
                            partial(app.act, "counter", counter=counter),
                            color=AMBER if chosen else GREY,
                            size=44,
                            height=110,
                        )
                    )
                body.add_widget(row)
            officials = app.core.config.rating.officials
            if officials:
                body.add_widget(Text(app.tr("rating.official_hint"), size=36))
                grid = GridLayout(cols=2, size_hint_y=None, spacing=10 * u())
                grid.bind(minimum_height=grid.setter("height"))
                for official in officials:
                    chosen = flow.target_kind == "official" and flow.target_id == official.id
                    counter = f"{app.tr('ticket.counter_label')} {official.counter}"
                    label = f"{official.name}\n[size={int(30 * u())}]{counter}[/size]"
                    button = BigButton(
                        label,
                        partial(app.act, "official", official_id=official.id),
                        color=AMBER if chosen else GREY,
                        size=38,
                        height=130,
                        markup=True,
                    )
                    photo = app.core.config.official_photo(official)
                    if app.core.config.rating.show_official_photos and photo is not None:
                        cell = BoxLayout(orientation="vertical", size_hint_y=None, height=330 * u())
                        cell.add_widget(Image(source=str(photo), size_hint_y=None, height=200 * u()))
                        cell.add_widget(button)
                        grid.add_widget(cell)
                    else:
                        grid.add_widget(button)
                body.add_widget(grid)
            body.add_widget(Text(app.tr("rating.link_hint"), size=32, color=GREY))
        elif flow.state == "reasons":
            body.add_widget(Text(app.tr("rating.reasons_title"), size=46))
            for reason in app.core.config.rating.reasons:
                chosen = reason.code in flow.reasons
                label = reason.label_vi if app.language == "vi" else reason.label_en
                mark = f" ({app.tr('common.selected')})" if chosen else ""
                body.add_widget(
                    BigButton(
                        label + mark,
                        partial(app.act, "toggle_reason", code=reason.code),
                        color=AMBER if chosen else GREY,
                        size=44,
                        height=150,
                    )
                )
            body.add_widget(BigButton(app.tr("rating.send"), lambda: app.act("send"), color=GREEN))
        elif flow.state == "sending":
            body.add_widget(Text(app.tr("common.please_wait"), size=52))
        elif flow.state == "thanks":
            body.add_widget(Widget())
            body.add_widget(Text(app.tr("rating.thanks"), size=80, color=GREEN, bold=True))
            body.add_widget(Widget())
        else:
            body.add_widget(Widget())
            self.error(app, body, flow.error_key)
            body.add_widget(Widget())


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
            pad.add_widget(BigButton("OK", lambda: app.act("enter"), color=GREEN, size=60, height=140))
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
    "attract": AttractScreen,
    "home": HomeScreen,
    "out_of_service": OutOfServiceScreen,
    "ticket": TicketScreen,
    "identify": IdentifyScreen,
    "lookup": LookupScreen,
    "rating": RatingScreen,
    "technician": TechnicianScreen,
}

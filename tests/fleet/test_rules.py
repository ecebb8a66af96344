"""Rules of the fleet's code: the center never imports the kiosk, and the catalogs are complete."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from typing import get_args, get_type_hints

from contract.commands import ReasonKind
from fleet.store.schema import KIOSK_STATES, ROLES, SEVERITIES
from fleet.web import views_admin, views_fleet
from fleet.web.i18n import LANGUAGES, MISSING_MARK, Translator, catalog, placeholders
from tests.conftest import ROOT

FLEET = ROOT / "fleet"
FORBIDDEN = {"kiosk", "screens", "drivers", "edge_agent"}


# The static rule (nothing in fleet/ imports the kiosk side) is import-linter's, in scripts/test
# (pyproject.toml). This checks what is really loaded at run time, which a static rule cannot see.
def test_importing_the_fleet_monitor_loads_no_kiosk_module() -> None:
    code = (
        "import sys, fleet.cli, fleet.web.app, fleet.store, fleet.auth; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_catalogs_have_the_same_keys_and_placeholders() -> None:
    vi, en = catalog("vi"), catalog("en")
    assert set(vi) == set(en)
    for key in vi:
        assert placeholders(vi[key]) == placeholders(en[key]), key
        assert vi[key].strip() and en[key].strip(), key


KEY_IN_TEMPLATE = re.compile(r"""\bt\(\s*'([a-z_]+\.[a-z_.]+)'""")


def test_every_key_the_pages_use_exists() -> None:
    used: set[str] = set()
    for template in (FLEET / "web" / "templates").glob("*.html"):
        # a key that ends in '_' or '.' is a prefix the template completes from a code (checked below)
        used |= {k for k in KEY_IN_TEMPLATE.findall(template.read_text()) if not k.endswith(("_", "."))}
    for module in (FLEET / "web").glob("*.py"):
        # ctx.t("...") in the views, tr("...") where a Translator is handed in (contract_text)
        for match in re.finditer(r"""\btr?\(\s*"([a-z_]+\.[a-z_.]+)\"""", module.read_text()):
            used.add(match.group(1))
    # keys built from codes: every code the store knows has a label
    used |= {f"state.{s}" for s in KIOSK_STATES} | {f"role.{r}" for r in ROLES}
    used |= {f"severity.{s}" for s in SEVERITIES}
    used |= {f"command_status.{s}" for s in ("pending", "sent", "ok", "error")}
    used |= {f"center.sort_{s}" for s in ("id", "state", "last_seen")}
    used |= {
        f"device_state.{s}"
        for s in ("ok", "paper_near_end", "paper_out", "cover_open", "offline", "missing", "unknown")
    }  # the states docs/mqtt.md lists
    used |= {f"device.{d}" for d in ("printer", "receipt_printer", "card_reader", "scanner")}
    # the MQTT phase: keys built from codes in the console, config, routes and ingest pages
    from contract.commands import COMMANDS
    from fleet.alarms.rules import DEVICE_DEFAULT, HEALTH_TYPES
    from fleet.web import config_forms, views_console, views_ingest, views_notify

    alarm_types = {*HEALTH_TYPES, "offline", "events_missing", "events_dropped"}
    alarm_types |= {"allocator_offline", "allocator_unhealthy"}
    used |= {f"alarm_type.{a}" for a in alarm_types} | {f"device.{d}" for d in DEVICE_DEFAULT}
    used |= {
        f"alarm_state.{s}"
        for s in ("lost", "silent", "shutdown", "gap", "dropped", "expiring", "expired", "ahead", "behind")
    }
    used |= {f"console.{p}_{c}" for p in ("cmd", "help") for c in COMMANDS}
    # a command's result and arguments (fleet.web.contract_text): every command, every fixed reason
    used |= {f"command_result.{p}_{c}" for p in ("ok", "failed") for c in COMMANDS}
    used |= {"command_result.ok_set_notice_cleared", "command_result.ok", "command_result.failed"}
    used |= {f"command_result.ok_set_service_mode_{s}" for s in ("out", "in")}
    failures = [k for k in get_args(ReasonKind) if k != "done"]  # ok: the command's own line
    used |= {f"command_result.{k}" for k in (*failures, "error", "unsent_expired", "not_sent")}
    used |= {f"command_arg.{f.name}" for c in COMMANDS.values() for f in dataclasses.fields(c)}
    used |= {f"console.lifetime_{v}" for v in views_console.LIFETIMES}
    used |= {f"config.{p}_{s}" for p in ("section", "help") for s in config_forms.SECTIONS}
    used |= {
        f"config.status_{s}" for s in ("applied", "waiting", "app_pending", "refused", "unknown", "none")
    }
    used |= {f"config.language_{lang}" for lang in ("vi", "en")}
    used |= {f"routes.kind_{k}" for k in ("email", "webhook")}
    used |= {f"routes.event_{e}" for e in ("raised", "reminder", "cleared")}
    used |= {f"routes.status_{s}" for s in ("pending", "sent", "failed")}
    used |= {f"ingest.state_{s}" for s in ("connected", "disconnected", "stale", "stopped")}
    used |= {
        f"ingest.why_{r}"
        for r in (
            "unknown_kiosk",
            "wrong_center",
            "unknown_center",
            "bad_topic",
            "unexpected_blob",
            "invalid_status",
            "invalid_health",
            "invalid_event",
            "invalid_cmd_res",
            "invalid_config_state",
            "invalid_blob",
            "invalid_allocator_status",
        )
    }
    used |= {f"action.{a}" for a in ("command.create", "config.push", "route.create", "route.update")}
    # what kiosks' events carry (fleet.web.contract_text): every card read result and event kind this
    # version's kiosk sends, the look-up outcomes, the visit services and their outcomes
    from contract.events import CARD_READ_RESULTS, EVENT_KINDS, Lookup, VisitOutcome, VisitServiceName

    used |= {f"card_result.{r}" for r in CARD_READ_RESULTS} | {f"event_kind.{k}" for k in EVENT_KINDS}
    used |= {f"usage.lookup.{o}" for o in get_args(get_type_hints(Lookup)["outcome"])}
    used |= {f"visit_service.{s}" for s in get_args(VisitServiceName)}
    used |= {f"visit_outcome.{o}" for o in get_args(VisitOutcome)}
    used |= {f"event_text.source_{s}" for s in ("technician", "center")}
    used |= {c.label for c in [*views_notify.DELIVERY_COLUMNS, *views_ingest.REFUSAL_COLUMNS]}
    used |= {
        c.label
        for c in [
            *views_fleet.CENTER_COLUMNS,
            *views_fleet.KIOSK_COLUMNS,
            *views_fleet.STATUS_COLUMNS,
            *views_fleet.EVENT_COLUMNS,
            *views_fleet.COMMAND_COLUMNS,
            *views_fleet.DEVICE_COLUMNS,
            *views_fleet.ALARM_COLUMNS,
            *views_admin.USER_COLUMNS,
            *views_admin.AUDIT_COLUMNS,
        ]
    }
    assert len(used) > 350
    for language in LANGUAGES:
        missing = sorted(k for k in used if k not in catalog(language))
        assert missing == [], f"{language}: {missing}"


def test_a_missing_key_is_drawn_visibly() -> None:
    assert Translator("vi")("no.such_key") == MISSING_MARK.format("no.such_key")
    assert Translator("xx")("app.name") == "Giám sát kiosk"  # unknown language: Vietnamese
    assert Translator("en").optional("device.fax", "fax") == "fax"

"""The contract package: one type per message, round trips, limits, and refusals of one kind only."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.commands import (
    REASON_DONE,
    REASON_INTERRUPTED,
    RESULT_CODES,
    Command,
    CommandResult,
    SetNoticeArgs,
    reason_kind,
)
from contract.config import ConfigPush, ConfigState, PushedConfig, Refusal, ServiceArea
from contract.enrollment import (
    CertRequest,
    CertResponse,
    EnrollAnswer,
    EnrollChallenge,
    EnrollmentBundle,
    EnrollPoll,
    EnrollRequest,
    MachineInfo,
)
from contract.errors import ContractError
from contract.events import (
    EVENT_PAYLOADS,
    Event,
    TicketIssued,
    UnknownPayload,
    event_payload_bytes,
    payload_json,
)
from contract.health import AppHealth, DeviceHealth, Health, LinkHealth, OutboxHealth, health_alarms
from contract.message import Message
from contract.queue import QueueEvent, QueueStats, ServiceWait
from contract.registry import MESSAGE_TYPES
from contract.status import Hardware, Status
from contract.tickets import (
    AllocatorStatus,
    NumberPlan,
    QueueCalled,
    ReportItem,
    TicketRequest,
    TicketResponse,
)
from contract.topics import CENTER_SCOPE, CenterTopics, KioskTopics, fleet_filters, parse_topic
from contract.wire import MAX_DEPTH, loads_object

CONTRACT = Path(__file__).resolve().parents[2] / "contract"
AT = "2026-11-23T11:02:03.456+00:00"


def test_the_contract_imports_only_the_standard_library_and_itself() -> None:
    """A fleet or a province can use the contract without installing anything of the kiosk."""
    outside = []
    for path in sorted(CONTRACT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "contract" and top not in sys.stdlib_module_names and top != "__future__":
                    outside.append(f"{path.name}: {name}")
    assert outside == []


def samples() -> list[Message]:
    """One of each message type, with every optional part filled."""
    devices = {"printer": DeviceHealth("paper_near_end", model="TM-T82"), "scanner": DeviceHealth("ok")}
    outbox = OutboxHealth(3, 200_000, 0.0, journal_id="c8c2cb7e")
    app = AppHealth("up", version="0.1.0", uptime_s=12.0, screen="home", out_of_service=False)
    return [
        Status("online", "birth", 7, 3, AT, "0.1.0", "0.1.0", {"center": 3}, Hardware("x86_64", devices={})),
        Status("offline", "lost", 8, 3, AT),
        Health(7, 3, app, outbox, LinkHealth(True, 1), AT, devices=devices,
               alarms=health_alarms(app, devices, outbox)),
        Event("1bd43c721b7942228681f444f1de6cd8", 5, "c8c2cb7e", TicketIssued("A012", "HOTICH"), AT),
        Command.build("req-1", "set_notice", SetNoticeArgs("Nghỉ trưa 11:30–13:00")),
        CommandResult("req-1", "set_notice", "ok", "done", {}, AT),
        CommandResult(None, None, "error", "rejected: not UTF-8 JSON", {}, AT, code="rejected"),
        CommandResult("req-2", "print_test_ticket", "error", "app.print_test_ticket: PrinterPaperOutError: x",
                      {}, AT, args={}, code="printer_paper_out"),
        ConfigPush(4, PushedConfig(services=[ServiceArea("HOTICH", "A", "Hộ tịch", "Civil status", ["1"])])),
        ConfigState({"center": 3, "kiosk": 2}, False, Refusal("kiosk", 5, "too old", AT), AT),
        TicketRequest("kiosk-1-a1", "allocate", 2, NumberPlan(), service="HOTICH", prefix="A", sent_at=AT),
        TicketRequest(
            "kiosk-1-r1", "report", 2, NumberPlan(), sent_at=AT,
            tickets=(ReportItem("kiosk-1-a1", "2026-11-23", "HOTICH", "A", 840, "offline", "printed",
                                False, AT),),
        ),
        TicketResponse.allocated("kiosk-1-a1", day="2026-11-23", service="HOTICH", seq=23, number="A023",
                                 waiting_ahead=7, at=AT),
        TicketResponse.refused(None, None, "bad_request", "not JSON", AT),
        QueueCalled("HOTICH", "A023", "5", "2026-11-23"),
        AllocatorStatus("online", "birth", 800, 20, AT),
        QueueEvent("2c9a3f0e5b7d4e1f8a6b0c2d4e6f8a0b", 41, "called", AT, day="2026-11-23", number="A023",
                   service="HOTICH", priority=False, issued_at=AT, source="online", counter="5",
                   officer="canbo.bt", calls=1, waited_s=312.4),
        QueueStats("2026-11-23", [ServiceWait("HOTICH", 7, 2, 270.0, 135.0, 16), ServiceWait("DATDAI", 0, 0)],
                   AT),
        EnrollChallenge(NONCE, AT),
        EnrollRequest("hcm-ben-thanh", NONCE, CSR, "K7QF2-JXMTR-BV3HA-Q6DZE",
                      MachineInfo("PF3K9Q2A", "LENOVO", "M70q", "kiosk-new", ["3c:52:82:aa:bb:cc"]), AT),
        EnrollPoll("hcm-ben-thanh", REQUEST),
        EnrollAnswer("issued", REQUEST, None, "Đã cấp", "Issued", 0, CERT, CERT + CERT, BUNDLE, AT),
        EnrollAnswer("refused", "", "replayed", "Gửi lại", "Replayed", at=AT),
        CertRequest("kiosk-bt-03-cert-1", CSR, "5db13fac22", "expiry", AT),
        CertResponse("kiosk-bt-03-cert-1", "ok", None, "renewed", CERT, CERT, AT, AT),
        CertResponse("kiosk-bt-03-cert-1", "error", "revoked", "renewal refused", at=AT),
    ]


NONCE = "p3Yc1cbk0x2Wm7rS9bqv0H1hQmJbZyu4m3hYf8e0X2E"
REQUEST = "5f0c1a9b2e7d44c3a1f05f0c1a9b2e7d"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBDTCBtAIBADAaMRgwFgYDVQQD\n-----END CERTIFICATE REQUEST-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIB3zCCAYWgAwIBAgIU\n-----END CERTIFICATE-----\n"
BUNDLE = EnrollmentBundle(
    "kiosk-bt-03", "hcm-ben-thanh", "Bến Thành", "10.20.0.5", 8883, 3,
    config=PushedConfig(services=[ServiceArea("HOTICH", "A", "Hộ tịch", "Civil status", ["1"])]),
)


@pytest.mark.parametrize("message", samples(), ids=lambda m: m.SCHEMA)
def test_round_trip(message: Message) -> None:
    payload = message.to_payload()
    assert type(message).parse(payload) == message
    assert MESSAGE_TYPES[json.loads(payload)["schema"]] is type(message)


def test_every_message_type_has_a_sample() -> None:
    assert {m.SCHEMA for m in samples()} == set(MESSAGE_TYPES)


def test_the_agents_hand_built_event_is_the_same_json_as_the_type() -> None:
    event = Event("1bd43c721b7942228681f444f1de6cd8", 5, "c8c2cb7e", TicketIssued("A012", "HOTICH"),
                  AT, replay=True)
    fast = event_payload_bytes(seq=5, event_id=event.event_id, kind="ticket_issued", occurred_at=AT,
                               payload_json=payload_json(event.payload), journal_id="c8c2cb7e", replay=True)
    assert json.loads(fast) == json.loads(event.to_payload())
    assert Event.parse(fast) == event


def test_an_event_of_a_kind_this_version_does_not_know_is_kept_not_refused() -> None:
    body = {"schema": "event/1", "event_id": "1" * 32, "seq": 1, "journal_id": "ab", "kind": "queue_joined",
            "occurred_at": AT, "payload": {"position": 4}}
    event = Event.parse(json.dumps(body).encode())
    assert isinstance(event.payload, UnknownPayload) and event.kind == "queue_joined"
    assert json.loads(event.to_payload())["payload"] == {"position": 4}


def test_every_event_kind_has_a_topic_and_a_type() -> None:
    topics = KioskTopics("hcm-ben-thanh", "kiosk-01")
    for kind in EVENT_PAYLOADS:
        ref = parse_topic(topics.event(kind))
        assert (ref.kiosk_id, ref.channel, ref.detail) == ("kiosk-01", "event", kind)


@pytest.mark.parametrize(
    ("payload", "part"),
    [
        (b"[" * 200_000, "more than"),  # the allocator's killer: refused before any parsing
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper"),
        (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[["}', "schema"),  # brackets inside a string do not count
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b'{"schema": "status/1", "x": NaN}', "NaN"),
        (b'{"schema": "status/1", "bdseq": 1e999}', "out of range"),
        (b'{"schema": "status/1", "schema": "status/1"}', "appears twice"),
        (b'"just a string"', "expected a JSON object"),
        (b'{"schema": "status/9"}', "status.schema"),
        (b'{"schema": "status/1", "state": "online", "reason": "birth", "bdseq": -1, "boot": 1}', "bdseq"),
    ],
)
def test_bad_payloads_are_refused_with_the_contracts_error(payload: bytes, part: str) -> None:
    with pytest.raises(ContractError, match=part):
        Status.parse(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_no_bytes_raise_anything_but_a_contract_error(data: bytes) -> None:
    for cls in MESSAGE_TYPES.values():
        with contextlib.suppress(ContractError):
            cls.parse(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(MESSAGE_TYPES)), st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_no_json_object_raises_anything_but_a_contract_error(schema: str, body: dict[str, Any]) -> None:
    with contextlib.suppress(ContractError):
        MESSAGE_TYPES[schema].parse(json.dumps({**body, "schema": schema}).encode())


def test_building_an_oversized_message_is_refused() -> None:
    big = CommandResult("req-1", "upload_logs", "ok", "done", {"files": ["x" * 60_000, "y" * 10_000]}, AT)
    with pytest.raises(ContractError, match="more than the 65536 allowed"):
        big.to_payload()


def test_the_previous_major_version_is_accepted_and_upgraded() -> None:
    """The rule for the day a type changes shape: its parser keeps reading the previous major."""

    @dataclass(frozen=True)
    class Beacon(Message):
        SCHEMA: ClassVar[str] = "beacon/2"
        room: str
        floor: int = field(default=0, metadata={"min": 0})

        @classmethod
        def upgrade_previous(cls, data: dict[str, Any]) -> dict[str, Any] | None:
            # beacon/1 said "place": "2/B" (floor/room)
            floor, _, room = str(data.get("place", "")).partition("/")
            return {"room": room, "floor": int(floor) if floor.isdigit() else 0}

    assert Beacon.parse(b'{"schema": "beacon/2", "room": "B", "floor": 2}') == Beacon("B", 2)
    assert Beacon.parse(b'{"schema": "beacon/1", "place": "2/B"}') == Beacon("B", 2)
    with pytest.raises(ContractError, match=r"beacon\.schema"):
        Beacon.parse(b'{"schema": "beacon/0", "place": "2/B"}')
    with pytest.raises(ContractError, match=r"beacon\.schema"):
        Beacon.parse(b'{"schema": "beacon/3", "room": "B"}')
    # a type without an older shape refuses its previous major
    with pytest.raises(ContractError, match=r"status\.schema"):
        Status.parse(b'{"schema": "status/0", "state": "online"}')


def test_what_the_center_sends_refuses_unknown_keys_what_kiosks_report_ignores_them() -> None:
    command = json.loads(Command.build("r-1", "restart_app").to_payload())
    with pytest.raises(ContractError, match=r"command\.sudo: unknown key"):
        Command.parse(json.dumps({**command, "sudo": True}).encode())
    status = json.loads(Status("offline", "lost", 8, 3, AT).to_payload())
    assert Status.parse(json.dumps({**status, "added_in_1_1": "x"}).encode()).bdseq == 8


def test_a_results_code_round_trips_a_malformed_one_is_refused_an_unknown_one_read() -> None:
    """``code`` is a minor addition: absent from older agents (None), any code of its shape read (a newer
    agent's new code must not make an older fleet refuse the result), anything else refused."""
    result = CommandResult("req-1", "screenshot", "error", "app.screenshot: ScreenshotRefused: ...", {}, AT,
                           code="personal_data_on_screen")
    data = json.loads(result.to_payload())
    assert data["code"] == "personal_data_on_screen"
    assert CommandResult.parse(result.to_payload()) == result
    older = {k: v for k, v in data.items() if k not in ("code", "args")}  # an agent before both additions
    assert CommandResult.parse(json.dumps(older).encode()).code is None
    newer = {**data, "code": "printer_jammed"}  # not a code of this version
    assert CommandResult.parse(json.dumps(newer).encode()).code == "printer_jammed"
    for bad in ("Printer Paper Out", "máy_in", "x" * 41, "", "_paper", 7, ["printer_paper_out"]):
        with pytest.raises(ContractError, match=r"command-result\.code"):
            CommandResult.parse(json.dumps({**data, "code": bad}).encode())
    assert "printer_paper_out" in RESULT_CODES
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,39}", code) for code in RESULT_CODES)  # the agent's own fit


def test_the_reasons_worded_from_fixed_text_are_recognised_and_free_text_is_not() -> None:
    """A fleet says a result in its own language from ``reason_kind``: the refusals ``Command`` words
    are recognised as they are built, the agent's constants too; anything else is nobody's code."""
    now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    late = Command.build("r-1", "restart_app", now=now - timedelta(hours=2), lifetime=timedelta(hours=1))
    too_far = Command.build("r-2", "restart_app", now=now).refusal(now - timedelta(days=8))
    assert reason_kind("error", late.refusal(now) or "") == "expired"
    assert reason_kind("error", too_far or "") == "too_far_ahead"
    assert reason_kind("ok", REASON_DONE) == "done"
    assert reason_kind("error", REASON_INTERRUPTED) == "interrupted"
    assert reason_kind("error", "no log files found: kiosk.log") is None
    assert reason_kind("ok", REASON_INTERRUPTED) is None and reason_kind("error", REASON_DONE) is None
    assert reason_kind("pending", "") is None


def test_topics_are_built_and_read_back() -> None:
    kiosk = KioskTopics("hcm-ben-thanh", "kiosk-01")
    center = CenterTopics("hcm-ben-thanh")
    assert kiosk.status == "motcua/v1/hcm-ben-thanh/kiosk-01/status"
    assert kiosk.center.config_set == center.config_set
    assert center.config_set == f"motcua/v1/hcm-ben-thanh/{CENTER_SCOPE}/config/set"
    for topic, channel in [
        (kiosk.status, "status"), (kiosk.health, "health"), (kiosk.cmd_req, "cmd/req"),
        (kiosk.cmd_res, "cmd/res"), (kiosk.config_set, "config/set"), (kiosk.config_state, "config/state"),
        (kiosk.ticket_req, "ticket/req"), (kiosk.ticket_res, "ticket/res"), (kiosk.blob("req-1"), "blob"),
    ]:
        assert parse_topic(topic).channel == channel and parse_topic(topic).kiosk_id == "kiosk-01"
    for topic in (center.queue_called, center.allocator_status, center.config_set):
        ref = parse_topic(topic)
        assert ref.scope == CENTER_SCOPE and ref.kiosk_id is None
    for bad in (
        "motcua/v1/hcm-ben-thanh/kiosk-01/status/extra", "motcua/v2/hcm/kiosk-01/status",
        "motcua/v1/hcm/fleet/status",  # a reserved name is never a kiosk
        "motcua/v1/hcm/fleet-2/status",  # nor a numbered service instance
        "motcua/v1/HCM/kiosk-01/status", "motcua/v1/hcm/_center/ticket/req",
        "motcua/v1/hcm/k1/event/Bad-Kind",
    ):
        with pytest.raises(ContractError):
            parse_topic(bad)
    assert "$share/fleet/motcua/v1/+/+/event/+" in fleet_filters()
    # the queue's steps: shared like the events (one worker stores each), one center's when asked
    assert "$share/fleet/motcua/v1/+/_center/queue/event" in fleet_filters()
    assert "motcua/v1/hcm/_center/queue/event" in fleet_filters(center_id="hcm", share=None)
    assert parse_topic(CenterTopics("hcm").queue_event).channel == "queue/event"


def test_loads_object_is_the_one_reader_and_bounds_size_before_parsing() -> None:
    assert loads_object(b'{"a": 1}', "x") == {"a": 1}
    with pytest.raises(ContractError, match="more than the 8 allowed"):
        loads_object(b'{"a": 12}', "x", max_bytes=8)

"""Fuzz targets of the MQTT contract: every message type's parser, topics, the JSON reader, the
enrollment code and the enrolled-kiosks file (docs/fuzzing.md).

A parser of the contract may only accept or raise ``ContractError`` (docs/mqtt.md); what it accepts
must survive the way back: ``to_payload()`` of an accepted message parses to the same message (or is
refused as too large with ``ContractError``, never anything else), and a parsed topic is rebuilt to the
same string.

``python -m fuzz.contract --write-seeds`` rewrites the seed corpora ``fuzz/corpus/contract.*`` from
the examples of docs/mqtt.md's types (and a few hostile inputs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from contract.enrollment import EnrolledKiosks, EnrollmentCode
from contract.errors import ContractError
from contract.message import Message
from contract.registry import MESSAGE_TYPES
from contract.topics import CENTER_SCOPE, DEFAULT_ROOT, parse_topic
from contract.wire import MAX_DEPTH, dumps, loads_object, salvage_request_id

#: the message types in a fixed order: the first input byte picks one
TYPES: tuple[type[Message], ...] = tuple(MESSAGE_TYPES[name] for name in sorted(MESSAGE_TYPES))


def _round_trip(message: Message) -> None:
    """Built, parsed, built again: the same message (the first build may fill defaults such as a
    ``sent_at`` left empty, so the comparison starts from the first parse)."""
    try:
        once = type(message).parse(message.to_payload())
        twice = type(message).parse(once.to_payload())
    except ContractError:
        return  # accepted leniently, but larger than the type builds: refused with the contract's error
    assert twice == once, (once, twice)


def messages(data: bytes) -> None:
    """First byte: the message type; the rest: its payload."""
    if not data:
        return
    cls = TYPES[data[0] % len(TYPES)]
    try:
        message = cls.parse(data[1:])
    except ContractError:
        return
    _round_trip(message)


def topics(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for topic in (text, f"{DEFAULT_ROOT}/{text}"):
        try:
            ref = parse_topic(topic)
        except ContractError:
            continue
        parts = [DEFAULT_ROOT, ref.center_id, ref.scope, ref.channel]
        if ref.detail:
            parts.append(ref.detail)
        assert "/".join(parts) == topic, (topic, ref)
        assert (ref.kiosk_id is None) == (ref.scope == CENTER_SCOPE), ref


def wire(data: bytes) -> None:
    """The one JSON reader: bounded, depth-limited, ContractError only; what it reads dumps back."""
    try:
        body = loads_object(data, "fuzz", 64 * 1024)
    except ContractError:
        body = None
    if body is not None:
        assert loads_object(dumps(body), "again", 1 << 20) == body
        assert _depth(body) <= MAX_DEPTH
    request_id = salvage_request_id(data)
    assert request_id is None or isinstance(request_id, str)


def _depth(value: object) -> int:
    """Nesting depth of parsed JSON (iterative: the point is that it is bounded)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def enrollment_code(data: bytes) -> None:
    """The text of the enrollment QR (typed by a technician or scanned)."""
    try:
        code = EnrollmentCode.from_text(data.decode("utf-8", "replace"))
    except ContractError:
        return
    assert EnrollmentCode.from_text(code.to_text()) == code


def enrolled_kiosks(data: bytes) -> None:
    """The registry file the allocator reads (written by provisioning; a broken file must not crash it)."""
    try:
        registry = EnrolledKiosks.from_bytes(data)
    except ContractError:
        return
    assert EnrolledKiosks.from_bytes(registry.to_bytes()) == registry
    for kiosk_id in list(registry.kiosks)[:5]:
        registry.refusal(registry.center_id, kiosk_id, 0)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "messages": messages,
    "topics": topics,
    "wire": wire,
    "enrollment_code": enrollment_code,
    "enrolled_kiosks": enrolled_kiosks,
}


# -- seeds ------------------------------------------------------------------------------------------


def _seeds() -> dict[str, list[bytes]]:
    from contract.enrollment import EnrolledKiosk
    from contract.tickets import NumberPlan, ReportItem, TicketRequest, TicketResponse

    plan = NumberPlan()
    item = ReportItem("k-1", "2026-11-23", "HOTICH", "A", 800, "offline", "printed",
                      issued_at="2026-11-23T05:00:00Z")
    examples = {
        "ticket-request/1": [
            TicketRequest("k-1", "allocate", 0, plan, service="HOTICH", prefix="A").to_payload(),
            TicketRequest("k-2", "report", 0, plan, tickets=(item,)).to_payload(),
        ],
        "ticket-response/1": [
            TicketResponse.allocated("k-1", day="2026-11-23", service="HOTICH", seq=1, number="A001",
                                     waiting_ahead=0, expected_wait_min=3).to_payload(),
        ],
        "queue-called/1": [b'{"schema":"queue-called/1","service":"HOTICH","number":"A001","counter":"3"}'],
        "allocator-status/1": [b'{"schema":"allocator-status/1","state":"online","reason":"birth",'
                               b'"health":{"worker_alive":true,"catalog_services":2}}'],
        "config/1": [b'{"schema":"config/1","version":2,"config":{"services":[{"code":"HOTICH","prefix":"A",'
                     b'"name_vi":"H\xe1\xbb\x99 t\xe1\xbb\x8bch","name_en":"Civil status"}],'
                     b'"kiosk":{"idle_timeout_s":90},"agent":{"heartbeat_s":10}}}'],
        "command/1": [b'{"schema":"command/1","request_id":"c-1","command":"restart_app",'
                      b'"args":{},"expires_at":"2030-01-01T00:00:00Z"}'],
        "queue-stats/1": [b'{"schema":"queue-stats/1","day":"2026-11-23","services":[{"service":"HOTICH",'
                          b'"waiting":3,"open_counters":1,"per_person_s":120.0}]}'],
        "status/1": [b'{"schema":"status/1","state":"online","reason":"birth"}'],
    }
    names = [cls.SCHEMA for cls in TYPES]
    message_seeds = [bytes([names.index(name)]) + payload for name, payloads in examples.items()
                     for payload in payloads if name in names]
    message_seeds += [bytes([i]) + b'{"schema":"' + name.encode() + b'"}' for i, name in enumerate(names)]
    message_seeds += [b"\x00" + b"[" * 3000, b"\x01" + b'{"a":1,"a":2}', b"\x02" + b'{"x":NaN}']
    entries = {"kiosk-01": EnrolledKiosk(0, ["0a1b"]), "kiosk-02": EnrolledKiosk(1)}
    registry = EnrolledKiosks("hcm-ben-thanh", 3, entries)
    return {
        "messages": message_seeds,
        "topics": [
            b"motcua/v1/hcm-ben-thanh/kiosk-01/ticket/req", b"hcm-ben-thanh/_center/queue/stats",
            b"motcua/v1/hcm-ben-thanh/kiosk-01/event/device_fault", b"motcua/v1/c1/k1/blob/req-1",
            b"motcua/v1/hcm-ben-thanh/fleet-2/status", b"motcua/v1/" + b"a/" * 300,
        ],
        "wire": [
            b'{"request_id":"r-1","x":[1,2.5,{"y":null}]}', b"[" * 100, b'{"s":"\\ud800"}', b"\xef\xbb\xbf{}",
        ],
        "enrollment_code": [
            EnrollmentCode("127.0.0.1", 8443, "hcm-ben-thanh", "ab" * 32).to_text().encode(),
            b"motcua-enroll://[::1]:8443/c1?t=ABCD&f=" + b"0" * 64,
        ],
        "enrolled_kiosks": [registry.to_bytes(), b'{"schema":"enrolled-kiosks/1"}'],
    }


def write_seeds(root: Path) -> None:
    for target, seeds in _seeds().items():
        folder = root / f"contract.{target}"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for index, seed in enumerate(seeds):
            (folder / f"seed-{index:02d}").write_bytes(seed)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-seeds"]:
        from fuzz.registry import CORPUS

        write_seeds(CORPUS)
    else:
        sys.exit("usage: python -m fuzz.contract --write-seeds")

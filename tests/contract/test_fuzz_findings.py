"""Inputs the contract's fuzzers found (fuzz/contract.py), each refused with ContractError now."""

from __future__ import annotations

import pytest

from contract.enrollment import EnrollmentCode
from contract.errors import ContractError
from contract.tickets import TicketRequest
from contract.wire import loads_object, salvage_request_id


@pytest.mark.parametrize("payload", [
    b'{"s": "\\ud800"}',  # a lone high surrogate
    b'{"\\udfff": 1}',  # in a key
    b'{"a": [{"b": ["ok", "\\udc80"]}]}',  # deep in a list
    b'{"s": "\\uD800"}',  # the escape's hex in capitals (the reader looks for both cases)
])
def test_a_lone_surrogate_is_refused_by_the_json_reader(payload: bytes) -> None:
    """It parsed to a str no encoder takes back: SQLite, logs and answers raised UnicodeEncodeError."""
    with pytest.raises(ContractError, match="lone surrogate"):
        loads_object(payload, "test")
    assert salvage_request_id(payload) is None


def test_nesting_is_bounded_even_when_the_brackets_are_few_in_all() -> None:
    """The depth check counts the brackets first: a payload with no more of them than the limit cannot
    nest deeper; one with more is scanned, inside strings too."""
    from contract.wire import MAX_DEPTH

    deep = b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
    with pytest.raises(ContractError, match="nested deeper"):
        loads_object(deep, "test")
    brackets_in_text = b'{"a": "' + b"[" * 100 + b'"}'
    assert loads_object(brackets_in_text, "test") == {"a": "[" * 100}


def test_a_surrogate_pair_written_as_escapes_is_text() -> None:
    assert loads_object(b'{"s": "\\ud83d\\ude00 H\\u1ed9 t\\u1ecbch"}', "test") == {"s": "😀 Hộ tịch"}


def test_a_ticket_report_with_a_surrogate_reason_is_a_contract_error() -> None:
    payload = (b'{"schema":"ticket-request/1","request_id":"r","op":"report","slot":0,"offline_base":800,'
               b'"offline_block":20,"tickets":[{"request_id":"o","day":"2026-11-23","service":"HOTICH",'
               b'"prefix":"A","seq":800,"source":"offline","status":"voided","reason":"\\ud800"}]}')
    with pytest.raises(ContractError):
        TicketRequest.parse(payload)


def test_an_enrollment_code_with_many_parameters_is_a_contract_error() -> None:
    """parse_qs raised its own ValueError ("Max number of fields exceeded")."""
    text = "motcua-enroll://127.0.0.1:8443/c1?" + "&".join(f"x{i}=1" for i in range(6))
    with pytest.raises(ContractError, match="unexpected parameters"):
        EnrollmentCode.from_text(text)


def test_a_number_too_large_for_a_float_is_a_contract_error() -> None:
    """JSON allows an integer of hundreds of digits; in a float field, converting it raised OverflowError."""
    from contract.events import Event

    payload = (b'{"schema":"event/1","event_id":"' + b"a" * 32 + b'","seq":1,"journal_id":"ab",'
               b'"kind":"session_ended","occurred_at":"2026-11-23T10:00:00Z","payload":{"reason":"done",'
               b'"duration_s":1' + b"0" * 400 + b"}}")
    with pytest.raises(ContractError) as caught:
        Event.parse(payload)
    refusal = "event.payload (session_ended).duration_s: expected a number, got 1000"
    assert caught.value.message.startswith(refusal)

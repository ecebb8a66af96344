"""The contract's fast paths against the code they stand in for: every payload accepted by one is
accepted by the other as the same object, and every refusal is the same refusal, in the same words.

- ``contract.schema``: the reader generated per dataclass vs ``reference_parse`` (the closures alone);
  the writer generated per dataclass vs ``reference_to_data``.
- ``contract.wire.loads_object``: the scanner called directly vs ``JSONDecoder.decode``.
- ``contract.topics.parse_topic``: the one regex for a kiosk's topics vs the checks part by part.

Both sides run on the same inputs: the docs' examples of every message type (docs/mqtt.md), then the
same with one value swapped for a hostile one (wrong types, huge numbers, deep nesting, extra or
missing keys, long or control-character strings), and raw payloads no agent would send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import schema, topics, wire
from contract.errors import ContractError, SchemaError
from contract.events import Event, payload_from_data
from contract.registry import MESSAGE_TYPES
from contract.schema import parse_dataclass, reference_parse, reference_to_data, to_data
from contract.topics import parse_topic
from tests.contract.test_docs_examples import examples
from tests.contract.test_schema import Checked, Clocked, Mutable, Port, Shape, Slotted, Stamped, Tree

EXAMPLES = examples()
MESSAGES = [e for e in EXAMPLES if "schema" in e]
PAYLOADS = [e for e in EXAMPLES if "schema" not in e]


@contextmanager
def reference() -> Iterator[None]:
    """The contract without its fast paths: every reader the closures alone, JSON through
    ``JSONDecoder.decode``, topics part by part."""
    saved = schema._parse, wire._decode, topics._kiosk_topic
    never = re.compile(r"(?!)()()()()()")
    schema._parse = lambda cls, data, path, lenient, fast: saved[0](cls, data, path, lenient, False)
    wire._decode = wire._DECODER.decode  # type: ignore[assignment]
    topics._kiosk_topic = lambda root: never
    try:
        yield
    finally:
        schema._parse, wire._decode, topics._kiosk_topic = saved


def outcome(read: Callable[[], Any]) -> tuple[Any, ...]:
    """What a read gives, compared exactly: the value's repr (1, 1.0 and True differ; so do a list and
    a tuple) and its attributes' order, or the exception's type and words."""
    try:
        value = read()
    except Exception as exc:  # the same refusal, whatever its type
        return ("refused", type(exc).__name__, str(exc))
    order = list(vars(value)) if hasattr(value, "__dict__") else None
    return ("ok", type(value).__name__, repr(value), order)


class _StoppedClock(datetime):
    """``now_iso`` (the default of every ``at`` a message may leave out) at one moment for both sides."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _StoppedClock:
        return cls(2026, 11, 23, 11, 2, 3, 456000, tzinfo=tz)


def both(read: Callable[[], Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    clock, wire.datetime = wire.datetime, _StoppedClock  # type: ignore[misc]
    try:
        fast = outcome(read)
        with reference():
            slow = outcome(read)
    finally:
        wire.datetime = clock  # type: ignore[misc]
    return fast, slow


def test_the_reference_is_not_the_fast_path() -> None:
    """Without this, every comparison below could compare the fast path with itself."""
    data = {"port": 80}
    parse_dataclass(Port, data)
    fast_reader = schema._READERS[False][Port]
    assert fast_reader.__qualname__ == "reader of Port"
    reference_parse(Port, data)
    assert schema._REFERENCE_READERS[False][Port].__qualname__ != "reader of Port"
    with reference():
        assert wire._decode == wire._DECODER.decode
        assert topics._kiosk_topic("motcua/v1").fullmatch("motcua/v1/c1/k1/status") is None


# --- hostile values -------------------------------------------------------------------------------

HUGE = [10**400, -(10**400), 2**63, -(2**63) - 1, 1e308, -1e308, 5e-324, 0, -1, 1, 100_001]
SPECIAL_FLOATS = [float("nan"), float("inf"), float("-inf"), -0.0]


def _deep(levels: int, inner: Any = 1) -> Any:
    value = inner
    for index in range(levels):
        value = [value] if index % 2 else {"a": value}
    return value


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
    st.sampled_from(["", "A012", "HOTICH", "x" * 70, "x" * 5000, "a\u202eb", "a\x00b", "2026-11-23T11:02:03Z",
                     "2026-11-23T11:02:03", "soon", "found", "camera", "ok", "printer", "f" * 32]),
    st.lists(st.integers(), max_size=3),
    st.lists(st.text(max_size=3), max_size=40),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.dictionaries(st.text(min_size=65, max_size=70), st.none(), max_size=1),
    st.builds(_deep, st.integers(min_value=1, max_value=20)),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a document a value can be swapped or a key dropped or added."""
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


def _mutated(document: dict[str, Any], path: tuple[Any, ...], how: str, value: Any) -> Any:
    data = json.loads(json.dumps(document))
    if not path:
        return value if how == "swap" else data
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "swap":
        parent[last] = value
    elif how == "drop":
        if isinstance(parent, dict):
            del parent[last]
        else:
            parent.pop(last)
    elif isinstance(parent[last], dict):  # "add": an extra key beside the others
        parent[last]["zz_extra"] = value
    else:
        parent[last] = [parent[last], value]
    return data


MUTATION = st.tuples(
    st.sampled_from(["swap", "swap", "drop", "add"]), HOSTILE, st.randoms(use_true_random=False)
)


def _pick_path(document: Any, rng: Any) -> tuple[Any, ...]:
    paths = list(_paths(document))
    return paths[rng.randrange(len(paths))]


# --- schema: the generated readers ----------------------------------------------------------------


@pytest.mark.parametrize("example", MESSAGES, ids=lambda e: e["schema"])
def test_every_docs_example_reads_the_same(example: dict[str, Any]) -> None:
    cls = MESSAGE_TYPES[example["schema"]]
    payload = json.dumps(example, ensure_ascii=False).encode()
    fast, slow = both(lambda: cls.parse(payload))
    assert fast == slow
    assert fast[0] == "ok"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MESSAGES), MUTATION)
def test_a_message_with_one_hostile_value_is_read_or_refused_the_same(
    example: dict[str, Any], mutation: tuple[str, Any, Any]
) -> None:
    how, value, rng = mutation
    cls = MESSAGE_TYPES[example["schema"]]
    path = _pick_path(example, rng)
    data = _mutated(example, path, how, value)
    # the decoded data (as a service that already holds JSON calls it) and the bytes path
    fast, slow = both(lambda: cls.from_data(data))
    assert fast == slow, (path, how)
    payload = json.dumps(data).encode()  # ASCII escapes: a lone surrogate reaches the reader too
    fast, slow = both(lambda: cls.parse(payload))
    assert fast == slow, (path, how)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PAYLOADS), MUTATION)
def test_an_event_payload_with_one_hostile_value_is_read_or_refused_the_same(
    example: dict[str, Any], mutation: tuple[str, Any, Any]
) -> None:
    how, value, rng = mutation
    path = _pick_path(example["payload"], rng)
    data = _mutated(example["payload"], path, how, value)
    fast, slow = both(lambda: payload_from_data(example["kind"], data))
    assert fast == slow, (path, how)


SHAPE_OK = {
    "name": "abc", "level": 3, "ratio": 1, "on": True, "note": "a\nb", "at": "2026-11-23T10:00:00Z",
    "code": "AB", "where": "var/x", "either": "abc", "inner": {"port": 80},
    "ports": [{"port": 1, "host": "a.b"}], "tags": ["x", "y"], "by_name": {"web": {"port": 443}},
    "counts": {"a": 1}, "extra": {"k": [1, {"n": None}]}, "anything": [1, "two"],
}


@settings(max_examples=400, deadline=None)
@given(MUTATION, st.booleans())
def test_every_kind_of_field_reads_or_refuses_the_same(mutation: tuple[str, Any, Any], lenient: bool) -> None:
    """``Shape`` has a field of every kind the schema reads (tests/contract/test_schema.py), strict and
    lenient, so an extra key is refused by one and ignored by the other."""
    how, value, rng = mutation
    path = _pick_path(SHAPE_OK, rng)
    data = _mutated(SHAPE_OK, path, how, value)
    fast, slow = both(lambda: parse_dataclass(Shape, data, "shape", lenient=lenient))
    assert fast == slow, (path, how)


@dataclass(frozen=True)
class Bounded:
    """Bounds of both kinds on both kinds of number, and optional ones."""

    whole: int = field(default=0, metadata={"min": -5, "max": 5})
    real: float = field(default=0.0, metadata={"min": -0.5, "max": 0.5})
    maybe: int | None = field(default=None, metadata={"min": 1})
    choice: Literal[1, 2, "x"] | None = None
    flags: dict[str, bool] = field(default_factory=dict)
    reals: list[float] = field(default_factory=list)


class _Table(dict[str, Any]):
    """A dict subclass (TOML or a caller may hand one): the generated reader leaves it to the closures."""


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (Shape, {"name": "a", "level": "low", "ratio": 1, "high_only": 2**70}),
        (Shape, {"name": "a", "level": True}),  # True is not 3 ... and the Literal says so
        (Shape, {"name": "a", "level": 3.0}),  # equal to 3, but not of a Literal's types
        (Bounded, {"choice": 1.0}),
        (Bounded, {"choice": True}),  # equal to 1 and of a Literal's types: both accept it
        (Bounded, {"whole": 5, "real": 0.5, "maybe": 1}),
        (Bounded, {"whole": 6}),
        (Bounded, {"real": 1}),
        (Bounded, {"real": 0.5000001}),
        (Bounded, {"maybe": 0}),
        (Bounded, {"flags": {"a": 1}}),
        (Bounded, {"reals": [1, 2.5]}),  # an int in a float list becomes a float
        (Shape, {"name": "a", "level": "low", "ratio": 10**400}),
        (Shape, {"name": "a", "level": "low", "ratio": float("nan")}),
        (Shape, {"name": "a", "level": "low", "ratio": float("inf")}),
        (Shape, {"name": "a", "level": "low", "low_only": -2}),
        (Shape, {"name": "a", "level": "low", "low_only": -2.0000001}),
        (Shape, {"name": "a", "level": "low", "tags": ("x", "y")}),  # a tuple where JSON has a list
        (Shape, {"name": "a", "level": "low", "tags": ["x"] * 1000}),
        (Shape, {"name": "a", "level": "low", "tags": ["x"] * 1001}),
        (Shape, {"name": "a", "level": "low", "counts": {"a": True}}),
        (Shape, {"name": "a", "level": "low", "counts": {"A": 1}}),
        (Shape, {"name": "a", "level": "low", "extra": {"k" * 64: 1}}),
        (Shape, {"name": "a", "level": "low", "extra": {"k" * 65: 1}}),
        (Shape, {"name": "a" * 5, "level": "low"}),
        (Shape, {"name": "a" * 6, "level": "low"}),
        (Shape, {"name": "a", "level": "low", "code": None, "inner": None, "at": None}),
        (Shape, _Table(name="a", level="low", zz=1)),
        (Shape, {"name": "a", "level": "low", "zz": 1}),
        (Shape, ["name"]),
        (Port, {"port": 1, "host": "a.b", "zz": 1}),
        (Port, {"port": 65535}),
        (Port, {"port": 65536}),
        (Port, {"port": True}),
        (Tree, {"label": "a", "children": [{"label": "b", "children": [{"label": 3}]}]}),
        (Checked, {"low": 3, "high": 2}),
        (Checked, {"low": 2, "high": 3}),
        (Stamped, {"label": "a"}),
        (Slotted, {"label": "a", "tags": ["t"]}),
        (Mutable, {"label": "a", "tags": ["t"]}),
        (Clocked, {"label": "a"}),
        (Clocked, {"label": "a", "stamp": "s"}),
    ],
)
def test_edges_of_each_check_read_or_refuse_the_same(cls: type, data: Any) -> None:
    for lenient in (False, True):
        for path in ("t", ""):
            fast = outcome(partial(parse_dataclass, cls, data, path, lenient=lenient))
            slow = outcome(partial(reference_parse, cls, data, path, lenient=lenient))
            assert fast == slow


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["whole", "real", "maybe", "choice", "flags", "reals"]),
       st.one_of(HOSTILE, st.sampled_from(SPECIAL_FLOATS), st.lists(st.sampled_from([1, 1.5, True, None]))))
def test_numbers_and_their_bounds_read_or_refuse_the_same(key: str, value: Any) -> None:
    data = {key: value}
    fast = outcome(lambda: parse_dataclass(Bounded, data, "b"))
    assert fast == outcome(lambda: reference_parse(Bounded, data, "b"))


# --- schema: the generated writers ----------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    OMIT_NONE = True
    name: str
    note: str | None = None
    kept: str | None = "x"
    path: Path | None = None
    ports: list[Port] = field(default_factory=list)
    table: dict[str, Any] = field(default_factory=dict)


@pytest.mark.parametrize(
    "obj",
    [
        Written("a"),
        Written("a", note="n", kept=None, path=Path("/x"), ports=[Port(1)], table={"k": [Port(2), (1, 2)]}),
        Shape("a", "low", inner=Port(3), by_name={"w": Port(4)}, tags=("t",), where=Path("p")),
        Tree("a", [Tree("b")]),
        Slotted("a", ["t"]),
        *[payload_from_data(e["kind"], e["payload"]) for e in PAYLOADS],
        *[MESSAGE_TYPES[e["schema"]].from_data(e) for e in MESSAGES],
    ],
    ids=lambda obj: type(obj).__name__,
)
def test_the_generated_writers_write_what_the_reference_writes(obj: Any) -> None:
    written = to_data(obj)
    assert repr(written) == repr(reference_to_data(obj))
    assert json.dumps(written) == json.dumps(reference_to_data(obj))  # the same keys in the same order


# --- the bytes: JSON and the event's envelope -----------------------------------------------------

GOOD = (b'{"schema":"event/1","event_id":"' + b"a" * 32 + b'","seq":1,"journal_id":"ab",'
        b'"kind":"session_ended","occurred_at":"2026-11-23T10:00:00.000+00:00","replay":false,'
        b'"payload":{"reason":"done","duration_s":74.0}}')


@pytest.mark.parametrize(
    "payload",
    [
        GOOD,
        b"  " + GOOD + b"\n ",  # whitespace around: json's own rules
        GOOD + b" x",
        GOOD[:-1],
        b"\xef\xbb\xbf" + GOOD,
        b"\xff" + GOOD,  # not UTF-8
        GOOD.replace(b'"done"', b'"d\xc3"'),  # a cut multi-byte sequence
        GOOD.replace(b'"done"', b'"\xed\xa0\x80"'),  # a surrogate as UTF-8 bytes
        GOOD.replace(b'"done"', b'"\\ud800"'),  # a lone surrogate as an escape
        GOOD.replace(b"74.0", b"1e999"),
        GOOD.replace(b"74.0", b"NaN"),
        GOOD.replace(b"74.0", b"1" + b"0" * 400),
        GOOD.replace(b'"seq":1', b'"seq":1' + b"0" * 400),
        GOOD.replace(b'"seq":1', b'"seq":-1'),
        GOOD.replace(b'"seq":1', b'"seq":1.0'),
        GOOD.replace(b'"seq":1', b'"seq":true'),
        GOOD.replace(b'"seq":1', b'"seq":"1"'),
        GOOD.replace(b'"seq":1', b'"seq":1,"seq":2'),
        GOOD.replace(b'"replay":false', b'"replay":0'),
        GOOD.replace(b'"event/1"', b'"event/0"'),
        GOOD.replace(b'"event/1"', b'"event/2"'),
        GOOD.replace(b'"event/1"', b'["event/1"]'),
        GOOD.replace(b'"schema":"event/1",', b""),
        GOOD.replace(b'"kind":"session_ended"', b'"kind":"Session"'),
        GOOD.replace(b'"kind":"session_ended"', b'"kind":"new_kind"'),  # an unknown kind is kept
        GOOD.replace(b'"kind":"session_ended"', b'"kind":"session_ended","zz":{"deep":[1,2]}'),
        GOOD.replace(b'"2026-11-23T10:00:00.000+00:00"', b'"2026-11-23T10:00:00"'),
        GOOD.replace(b'"2026-11-23T10:00:00.000+00:00"', b'"yesterday"'),
        GOOD.replace(b'{"reason"', b'{"reason":"x","reason"'),
        GOOD.replace(b'"duration_s":74.0', b'"duration_s":' + b"[" * 20 + b"]" * 20),
        GOOD.replace(b'"duration_s":74.0', b'"x":' + b"[" * 14 + b"]" * 14),  # deep, within the limit
        GOOD.replace(b'"payload":{', b'"payload":{' + b",".join(b'"k%d":1' % i for i in range(70)) + b","),
        GOOD.replace(b'"a' + b"a" * 31, b'"A' + b"a" * 31),
        b"{}",
        b"[]",
        b"",
        b"null",
        b'{"schema":"event/1"}',
        b"{" * 5000,
        b"[" * 300_000,
    ],
)
def test_hostile_event_bytes_are_refused_in_the_same_words(payload: bytes) -> None:
    fast, slow = both(lambda: Event.parse(payload))
    assert fast == slow
    if payload == GOOD:
        assert fast[0] == "ok"


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=8),
    st.integers(min_value=0, max_value=len(GOOD)),
    st.integers(min_value=0, max_value=8),
)
def test_event_bytes_with_a_few_bytes_changed_are_read_or_refused_the_same(
    insert: bytes, at: int, cut: int
) -> None:
    payload = GOOD[:at] + insert + GOOD[at + cut:]
    fast, slow = both(lambda: Event.parse(payload))
    assert fast == slow


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                    max_size=3),
                    max_leaves=30),
       st.sampled_from(["", " ", "\n\t", " x"]))
def test_any_json_document_loads_the_same(document: Any, around: str) -> None:
    text = around.strip() + json.dumps(document) + around
    payload = text.encode()

    def load() -> Any:
        return wire.loads_object(payload, "w")

    fast, slow = both(load)
    assert fast == slow


# --- topics ---------------------------------------------------------------------------------------

PART = st.sampled_from([
    "c1", "hcm-ben-thanh", "kiosk-bt-03", "k", "K1", "-k", "k_1", "fleet", "fleet-2", "fleet2", "queue-x",
    "_center", "a" * 63, "a" * 64, "", "+", "#", "status", "health", "event", "blob", "cmd", "res", "req",
    "config", "state", "set", "ticket", "cert", "ticket_issued", "Ticket", "r-1.2:3_x", "r/x", "a" * 41,
    "queue", "called", "allocator", "stats",
])


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(["motcua/v1", "motcua/v1/", "other", ""]), st.lists(PART, min_size=0, max_size=5))
def test_topics_are_read_or_refused_the_same(start: str, parts: list[str]) -> None:
    topic = "/".join([start, *parts]) if start else "/".join(parts)
    for root in ("motcua/v1", "a.b+c"):  # a root with regex characters in it
        fast, slow = both(partial(parse_topic, topic, root))
        assert fast == slow, topic


@pytest.mark.parametrize(
    "topic",
    [
        "motcua/v1/c1/kiosk-1/status", "motcua/v1/c1/kiosk-1/event/ticket_issued",
        "motcua/v1/c1/kiosk-1/blob/r-1", "motcua/v1/c1/kiosk-1/cmd/res", "motcua/v1/c1/kiosk-1/config/state",
        "motcua/v1/c1/_center/queue/event",
        "motcua/v1/c1/fleet/status", "motcua/v1/c1/fleet-2/status", "motcua/v1/c1/kiosk-1/event",
        "motcua/v1/c1/kiosk-1/event/a/b", "motcua/v1/c1/kiosk-1/status\n", "motcua/v1/C1/kiosk-1/status",
        "motcua/v1/c1/kiosk-1/status/", "motcua/v1/c1/kiosk-1/" + "x" * 600, "motcua/v2/c1/kiosk-1/status",
        "motcua/v1/c1/kiosk-1/event/" + "a" * 40, "motcua/v1/c1/kiosk-1/event/" + "a" * 41,
        "motcua/v1/c1/kiosk-1/event/_x", "motcua/v1/c1/kiosk-1/event/ticket-issued",
        "motcua/v1/c1/kiosk-1/blob/" + "r" * 64, "motcua/v1/c1/kiosk-1/blob/" + "r" * 65,
        "motcua/v1/c1/kiosk-1/blob/r x", "motcua/v1/c1/kiosk-1/cmd/req", "motcua/v1/c1/root-1/health",
    ],
)
def test_known_topics_are_read_or_refused_the_same(topic: str) -> None:
    fast, slow = both(lambda: parse_topic(topic))
    assert fast == slow


def test_a_refusal_is_still_a_contract_error() -> None:
    """The fast paths raise nothing of their own: what they do not accept, the checks refuse."""
    with pytest.raises(ContractError):
        parse_topic("motcua/v1/c1/fleet/status")
    with pytest.raises(SchemaError, match=r"event\.seq: expected a number at least 1, got 0"):
        Event.parse(GOOD.replace(b'"seq":1', b'"seq":0'))

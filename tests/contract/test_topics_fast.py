"""``contract.topics.parse_topic``'s one regex for a kiosk's topics (nearly every message a fleet
worker reads) against the checks part by part that it stands in for: every topic accepted by one is
accepted by the other as the same ``TopicRef``, and every refusal is the same refusal, in the same
words."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import topics
from contract.errors import ContractError
from contract.topics import parse_topic


@contextmanager
def reference() -> Iterator[None]:
    """``parse_topic`` without its regex: every topic goes the part-by-part way."""
    saved = topics._kiosk_topic
    never = re.compile(r"(?!)()()()()()")
    topics._kiosk_topic = lambda root: never
    try:
        yield
    finally:
        topics._kiosk_topic = saved


def outcome(read: Callable[[], Any]) -> tuple[Any, ...]:
    """What a read gives, compared exactly: the value's repr, or the exception's type and words."""
    try:
        value = read()
    except Exception as exc:  # the same refusal, whatever its type
        return ("refused", type(exc).__name__, str(exc))
    return ("ok", type(value).__name__, repr(value))


def both(read: Callable[[], Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    fast = outcome(read)
    with reference():
        slow = outcome(read)
    return fast, slow


def test_the_reference_is_not_the_fast_path() -> None:
    """Without this, every comparison below could compare the fast path with itself."""
    assert topics._kiosk_topic("motcua/v1").fullmatch("motcua/v1/c1/k1/status") is not None
    with reference():
        assert topics._kiosk_topic("motcua/v1").fullmatch("motcua/v1/c1/k1/status") is None


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

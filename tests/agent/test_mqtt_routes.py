"""``common.mqtt.Routes``: which subscriptions a topic reaches, as paho's per-filter matcher says."""

from __future__ import annotations

import itertools
from typing import Any

import paho.mqtt.client as paho
import pytest

from common.mqtt import Routes, topic_matches
from contract.topics import fleet_center_filters, fleet_filters

TOPICS = [
    "motcua/v1/c1/k1/event/lookup",
    "motcua/v1/c1/k1/status",
    "motcua/v1/c1/k1/health",
    "motcua/v1/c1/k1/cmd/res",
    "motcua/v1/c1/k1/config/state",
    "motcua/v1/c1/k1/blob/r-1",
    "motcua/v1/c1/_center/allocator/status",
    "motcua/v1/c1/k1/event",
    "motcua/v1/c1/k1/event/a/b",
    "other/v1/c1/k1/status",
    "motcua/v1/c1/k1/cmd/req",
]


def test_the_ingests_filters_route_as_the_plain_matcher_does() -> None:
    filters = [*fleet_filters("motcua/v1", "+", "fleet"), *fleet_center_filters("motcua/v1", "+")]
    routes = Routes(filters)
    for topic in TOPICS:
        expected = [f for f in filters if topic_matches(f, topic)]
        assert list(routes.filters(topic)) == expected, topic
    assert routes.filters("motcua/v1/c1/k1/event/lookup") == ("$share/fleet/motcua/v1/+/+/event/+",)
    assert routes.filters("other/v1/c1/k1/status") == ()


def test_overlapping_filters_are_all_reached_in_subscription_order() -> None:
    filters = ["motcua/#", "$share/g/motcua/v1/+/+/status", "motcua/v1/+/+/status", "+/v1/c1/#", "x/y"]
    for order in itertools.permutations(filters):
        routes = Routes(list(order))
        for topic in TOPICS:
            plain = [f.split("/", 2)[2] if f.startswith("$share/") else f for f in order]
            expected = [f for f, p in zip(order, plain, strict=True) if paho.topic_matches_sub(p, topic)]
            assert list(routes.filters(topic)) == expected, (order, topic)
    assert list(Routes(filters).filters("motcua/v1/c1/k1/status")) == filters[:4]


def test_a_topic_seen_before_is_answered_from_memory_and_the_memory_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    filters = [*fleet_filters("motcua/v1", "+", "fleet"), *fleet_center_filters("motcua/v1", "+")]
    routes = Routes(filters)
    walks: list[str] = []
    walk = routes._matcher.iter_match

    def counted(topic: str) -> Any:
        walks.append(topic)
        return walk(topic)

    monkeypatch.setattr(routes._matcher, "iter_match", counted)
    for _ in range(50):
        for topic in TOPICS:
            assert list(routes.filters(topic)) == [f for f in filters if topic_matches(f, topic)]
    assert sorted(walks) == sorted(TOPICS)  # each topic walked once
    monkeypatch.setattr(Routes, "MEMO_LIMIT", 100)
    for n in range(1000):  # a client publishing to ever new topics
        assert routes.filters(f"motcua/v1/c1/k{n}/event/x{n}") == ("$share/fleet/motcua/v1/+/+/event/+",)
    assert len(routes._memo) <= 100

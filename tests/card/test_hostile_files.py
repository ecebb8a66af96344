"""A hostile or broken card: every parser, fed random and mutated files, fails only with the card
stack's own MalformedDataError (never IndexError, TypeError, UnicodeDecodeError...)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.card import lds
from drivers.card.ca import parse_dg14
from drivers.card.errors import MalformedDataError
from drivers.card.pace import parse_card_access
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, build_files
from drivers.card.sod import parse_sod

PARSERS: dict[int, Callable[[bytes], Any]] = {
    lds.DG1.fid: lds.parse_dg1,
    lds.DG2.fid: lds.parse_dg2,
    lds.DG13.fid: lds.parse_dg13,
    lds.DG14.fid: parse_dg14,
    lds.EF_SOD.fid: parse_sod,
    lds.EF_COM.fid: lds.parse_com,
}


def _only_malformed(parser: Callable[[bytes], Any], data: bytes) -> None:
    """Parse or raise MalformedDataError; any other exception fails the test."""
    with contextlib.suppress(MalformedDataError):
        parser(data)


@settings(max_examples=200, deadline=None)
@given(fid=st.sampled_from(sorted(PARSERS)), data=st.binary(max_size=300))
def test_random_bytes(fid: int, data: bytes) -> None:
    _only_malformed(PARSERS[fid], data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fid=st.sampled_from(sorted(PARSERS)),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(1, 2000)),
)
def test_mutated_genuine_files(
    adult: CardProfile, pki: TestPki, fid: int, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(_files(adult, pki)[fid])
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    _only_malformed(PARSERS[fid], bytes(data))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=120))
def test_card_access_random(data: bytes) -> None:
    _only_malformed(parse_card_access, data)


_CACHE: dict[str, dict[int, bytes]] = {}


def _files(profile: CardProfile, pki: TestPki) -> dict[int, bytes]:
    key = profile.id_number + str(pki.directory)
    if key not in _CACHE:
        _CACHE[key] = build_files(profile, pki)
    return _CACHE[key]


@pytest.mark.parametrize("fid", sorted(PARSERS))
def test_genuine_files_parse(adult: CardProfile, pki: TestPki, fid: int) -> None:
    assert PARSERS[fid](_files(adult, pki)[fid]) is not None

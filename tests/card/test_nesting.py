"""Nesting depth is bounded where the card's files are parsed: a hostile card's deep TLV is refused with
MalformedDataError (the card stack's error), never RecursionError, through the parsers and a full read."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator

import pytest

from drivers.card import lds, tlv
from drivers.card.ca import parse_dg14
from drivers.card.errors import CardError, MalformedDataError, WrongKeyError
from drivers.card.keys import AccessKey
from drivers.card.pace import build_card_access, parse_card_access
from drivers.card.reader import ReadOptions, read_identity_over
from drivers.card.service import CardReaderService
from drivers.card.sim.chip import DEFAULT_PACE, CardFaults, VirtualChip
from drivers.card.sim.hostile import HOSTILE_DEPTH, nested, with_deep_nesting
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, build_files
from drivers.card.sim.vicc import VirtualCard
from drivers.card.sod import parse_sod
from drivers.card.transport import DirectTransport

Maker = Callable[..., tuple[VirtualChip, DirectTransport]]


def _key(profile: CardProfile) -> AccessKey:
    return AccessKey.from_mrz(
        profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
    )


@pytest.fixture
def low_recursion_limit() -> Iterator[None]:
    """Python's default limit (1000): what a kiosk runs with, and what HOSTILE_DEPTH exceeds."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(old)


def test_check_nesting_bound_is_exact() -> None:
    tlv.check_nesting(nested(tlv.MAX_DEPTH - 1))  # innermost element at level MAX_DEPTH
    with pytest.raises(MalformedDataError, match="nested deeper than 32 levels"):
        tlv.check_nesting(nested(tlv.MAX_DEPTH))  # innermost at MAX_DEPTH + 1


def test_check_nesting_follows_ber_forms_the_strict_parser_refuses() -> None:
    indefinite = b"\x05\x00"
    for _ in range(40):
        indefinite = b"\x30\x80" + indefinite + b"\x00\x00"  # BER indefinite length
    with pytest.raises(MalformedDataError):
        tlv.check_nesting(indefinite)
    long_form = b"\x05\x00"
    for _ in range(40):  # 8-byte length fields (the strict parser stops at 4)
        long_form = b"\x30\x88" + len(long_form).to_bytes(8, "big") + long_form
    with pytest.raises(MalformedDataError):
        tlv.check_nesting(long_form)
    high_tag = b"\x05\x00"
    for _ in range(40):  # a 6-byte tag number, constructed
        high_tag = b"\x3f\x81\x81\x81\x81\x01" + tlv.encode_length(len(high_tag)) + high_tag
    with pytest.raises(MalformedDataError):
        tlv.check_nesting(high_tag)
    # siblings do not add up: many shallow elements are fine, and garbage stops the scan quietly
    tlv.check_nesting(nested(5) * 200 + b"\x30\x85\xff")


def _dg13_with_field_1_at(wrappers: int) -> bytes:
    field = tlv.encode(0x30, tlv.encode(0x02, b"\x01") + tlv.encode(0x13, b"079090001234"))
    return tlv.encode(0x6D, nested(wrappers, inner=field))


def test_dg13_field_at_the_deepest_allowed_level_is_read_one_deeper_is_refused() -> None:
    # 6D is level 1, the wrappers 2..w+1, the field SEQUENCE w+2, its INTEGER and string w+3
    ok = lds.parse_dg13(_dg13_with_field_1_at(tlv.MAX_DEPTH - 3))
    assert ok.text(1) == "079090001234"
    with pytest.raises(MalformedDataError, match="DG13: elements nested deeper than 32 levels"):
        lds.parse_dg13(_dg13_with_field_1_at(tlv.MAX_DEPTH - 2))


@pytest.mark.usefixtures("low_recursion_limit")
def test_every_parser_refuses_hostile_depth(adult: CardProfile, pki: TestPki) -> None:
    files = build_files(adult, pki)
    cases: dict[str, tuple[Callable[[bytes], object], bytes]] = {
        "DG13": (lds.parse_dg13, files[lds.DG13.fid]),
        "DG2": (lds.parse_dg2, files[lds.DG2.fid]),
        "DG14": (parse_dg14, files[lds.DG14.fid]),
        "EF.CardAccess": (parse_card_access, build_card_access([DEFAULT_PACE])),
    }
    for name, (parser, genuine) in cases.items():
        assert parser(genuine)  # the genuine file parses
        with pytest.raises(MalformedDataError, match=re.escape(f"{name}: elements nested deeper")):
            parser(with_deep_nesting(name, genuine))
    with pytest.raises(MalformedDataError, match=r"EF\.SOD: elements nested deeper"):
        parse_sod(tlv.encode(0x77, nested(HOSTILE_DEPTH)))
    with pytest.raises(MalformedDataError, match="TLV: elements nested deeper"):
        tlv.check_nesting(nested(HOSTILE_DEPTH))


@pytest.mark.usefixtures("low_recursion_limit")
@pytest.mark.parametrize("where", ["DG13", "DG2", "DG14"])
def test_full_read_of_a_hostile_chip_is_malformed_data(
    direct_card: Maker, adult: CardProfile, where: str
) -> None:
    """The hostile data group is signed into EF.SOD: only the depth bound stands between it and the
    parser."""
    chip, transport = direct_card(adult, CardFaults(deep_nesting=where))
    assert len(chip.files[lds.DATA_GROUPS[int(where[2:])].fid]) > 3 * HOSTILE_DEPTH
    with pytest.raises(MalformedDataError, match=f"{where}: elements nested deeper"):
        read_identity_over(transport, [_key(adult)], ReadOptions(with_photo=where == "DG2"))


@pytest.mark.usefixtures("low_recursion_limit")
def test_pace_read_of_a_chip_with_hostile_card_access(direct_card: Maker, married: CardProfile) -> None:
    """EF.CardAccess is read before any key is proven: a hostile one means "no PACE", not a crash.

    The reader reads it with one 256-byte READ BINARY, so through a read it nests 90 levels (beyond the
    bound, within Python's recursion limit); the parser test above feeds it thousands."""
    chip, transport = direct_card(married, CardFaults(deep_nesting="EF.CardAccess"))
    from drivers.card.pace import EF_CARD_ACCESS_FID

    card_access = chip.files[EF_CARD_ACCESS_FID]
    assert len(card_access) <= 256
    with pytest.raises(MalformedDataError, match=r"EF\.CardAccess: elements nested deeper"):
        parse_card_access(card_access)
    with pytest.raises(WrongKeyError):  # the CAN is skipped (no usable PACE), no other key given
        read_identity_over(transport, [AccessKey.from_can(married.id_number[-6:])], ReadOptions())
    _chip, transport = direct_card(married, CardFaults(deep_nesting="EF.CardAccess"))
    record, _ = read_identity_over(
        transport, [AccessKey.from_can(married.id_number[-6:]), _key(married)], ReadOptions()
    )
    assert record.full_name == "Trần Thị Bích Ngọc"  # falls back to BAC


@pytest.mark.pcsc
@pytest.mark.usefixtures("low_recursion_limit")
def test_hostile_chip_through_pcscd(
    pcscd: str, inserted: Callable[..., VirtualCard], adult: CardProfile
) -> None:
    inserted(adult, CardFaults(deep_nesting="DG13"))
    service = CardReaderService(pcscd, None, timeout_s=5.0)
    with pytest.raises(CardError) as info:
        service.read_identity([_key(adult)])
    assert isinstance(info.value, MalformedDataError)
    assert "DG13: elements nested deeper than 32 levels" in info.value.message
    assert info.value.code == "card_malformed_data"

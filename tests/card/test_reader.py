"""The read sequence over an in-process transport: exact APDU counts, fallbacks, and every failure path
of a misbehaving card (the same engine that answers through vpcd)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from drivers.card import lds, tlv
from drivers.card.errors import (
    ChipAuthenticationError,
    MalformedDataError,
    NotIdCardError,
    SecureMessagingError,
    WrongKeyError,
)
from drivers.card.files import JMRTD_BLOCK, FileAccessError, FileReader
from drivers.card.keys import AccessKey, access_keys_from_cccd_qr
from drivers.card.reader import ReadOptions, read_identity_over
from drivers.card.sim.chip import CardFaults, VirtualChip
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, build_files
from drivers.card.sim.vicc import VirtualCard
from drivers.card.sod import Authenticity, load_trust_store
from drivers.card.transport import CardTransport, DirectTransport

Maker = Callable[..., tuple[VirtualChip, DirectTransport]]


def _key(profile: CardProfile) -> AccessKey:
    return AccessKey.from_mrz(
        profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
    )


def _sizes(profile: CardProfile, pki: TestPki) -> dict[str, int]:
    files = build_files(profile, pki)
    return {ef.name: len(files[ef.fid]) for ef in (lds.EF_SOD, lds.DG1, lds.DG13, lds.DG2, lds.DG15)}


@pytest.mark.parametrize("block", [231, JMRTD_BLOCK])
def test_identity_read_uses_the_optimal_apdu_count(
    direct_card: Maker, adult: CardProfile, pki: TestPki, block: int
) -> None:
    chip, transport = direct_card(adult)
    record, report = read_identity_over(
        transport,
        [_key(adult)],
        ReadOptions(active_auth=False, chip_auth=False, block=block, trust=load_trust_store(pki.trust_dir)),
    )
    sizes = _sizes(adult, pki)
    optimal = 3 + sum(math.ceil(sizes[name] / block) for name in ("EF.SOD", "DG1", "DG13"))
    assert report.apdu_count == chip.apdu_count == optimal
    # the data verified against the CSCA, but with AA and CA off the chip itself was not authenticated
    assert (record.authenticity, record.authenticity_code) == (
        Authenticity.NOT_VERIFIED,
        "chip_not_authenticated",
    )
    assert (record.full_name, record.birth_date, record.expiry_date) == (
        "Nguyễn Văn An",
        date(1990, 5, 17),
        date(2030, 5, 17),
    )
    assert record.photo is None and record.data_groups == (1, 13)


def test_extended_length_reads_each_file_in_one_apdu(direct_card: Maker, adult: CardProfile) -> None:
    _chip, transport = direct_card(adult)
    record, report = read_identity_over(
        transport,
        [_key(adult)],
        ReadOptions(with_photo=True, active_auth=False, chip_auth=False, extended_block=65511),
    )
    assert report.apdu_count == 3 + 4  # SOD, DG1, DG13, DG2
    assert record.photo is not None and len(record.photo) == 15000 and record.photo_mime == "image/jpeg"


def test_extended_length_refused_falls_back_to_short(
    direct_card: Maker, adult: CardProfile, pki: TestPki
) -> None:
    _chip, transport = direct_card(adult, CardFaults(no_extended=True))
    record, report = read_identity_over(
        transport, [_key(adult)], ReadOptions(active_auth=False, chip_auth=False, extended_block=65511)
    )
    sizes = _sizes(adult, pki)
    # one refused extended READ BINARY (6700), then short blocks for everything
    assert report.apdu_count == 3 + 1 + sum(math.ceil(sizes[n] / 231) for n in ("EF.SOD", "DG1", "DG13"))
    assert record.id_number == "079090001234"


def test_card_without_sfi_support_gets_one_select_per_file(
    direct_card: Maker, adult: CardProfile, pki: TestPki
) -> None:
    _chip, transport = direct_card(adult, CardFaults(no_sfi=True))
    _, report = read_identity_over(transport, [_key(adult)], ReadOptions(active_auth=False, chip_auth=False))
    sizes = _sizes(adult, pki)
    reads = sum(math.ceil(sizes[n] / 231) for n in ("EF.SOD", "DG1", "DG13"))
    assert report.apdu_count == 3 + 1 + 3 + reads  # one refused SFI read, then a SELECT per file


def test_active_authentication_passes(direct_card: Maker, married: CardProfile) -> None:
    _chip, transport = direct_card(married)
    record, _ = read_identity_over(transport, [_key(married)], ReadOptions(active_auth=True, chip_auth=False))
    assert record.active_auth == "passed"
    assert record.spouse_name == "Lê Hoàng Nam"
    assert (record.father_name, record.mother_name) == ("Trần Văn Hùng", "Phạm Thu Hà")


def test_qr_candidates_open_the_card_of_an_elderly_citizen(direct_card: Maker, elderly: CardProfile) -> None:
    _chip, transport = direct_card(elderly)
    record, report = read_identity_over(transport, access_keys_from_cccd_qr(elderly.qr_text), ReadOptions())
    assert report.key_label == "qr:candidate0" and report.keys_tried == 1
    assert record.expiry_date is None  # "Không thời hạn"
    assert record.age_on(date(2026, 11, 23)) == 78


def test_later_qr_candidate_is_tried_after_a_refusal(direct_card: Maker, adult: CardProfile) -> None:
    _chip, transport = direct_card(adult)
    keys = [AccessKey.from_mrz(adult.document_number, "900517", "250517", label="wrong"), _key(adult)]
    _, report = read_identity_over(transport, keys, ReadOptions(active_auth=False, chip_auth=False))
    assert (report.keys_tried, report.key_label) == (2, "mrz")
    assert report.apdu_count == 1 + 2 + 2 + 8


def test_wrong_key(direct_card: Maker, adult: CardProfile) -> None:
    _chip, transport = direct_card(adult)
    with pytest.raises(WrongKeyError) as info:
        read_identity_over(transport, [AccessKey.from_mrz("090001234", "900518", "300517")], ReadOptions())
    assert info.value.code == "card_wrong_key"


def test_not_an_id_card(direct_card: Maker, adult: CardProfile) -> None:
    _chip, transport = direct_card(adult, CardFaults(not_id_card=True))
    with pytest.raises(NotIdCardError) as info:
        read_identity_over(transport, [_key(adult)], ReadOptions())
    assert info.value.code == "card_not_id_card"
    assert transport.stats.apdus == 1


def test_bad_response_mac(direct_card: Maker, adult: CardProfile) -> None:
    _chip, transport = direct_card(adult, CardFaults(bad_mac=True))
    with pytest.raises(SecureMessagingError, match="MAC"):
        read_identity_over(transport, [_key(adult)], ReadOptions())


def test_altered_dg13_is_reported_not_hidden(direct_card: Maker, adult: CardProfile, pki: TestPki) -> None:
    _chip, transport = direct_card(adult, CardFaults(alter_dg13=True))
    record, _ = read_identity_over(
        transport, [_key(adult)], ReadOptions(trust=load_trust_store(pki.trust_dir))
    )
    assert (record.authenticity, record.authenticity_code) == (Authenticity.FAILED, "hash_mismatch")
    assert record.authenticity_reason == "hash of DG13 does not match EF.SOD"
    assert not record.birth_date_trusted


def test_truncated_file(direct_card: Maker, adult: CardProfile) -> None:
    _chip, transport = direct_card(adult, CardFaults(truncate_dg13=True))
    with pytest.raises(MalformedDataError, match="truncated"):
        read_identity_over(transport, [_key(adult)], ReadOptions())


def test_hostile_tlv_lengths_signed_into_the_sod(direct_card: Maker, adult: CardProfile) -> None:
    _chip, transport = direct_card(adult, CardFaults(bad_tlv_dg13=True))
    with pytest.raises(MalformedDataError) as info:
        read_identity_over(transport, [_key(adult)], ReadOptions())
    assert info.value.code == "card_malformed_data"


def test_dg3_answers_6982_and_is_never_read_for_identity(direct_card: Maker, adult: CardProfile) -> None:
    from drivers.card.reader import ReadReport, open_secure_channel, select_application

    _chip, transport = direct_card(adult)
    select_application(transport)
    secure = open_secure_channel(transport, [_key(adult)], ReadReport())
    with pytest.raises(FileAccessError) as info:
        FileReader(secure).read(lds.DG3)
    assert info.value.sw == 0x6982
    assert lds.parse_com(FileReader(secure).read(lds.EF_COM)).data_groups() == [1, 2, 3, 13, 14, 15]


def test_wipe_clears_every_personal_field(direct_card: Maker, married: CardProfile) -> None:
    _chip, transport = direct_card(married)
    record, _ = read_identity_over(transport, [_key(married)], ReadOptions(with_photo=True))
    assert record.photo and record.spouse_name
    assert "Ngọc" not in repr(record)
    record.wipe()
    assert record.is_wiped()
    assert record.full_name == "" and record.photo is None and record.birth_date is None
    # not personal: kept for the event (no trust folder here: not verified)
    assert (record.authenticity, record.authenticity_code) == (Authenticity.NOT_VERIFIED, "no_trust_store")


class _ScriptedCard(CardTransport):
    """A real transport answering from a script: (expected APDU hex, answer hex) pairs."""

    def __init__(self, script: list[tuple[str, str]]) -> None:
        super().__init__()
        self.script = list(script)

    def _raw(self, apdu: bytes) -> bytes:
        expected, answer = self.script.pop(0)
        assert apdu.hex().upper() == expected
        return bytes.fromhex(answer)


def test_file_reader_follows_6cxx_for_one_read_only() -> None:
    dg1 = lds.build_dg1(
        "I<UTOD231458907<<<<<<<<<<<<<<<7408122F1204159UTO<<<<<<<<<<<6ERIKSSON<<ANNA<MARIA<<<<<<<<<<"
    )
    card = _ScriptedCard(
        [
            ("00B08100E7", "6C5F"),  # the card wants Le = 0x5F = 95 (the file's size)
            ("00B081005F", dg1.hex() + "9000"),
            ("00B08D00E7", "6A82"),  # the next file: full block again, and DG13 is missing
        ]
    )
    reader = FileReader(card)
    assert reader.read(lds.DG1) == dg1
    with pytest.raises(FileAccessError) as info:
        reader.read(lds.DG13)
    assert info.value.sw == 0x6A82 and not card.script


def test_file_reader_shrinks_block_on_6700_and_reads_on_by_offset() -> None:
    body = bytes(range(256)) * 2
    data = tlv.encode(0x6D, body)  # 516 bytes
    card = _ScriptedCard(
        [
            ("00B08D00E7", "6700"),
            ("00B08D00DF", data[:223].hex() + "9000"),
            ("00B000DFDF", data[223:446].hex() + "9000"),
            ("00B001BE46", data[446:].hex() + "9000"),
        ]
    )
    assert FileReader(card).read(lds.DG13) == data
    assert card.stats.apdus == 4


def test_chip_authentication_replaces_the_session_keys(
    direct_card: Maker, adult: CardProfile, pki: TestPki
) -> None:
    _chip, transport = direct_card(adult)
    record, report = read_identity_over(
        transport, [_key(adult)], ReadOptions(trust=load_trust_store(pki.trust_dir))
    )
    assert (record.chip_auth, record.active_auth) == ("passed", "not_checked")  # CA makes AA redundant
    assert record.authenticity is Authenticity.GENUINE and 14 in record.data_groups
    sizes = _sizes(adult, pki)
    dg14 = len(build_files(adult, pki)[lds.DG14.fid])
    # BAC, SOD (231-byte blocks), DG14, MSE:Set AT, GENERAL AUTHENTICATE, then DG1 and DG13 under AES (223)
    expected = 3 + math.ceil(sizes["EF.SOD"] / 231) + math.ceil(dg14 / 231) + 2
    expected += math.ceil(sizes["DG1"] / 223) + math.ceil(sizes["DG13"] / 223)
    assert report.apdu_count == expected


def test_cloned_chip_without_the_dg14_key_is_caught(adult: CardProfile, pki: TestPki) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec as crypto_ec

    files = build_files(adult, pki)  # DG14 and EF.SOD copied from the genuine card
    clone = VirtualChip(
        files, _key(adult), pki.aa_key, ca_key=crypto_ec.generate_private_key(crypto_ec.SECP256R1())
    )
    with pytest.raises(SecureMessagingError, match="chip authentication failed") as info:
        read_identity_over(DirectTransport(clone.process), [_key(adult)], ReadOptions())
    assert isinstance(info.value, ChipAuthenticationError) and info.value.code == "card_chip_auth_failed"
    assert (info.value.verdict.authenticity, info.value.verdict.code) == (
        Authenticity.FAILED,
        "chip_auth_failed",
    )


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_rsa_active_authentication_iso9796_2(married: CardProfile, pki: TestPki, rsa_key: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pki = dataclasses.replace(pki, aa_key=rsa_key)  # DG15 now carries an RSA key
    card = VirtualCard(married, rsa_pki)
    record, report = read_identity_over(
        DirectTransport(card.chip.process), [_key(married)], ReadOptions(chip_auth=False)
    )
    assert record.active_auth == "passed" and "active_auth" in report.timings_ms
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    impostor = VirtualChip(build_files(married, rsa_pki), _key(married), other_key)  # cloned files
    record, _ = read_identity_over(
        DirectTransport(impostor.process), [_key(married)], ReadOptions(chip_auth=False)
    )
    assert record.active_auth == "failed"
    assert (record.authenticity, record.authenticity_code) == (Authenticity.FAILED, "active_auth_failed")


def test_iso9796_2_verifier_rejects_tampering(rsa_key: Any) -> None:
    from drivers.card import aa

    challenge = bytes.fromhex("0102030405060708")
    signature = aa.sign(rsa_key, challenge)
    public = rsa_key.public_key()
    assert aa.verify(public, challenge, signature)
    assert not aa.verify(public, bytes(8), signature)  # another challenge
    n = public.public_numbers().n
    other = n - int.from_bytes(signature, "big")  # the other of s and n - s is accepted too
    assert aa.verify(public, challenge, other.to_bytes(len(signature), "big"))
    assert not aa.verify(
        public, challenge, (int.from_bytes(signature, "big") ^ 1).to_bytes(len(signature), "big")
    )
    assert not aa.verify(public, challenge, b"")

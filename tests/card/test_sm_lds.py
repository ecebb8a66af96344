"""Secure channel properties (both sides, tampering), LDS round trips, DG13 variants, passive
authentication."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card import lds, tlv
from drivers.card.apdu import CommandApdu, ResponseApdu
from drivers.card.errors import CardProtocolError, MalformedDataError, SecureMessagingError
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, build_files, build_sod, dg13_values
from drivers.card.sm import SmSession, max_plain_block
from drivers.card.sod import Authenticity, load_trust_store, parse_sod, passive_authentication

KEYS = (bytes(range(16)), bytes(range(16, 32)), bytes.fromhex("0011223344556677"))
AES_KEYS = (bytes(range(32)), bytes(range(32, 64)), bytes(15) + b"\x05")


def _pair(cipher: str = "3des") -> tuple[SmSession, SmSession]:
    keys = KEYS if cipher == "3des" else AES_KEYS
    return SmSession(*keys, cipher=cipher), SmSession(*keys, cipher=cipher)


@settings(max_examples=60, deadline=None)
@given(
    ins=st.sampled_from([0xA4, 0xB0, 0x88, 0x84]),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=64),
    le=st.one_of(st.none(), st.integers(1, 256)),
    answer=st.binary(max_size=231),
    sw=st.sampled_from([0x9000, 0x6282, 0x6A82, 0x6982]),
    cipher=st.sampled_from(["3des", "aes"]),
)
def test_channel_round_trip(
    ins: int, p1: int, p2: int, data: bytes, le: int | None, answer: bytes, sw: int, cipher: str
) -> None:
    reader, card = _pair(cipher)
    sent = CommandApdu(0x00, ins, p1, p2, data, le)
    wire = CommandApdu.decode(reader.wrap_command(sent).encode())
    got = card.unwrap_command(wire)
    assert (got.cla, got.ins, got.p1, got.p2, got.data, got.le) == (0x00, ins, p1, p2, data, le)
    back = reader.unwrap_response(ResponseApdu.decode(card.wrap_response(ResponseApdu(answer, sw)).encode()))
    assert back == ResponseApdu(answer, sw)
    start = int.from_bytes((KEYS if cipher == "3des" else AES_KEYS)[2], "big")
    assert reader.ssc == card.ssc == start + 2


@settings(max_examples=60, deadline=None)
@given(
    answer=st.binary(min_size=1, max_size=100),
    flip=st.integers(0, 10_000),
    bit=st.integers(0, 7),
    cipher=st.sampled_from(["3des", "aes"]),
)
def test_any_flipped_bit_in_a_protected_response_is_detected(
    answer: bytes, flip: int, bit: int, cipher: str
) -> None:
    reader, card = _pair(cipher)
    command = reader.wrap_command(CommandApdu(0x00, 0xB0, 0, 0, le=len(answer)))
    card.unwrap_command(CommandApdu.decode(command.encode()))
    protected = bytearray(card.wrap_response(ResponseApdu(answer, 0x9000)).data)
    protected[flip % len(protected)] ^= 1 << bit
    with pytest.raises((SecureMessagingError, MalformedDataError)):
        reader.unwrap_response(ResponseApdu(bytes(protected), 0x9000))


def test_max_plain_block_sizes() -> None:
    assert max_plain_block() == 231  # 3DES: JMRTD's 223 leaves one 8-byte block unused
    assert max_plain_block(block=16) == 223  # AES: 223 is the most
    assert max_plain_block(extended=True) == 65511


def test_apdu_encodings() -> None:
    assert CommandApdu(0, 0xB0, 0, 0, le=256).encode() == bytes.fromhex("00B0000000")
    ext = CommandApdu(0x0C, 0xB0, 0, 0, bytes(3), le=65536, extended=True)
    assert ext.encode() == bytes.fromhex("0CB000000000030000000000")
    assert CommandApdu.decode(ext.encode()) == ext
    with pytest.raises(CardProtocolError):
        CommandApdu.decode(bytes.fromhex("00A4040C07A000"))


def test_dg13_round_trip_with_spouse_and_parents(married: CardProfile) -> None:
    dg = lds.parse_dg13(lds.build_dg13(dg13_values(married)))
    assert dg.text(2) == "Trần Thị Bích Ngọc"
    assert dg.values[13] == ["Trần Văn Hùng", "Phạm Thu Hà"]
    assert dg.text(14) == "Lê Hoàng Nam"
    assert lds.parse_vn_date(dg.text(3)) is not None


def test_dg13_flat_layout_and_unknown_fields_are_kept() -> None:
    """Some cards put the field SEQUENCEs straight after the OID, and may carry fields we do not know."""

    def field(n: int, *values: bytes) -> bytes:
        return tlv.encode(0x30, tlv.encode(0x02, bytes([n])) + b"".join(values))

    body = (
        tlv.encode(0x02, b"\x01")
        + lds.DG13_OID
        + field(1, tlv.encode(0x13, b"001148005678"))
        + field(2, tlv.encode(0x0C, "Vũ Thị Hồng Nhung".encode()))
        + field(12, tlv.encode(0x0C, "Không thời hạn".encode()))
        + field(21, tlv.encode(0x0C, b"abc"))
        + field(22, tlv.encode(0x04, b"\x01\x02"))
    )
    dg = lds.parse_dg13(tlv.encode(0x6D, tlv.encode(0x30, body)))
    assert dg.text(1) == "001148005678"
    assert lds.parse_vn_date(dg.text(12)) is None
    assert dg.values[21] == ["abc"]
    assert dg.raw[22] == bytes.fromhex("04020102")


def test_dg13_without_id_number_is_rejected() -> None:
    with pytest.raises(MalformedDataError, match="field 1"):
        lds.parse_dg13(tlv.encode(0x6D, tlv.encode(0x30, tlv.encode(0x02, b"\x01") + lds.DG13_OID)))


def test_com_dg1_dg2_round_trips(adult: CardProfile, pki: TestPki) -> None:
    files = build_files(adult, pki)
    assert lds.parse_com(files[lds.EF_COM.fid]).data_groups() == [1, 2, 3, 13, 14, 15]
    assert lds.parse_dg1(files[lds.DG1.fid]).document_number == "090001234"
    face = lds.parse_dg2(files[lds.DG2.fid])
    assert face.mime == "image/jpeg" and len(face.data) == 15000 and face.data[:2] == b"\xff\xd8"
    assert len(files[lds.DG2.fid]) > 15000


def _dg_files(files: dict[int, bytes]) -> dict[int, bytes]:
    return {1: files[lds.DG1.fid], 13: files[lds.DG13.fid]}


def test_passive_authentication_states(adult: CardProfile, pki: TestPki, tmp_path: Path) -> None:
    files = build_files(adult, pki)
    sod = parse_sod(files[lds.EF_SOD.fid])
    assert sod.hash_algorithm == "sha256" and sod.data_groups() == [1, 2, 13, 14, 15]
    assert sod.dg_hashes[1] == hashlib.sha256(files[lds.DG1.fid]).digest()
    trust = load_trust_store(pki.trust_dir)
    assert passive_authentication(sod, _dg_files(files), trust).authenticity is Authenticity.GENUINE
    result = passive_authentication(sod, _dg_files(files), None)
    assert (result.authenticity, result.code) == (Authenticity.NOT_VERIFIED, "no_trust_store")
    other = TestPki.load_or_create(tmp_path / "other")
    result = passive_authentication(sod, _dg_files(files), load_trust_store(other.trust_dir))
    assert (result.authenticity, result.code) == (Authenticity.NOT_VERIFIED, "ds_issuer_unknown")
    altered = _dg_files(files) | {13: files[lds.DG13.fid][:-1] + b"X"}
    result = passive_authentication(sod, altered, trust)
    assert (result.authenticity, result.code, result.reason) == (
        Authenticity.FAILED,
        "hash_mismatch",
        "hash of DG13 does not match EF.SOD",
    )


def test_sod_signed_by_another_signer_fails(
    adult: CardProfile, pki: TestPki, tmp_path: Path
) -> None:
    """A SOD whose signature does not verify with the DS certificate it carries: forged."""
    files = build_files(adult, pki)
    forger = TestPki.load_or_create(tmp_path / "forger")
    forged = build_sod({1: files[lds.DG1.fid], 13: files[lds.DG13.fid]}, forger)
    # keep the forger's signature, swap in the genuine DS certificate
    info = cms.ContentInfo.load(tlv.parse_one(forged, 0x77).value)
    info["content"]["certificates"] = [asn1_x509.Certificate.load(pki.ds_cert.public_bytes(Encoding.DER))]
    sod = parse_sod(tlv.encode(0x77, info.dump(force=True)))
    result = passive_authentication(sod, _dg_files(files), load_trust_store(pki.trust_dir))
    assert (result.authenticity, result.code) == (Authenticity.FAILED, "sod_signature_invalid")
    assert result.reason == "EF.SOD signature does not verify"


def test_trust_store_reads_der_and_skips_junk(pki: TestPki, tmp_path: Path) -> None:
    (tmp_path / "csca.cer").write_bytes(pki.csca_cert.public_bytes(Encoding.DER))
    (tmp_path / "notes.txt").write_bytes(os.urandom(40))
    store = load_trust_store(tmp_path)
    assert (store.cscas, store.crls) == ((pki.csca_cert,), ())

"""Fuzz targets of the ID-card stack: everything a hostile card (or a scanned MRZ) can put in front of
the reader's parsers.

Each target returns quietly when the input was accepted or refused with a ``CardError`` (the stack's
documented error for bad card data: ``MalformedDataError``, ``SecureMessagingError``...); anything else
escapes and is a finding. Passive authentication of a fuzzed EF.SOD runs against a fuzz-only test PKI
whose keys are derived from fixed strings, so the committed seeds (signed by it) verify on any machine.

``python -m fuzz.card --write-seeds`` rewrites the seed corpora under ``fuzz/corpus/card.*`` from the
virtual chip's files (and a few hostile inputs); ``finding-*`` files there are inputs the fuzzers found
(each with a regression test in ``tests/card/test_fuzz_findings.py``) and are kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

# Imported here, not inside the targets: fuzz.run instruments for coverage only what is imported while
# it loads the area modules.
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.card import lds, tlv
from drivers.card.apdu import ResponseApdu
from drivers.card.ca import parse_dg14
from drivers.card.errors import CardError
from drivers.card.keys import AccessKey
from drivers.card.mrz import parse_td1
from drivers.card.pace import PaceInfo, build_card_access, parse_card_access
from drivers.card.reader import _identity
from drivers.card.sim.chip import DEFAULT_PACE
from drivers.card.sim.hostile import nested, with_deep_nesting
from drivers.card.sim.pki import PkiFaults, TestPki, _name, crl_of, csca_certificate, ds_certificate
from drivers.card.sim.profile import build_files, load_profile
from drivers.card.sm import TAG_CRYPTOGRAM, TAG_MAC, TAG_STATUS, SmSession
from drivers.card.sod import parse_sod, passive_authentication
from drivers.card.trust import TrustStore

#: the time passive authentication checks certificates at (fixed: a run does not depend on the day)
CHECK_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: secure messaging keys of the ``sm`` target (and of its seeds)
SM_KEYS = {"3des": (bytes(range(16)), bytes(range(16, 32))), "aes": (bytes(range(16)), bytes(range(16, 32)))}


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None when it refused the input with the card stack's error."""
    try:
        return fn(*args)
    except CardError:
        return None


# -- the fuzz-only PKI ---------------------------------------------------------------------------------
def _derived_key(label: str) -> ec.EllipticCurvePrivateKey:
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256
    value = int.from_bytes(hashlib.sha256(f"motcua fuzz {label}".encode()).digest(), "big")
    return ec.derive_private_key(value % (order - 1) + 1, ec.SECP256R1())


@cache
def fuzz_pki() -> TestPki:
    """A test PKI with fixed keys (certificates are rebuilt per process; the keys and names match)."""
    csca_key, ds_key = _derived_key("csca"), _derived_key("ds")
    csca = csca_certificate(csca_key, _name("CSCA TEST Viet Nam"))
    ds = ds_certificate(csca_key, csca.subject, ds_key, PkiFaults())
    return TestPki(Path("fuzz-pki"), csca, ds, ds_key, _derived_key("aa"), _derived_key("ca"))


@cache
def fuzz_trust() -> TrustStore:
    """The fuzz CSCA and a CRL of it (listing another serial), so the revocation check runs too."""
    pki = fuzz_pki()
    return TrustStore((pki.csca_cert,), (crl_of(_derived_key("csca"), pki.csca_cert, 4242),))


# -- targets -------------------------------------------------------------------------------------------
def _walk(items: list[Any], depth: int) -> None:
    tlv.check_depth(depth)
    for item in items:
        if item.constructed:
            _walk(item.children(), depth + 1)


def fuzz_tlv(data: bytes) -> None:
    _quiet(tlv.check_nesting, data)
    items = _quiet(tlv.parse_all, data)
    if items is not None:
        _quiet(_walk, items, 1)
        for item in items:  # what was parsed encodes and parses back to itself
            assert tlv.parse_one(item.dump()) == item
    _quiet(tlv.parse_one, data)
    _quiet(tlv.parse_header, data)
    _quiet(tlv.find, data, 0x5F1F)


def fuzz_dg1(data: bytes) -> None:
    td1 = _quiet(lds.parse_dg1, data)
    if td1 is not None:
        _ = (td1.name, td1.document_number, td1.birth_yymmdd, td1.expiry_yymmdd)
    text = data.decode("latin-1")
    _quiet(parse_td1, text)
    _quiet(AccessKey.from_mrz_text, text)  # the MRZ as a scanner types it


def fuzz_dg13(data: bytes) -> None:
    dg = _quiet(lds.parse_dg13, data)
    if dg is not None:
        for number in (3, 11, 12):
            lds.parse_vn_date(dg.text(number))
    record = _quiet(_identity, _genuine_dg1(), data)  # what a read makes of DG13 with a genuine DG1
    if record is not None:
        record.wipe()


@cache
def _genuine_dg1() -> bytes:
    return lds.build_dg1(load_profile("adult").mrz())


def fuzz_dg2(data: bytes) -> None:
    _quiet(lds.parse_dg2, data)


def fuzz_dg14(data: bytes) -> None:
    for info in _quiet(parse_dg14, data) or []:
        _ = (info.cipher, info.key_bits)
        _quiet(info.public_key)


def fuzz_sod(data: bytes) -> None:
    """EF.SOD parsed, then passive authentication against the fuzz CSCA: a verdict, never an exception."""
    sod = _quiet(parse_sod, data)
    if sod is None:
        return
    sod.data_groups()
    verdict = _quiet(passive_authentication, sod, {}, fuzz_trust(), CHECK_TIME)
    if verdict is not None:
        assert verdict.code and verdict.reason


def fuzz_card_access(data: bytes) -> None:
    for info in _quiet(parse_card_access, data) or []:
        _ = (info.cipher, info.key_bits, info.curve, info.oid_bytes())


def fuzz_sm(data: bytes) -> None:
    """A protected response unwrapped by the reader side. The first byte: bit 0 = AES (else 3DES),
    bit 1 = the harness appends a correct DO8E to the rest (so decryption, padding and DO99 are fuzzed
    behind a valid MAC; a fuzzer cannot forge one). The rest: response data + SW1 SW2."""
    if not data:
        return
    cipher = "aes" if data[0] & 1 else "3des"
    ks_enc, ks_mac = SM_KEYS[cipher]
    ssc = bytes(16 if cipher == "aes" else 8)
    reader = SmSession(ks_enc, ks_mac, ssc, cipher)
    response = _quiet(ResponseApdu.decode, data[1:])
    if response is None:
        return
    if data[0] & 2 and response.data:
        objects = _quiet(lambda: {item.tag: item.value for item in tlv.iter_tlv(response.data)})
        if objects is None:
            return
        twin = SmSession(ks_enc, ks_mac, ssc, cipher)  # the card side, at the same SSC
        macced = b"".join(tlv.encode(t, objects[t]) for t in (TAG_CRYPTOGRAM, TAG_STATUS) if t in objects)
        mac = twin._mac(twin._next_ssc(), macced)
        body = b"".join(tlv.encode(t, v) for t, v in objects.items() if t != TAG_MAC)
        response = ResponseApdu(body + tlv.encode(TAG_MAC, mac), response.sw)
    _quiet(reader.unwrap_response, response)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "tlv": fuzz_tlv,
    "dg1": fuzz_dg1,
    "dg13": fuzz_dg13,
    "dg2": fuzz_dg2,
    "dg14": fuzz_dg14,
    "sod": fuzz_sod,
    "card_access": fuzz_card_access,
    "sm": fuzz_sm,
}


# -- seeds ---------------------------------------------------------------------------------------------
def seeds() -> dict[str, dict[str, bytes]]:
    """Target -> file name -> content: the virtual chip's files (signed by the fuzz PKI) and hostile ones."""
    pki = fuzz_pki()
    profiles = {
        name: dataclasses.replace(load_profile(name), photo_bytes=700)
        for name in ("adult", "elderly", "married")
    }
    files = {name: build_files(profile, pki) for name, profile in profiles.items()}
    adult = files["adult"]
    deep = 1200  # past the bound and past Python's default recursion limit, about 5 KB
    out: dict[str, dict[str, bytes]] = {t: {} for t in TARGETS}
    for name, f in files.items():
        out["dg1"][f"{name}.dg1"] = f[lds.DG1.fid]
        out["dg13"][f"{name}.dg13"] = f[lds.DG13.fid]
        out["sod"][f"{name}.sod"] = f[lds.EF_SOD.fid]
    out["dg1"]["adult.mrz.txt"] = profiles["adult"].mrz().encode()
    bad_digit = bytearray(adult[lds.DG1.fid])
    bad_digit[-5] = (
        ord("0") + (bad_digit[-5] - ord("0") + 1) % 10 if chr(bad_digit[-5]).isdigit() else ord("1")
    )
    out["dg1"]["bad-check-digit.dg1"] = bytes(bad_digit)
    out["dg13"]["hostile-deep.dg13"] = with_deep_nesting("DG13", adult[lds.DG13.fid], deep)
    field_1 = tlv.encode(0x30, tlv.encode(0x02, b"\x01") + tlv.encode(0x13, b"079090001234"))
    out["dg13"]["at-the-bound.dg13"] = tlv.encode(0x6D, nested(tlv.MAX_DEPTH - 3, inner=field_1))
    out["dg13"]["one-past-the-bound.dg13"] = tlv.encode(0x6D, nested(tlv.MAX_DEPTH - 2, inner=field_1))
    out["dg2"]["adult-small-photo.dg2"] = adult[lds.DG2.fid]
    out["dg2"]["hostile-deep.dg2"] = with_deep_nesting("DG2", adult[lds.DG2.fid], deep)
    out["dg14"]["adult.dg14"] = adult[lds.DG14.fid]
    out["dg14"]["hostile-deep.dg14"] = with_deep_nesting("DG14", adult[lds.DG14.fid], deep)
    out["sod"]["hostile-deep.sod"] = tlv.encode(0x77, nested(deep))
    card_access = build_card_access([DEFAULT_PACE])
    out["card_access"]["brainpool-aes128.cardaccess"] = card_access
    out["card_access"]["two-options.cardaccess"] = build_card_access(
        [DEFAULT_PACE, PaceInfo("0.4.0.127.0.7.2.2.4.2.4", 2, 12)]
    )
    out["card_access"]["hostile-deep.cardaccess"] = with_deep_nesting("EF.CardAccess", card_access, deep)
    for name in ("EF.COM", "DG1", "DG13", "DG14", "DG15"):
        ef = {"EF.COM": lds.EF_COM, "DG1": lds.DG1, "DG13": lds.DG13, "DG14": lds.DG14, "DG15": lds.DG15}[
            name
        ]
        out["tlv"][f"adult.{name}"] = adult[ef.fid]
    out["tlv"]["one-past-the-bound"] = nested(tlv.MAX_DEPTH)
    out["tlv"]["hostile-deep"] = nested(deep)
    indefinite = b"\x05\x00"
    for _ in range(deep):
        indefinite = b"\x30\x80" + indefinite + b"\x00\x00"
    out["tlv"]["hostile-deep-indefinite"] = indefinite
    for mode, cipher in ((0, "3des"), (1, "aes")):
        ks_enc, ks_mac = SM_KEYS[cipher]
        card = SmSession(ks_enc, ks_mac, bytes(16 if cipher == "aes" else 8), cipher)
        answer = card.wrap_response(ResponseApdu(adult[lds.DG1.fid], 0x9000)).encode()
        out["sm"][f"{cipher}-dg1.sm"] = bytes([mode]) + answer
        out["sm"][f"{cipher}-dg1-remac.sm"] = bytes([mode | 2]) + answer
        out["sm"][f"{cipher}-status-only.sm"] = bytes([mode]) + bytes.fromhex("6982")
    return out


def write_seeds(root: Path) -> int:
    count = 0
    for target, items in seeds().items():
        folder = root / f"card.{target}"
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            if not stale.name.startswith("finding-"):  # inputs a fuzzer found stay (regressions)
                stale.unlink()
        for name, content in items.items():
            (folder / name).write_bytes(content)
            count += 1
    return count


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-seeds"]:
        sys.exit("usage: python -m fuzz.card --write-seeds")
    from fuzz.registry import CORPUS

    print(f"{write_seeds(CORPUS)} seeds written under {CORPUS}")
